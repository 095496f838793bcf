//! MCP over streamable HTTP (SPEC §10): rmcp's streamable HTTP service at `/mcp` (2025-11-25
//! sessions with `Mcp-Session-Id`, stateless 2026-07-28), served by hyper (HTTP/1.1, with TLS
//! through rustls when configured), behind our own front door.
//!
//! The front door runs before rmcp sees a request, in the order SPEC §10 fixes:
//!
//! 1. an `Origin` header not in `allowed_origins` → 403 (DNS rebinding, browsers);
//! 2. with `[[http.clients]]`: a missing or unknown bearer token → 401 with
//!    `WWW-Authenticate: Bearer`. The token's SHA-256 is compared with every client's digest in
//!    constant time; the `Authorization` header is then removed, so nothing downstream (rmcp
//!    logs requests with their extensions at debug level) can ever see the token;
//! 3. a body over `max_body` → 413;
//! 4. the JSON-RPC hygiene of the stdio framing that applies to one message per POST: a body
//!    that is not JSON gets -32700 and a JSON value that is not a JSON-RPC message -32600
//!    (HTTP 400, id echoed when readable, else `"id": null` below 2026-07-28); `tools/call`
//!    with non-object arguments gets -32602; numbers a double cannot hold are found on the raw
//!    text and replaced by their literal text, exactly as [`super::framing`] does;
//!    A request whose id is still in flight in the same session (`Mcp-Session-Id`) gets
//!    -32600 carrying that id and does not run, as on stdio; a stateless 2026-07-28 request has
//!    its own HTTP exchange, so its id cannot be confused with another's;
//! 5. per-client concurrency: a client with `max_concurrent` requests running gets 429.
//!
//! What the handler needs from all this (the client's actor, the inexact numbers, its
//! concurrency permit) travels in the request's extensions as a [`Caller`]; rmcp hands the
//! request's `http::request::Parts` to the handler, which reads it back (`server::tool_call`).

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rmcp::model::{ErrorData, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::framing::{self, Parsed, Requests};
use super::server::{EnactServer, InFlight};
use crate::config::{DEFAULT_CLIENT_CONCURRENCY, HttpConfig};
use crate::engine::Engine;
use crate::kernel::context::Actor;

/// The MCP endpoint's path.
pub const PATH: &str = "/mcp";

/// How long shutdown waits for running tool calls (SPEC §5.5), then for connections to close.
const CALLS_GRACE: Duration = Duration::from_secs(30);
const CONNECTIONS_GRACE: Duration = Duration::from_secs(5);

/// What the front door found out about a request, for the tool handler.
#[derive(Clone)]
pub struct Caller {
    /// The client's actor; `None` without `[[http.clients]]` (calls act as `[actor]`).
    pub actor: Option<Actor>,
    /// Numbers in a `tools/call`'s arguments that a double cannot hold exactly.
    pub inexact: Vec<String>,
    /// Held while the request is handled (released when rmcp drops the request).
    _permit: Option<Arc<OwnedSemaphorePermit>>,
    /// The request's id in its session, likewise held until the request is answered.
    _id: Option<Arc<IdInFlight>>,
}

/// Request ids in flight, by session: `"<Mcp-Session-Id> <id as JSON>"`.
type SessionIds = Arc<Mutex<HashSet<String>>>;

/// One session's request id while its request is handled; freed when rmcp drops the request,
/// which it does once the handler has returned the answer (so the id is free again once
/// answered, SPEC §3).
struct IdInFlight {
    ids: SessionIds,
    key: String,
}

impl IdInFlight {
    /// Claims `id` in `session`; `None` if a request with that id is still in flight there.
    fn claim(ids: &SessionIds, session: &str, id: &rmcp::model::RequestId) -> Option<IdInFlight> {
        let key = format!("{session} {}", framing::id_key(id));
        let fresh = lock(ids).insert(key.clone());
        fresh.then(|| IdInFlight {
            ids: ids.clone(),
            key,
        })
    }
}

impl Drop for IdInFlight {
    fn drop(&mut self) {
        lock(&self.ids).remove(&self.key);
    }
}

/// A poisoned lock only means a thread panicked while holding it; every update is a single
/// set operation, so the set is still consistent.
fn lock(ids: &SessionIds) -> std::sync::MutexGuard<'_, HashSet<String>> {
    ids.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// One `[[http.clients]]` entry as the front door uses it.
struct Client {
    name: String,
    digest: [u8; 32],
    actor: Actor,
    slots: Arc<Semaphore>,
}

/// The front door's state, shared by every connection.
struct Door {
    origins: Vec<String>,
    clients: Vec<Client>,
    /// Requests running without `[[http.clients]]`.
    anonymous: Arc<Semaphore>,
    max_body: usize,
    ids: SessionIds,
    mcp: StreamableHttpService<EnactServer, LocalSessionManager>,
}

/// TLS for `serve --http`: a rustls acceptor built from PEM files.
pub type Tls = tokio_rustls::TlsAcceptor;

/// Builds the TLS acceptor from a PEM certificate chain and a PEM private key.
pub fn tls(cert: &std::path::Path, key: &std::path::Path) -> Result<Tls, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("tls_cert_file `{}`: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_cert_file `{}` holds no certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls_key_file `{}`: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves MCP over HTTP on `listener` until `shutdown` resolves; then reads no new request,
/// lets every running tool call finish and be recorded (up to 30 s), and returns.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    tls: Option<Tls>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let config: HttpConfig = engine.registry().config.http.clone();
    let loopback = listener
        .local_addr()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false);
    let in_flight = InFlight::default();
    let stop = CancellationToken::new();
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_cancellation_token(stop.child_token())
        .with_max_request_body_bytes(config.max_body)
        // Origins are checked by the front door (exact values, before authentication).
        .disable_allowed_origins();
    if !loopback {
        // Behind a name of the operator's choosing; every request carries a bearer token.
        mcp_config = mcp_config.disable_allowed_hosts();
    }
    let factory_engine = engine.clone();
    let factory_in_flight = in_flight.clone();
    let mcp = StreamableHttpService::new(
        move || {
            EnactServer::new(
                factory_engine.clone(),
                Requests::default(),
                factory_in_flight.clone(),
            )
            .map_err(std::io::Error::other)
        },
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    );
    let door = Arc::new(Door {
        origins: config.allowed_origins.clone(),
        clients: config
            .clients
            .iter()
            .map(|c| Client {
                name: c.name.clone(),
                digest: c.token_sha256,
                actor: c.actor.clone(),
                slots: Arc::new(Semaphore::new(c.max_concurrent)),
            })
            .collect(),
        anonymous: Arc::new(Semaphore::new(DEFAULT_CLIENT_CONCURRENCY * 4)),
        max_body: config.max_body,
        ids: SessionIds::default(),
        mcp,
    });

    let connections = tokio_util::task::TaskTracker::new();
    let closing = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let door = door.clone();
        let closing = closing.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => connection(stream, peer, door, closing).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => connection(stream, peer, door, closing).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new requests; started runs finish and are recorded");
    // Connections finish the request they are serving and take no new one.
    closing.cancel();
    if in_flight.count() > 0 {
        tracing::warn!(
            calls = in_flight.count(),
            "waiting for running calls to finish and write their receipts"
        );
        if tokio::time::timeout(CALLS_GRACE, in_flight.idle())
            .await
            .is_err()
        {
            tracing::error!(
                calls = in_flight.count(),
                "calls still running after 30 s: exiting; recovery will finish their records"
            );
        }
    }
    // Ends the sessions' event streams, so their connections can close.
    stop.cancel();
    connections.close();
    if tokio::time::timeout(CONNECTIONS_GRACE, connections.wait())
        .await
        .is_err()
    {
        tracing::debug!("connections still open at exit");
    }
    Ok(())
}

