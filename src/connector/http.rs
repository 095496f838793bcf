//! A small JSON-over-HTTPS client for the REST connectors (Slack, HubSpot): one base URL, a
//! bearer token, JSON or form bodies, a timeout, no retries and no redirects.
//!
//! Built on the hyper + hyper-rustls stack octocrab already compiles (ring, native roots), so
//! it adds no crypto backend. The rules it keeps for every connector on top of it:
//!
//! - **The token goes only into the `Authorization` header**, never into a URL, an error or a
//!   log line. Errors are built from the method, the path and the transport's error kind
//!   only; [`Request`] paths are assembled by the connector from validated parts.
//! - **One request per call, never re-sent**: no retry layer, and a redirect is returned as
//!   the 3xx it is (never followed, so the header cannot be replayed to another host).
//! - **Nothing sent vs. maybe sent**: a failure to connect means the server never saw the
//!   request ([`HttpError::NotSent`]); any later failure (reset, timeout, a broken answer)
//!   means a write may or may not have taken effect ([`HttpError::NoAnswer`]).
//! - The client is built on first use, in the runtime that uses it (loading the system's
//!   root certificates is not something a config check should do).

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::secret::Secret;

/// SPEC: 10 s to connect, 60 s per request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Answers larger than this are refused (a REST JSON answer is far smaller).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

type Inner = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for one API root and one bearer token.
pub struct JsonClient {
    base_url: String,
    token: Secret,
    timeout: Duration,
    inner: OnceLock<Result<Inner, String>>,
}

impl fmt::Debug for JsonClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonClient")
            .field("base_url", &self.base_url)
            .field("token", &self.token)
            .finish()
    }
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    /// Sent as `application/json; charset=utf-8`.
    Json(Value),
    /// Sent as `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
}

/// One request: a method and a path (with its query) relative to the base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: http::Method,
    /// Starts with `/`; appended to the base URL's path. Assembled from validated or
    /// percent-encoded parts only.
    pub path: String,
    pub body: Body,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Request {
        Request {
            method: http::Method::GET,
            path: path.into(),
            body: Body::None,
        }
    }
    pub fn post_json(path: impl Into<String>, body: Value) -> Request {
        Request {
            method: http::Method::POST,
            path: path.into(),
            body: Body::Json(body),
        }
    }
    pub fn with_method(mut self, method: http::Method) -> Request {
        self.method = method;
        self
    }
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    /// The parsed JSON body; `Value::Null` when the body is empty or not JSON.
    pub body: Value,
}

impl Response {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request that got no usable answer. The text never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request was never sent (bad URL, no connection): nothing can have changed.
    #[error("{0}")]
    NotSent(String),
    /// Sent (or possibly sent) but no complete answer came back: a write may have happened.
    #[error("{0}")]
    NoAnswer(String),
}

impl HttpError {
    pub fn message(&self) -> &str {
        match self {
            HttpError::NotSent(m) | HttpError::NoAnswer(m) => m,
        }
    }
}

