//! The loopback HTTP/1.1 server every in-process fake (GitHub, Slack, HubSpot) runs on:
//! keep-alive connections, `Content-Length` bodies (what hyper's client sends), one answer per
//! request, produced by a [`Handler`]. Written on `httparse` rather than a server framework to
//! keep the build lean; it only ever talks to the local test or demo client, and it can only
//! listen on `127.0.0.1` ([`Running::start`] binds nothing else).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 32 * 1024 * 1024;

/// One parsed request, as the client sent it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Every header, names lower-cased, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query string, without `?` (empty when there is none).
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

/// One answer. `status == 0` is an injected disconnect: the request was read and the
/// connection is closed without an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    /// An answer without a body (`204 No Content`).
    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
        }
    }

    /// The connection is closed after the request was read, with no answer.
    pub fn disconnect() -> Reply {
        Reply {
            status: 0,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// What a fake does with each request. Called on the connection's task, one request at a
/// time per connection; a fake keeps its state behind its own lock.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: &Request) -> Reply;

    /// The answer to a request that could not be parsed (the connection is closed after it).
    fn malformed(&self, message: &str) -> Reply {
        Reply::json(400, serde_json::json!({ "error": message }))
    }
}

/// A fake's running server: its state, shared with the handler, and the task serving it.
/// Dropping it stops the server and closes its connections.
pub struct Running<S> {
    base_url: String,
    state: Arc<Mutex<S>>,
    task: JoinHandle<()>,
}

impl<S> Running<S> {
    /// Binds `127.0.0.1` on a free port and serves `handler(state, base_url)` there in the
    /// current Tokio runtime; `base_url` is `http://127.0.0.1:<port>` followed by `prefix`
    /// (Slack's Web API lives under `/api`).
    pub async fn start<H: Handler>(
        prefix: &str,
        state: S,
        handler: impl FnOnce(Arc<Mutex<S>>, &str) -> H,
    ) -> std::io::Result<Running<S>> {
        let (listener, root) = bind_loopback().await?;
        let base_url = format!("{root}{prefix}");
        let state = Arc::new(Mutex::new(state));
        let handler = handler(state.clone(), &base_url);
        let task = tokio::spawn(serve(listener, Arc::new(handler)));
        Ok(Running {
            base_url,
            state,
            task,
        })
    }

    /// The `base_url` a system of the fake's type is configured with.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The state; a panicking handler does not make it unreadable for the test's asserts.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S> Drop for Running<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `127.0.0.1` on a free port and gives the listener and its `http://127.0.0.1:<port>`.
async fn bind_loopback() -> std::io::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    Ok((listener, base_url))
}

/// Accepts connections until the task is aborted; aborting drops the `JoinSet`, which aborts
/// every connection task with it.
async fn serve(listener: TcpListener, handler: Arc<dyn Handler>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, handler.clone()));
                }
                Err(e) => tracing::warn!("fake HTTP server: accept failed: {e}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(mut stream: TcpStream, handler: Arc<dyn Handler>) {
    let mut buf = Vec::new();
    loop {
        let (req, close) = match read_request(&mut stream, &mut buf).await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                let _ = write_reply(&mut stream, &handler.malformed(&e)).await;
                return;
            }
        };
        let reply = handler.handle(&req);
        if reply.status == 0 || write_reply(&mut stream, &reply).await.is_err() || close {
            return;
        }
    }
}

/// Reads one request (and whether the client asked to close); `None` when the client closed
/// the connection between requests.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<(Request, bool)>, String> {
    loop {
        if let Some((head_len, mut req, body_len, close)) = parse_head(buf)? {
            while buf.len() < head_len + body_len {
                if read_more(stream, buf).await? == 0 {
                    return Err("connection closed inside a request body".into());
                }
            }
            req.body = buf[head_len..head_len + body_len].to_vec();
            buf.drain(..head_len + body_len);
            return Ok(Some((req, close)));
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

/// The parsed head (its length, the request without body, the body length, close) once
/// complete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Request, usize, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed request: {e}")),
    };
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    if header("transfer-encoding").is_some() {
        return Err("chunked request bodies are not supported by the fake server".into());
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
    let req = Request {
        method: parsed.method.unwrap_or_default().to_string(),
        target: parsed.path.unwrap_or_default().to_string(),
        headers,
        body: Vec::new(),
    };
    Ok(Some((head_len, req, body_len, close)))
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
