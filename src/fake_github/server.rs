//! A small HTTP/1.1 server on a Tokio listener: keep-alive connections, `Content-Length`
//! bodies (what octocrab's hyper client sends), one JSON answer per request. Written on
//! `httparse` rather than a server framework to keep the build lean; it only ever talks to
//! the local test or demo client.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::api::{self, Reply};
use super::state::State;

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Accepts connections until the task is aborted; aborting drops the `JoinSet`, which aborts
/// every connection task with it.
pub(crate) async fn serve(listener: TcpListener, state: Arc<Mutex<State>>, base_url: String) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, state.clone(), base_url.clone()));
                }
                Err(e) => tracing::warn!("fake GitHub: accept failed: {e}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

struct Incoming {
    method: String,
    target: String,
    authorization: Option<String>,
    close: bool,
    body: Vec<u8>,
}

async fn connection(mut stream: TcpStream, state: Arc<Mutex<State>>, base_url: String) {
    let mut buf = Vec::new();
    loop {
        let req = match read_request(&mut stream, &mut buf).await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                let _ = write_reply(
                    &mut stream,
                    &Reply {
                        status: 400,
                        body: Some(super::state::error_body(&e)),
                        headers: vec![],
                    },
                )
                .await;
                return;
            }
        };
        let reply = {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            let request = api::Request {
                method: &req.method,
                target: &req.target,
                authorization: req.authorization.as_deref(),
                body: &req.body,
            };
            api::handle(&mut state, &base_url, &request)
        };
        // An injected "disconnect": the request was read, no answer is ever sent.
        if reply.status == 0 || write_reply(&mut stream, &reply).await.is_err() || req.close {
            return;
        }
    }
}

/// Reads one request; `None` when the client closed the connection between requests.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<Incoming>, String> {
    loop {
        if let Some((head_len, mut req, body_len)) = parse_head(buf)? {
            while buf.len() < head_len + body_len {
                if read_more(stream, buf).await? == 0 {
                    return Err("connection closed inside a request body".into());
                }
            }
            req.body = buf[head_len..head_len + body_len].to_vec();
            buf.drain(..head_len + body_len);
            return Ok(Some(req));
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too large".into());
        }
        if read_more(stream, buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err("connection closed inside a request head".into())
            };
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// The parsed head (its length, the request without body, the body length) once complete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Incoming, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed request: {e}")),
    };
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    if header("transfer-encoding").is_some() {
        return Err("chunked request bodies are not supported by the fake GitHub".into());
    }
    let body_len = match header("content-length") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("bad content-length {v:?}"))?,
        None => 0,
    };
    if body_len > MAX_BODY {
        return Err("request body too large".into());
    }
    let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let req = Incoming {
        method: parsed.method.unwrap_or_default().to_string(),
        target: parsed.path.unwrap_or_default().to_string(),
        authorization: header("authorization"),
        close,
        body: Vec::new(),
    };
    Ok(Some((head_len, req, body_len)))
}

async fn write_reply(stream: &mut TcpStream, reply: &Reply) -> std::io::Result<()> {
    let body = reply
        .body
        .as_ref()
        .map(|b| b.to_string())
        .unwrap_or_default();
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    if reply.body.is_some() {
        out.push_str("content-type: application/json; charset=utf-8\r\n");
    }
    out.push_str(&format!("content-length: {}\r\n", body.len()));
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    stream.write_all(out.as_bytes()).await?;
    stream.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