/// Checks a REST connector's `base_url` (SPEC-hubspot-slack §2): `https://…`, or `http://`
/// with host `127.0.0.1`, `::1` or `localhost` (the fakes) — a token never travels in clear
/// to another host; no query or fragment; a path prefix is allowed.
pub fn check_base_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`base_url` must be an https:// URL, got {url:?}"))?;
    if scheme != "https" && scheme != "http" {
        return Err(format!("`base_url` must be an https:// URL, got {url:?}"));
    }
    if url.contains(['?', '#']) {
        return Err(format!(
            "`base_url` may not have a query or fragment, got {url:?}"
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || url.parse::<http::Uri>().is_err() {
        return Err(format!("`base_url` is not a valid URL, got {url:?}"));
    }
    let host = host_of(authority);
    if scheme == "http" && !matches!(host, "127.0.0.1" | "::1" | "localhost") {
        return Err(format!(
            "`base_url` {url:?} uses http:// on a host that is not loopback: the token would travel in clear (use https://)"
        ));
    }
    Ok(())
}

/// The host of `host[:port]` or `[v6][:port]`.
fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

impl JsonClient {
    /// A client for `base_url` (checked with [`check_base_url`]) with this token.
    pub fn new(base_url: &str, token: &Secret) -> Result<JsonClient, String> {
        check_base_url(base_url)?;
        Ok(JsonClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.clone(),
            timeout: REQUEST_TIMEOUT,
            inner: OnceLock::new(),
        })
    }

    /// Another per-request timeout (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> JsonClient {
        self.timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn inner(&self) -> Result<&Inner, HttpError> {
        self.inner
            .get_or_init(|| {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(Some(CONNECT_TIMEOUT));
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map_err(|e| format!("cannot load the system's root certificates: {e}"))?
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                Ok(HyperClient::builder(TokioExecutor::new())
                    // No pooled-connection re-sends of requests the server may have seen.
                    .retry_canceled_requests(false)
                    .build(https))
            })
            .as_ref()
            .map_err(|e| HttpError::NotSent(e.clone()))
    }

    /// Sends one request and reads the whole answer. Never retries.
    pub async fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let what = format!("{} {}", request.method, request.path);
        let uri: http::Uri = format!("{}{}", self.base_url, request.path)
            .parse()
            .map_err(|_| HttpError::NotSent(format!("{what}: invalid request URL")))?;
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(uri)
            .header(ACCEPT, "application/json");
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
            .map_err(|_| HttpError::NotSent("the token is not a valid header value".into()))?;
        auth.set_sensitive(true);
        builder = builder.header(AUTHORIZATION, auth);
        let body = match &request.body {
            Body::None => Bytes::new(),
            Body::Json(v) => {
                builder = builder.header(CONTENT_TYPE, "application/json; charset=utf-8");
                Bytes::from(v.to_string())
            }
            Body::Form(pairs) => {
                builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Bytes::from(form_encode(pairs))
            }
        };
        let req = builder
            .body(Full::new(body))
            .map_err(|e| HttpError::NotSent(format!("{what}: {e}")))?;
        let client = self.inner()?;
        let exchange = async {
            let answer = client.request(req).await.map_err(|e| {
                if e.is_connect() {
                    HttpError::NotSent(format!("{what}: cannot connect to {}", self.base_url))
                } else {
                    HttpError::NoAnswer(format!("{what}: no answer ({})", error_kind(&e)))
                }
            })?;
            let (parts, body) = answer.into_parts();
            let bytes = http_body_util::Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|_| HttpError::NoAnswer(format!("{what}: the answer was cut off")))?
                .to_bytes();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::NoAnswer(format!(
                "{what}: no answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }
}

/// hyper's error kind, without its source chain (which could quote a URL or header).
fn error_kind(e: &hyper_util::client::legacy::Error) -> &'static str {
    if e.is_connect() {
        "connection failed"
    } else {
        "connection closed or reset"
    }
}

/// `application/x-www-form-urlencoded`: RFC 3986 unreserved characters kept, the rest
/// percent-encoded (space as `%20`, which every server accepts).
pub fn form_encode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", query_encode(k), query_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes one query or form component: everything but RFC 3986 unreserved
/// characters.
pub fn query_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Percent-encodes one path segment the same way (`@` → `%40`, `+` → `%2B`, `/` → `%2F`).
pub fn segment_encode(s: &str) -> String {
    query_encode(s)
}

const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(check_base_url("https://slack.com/api").is_ok());
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:1/x").is_ok());
        assert!(check_base_url("http://[::1]:9").is_ok());
        assert!(check_base_url("http://example.com").is_err());
        assert!(check_base_url("http://127.0.0.1.evil.com").is_err());
        assert!(check_base_url("https://a.com/?x=1").is_err());
        assert!(check_base_url("https://a.com/#f").is_err());
        assert!(check_base_url("ftp://a.com").is_err());
        assert!(check_base_url("https://user@a.com").is_err());
    }

    #[test]
    fn encoding() {
        assert_eq!(segment_encode("a+b@c.d"), "a%2Bb%40c.d");
        assert_eq!(form_encode(&[("a".into(), "x y&z".into())]), "a=x%20y%26z");
    }

    #[tokio::test]
    async fn a_refused_connection_is_not_sent_and_never_names_the_token() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").ok();
        let port = listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map_or(9, |a| a.port());
        drop(listener);
        let client = JsonClient::new(
            &format!("http://127.0.0.1:{port}"),
            &Secret::new("xoxb-secret"),
        );
        let client = client.unwrap();
        let err = client.send(&Request::get("/auth.test")).await;
        match err {
            Err(HttpError::NotSent(m)) => assert!(!m.contains("xoxb-secret"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(!format!("{client:?}").contains("xoxb-secret"));
    }
}
