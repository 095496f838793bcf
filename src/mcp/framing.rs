//! JSON-lines framing for MCP over stdio, written here instead of using rmcp's stdio
//! transport because the SPEC makes these ours:
//!
//! - rmcp drops a line that is not valid JSON (or too long) in silence; SPEC §3 wants a
//!   JSON-RPC error response for every bad line (-32700 / -32600, echoing the id when one can
//!   be read, else `"id": null` up to 2025-11-25 and no id in 2026-07-28 sessions), and the
//!   server must keep serving;
//! - `tools/call` with non-object `arguments` must be a JSON-RPC -32602, but rmcp's typed
//!   parse would turn it into a generic -32600;
//! - numbers a double cannot hold exactly (`0.10000000000000000001`) are already rounded once
//!   parsed, so their exactness can only be judged on the raw text of the line; each is
//!   replaced in the arguments by the string of its literal text, so the BLOCK receipt stores
//!   exactly what was sent and any RFC 8785 implementation verifies it (SPEC §5.2);
//! - a request whose id is still in flight is refused here (-32600) and never reaches rmcp;
//! - `notifications/cancelled` is handled here, not by rmcp: rmcp would drop the answer of a
//!   cancelled request, so its id would never be free again. Instead the request's
//!   [`Cancel`] is set (the engine abandons a run that has not started an action), the handler
//!   runs to its end, and its answer is not written (MCP: no response after a cancel);
//! - memory stays bounded when the client stops reading: with [`MAX_UNANSWERED`] requests
//!   read and not yet answered (an answer counts once its line is written), no new line is
//!   read until answers drain.
//!
//! What the framing knows about each request in flight ([`Requests`]) is shared with the
//! server, which takes a call's inexact numbers and its [`Cancel`] from it.
//!
//! Error responses are written by a spawned task so that dropping a `receive` future (the
//! service loop polls it inside `select!`) can never leave half a line on stdout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, ErrorCode, ErrorData, JsonRpcMessage,
    ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::engine::Cancel;
use crate::kernel::schema::{number_text_is_exact, quote_inexact_numbers};

/// The largest message accepted, in bytes. Well above the 1 MiB argument limit, so an
/// oversized *argument* still reaches the gate (and gets a BLOCK receipt), while a runaway
/// line cannot grow the buffer without bound.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// With this many requests read and not yet answered (plus error replies not yet written),
/// the framing stops reading new lines until answers drain (SPEC §3).
pub const MAX_UNANSWERED: usize = 256;

/// The request `_meta` key that carries the protocol version in 2026-07-28 sessions.
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// The requests in flight, shared by the reader, the writer and the server's handlers.
#[derive(Clone, Default)]
pub struct Requests(Arc<Shared>);

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever an answer or an error reply has been written.
    drained: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    /// Requests read and not yet answered, by [`id_key`].
    in_flight: HashMap<String, InFlight>,
    /// Answers being written.
    writing: usize,
    /// Error replies to bad lines not yet written.
    replies: usize,
    /// The session speaks 2026-07-28 or later (the version is in each request's `_meta`).
    modern: bool,
}

#[derive(Default)]
struct InFlight {
    /// Numbers in a `tools/call`'s arguments that a double cannot hold exactly.
    inexact: Vec<String>,
    cancel: Cancel,
}

impl Requests {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it; every update is a
        // single map or counter operation, so the state is still consistent.
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a request read; `false` if its id is already in flight.
    fn admit(&self, id: &RequestId, inexact: Vec<String>) -> bool {
        let mut state = self.state();
        let key = id_key(id);
        if state.in_flight.contains_key(&key) {
            return false;
        }
        state.in_flight.insert(
            key,
            InFlight {
                inexact,
                cancel: Cancel::default(),
            },
        );
        true
    }

    /// What a `tools/call` handler needs from the framing: the inexact numbers of its
    /// arguments (taken: asked once) and its cancellation flag.
    pub fn take_call(&self, id: &RequestId) -> (Vec<String>, Cancel) {
        let mut state = self.state();
        match state.in_flight.get_mut(&id_key(id)) {
            Some(r) => (std::mem::take(&mut r.inexact), r.cancel.clone()),
            None => (Vec::new(), Cancel::default()),
        }
    }

    /// The client cancelled this request (if it is still in flight).
    fn cancel(&self, id: &RequestId) {
        if let Some(r) = self.state().in_flight.get(&id_key(id)) {
            r.cancel.cancel();
        }
    }

    /// The request's answer is about to be written: its id is free from now on (a client
    /// that has read the answer may use it again at once), but the answer still counts as
    /// owed until [`Requests::answer_written`]. Returns whether the client cancelled the
    /// request (whose answer is then not written at all).
    fn answering(&self, id: &RequestId) -> bool {
        let mut state = self.state();
        let cancelled = state
            .in_flight
            .remove(&id_key(id))
            .is_some_and(|r| r.cancel.is_cancelled());
        state.writing += 1;
        cancelled
    }

    fn answer_written(&self) {
        let mut state = self.state();
        state.writing = state.writing.saturating_sub(1);
        drop(state);
        self.0.drained.notify_waiters();
    }

    fn reply_started(&self) {
        self.state().replies += 1;
    }

    fn reply_written(&self) {
        let mut state = self.state();
        state.replies = state.replies.saturating_sub(1);
        drop(state);
        self.0.drained.notify_waiters();
    }

    /// Requests read and not yet answered (an answer counts until written), plus error
    /// replies not yet written.
    pub fn unanswered(&self) -> usize {
        let state = self.state();
        state.in_flight.len() + state.writing + state.replies
    }

    /// Returns once fewer than [`MAX_UNANSWERED`] answers are owed. Cancel-safe.
    async fn room(&self) {
        loop {
            let drained = self.0.drained.notified();
            if self.unanswered() < MAX_UNANSWERED {
                return;
            }
            drained.await;
        }
    }

