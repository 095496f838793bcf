//! `enact serve --http` (SPEC §10) through the real binary: rmcp's streamable HTTP client with
//! bearer tokens (2025-11-25 sessions and stateless 2026-07-28), the front door's refusals
//! (403, 401, 413) and what they leave behind (no receipt), one actor per client, start-up
//! refusals, SIGTERM, and `enact http-token`.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::engine::{FILES_CONFIG, SECRET};
use crate::mcp::{Client, Folder, enact_bin, is_error, structured, texts};

pub const TOKEN_A: &str = "token-of-the-ci-bot-0123456789abcdef0123456789";
pub const TOKEN_B: &str = "token-of-the-support-agent-0123456789abcdef0123";

pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Two clients: `ci-bot` (engineer) and `support` (contractor, at most 2 calls at once).
pub fn clients() -> String {
    format!(
        r#"
[http]
allowed_origins = ["https://console.example.com"]
max_body = "64KiB"

[[http.clients]]
name = "ci-bot"
token_sha256 = "{}"
email = "ci-bot@company.com"
role = "engineer"

[[http.clients]]
name = "support"
token_sha256 = "{}"
email = "support@company.com"
role = "contractor"
"#,
        digest(TOKEN_A),
        digest(TOKEN_B)
    )
}

/// A running `enact serve --http`, its URL, and its stderr as collected so far.
pub struct HttpServer {
    pub child: tokio::process::Child,
    pub url: String,
    pub addr: String,
    log: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    pub async fn start(folder: &Folder, env: &[(&str, &str)]) -> HttpServer {
        Self::start_at(folder, "127.0.0.1:0", env).await
    }

    pub async fn start_at(folder: &Folder, addr: &str, env: &[(&str, &str)]) -> HttpServer {
        let mut cmd = tokio::process::Command::new(enact_bin());
        cmd.args(["serve", "--http", addr, "--config"])
            .arg(folder.config())
            .env("ENACT_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .env_remove("ENACT_CONFIG")
            .env_remove("ENACT_ACTOR_EMAIL")
            .env_remove("ENACT_ACTOR_ROLE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let url = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
                if let Some(url) = line.strip_prefix("enact serve: listening on ") {
                    return url.to_string();
                }
            }
            panic!(
                "the server exited before listening:\n{}",
                log.lock().unwrap()
            );
        })
        .await
        .expect("the server did not start listening");
        let collected = log.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches("/mcp")
            .to_string();
        HttpServer {
            child,
            url,
            addr,
            log,
            reader,
        }
    }

    /// SIGTERM, then the exit status and the whole log.
    pub async fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().unwrap().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the server did not exit after SIGTERM")
            .unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.reader).await;
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }

    /// A 2025-11-25 session (`initialize`, `Mcp-Session-Id`) with this bearer token.
    pub async fn connect(&self, token: Option<&str>) -> Client {
        self.try_connect(token, ClientLifecycleMode::Initialize)
            .await
            .unwrap()
    }

    /// A stateless 2026-07-28 client (`server/discover`, the version in each request).
    pub async fn connect_stateless(&self, token: Option<&str>) -> Client {
        self.try_connect(
            token,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap()
    }

    pub async fn try_connect(
        &self,
        token: Option<&str>,
        lifecycle: ClientLifecycleMode,
    ) -> Result<Client, String> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url.clone());
        if let Some(t) = token {
            config = config.auth_header(t.to_string());
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        tokio::time::timeout(
            Duration::from_secs(60),
            ().serve_with_lifecycle(transport, lifecycle),
        )
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| e.to_string())
    }
}

pub async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let params = CallToolRequestParams::new(tool.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    tokio::time::timeout(Duration::from_secs(60), client.call_tool(params))
        .await
        .expect("tool call timed out")
        .unwrap()
}

/// One raw HTTP/1.1 exchange: (status, headers and body as text).
pub async fn raw_post(addr: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // The server may answer before reading a body it refuses; a reset is fine then.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

pub fn initialize_body() -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}})
    .to_string()
    .into_bytes()
}

