//! JSON-lines framing for MCP over stdio, written here instead of using rmcp's stdio
//! transport for three reasons the SPEC makes ours:
//!
//! - rmcp drops a line that is not valid JSON (or too long) in silence; SPEC §3.1 wants a
//!   JSON-RPC error response for every bad line, and the server must keep serving;
//! - `tools/call` with non-object `arguments` must be a JSON-RPC -32602, but rmcp's typed
//!   parse would turn it into a generic -32600;
//! - numbers a double cannot hold exactly (`0.10000000000000000001`) are already rounded once
//!   parsed, so their exactness can only be judged on the raw text of the line. The framing
//!   records them per request id, and replaces each in the arguments by the string of its
//!   literal text, so the BLOCK receipt stores exactly what was sent and any RFC 8785
//!   implementation verifies it (SPEC §5.2); the tool handler turns them into an
//!   `input_schema` BLOCK.
//!
//! Error responses are written by a spawned task so that dropping a `receive` future (the
//! service loop polls it inside `select!`) can never leave half a line on stdout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::model::{ClientJsonRpcMessage, ErrorCode, ErrorData, RequestId, ServerJsonRpcMessage};
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::kernel::schema::{number_text_is_exact, quote_inexact_numbers};

/// The largest message accepted, in bytes. Well above the 1 MiB argument limit, so an
/// oversized *argument* still reaches the gate (and gets a BLOCK receipt), while a runaway
/// line cannot grow the buffer without bound.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Numbers found inexact in the raw text of a `tools/call`, keyed by request id.
#[derive(Clone, Default)]
pub struct InexactNumbers(Arc<Mutex<HashMap<String, Vec<String>>>>);

/// More recorded requests than this means their handlers never ran (rmcp refused them, e.g.
/// before `initialize`): the map is emptied rather than left to grow.
const MAX_RECORDED: usize = 4096;

impl InexactNumbers {
    fn record(&self, id: &RequestId, numbers: Vec<String>) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= MAX_RECORDED {
                map.clear();
            }
            map.insert(id_key(id), numbers);
        }
    }

    /// Takes (and forgets) what was recorded for a request.
    pub fn take(&self, id: &RequestId) -> Vec<String> {
        self.0
            .lock()
            .ok()
            .and_then(|mut map| map.remove(&id_key(id)))
            .unwrap_or_default()
    }
}

fn id_key(id: &RequestId) -> String {
    serde_json::to_string(id).unwrap_or_default()
}

/// The transport: reads one JSON-RPC message per line, writes one per line.
pub struct LineTransport<R, W> {
    reader: BufReader<R>,
    line: Vec<u8>,
    /// Dropping the rest of an oversized line, until its newline.
    discarding: bool,
    writer: Arc<tokio::sync::Mutex<W>>,
    inexact: InexactNumbers,
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    pub fn new(reader: R, writer: W, inexact: InexactNumbers) -> Self {
        LineTransport {
            reader: BufReader::new(reader),
            line: Vec::new(),
            discarding: false,
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            inexact,
        }
    }