    fn set_modern(&self, modern: bool) {
        self.state().modern = modern;
    }

    /// Whether the session speaks 2026-07-28 (where an error without a readable id has no
    /// `id` member) rather than an older revision (where it has `"id": null`).
    pub fn is_modern(&self) -> bool {
        self.state().modern
    }
}

pub(super) fn id_key(id: &RequestId) -> String {
    serde_json::to_string(id).unwrap_or_default()
}

/// The refusal of a request whose id is still in flight (SPEC §3), on every transport.
pub(super) fn id_in_flight(id: &RequestId) -> ErrorData {
    ErrorData::new(
        ErrorCode::INVALID_REQUEST,
        format!(
            "Invalid request: id {} is already used by a request in flight",
            id_key(id)
        ),
        None,
    )
}

/// The transport: reads one JSON-RPC message per line, writes one per line.
pub struct LineTransport<R, W> {
    reader: BufReader<R>,
    line: Vec<u8>,
    /// Dropping the rest of an oversized line, until its newline.
    discarding: bool,
    writer: Arc<tokio::sync::Mutex<W>>,
    requests: Requests,
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    pub fn new(reader: R, writer: W, requests: Requests) -> Self {
        LineTransport {
            reader: BufReader::new(reader),
            line: Vec::new(),
            discarding: false,
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            requests,
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

    /// Answers a bad line from a separate task (see the module comment). The reply counts as
    /// owed until written, so a client that sends only garbage and never reads is bounded too.
    fn reply_error(&self, error: ErrorData, id: Option<RequestId>) {
        tracing::warn!(code = error.code.0, message = %error.message, "rejected a bad message");
        let message = ServerJsonRpcMessage::error(error, id);
        let writer = self.writer.clone();
        let requests = self.requests.clone();
        requests.reply_started();
        tokio::spawn(async move {
            if let Err(e) = write_message(&writer, &message, requests.is_modern()).await {
                tracing::error!(error = %e, "cannot write an error response");
            }
            requests.reply_written();
        });
    }
}

enum Line {
    Complete,
    Oversized,
    Eof,
}

/// Writes one message as one line. An error whose id could not be read gets `"id": null`
/// (JSON-RPC 2.0 §5) unless the session is at 2026-07-28, which omits the member.
async fn write_message<W: AsyncWrite + Unpin>(
    writer: &tokio::sync::Mutex<W>,
    message: &ServerJsonRpcMessage,
    modern: bool,
) -> std::io::Result<()> {
    let mut bytes = match message {
        JsonRpcMessage::Error(e) if e.id.is_none() && !modern => {
            let mut value = serde_json::to_value(message).map_err(std::io::Error::other)?;
            if let Value::Object(object) = &mut value {
                object.insert("id".into(), Value::Null);
            }
            serde_json::to_vec(&value)
        }
        _ => serde_json::to_vec(message),
    }
    .map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    let mut w = writer.lock().await;
    w.write_all(&bytes).await?;
    w.flush().await
}

/// What one line turned out to be.
#[derive(Debug)]
pub enum Parsed {
    /// A message for rmcp, the inexact numbers of a `tools/call`'s arguments, and the
    /// protocol version named in the request's `_meta` (2026-07-28 sessions).
    Message(
        Box<ClientJsonRpcMessage>,
        Vec<String>,
        Option<ProtocolVersion>,
    ),
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
    let is_call = method == Some("tools/call");
    let version = object
        .get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let (inexact, exact) = if is_call {
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
    Parsed::Message(Box::new(message), inexact, version)
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
        let requests = self.requests.clone();
        async move {
            let answers = match &item {
                JsonRpcMessage::Response(r) => {
                    if matches!(r.result, ServerResult::InitializeResult(_)) {
                        // An `initialize` handshake: a 2025 (or older) session, even after a
                        // `server/discover` probe.
                        requests.set_modern(false);
                    }
                    Some(r.id.clone())
                }
                JsonRpcMessage::Error(e) => e.id.clone(),
                _ => None,
            };
            let Some(id) = answers else {
                return write_message(&writer, &item, requests.is_modern()).await;
            };
            let result = if requests.answering(&id) {
                tracing::debug!(%id, "not answering a cancelled request");
                Ok(())
            } else {
                write_message(&writer, &item, requests.is_modern()).await
            };
            requests.answer_written();
            result
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            // Backpressure: a client that does not read its answers stops being read.
            self.requests.room().await;
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
            let (message, inexact, version) = match parse_line(body) {
                Parsed::Message(message, inexact, version) => (message, inexact, version),
                Parsed::Ignore => continue,
                Parsed::Reject(error, id) => {
                    self.reply_error(error, id);
                    continue;
                }
            };
            match message.as_ref() {
                ClientJsonRpcMessage::Request(r) => {
                    if version.is_some_and(|v| !v.has_initialize())
                        || matches!(r.request, ClientRequest::DiscoverRequest(_))
                    {
                        self.requests.set_modern(true);
                    }
                    if !self.requests.admit(&r.id, inexact) {
                        self.reply_error(id_in_flight(&r.id), Some(r.id.clone()));
                        continue;
                    }
                }
                ClientJsonRpcMessage::Notification(n) => {
                    if let ClientNotification::CancelledNotification(c) = &n.notification {
                        if let Some(id) = &c.params.request_id {
                            tracing::info!(%id, reason = ?c.params.reason, "the client cancelled a request");
                            self.requests.cancel(id);
                        }
                        // Not passed on: see the module comment.
                        continue;
                    }
                }
                _ => {}
            }
            return Some(*message);
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
            Parsed::Message(message, inexact, _) => {
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