fn save(path: &str, content: &str) -> Value {
    json!({"path": path, "content": content})
}

fn run_id(r: &CallToolResult) -> String {
    structured(r)["run_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_client_lists_tools_and_calls_workflows_in_a_session_and_stateless() {
    let f = Folder::new(&format!("{FILES_CONFIG}{}", clients()));
    let server = HttpServer::start(&f, &[]).await;

    let client = server.connect(Some(TOKEN_A)).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "save",
            "remove",
            "pair",
            "enact_preview",
            "enact_list_receipts",
            "enact_get_receipt",
            "enact_rollback"
        ]
    );
    let r = call(&client, "save", save("notes/a.md", "hello")).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    assert_eq!(structured(&r)["decision"], "PASS");
    assert_eq!(
        std::fs::read_to_string(f.workspace().join("notes/a.md")).unwrap(),
        "hello"
    );
    let blocked = call(&client, "save", save("secret/x.md", "no")).await;
    assert!(is_error(&blocked));
    assert_eq!(structured(&blocked)["decision"], "BLOCK");
    client.cancel().await.unwrap();

    let stateless = server.connect_stateless(Some(TOKEN_A)).await;
    let r = call(&stateless, "save", save("notes/b.md", "modern")).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    let listed = call(&stateless, "enact_list_receipts", json!({})).await;
    assert_eq!(structured(&listed)["receipts"].as_array().unwrap().len(), 3);
    stateless.cancel().await.unwrap();

    let receipts = f.receipt_files();
    assert_eq!(receipts.len(), 3);
    for r in &receipts {
        assert_eq!(r["actor_email"], "ci-bot@company.com");
        assert_eq!(r["actor_role"], "engineer");
    }
    let (status, log) = server.stop().await;
    assert_eq!(status.code(), Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_or_wrong_token_is_401_with_a_bearer_challenge_and_writes_no_receipt() {
    let f = Folder::new(&format!("{FILES_CONFIG}{}", clients()));
    let server = HttpServer::start(&f, &[]).await;
    let call_body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "save", "arguments": {"path": "notes/x.md", "content": "x"}}})
    .to_string();
    for headers in [
        vec![],
        vec![("Authorization", "Bearer not-a-known-token")],
        vec![("Authorization", "Basic dXNlcjpwYXNz")],
        vec![("Authorization", "Bearer ")],
    ] {
        for body in [initialize_body(), call_body.clone().into_bytes()] {
            let (status, text) = raw_post(&server.addr, &headers, &body).await;
            assert_eq!(status, 401, "{headers:?}: {text}");
            assert!(
                text.to_ascii_lowercase()
                    .contains("www-authenticate: bearer"),
                "{text}"
            );
        }
    }
    // rmcp's client with a wrong token cannot even start a session.
    let Err(err) = server
        .try_connect(Some("wrong-token"), ClientLifecycleMode::Initialize)
        .await
    else {
        panic!("a wrong token must not connect");
    };
    assert!(err.contains("Auth required"), "{err}");
    assert!(!f.workspace().join("notes/x.md").exists());
    assert!(f.receipt_files().is_empty());
    let (status, log) = server.stop().await;
    assert_eq!(status.code(), Some(0));
    for token in [TOKEN_A, TOKEN_B, "not-a-known-token", "wrong-token"] {
        assert!(!log.contains(token), "a token in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_is_checked_first_then_the_token_then_the_body_size() {
    let f = Folder::new(&format!("{FILES_CONFIG}{}", clients()));
    let server = HttpServer::start(&f, &[]).await;
    let bearer = format!("Bearer {TOKEN_A}");
    // A bad Origin is 403 even without a token.
    let (status, text) = raw_post(
        &server.addr,
        &[("Origin", "https://evil.example.com")],
        &initialize_body(),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    let (status, _) = raw_post(
        &server.addr,
        &[
            ("Origin", "https://evil.example.com"),
            ("Authorization", &bearer),
        ],
        &initialize_body(),
    )
    .await;
    assert_eq!(status, 403);
    // An allowed Origin passes on to the token check.
    let (status, _) = raw_post(
        &server.addr,
        &[("Origin", "https://console.example.com")],
        &initialize_body(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, text) = raw_post(
        &server.addr,
        &[
            ("Origin", "https://console.example.com"),
            ("Authorization", &bearer),
        ],
        &initialize_body(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    // Over max_body (64 KiB): 413 with a token, 401 without.
    let big = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "save", "arguments": {"path": "notes/big.md", "content": "x".repeat(70_000)}}})
    .to_string();
    let (status, text) =
        raw_post(&server.addr, &[("Authorization", &bearer)], big.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    let (status, _) = raw_post(&server.addr, &[], big.as_bytes()).await;
    assert_eq!(status, 401);
    assert!(f.receipt_files().is_empty());
    // JSON-RPC hygiene: garbage gets -32700 with "id": null; a non-request -32600.
    let (status, text) = raw_post(&server.addr, &[("Authorization", &bearer)], b"{not json").await;
    assert_eq!(status, 400, "{text}");
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(body["id"], Value::Null);
    assert!(body.as_object().unwrap().contains_key("id"));
    let (status, text) = raw_post(&server.addr, &[("Authorization", &bearer)], b"[1,2]").await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], -32600);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tokens_are_two_actors_with_their_own_rate_limits_and_rollbacks() {
    let config = format!(
        "{FILES_CONFIG}{}{}",
        r#"
[[policies]]
policy = "rate_limit"
max = 2
window = "1h"
"#,
        clients()
    );
    let f = Folder::new(&config);
    let server = HttpServer::start(&f, &[]).await;
    let a = server.connect(Some(TOKEN_A)).await;
    let b = server.connect_stateless(Some(TOKEN_B)).await;

    let ra = call(&a, "save", save("notes/a1.md", "a")).await;
    assert!(!is_error(&ra), "{:?}", texts(&ra));
    call(&a, "save", save("notes/a2.md", "a")).await;
    let third = call(&a, "save", save("notes/a3.md", "a")).await;
    assert_eq!(structured(&third)["decision"], "BLOCK", "ci-bot used its 2");
    // The other client has its own count.
    let rb = call(&b, "save", save("notes/b1.md", "b")).await;
    assert_eq!(structured(&rb)["decision"], "PASS", "{:?}", texts(&rb));

    // Each may roll back only its own runs.
    let refused = call(&b, "enact_rollback", json!({"run_id": run_id(&ra)})).await;
    assert!(is_error(&refused));
    assert!(
        texts(&refused)[0].contains("belongs to another actor"),
        "{:?}",
        texts(&refused)
    );
    let undone = call(&a, "enact_rollback", json!({"run_id": run_id(&ra)})).await;
    assert!(!is_error(&undone), "{:?}", texts(&undone));
    assert!(!f.workspace().join("notes/a1.md").exists());
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();

    let receipts = f.receipt_files();
    let by = |email: &str| {
        receipts
            .iter()
            .filter(|r| r["actor_email"] == email)
            .count()
    };
    assert_eq!(by("ci-bot@company.com"), 4, "3 calls and a rollback");
    assert_eq!(by("support@company.com"), 1);
    assert!(
        receipts
            .iter()
            .filter(|r| r["actor_email"] == "support@company.com")
            .all(|r| r["actor_role"] == "contractor")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_clients_a_loopback_server_acts_as_the_config_actor() {
    let f = Folder::new(FILES_CONFIG);
    let server = HttpServer::start(&f, &[]).await;
    let client = server.connect(None).await;
    let r = call(&client, "save", save("notes/a.md", "x")).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    client.cancel().await.unwrap();
    assert_eq!(f.receipt_files()[0]["actor_email"], "agent@company.com");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_log_even_at_trace() {
    let f = Folder::new(&format!("{FILES_CONFIG}{}", clients()));
    let server = HttpServer::start(&f, &[("RUST_LOG", "trace")]).await;
    let client = server.connect(Some(TOKEN_A)).await;
    call(&client, "save", save("notes/a.md", "x")).await;
    client.cancel().await.unwrap();
    let _ = raw_post(
        &server.addr,
        &[("Authorization", "Bearer some-wrong-token-value")],
        &initialize_body(),
    )
    .await;
    let (status, log) = server.stop().await;
    assert_eq!(status.code(), Some(0));
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "trace logging is on"
    );
    for token in [TOKEN_A, TOKEN_B, "some-wrong-token-value"] {
        assert!(!log.contains(token), "a token in the log:\n{log}");
    }
    assert!(!log.contains(&digest(TOKEN_A)));
}

fn enact_sync(f: &Folder, args: &[&str]) -> std::process::Output {
    std::process::Command::new(enact_bin())
        .args(args)
        .arg("--config")
        .arg(f.config())
        .env("ENACT_SECRET", SECRET)
        .env_remove("ENACT_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_non_loopback_address_needs_clients_and_tls() {
    // Without clients.
    let f = Folder::new(FILES_CONFIG);
    let o = enact_sync(&f, &["serve", "--http", "0.0.0.0:0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("non-loopback") && err.contains("[[http.clients]]"),
        "{err}"
    );
    // With clients, without TLS.
    let f = Folder::new(&format!("{FILES_CONFIG}{}", clients()));
    let o = enact_sync(&f, &["serve", "--http", "0.0.0.0:0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("without TLS") && err.contains("allow_plaintext"),
        "{err}"
    );
    // Not an address.
    let o = enact_sync(&f, &["serve", "--http", "localhost"]);
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_address_with_clients_and_allow_plaintext_serves() {
    let config = format!("{FILES_CONFIG}{}", clients()).replace(
        "max_body = \"64KiB\"",
        "max_body = \"64KiB\"\nallow_plaintext = true",
    );
    let f = Folder::new(&config);
    let server = HttpServer::start_at(&f, "0.0.0.0:0", &[]).await;
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let (status, _) = raw_post(&format!("127.0.0.1:{port}"), &[], &initialize_body()).await;
    assert_eq!(status, 401);
    let (status, log) = server.stop().await;
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn http_config_errors_are_all_reported_naming_the_value() {
    let config = format!(
        "{FILES_CONFIG}{}",
        r#"
[http]
allowed_origins = ["console.example.com"]
max_body = "lots"
tls_cert_file = "cert.pem"
colour = "blue"

[[http.clients]]
name = "a b"
token_sha256 = "abc"
email = "a@x"

[[http.clients]]
token_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#
    );
    let f = Folder::new(&config);
    let o = enact_sync(&f, &["check"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for needle in [
        "http.allowed_origins: not an origin: \"console.example.com\"",
        "http.max_body: not a size: \"lots\"",
        "tls_key_file is not",
        "unknown key `colour`",
        "http.clients[0].name: client name \"a b\"",
        "http.clients[0].token_sha256: expected the token's SHA-256 as 64 hex characters, got 3 characters",
        "http.clients[1]: missing required key `name`",
        "http.clients[1]: missing required key `email`",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn http_token_prints_the_token_then_the_clients_block_with_its_digest() {
    let o = std::process::Command::new(enact_bin())
        .args([
            "http-token",
            "ci-bot",
            "--email",
            "ci-bot@company.com",
            "--role",
            "engineer",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    let mut lines = out.lines();
    let token = lines.next().unwrap();
    assert_eq!(
        token.len(),
        43,
        "256 bits in base64url without padding: {token}"
    );
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    let block = format!(
        "[[http.clients]]\nname = \"ci-bot\"\ntoken_sha256 = \"{}\"\nemail = \"ci-bot@company.com\"\nrole = \"engineer\"\n",
        digest(token)
    );
    assert!(out.contains(&block), "{out}");
    // A second token is another token.
    let again = std::process::Command::new(enact_bin())
        .args(["http-token", "ci-bot", "--email", "ci-bot@company.com"])
        .output()
        .unwrap();
    let again = String::from_utf8(again.stdout).unwrap();
    assert_ne!(again.lines().next().unwrap(), token);
    assert!(again.contains("role = \"unknown\""));

    // The printed block, pasted into a config, lets that token in.
    let f = Folder::new(&format!("{FILES_CONFIG}\n{block}"));
    let o = enact_sync(&f, &["check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_calls_finish_and_exits_0() {
    let f = Folder::new(&format!("{FILES_CONFIG}{}", clients()));
    let server = HttpServer::start(&f, &[]).await;
    let client = Arc::new(server.connect(Some(TOKEN_A)).await);
    let mut calls = Vec::new();
    for k in 0..8 {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            let params = CallToolRequestParams::new("save").with_arguments(
                save(&format!("notes/t{k}.md"), "x")
                    .as_object()
                    .cloned()
                    .unwrap(),
            );
            client.call_tool(params).await
        }));
    }
    // Stop once at least one call has been recorded.
    tokio::time::timeout(Duration::from_secs(60), async {
        while f.receipt_files().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let (status, log) = server.stop().await;
    assert_eq!(status.code(), Some(0), "{log}");
    // Calls still waiting for an answer from the stopped server will not get one.
    for c in calls {
        c.abort();
    }
    // Every file written is covered by a receipt, and no intent is left open.
    let records = crate::journal::records(&f.receipts());
    let receipts: Vec<&Value> = records.iter().filter(|r| r["kind"] == "receipt").collect();
    for r in records.iter().filter(|r| r["kind"] == "intent") {
        assert!(
            receipts.iter().any(|x| x["run_id"] == r["run_id"]),
            "an intent without its receipt: {r}"
        );
    }
    for k in 0..8 {
        let path = format!("notes/t{k}.md");
        if f.workspace().join(&path).exists() {
            assert!(
                receipts
                    .iter()
                    .any(|r| r["payload"]["path"] == path.as_str() && r["decision"] == "PASS"),
                "{path} written without a receipt"
            );
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem) in `dir`.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key, conf) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("openssl.cnf"),
    );
    std::fs::write(
        &conf,
        "[req]\ndistinguished_name = dn\nx509_extensions = leaf\nprompt = no\n[dn]\nCN = localhost\n\
         [leaf]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n",
    )
    .unwrap();
    let o = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-config"])
        .arg(&conf)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (the CI installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (cert, key)
}

/// One HTTPS exchange trusting only `cert`: (status, the whole answer).
async fn tls_post(addr: &str, cert: &std::path::Path, headers: &[(&str, &str)]) -> (u16, String) {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = connector.connect(name, tcp).await.unwrap();
    let body = initialize_body();
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_configured_certificate() {
    let f = Folder::new("");
    let (cert, key) = self_signed(f.dir.path());
    let config = format!("{FILES_CONFIG}{}", clients()).replace(
        "max_body = \"64KiB\"",
        &format!(
            "max_body = \"64KiB\"\ntls_cert_file = {:?}\ntls_key_file = {:?}",
            cert.display().to_string(),
            key.display().to_string()
        ),
    );
    std::fs::write(f.config(), config).unwrap();
    // TLS makes a non-loopback address acceptable without allow_plaintext.
    let server = HttpServer::start_at(&f, "0.0.0.0:0", &[]).await;
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let addr = format!("127.0.0.1:{port}");
    let (status, text) = tls_post(&addr, &cert, &[]).await;
    assert_eq!(status, 401, "{text}");
    let bearer = format!("Bearer {TOKEN_A}");
    let (status, text) = tls_post(&addr, &cert, &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"name\":\"enact\""), "{text}");
    // Plain HTTP gets no answer from a TLS port.
    let (status, _) = raw_post(&addr, &[], &initialize_body()).await;
    assert_ne!(status, 401);
    let (status, log) = server.stop().await;
    assert_eq!(status.code(), Some(0), "{log}");
}