    /// Reads up to the next newline without letting the buffer pass the limit. Cancel-safe:
    /// a partial line stays in `self.line` for the next call.
    async fn read_line(&mut self) -> std::io::Result<Line> {
        loop {
            let (consumed, outcome) = {
                let available = self.reader.fill_buf().await?;
                if available.is_empty() {
                    return Ok(Line::Eof);
                }
                let newline = available.iter().position(|b| *b == b'\n');
                let take = newline.map_or(available.len(), |i| i + 1);
                if self.discarding {
                    if newline.is_some() {
                        self.discarding = false;
                    }
                    (take, None)
                } else if self.line.len().saturating_add(take) > MAX_MESSAGE_BYTES + 2 {
                    self.line.clear();
                    self.discarding = newline.is_none();
                    (take, Some(Line::Oversized))
                } else {
                    self.line.extend_from_slice(&available[..take]);
                    (take, newline.map(|_| Line::Complete))
                }
            };
            self.reader.consume(consumed);
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
    }

    /// Answers a bad line from a separate task (see the module comment).
    fn reply_error(&self, error: ErrorData, id: Option<RequestId>) {
        tracing::warn!(code = error.code.0, message = %error.message, "rejected a bad message");
        let message = ServerJsonRpcMessage::error(error, id);
        let writer = self.writer.clone();
        tokio::spawn(async move {
            if let Err(e) = write_message(&writer, &message).await {
                tracing::error!(error = %e, "cannot write an error response");
            }
        });
    }
}

enum Line {
    Complete,
    Oversized,
    Eof,
}

async fn write_message<W: AsyncWrite + Unpin>(
    writer: &tokio::sync::Mutex<W>,
    message: &ServerJsonRpcMessage,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    let mut w = writer.lock().await;
    w.write_all(&bytes).await?;
    w.flush().await
}

/// What one line turned out to be.
#[derive(Debug)]
pub enum Parsed {
    Message(Box<ClientJsonRpcMessage>, Vec<String>),
    /// Nothing to do (blank line, or a notification rmcp does not know: JSON-RPC answers
    /// no notification, not even a bad one).
    Ignore,
    Reject(ErrorData, Option<RequestId>),
}

/// Classifies one line (without its newline). Pure, so every case is unit-tested.
pub fn parse_line(line: &[u8]) -> Parsed {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Ignore;
    }
    let mut value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Parsed::Reject(
                ErrorData::new(ErrorCode::PARSE_ERROR, format!("Parse error: {e}"), None),
                None,
            );
        }
    };
    let Value::Object(object) = &value else {
        let what = if value.is_array() {
            "batch requests are not supported"
        } else {
            "a JSON-RPC message must be a JSON object"
        };
        return Parsed::Reject(
            ErrorData::new(
                ErrorCode::INVALID_REQUEST,
                format!("Invalid request: {what}"),
                None,
            ),
            None,
        );
    };
    let id: Option<RequestId> = object
        .get("id")
        .and_then(|id| serde_json::from_value(id.clone()).ok());
    let method = object.get("method").and_then(Value::as_str);
    let arguments = object.get("params").and_then(|p| p.get("arguments"));
    if method == Some("tools/call")
        && let Some(args) = arguments
        && !args.is_object()
    {
        return Parsed::Reject(
            ErrorData::invalid_params(
                format!(
                    "`arguments` must be a JSON object, got {}",
                    crate::kernel::plan::json_type_name(args)
                ),
                None,
            ),
            id,
        );
    }
    let notification = method.is_some_and(|m| m.starts_with("notifications/"));
    let (inexact, exact) = if method == Some("tools/call") {
        inexact_arguments(line)
    } else {
        (Vec::new(), None)
    };
    if let Some(exact) = exact
        && let Some(params) = value.get_mut("params").and_then(Value::as_object_mut)
    {
        params.insert("arguments".into(), exact);
    }
    let message: ClientJsonRpcMessage = match serde_json::from_value(value) {
        Ok(m) => m,
        Err(_) if id.is_none() && notification => {
            return Parsed::Ignore;
        }
        Err(e) => {
            return Parsed::Reject(
                ErrorData::new(
                    ErrorCode::INVALID_REQUEST,
                    format!("Invalid request: {e}"),
                    None,
                ),
                id,
            );
        }
    };
    Parsed::Message(Box::new(message), inexact)
}

/// The number tokens of `params.arguments`, as written, that a double cannot hold exactly,
/// and (when there are any) the arguments with each of them replaced by the string of its text.
fn inexact_arguments(line: &[u8]) -> (Vec<String>, Option<Value>) {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        params: Option<ProbeParams<'a>>,
    }
    #[derive(Deserialize)]
    struct ProbeParams<'a> {
        #[serde(borrow)]
        arguments: Option<&'a RawValue>,
    }
    let raw = serde_json::from_slice::<Probe>(line)
        .ok()
        .and_then(|probe| probe.params)
        .and_then(|p| p.arguments);
    let Some(raw) = raw.map(RawValue::get) else {
        return (Vec::new(), None);
    };
    let numbers: Vec<String> = number_tokens(raw)
        .into_iter()
        .filter(|t| !number_text_is_exact(t))
        .map(str::to_string)
        .collect();
    if numbers.is_empty() {
        return (numbers, None);
    }
    let exact = serde_json::from_str(&quote_inexact_numbers(raw)).ok();
    (numbers, exact)
}