/// Serves one connection (HTTP/1.1, keep-alive) until it closes or the server shuts down.
async fn connection<S>(stream: S, peer: SocketAddr, door: Arc<Door>, closing: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let door = door.clone();
        async move { Ok::<_, Infallible>(door.handle(request).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            return;
        }
        () = closing.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

fn reply(status: StatusCode, text: &str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(text.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn unauthorized(invalid: bool) -> Reply {
    let mut response = reply(
        StatusCode::UNAUTHORIZED,
        if invalid {
            "Unauthorized: unknown bearer token\n"
        } else {
            "Unauthorized: send `Authorization: Bearer <token>`\n"
        },
    );
    let challenge = if invalid {
        "Bearer realm=\"enact\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"enact\""
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// A JSON-RPC error as the answer to a POST (HTTP 400).
fn json_rpc_error(error: ErrorData, id: Option<rmcp::model::RequestId>, modern: bool) -> Reply {
    let message = ServerJsonRpcMessage::error(error, id.clone());
    let mut value = serde_json::to_value(&message).unwrap_or(Value::Null);
    if id.is_none()
        && !modern
        && let Value::Object(object) = &mut value
    {
        object.insert("id".into(), Value::Null);
    }
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Compares two digests without an early exit.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Door {
    async fn handle(&self, request: Request<Incoming>) -> Reply {
        let method = request.method().clone();
        let response = self.front(request).await;
        tracing::debug!(%method, status = response.status().as_u16(), "HTTP request");
        response
    }

    async fn front(&self, request: Request<Incoming>) -> Reply {
        if request.uri().path() != PATH {
            return reply(StatusCode::NOT_FOUND, "Not Found: MCP is served at /mcp\n");
        }
        // 1. Origin.
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|o| self.origins.iter().any(|a| a == o));
            if !allowed {
                tracing::warn!(origin = ?origin, "refused a request from an origin not in [http] allowed_origins");
                return reply(
                    StatusCode::FORBIDDEN,
                    "Forbidden: Origin not allowed (see [http] allowed_origins)\n",
                );
            }
        }
        // 2. Bearer token.
        let (mut parts, body) = request.into_parts();
        let client = if self.clients.is_empty() {
            None
        } else {
            let token = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    let (scheme, token) = v.trim().split_once(' ')?;
                    scheme
                        .eq_ignore_ascii_case("bearer")
                        .then(|| token.trim().to_string())
                });
            let Some(token) = token.filter(|t| !t.is_empty()) else {
                tracing::info!("refused a request without a bearer token");
                return unauthorized(false);
            };
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            drop(token);
            // Every digest is compared, so the time taken says nothing about which matched.
            let mut found = None;
            for (i, c) in self.clients.iter().enumerate() {
                if same_digest(&c.digest, &digest) {
                    found = Some(i);
                }
            }
            let Some(client) = found.and_then(|i| self.clients.get(i)) else {
                tracing::info!("refused a request with an unknown bearer token");
                return unauthorized(true);
            };
            Some(client)
        };
        // Nothing past this point sees the token.
        parts.headers.remove(header::AUTHORIZATION);
        parts.headers.remove(header::COOKIE);

        // 3. Body size.
        let too_big = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > self.max_body as u64);
        if too_big {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large: the body is over [http] max_body\n",
            );
        }
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return reply(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "Payload Too Large: the body is over [http] max_body\n",
                    );
                }
                return reply(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: cannot read the body\n",
                );
            }
        };

        // 4. JSON-RPC hygiene, for POSTed messages.
        let mut inexact = Vec::new();
        let mut body = body;
        let mut is_call = false;
        let mut id_claim = None;
        if parts.method == Method::POST {
            let modern = parts
                .headers
                .get("mcp-protocol-version")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v >= "2026-07-28");
            match framing::parse_line(&body) {
                Parsed::Reject(error, id) => {
                    tracing::warn!(code = error.code.0, message = %error.message, "rejected a bad message");
                    return json_rpc_error(error, id, modern);
                }
                Parsed::Message(message, found, _) => {
                    let session = parts
                        .headers
                        .get("mcp-session-id")
                        .and_then(|v| v.to_str().ok());
                    if let (rmcp::model::JsonRpcMessage::Request(r), Some(session)) =
                        (&*message, session)
                    {
                        match IdInFlight::claim(&self.ids, session, &r.id) {
                            Some(claim) => id_claim = Some(Arc::new(claim)),
                            None => {
                                tracing::warn!(id = %framing::id_key(&r.id), "refused a request whose id is in flight");
                                return json_rpc_error(
                                    framing::id_in_flight(&r.id),
                                    Some(r.id.clone()),
                                    modern,
                                );
                            }
                        }
                    }
                    is_call = matches!(
                        &*message,
                        rmcp::model::JsonRpcMessage::Request(r)
                            if matches!(r.request, rmcp::model::ClientRequest::CallToolRequest(_))
                    );
                    if !found.is_empty() {
                        // The message with each inexact number replaced by its literal text.
                        match serde_json::to_vec(&*message) {
                            Ok(bytes) => body = Bytes::from(bytes),
                            Err(e) => {
                                return json_rpc_error(
                                    ErrorData::internal_error(e.to_string(), None),
                                    None,
                                    modern,
                                );
                            }
                        }
                        inexact = found;
                    }
                }
                Parsed::Ignore => {}
            }
        }

        // 5. Concurrency.
        let slots = client.map_or(&self.anonymous, |c| &c.slots);
        let permit = if is_call {
            match slots.clone().try_acquire_owned() {
                Ok(p) => Some(Arc::new(p)),
                Err(_) => {
                    tracing::warn!(
                        client = client.map_or("-", |c| c.name.as_str()),
                        "refused a call: the client has max_concurrent calls running"
                    );
                    let mut response = reply(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too Many Requests: this client has max_concurrent calls running\n",
                    );
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    return response;
                }
            }
        } else {
            None
        };
        if let Some(c) = client {
            tracing::debug!(client = %c.name, "authenticated");
        }
        parts.extensions.insert(Caller {
            actor: client.map(|c| c.actor.clone()),
            inexact,
            _permit: permit,
            _id: id_claim,
        });
        let request = Request::from_parts(parts, Full::new(body));
        let mut mcp = self.mcp.clone();
        match tower_service::Service::call(&mut mcp, request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(same_digest(&a, &b));
        b[31] = 8;
        assert!(!same_digest(&a, &b));
    }
}