/// Every number token of a JSON text (outside strings), as written.
pub fn number_tokens(json: &str) -> Vec<&str> {
    let bytes = json.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                if let Some(token) = json.get(start..i) {
                    out.push(token);
                }
            }
            _ => i += 1,
        }
    }
    out
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        async move { write_message(&writer, &item).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            match self.read_line().await {
                Ok(Line::Complete) => {}
                Ok(Line::Oversized) => {
                    self.reply_error(
                        ErrorData::new(
                            ErrorCode::INVALID_REQUEST,
                            format!(
                                "Invalid request: message larger than {MAX_MESSAGE_BYTES} bytes"
                            ),
                            None,
                        ),
                        None,
                    );
                    continue;
                }
                Ok(Line::Eof) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read stdin");
                    return None;
                }
            }
            let line = std::mem::take(&mut self.line);
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            match parse_line(body) {
                Parsed::Message(message, inexact) => {
                    if !inexact.is_empty()
                        && let ClientJsonRpcMessage::Request(r) = message.as_ref()
                    {
                        self.inexact.record(&r.id, inexact);
                    }
                    return Some(*message);
                }
                Parsed::Ignore => continue,
                Parsed::Reject(error, id) => self.reply_error(error, id),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.lock().await.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(line: &str) -> (i32, String, Option<RequestId>) {
        match parse_line(line.as_bytes()) {
            Parsed::Reject(e, id) => (e.code.0, e.message.to_string(), id),
            other => panic!("expected a rejection for {line}, got {other:?}"),
        }
    }

    #[test]
    fn garbage_is_a_parse_error_without_id() {
        let (code, message, id) = reject("this is not json");
        assert_eq!(code, -32700);
        assert!(message.starts_with("Parse error: "), "{message}");
        assert!(id.is_none());
    }

    #[test]
    fn non_objects_and_batches_are_invalid_requests() {
        assert_eq!(
            reject("[1,2]").1,
            "Invalid request: batch requests are not supported"
        );
        assert_eq!(
            reject("42").1,
            "Invalid request: a JSON-RPC message must be a JSON object"
        );
    }

    #[test]
    fn non_object_arguments_are_invalid_params_with_the_id() {
        let (code, message, id) = reject(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":[1]}}"#,
        );
        assert_eq!(code, -32602);
        assert_eq!(message, "`arguments` must be a JSON object, got an array");
        assert_eq!(id, Some(RequestId::Number(7)));
    }

    #[test]
    fn wrong_shapes_are_invalid_requests_with_the_id() {
        let (code, _, id) = reject(r#"{"jsonrpc":"2.0","id":"a","method":7}"#);
        assert_eq!(code, -32600);
        assert_eq!(id, Some(RequestId::String("a".into())));
    }

    #[test]
    fn blank_lines_and_unknown_notifications_are_ignored() {
        assert!(matches!(parse_line(b"  \r"), Parsed::Ignore));
        assert!(matches!(
            parse_line(br#"{"jsonrpc":"2.0","method":"notifications/whatever","params":7}"#),
            Parsed::Ignore
        ));
    }

    #[test]
    fn inexact_numbers_in_arguments_are_found_as_written() {
        let line = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":9007199254740993,"b":0.1,"c":"12345678901234567890","d":[1.0,0.10000000000000000001]}}}"#;
        match parse_line(line.as_bytes()) {
            Parsed::Message(message, inexact) => {
                assert_eq!(inexact, vec!["9007199254740993", "0.10000000000000000001"]);
                // The arguments hold each inexact literal as the string of its text.
                let sent = serde_json::to_value(&message).unwrap_or_default();
                assert_eq!(
                    sent["params"]["arguments"],
                    serde_json::json!({"a": "9007199254740993", "b": 0.1,
                        "c": "12345678901234567890", "d": [1.0, "0.10000000000000000001"]})
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn number_tokens_skip_strings_with_escapes() {
        assert_eq!(
            number_tokens(r#"{"a\"1":2,"b":["3\\",-4.5e6]}"#),
            vec!["2", "-4.5e6"]
        );
    }
}
