//! MCP protocol versions and JSON-RPC hygiene on the real `enact serve` binary (SPEC §3):
//! 2026-07-28 sessions (`server/discover`) beside the `initialize` handshake, errors for bad
//! lines, ids in flight, `notifications/cancelled`, bounded memory when the client stops
//! reading, and the official Python SDK in both lifecycles.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use enact::fake_github::FakeGithub;
use rmcp::model::{ErrorCode, ProtocolVersion, ReadResourceRequestParams};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, ServiceError};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::engine::SECRET;
use crate::mcp::{
    Folder, Raw, assert_shape, call, connect, enact_bin, mcp_config, read_json, serve_command,
    try_call,
};

const MODERN: &str = "2026-07-28";

/// The `_meta` a 2026-07-28 client puts on every request.
fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
    })
}

/// Waits for `condition`, checking every few milliseconds, for at most `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn has_id(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.contains_key("id"))
}

#[tokio::test]
async fn unreadable_ids_are_null_up_to_2025_11_25_and_readable_ids_are_echoed() {
    let f = Folder::new(&mcp_config());
    for version in ["2024-11-05", "2025-06-18", "2025-11-25"] {
        let mut raw = Raw::start(&f).await;
        let init = raw.initialize(version).await;
        assert_eq!(init["result"]["protocolVersion"], version);

        raw.send(b"{not json").await;
        let v = raw.recv().await;
        assert_eq!(v["error"]["code"], -32700, "{v}");
        assert!(has_id(&v) && v["id"].is_null(), "{version}: {v}");

        for line in [&b"42"[..], b"[]", br#"{"jsonrpc":"2.0","method":7}"#] {
            raw.send(line).await;
            let v = raw.recv().await;
            assert_eq!(v["error"]["code"], -32600, "{v}");
            assert!(has_id(&v) && v["id"].is_null(), "{version}: {v}");
        }

        raw.send(br#"{"jsonrpc":"2.0","id":"req-9","method":7}"#)
            .await;
        let v = raw.recv().await;
        assert_eq!(
            (v["error"]["code"].clone(), v["id"].clone()),
            (json!(-32600), json!("req-9"))
        );
        raw.send(br#"{"jsonrpc":"1.0","id":10,"method":"tools/list"}"#)
            .await;
        let v = raw.recv().await;
        assert_eq!(
            (v["error"]["code"].clone(), v["id"].clone()),
            (json!(-32600), json!(10))
        );

        // The server keeps serving.
        raw.send_json(json!({"jsonrpc": "2.0", "id": 11, "method": "tools/list"}))
            .await;
        let v = raw.recv().await;
        assert_eq!(v["id"], 11);
        assert!(v["result"]["tools"].is_array(), "{v}");
        assert!(
            !has_id(&v["result"]) && v["result"].get("resultType").is_none(),
            "{v}"
        );
        let (status, _) = raw.finish().await;
        assert!(status.success());
    }
}

#[tokio::test]
async fn discover_opens_a_2026_07_28_session_whose_id_less_errors_omit_the_id() {
    let f = Folder::new(&mcp_config());
    let mut raw = Raw::start(&f).await;
    raw.send_json(
        json!({"jsonrpc": "2.0", "id": 0, "method": "server/discover",
                         "params": {"_meta": modern_meta()}}),
    )
    .await;
    let v = raw.recv().await;
    assert_eq!(v["id"], 0);
    let versions = v["result"]["supportedVersions"].as_array().unwrap();
    for version in [MODERN, "2025-11-25", "2025-06-18"] {
        assert!(versions.contains(&json!(version)), "{v}");
    }
    let server_info = &v["result"]["_meta"]["io.modelcontextprotocol/serverInfo"];
    assert_eq!(server_info["name"], "enact", "{v}");
    assert_eq!(server_info["version"], env!("CARGO_PKG_VERSION"));

    raw.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                         "params": {"_meta": modern_meta()}}))
        .await;
    let v = raw.recv().await;
    assert_eq!(v["id"], 1);
    assert_eq!(v["result"]["resultType"], "complete", "{v}");

    raw.send(b"{not json").await;
    let v = raw.recv().await;
    assert_eq!(v["error"]["code"], -32700);
    assert!(!has_id(&v), "2026-07-28 omits an id it cannot read: {v}");
    raw.send(b"42").await;
    let v = raw.recv().await;
    assert_eq!(v["error"]["code"], -32600);
    assert!(!has_id(&v), "{v}");
    raw.send(br#"{"jsonrpc":"2.0","id":3,"method":7}"#).await;
    let v = raw.recv().await;
    assert_eq!(
        (v["error"]["code"].clone(), v["id"].clone()),
        (json!(-32600), json!(3))
    );

    // A workflow call works the same, with `resultType` on its result.
    raw.send_json(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"_meta": modern_meta(), "name": "save",
                   "arguments": {"path": "notes/modern.md", "content": "2026"}}}))
        .await;
    let v = raw.recv().await;
    assert_eq!(v["id"], 4);
    assert_eq!(v["result"]["resultType"], "complete", "{v}");
    assert_eq!(v["result"]["structuredContent"]["decision"], "PASS", "{v}");
    assert!(f.workspace().join("notes/modern.md").exists());
    let (status, _) = raw.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn initialize_gets_the_version_it_asks_for_or_the_newest_2025_one() {
    let f = Folder::new(&mcp_config());
    for (asked, got) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        (MODERN, "2025-11-25"),
        ("2099-01-01", "2025-11-25"),
    ] {
        let mut raw = Raw::start(&f).await;
        let v = raw.initialize(asked).await;
        assert_eq!(v["result"]["protocolVersion"], got, "{asked}: {v}");
        let (status, _) = raw.finish().await;
        assert!(status.success());
    }
}

#[tokio::test]
async fn a_2026_07_28_session_with_the_rmcp_client() {
    let f = Folder::new(&mcp_config());
    let (transport, _) = TokioChildProcess::builder(serve_command(&f, &[]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for name in [
        "save",
        "read",
        "enact_preview",
        "enact_list_receipts",
        "enact_get_receipt",
    ] {
        assert!(names.contains(&name), "{names:?}");
    }

    let s = assert_shape(
        &call(
            &client,
            "save",
            json!({"path": "notes/rmcp-2026.md", "content": "hello"}),
        )
        .await,
    );
    assert_eq!(
        (&s["decision"], &s["success"]),
        (&json!("PASS"), &json!(true))
    );
    assert_eq!(
        std::fs::read_to_string(f.workspace().join("notes/rmcp-2026.md")).unwrap(),
        "hello"
    );
    let receipt = read_json(&client, s["receipt"].as_str().unwrap()).await;
    assert_eq!(receipt["run_id"], s["run_id"]);
    assert_eq!(receipt["decision"], "PASS");

    let blocked = assert_shape(
        &call(
            &client,
            "save",
            json!({"path": "secrets/a.md", "content": "x"}),
        )
        .await,
    );
    assert_eq!(blocked["decision"], "BLOCK");

    let Err(ServiceError::McpError(e)) = try_call(&client, "no_such_tool", json!({})).await else {
        panic!("an unknown tool is a JSON-RPC error");
    };
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    let Err(ServiceError::McpError(e)) = client
        .read_resource(ReadResourceRequestParams::new(
            "enact://receipts/no-such-run",
        ))
        .await
    else {
        panic!("an unknown receipt is a JSON-RPC error");
    };
    // 2026-07-28 reports a missing resource as invalid params (-32002 before).
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    client.cancel().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Calls held at a known point: a GitHub system behind a proxy that holds new connections.

pub const TOKEN: &str = "ghp_EnactProtocolTestToken_7c1e";
pub const REPO: &str = "acme/app";

pub fn gh_config(base_url: &str) -> String {
    format!(
        r#"
[actor]
email = "agent@company.com"
role = "engineer"

[systems.gh]
type = "github"
base_url = "{base_url}"
repos = ["acme/*"]

[systems.files]
type = "filesystem"
root = "workspace"

[[policies]]
policy = "no_merge_to_main"
workflows = ["merge_pr"]

[[workflows]]
name = "open_pr"
builtin = "agent_pr_workflow"
system = "gh"

[[workflows]]
name = "merge_pr"
[workflows.inputs.repo]
type = "string"
[workflows.inputs.pr_number]
type = "integer"
[[workflows.steps]]
system = "gh"
action = "merge_pr"
args = {{ repo = "{{{{repo}}}}", pr_number = "{{{{pr_number}}}}" }}

[[workflows]]
name = "create_issue"
[workflows.inputs.repo]
type = "string"
[workflows.inputs.title]
type = "string"
[[workflows.steps]]
system = "gh"
action = "create_issue"
args = {{ repo = "{{{{repo}}}}", title = "{{{{title}}}}", body = "" }}

[[workflows]]
name = "save"
[workflows.inputs.path]
type = "string"
[workflows.inputs.content]
type = "string"
[[workflows.steps]]
system = "files"
action = "write_file"
args = {{ path = "{{{{path}}}}", content = "{{{{content}}}}" }}
"#
    )
}

/// A TCP proxy in front of the fake GitHub that holds every connection until released.
pub struct Held {
    pub url: String,
    release: tokio::sync::watch::Sender<bool>,
    pub connections: Arc<AtomicUsize>,
}

impl Held {
    pub async fn start(upstream: &str) -> Held {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let (release, released) = tokio::sync::watch::channel(false);
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut released = released.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if released.wait_for(|r| *r).await.is_err() {
                        return;
                    }
                    let mut outbound = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Held {
            url,
            release,
            connections,
        }
    }

    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

/// The fake GitHub with `acme/app` and PR #1 from `agent/x` into `develop` (not `main`, so
/// `no_merge_to_main` passes), opened through a server that talks to the fake directly.
pub async fn fake_with_pr() -> FakeGithub {
    let fake = FakeGithub::start().await.unwrap();
    let main = fake.add_repo(REPO);
    assert!(fake.set_branch(REPO, "develop", Some(&main)));
    let setup = Folder::new(&gh_config(fake.base_url()));
    let client = connect(&setup, &[("GITHUB_TOKEN", TOKEN)]).await;
    let s = assert_shape(
        &call(
            &client,
            "open_pr",
            json!({"repo": REPO, "branch": "agent/x", "title": "X", "base": "develop",
                   "files": {"x.txt": "x\n"}}),
        )
        .await,
    );
    assert_eq!(s["success"], true, "{s}");
    client.cancel().await.unwrap();
    fake
}

pub fn merge_call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "merge_pr", "arguments": {"repo": REPO, "pr_number": 1}}})
}

pub fn save_call(id: u64, path: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "save", "arguments": {"path": path, "content": "x"}}})
}

/// A cancelled `merge_pr` call: a BLOCK by exactly the pseudo-policy `cancelled`, nothing
/// taken, the PR not merged.
pub fn assert_cancelled_merge(receipt: &Value, fake: &FakeGithub) {
    assert_eq!(
        (
            &receipt["workflow"],
            &receipt["decision"],
            &receipt["actions_taken"]
        ),
        (&json!("merge_pr"), &json!("BLOCK"), &json!([])),
        "{receipt}"
    );
    let results = receipt["policy_results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{receipt}");
    assert_eq!(
        (&results[0]["policy"], &results[0]["passed"]),
        (&json!("cancelled"), &json!(false))
    );
    assert!(
        !fake.pull(REPO, 1).unwrap().merged,
        "a cancelled call merged"
    );
}

pub fn cancel_of(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
           "params": {"requestId": id, "reason": "the user changed their mind"}})
}

/// Every receipt once there are `n` of them.
async fn receipts(f: &Folder, n: usize) -> Vec<Value> {
    wait_until(&format!("{n} receipt(s)"), Duration::from_secs(30), || {
        f.receipt_files().len() >= n
    })
    .await;
    f.receipt_files()
}

#[tokio::test]
async fn a_request_reusing_an_id_in_flight_is_refused_and_does_not_run() {
    let fake = fake_with_pr().await;
    let held = Held::start(fake.base_url()).await;
    let f = Folder::new(&gh_config(&held.url));
    let mut raw = Raw::start_with(&f, &[("GITHUB_TOKEN", TOKEN)]).await;
    raw.initialize("2025-11-25").await;

    // Call 5 waits in the gate for the PR's base; a second request with id 5 is refused.
    raw.send_json(merge_call(5)).await;
    raw.send_json(save_call(5, "notes/dup.md")).await;
    let v = raw.recv().await;
    assert_eq!(
        (v["error"]["code"].clone(), v["id"].clone()),
        (json!(-32600), json!(5)),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in flight"),
        "{v}"
    );
    // Other ids are served meanwhile.
    raw.send_json(save_call(6, "notes/other.md")).await;
    assert_eq!(raw.recv().await["id"], 6);

    held.release();
    let v = raw.recv().await;
    assert_eq!(v["id"], 5);
    assert_eq!(
        v["result"]["structuredContent"]["workflow"], "merge_pr",
        "{v}"
    );
    assert_eq!(v["result"]["structuredContent"]["decision"], "PASS", "{v}");
    assert!(fake.pull(REPO, 1).unwrap().merged);
    assert!(
        !f.workspace().join("notes/dup.md").exists(),
        "the refused request ran"
    );

    // Answered, the id is free again.
    raw.send_json(save_call(5, "notes/dup.md")).await;
    let v = raw.recv().await;
    assert_eq!(v["id"], 5);
    assert_eq!(v["result"]["structuredContent"]["decision"], "PASS", "{v}");
    assert!(f.workspace().join("notes/dup.md").exists());
    let (status, _) = raw.finish().await;
    assert!(status.success());
    assert_eq!(f.receipt_files().len(), 3);
}

#[tokio::test]
async fn a_call_cancelled_before_its_first_action_is_a_cancelled_block() {
    let fake = fake_with_pr().await;
    let held = Held::start(fake.base_url()).await;
    let f = Folder::new(&gh_config(&held.url));
    let mut raw = Raw::start_with(&f, &[("GITHUB_TOKEN", TOKEN)]).await;
    raw.initialize("2025-11-25").await;

    // The cancel comes in the same write as the call, which waits in the gate.
    raw.send(format!("{}\n{}", merge_call(1), cancel_of(1)).as_bytes())
        .await;
    // The answer to a later request shows the cancel has been read.
    raw.send_json(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await;
    assert_eq!(raw.recv().await["id"], 2);
    held.release();

    let receipt = receipts(&f, 1).await.remove(0);
    assert_cancelled_merge(&receipt, &fake);

    // No answer for the cancelled call: the next line answers the next request.
    raw.send_json(save_call(3, "notes/after.md")).await;
    let v = raw.recv().await;
    assert_eq!(v["id"], 3, "{v}");
    let (status, _) = raw.finish().await;
    assert!(status.success());
    assert_eq!(f.receipt_files().len(), 2);
}

#[tokio::test]
async fn a_call_cancelled_after_its_action_started_finishes_and_is_recorded() {
    let fake = FakeGithub::start().await.unwrap();
    fake.add_repo(REPO);
    let held = Held::start(fake.base_url()).await;
    let f = Folder::new(&gh_config(&held.url));
    let mut raw = Raw::start_with(&f, &[("GITHUB_TOKEN", TOKEN)]).await;
    raw.initialize("2025-06-18").await;

    raw.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "create_issue", "arguments": {"repo": REPO, "title": "Late cancel"}}}))
        .await;
    // The action has started: its request to GitHub is held at the proxy.
    let connections = held.connections.clone();
    wait_until("the action's request", Duration::from_secs(30), || {
        connections.load(Ordering::SeqCst) > 0
    })
    .await;
    raw.send_json(cancel_of(1)).await;
    raw.send_json(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await;
    assert_eq!(raw.recv().await["id"], 2);
    held.release();

    let receipt = receipts(&f, 1).await.remove(0);
    assert_eq!(receipt["decision"], "PASS", "{receipt}");
    assert_eq!(receipt["actions_taken"][0]["action"], "create_issue");
    assert_eq!(receipt["actions_taken"][0]["success"], true, "{receipt}");
    assert_eq!(
        fake.issues(REPO).len(),
        1,
        "the started action did not finish"
    );

    raw.send_json(save_call(3, "notes/after.md")).await;
    assert_eq!(raw.recv().await["id"], 3, "no answer after a cancel");
    let (status, _) = raw.finish().await;
    assert!(status.success());
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_keeps_memory_bounded_and_gets_every_answer_once() {
    const N: usize = 50_000;
    const LIMIT_KIB: u64 = 100 * 1024;
    let f = Folder::new(&mcp_config());
    // Quiet logs: nobody reads stderr until the end.
    let mut raw = Raw::start_with(&f, &[("RUST_LOG", "warn")]).await;
    raw.initialize("2025-11-25").await;
    let pid = raw.child.id().unwrap();

    let written = Arc::new(AtomicUsize::new(0));
    let progress = written.clone();
    let mut stdin = raw.stdin;
    let writer = tokio::spawn(async move {
        for chunk in 0..N / 100 {
            let mut bytes = Vec::new();
            for i in 1..=100 {
                let id = chunk * 100 + i;
                bytes.extend(
                    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#).bytes(),
                );
                bytes.push(b'\n');
            }
            stdin.write_all(&bytes).await.unwrap();
            progress.fetch_add(100, Ordering::SeqCst);
        }
        stdin.flush().await.unwrap();
        stdin
    });

    // Wait until the writer is stuck: the server has stopped reading.
    let start = Instant::now();
    let (mut last, mut since) = (0, Instant::now());
    let mut peak = 0;
    loop {
        let (hwm, rss) = memory_kib(pid);
        peak = peak.max(hwm).max(rss);
        let now = written.load(Ordering::SeqCst);
        assert!(
            now < N,
            "the server read all {N} requests while none was read back"
        );
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the writer never blocked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "blocked after {last} of {N} requests written; peak RSS {peak} KiB ({} MB)",
        peak / 1024
    );
    assert!(peak < LIMIT_KIB, "RSS {peak} KiB while blocked");

    // Read everything: each request answered exactly once.
    let started = Instant::now();
    let mut ids = HashSet::new();
    let stdout = &mut raw.stdout;
    for _ in 0..N {
        let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .expect("an answer within 60 s")
            .unwrap()
            .expect("stdout closed early");
        #[derive(serde::Deserialize)]
        struct Answer {
            id: u64,
            result: serde::de::IgnoredAny,
        }
        let answer: Answer = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a result ({e}): {}", &line[..line.len().min(300)]));
        let _ = answer.result;
        assert!(ids.insert(answer.id), "answered twice: {}", answer.id);
    }
    assert_eq!(ids.len(), N);
    assert!((1..=N as u64).all(|id| ids.contains(&id)));
    let (hwm, _) = memory_kib(pid);
    eprintln!(
        "read {N} answers in {:?}; peak RSS over the whole run {hwm} KiB",
        started.elapsed()
    );

    let stdin = writer.await.unwrap();
    drop(stdin);
    let next = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .unwrap()
        .unwrap();
    assert!(next.is_none(), "an extra answer: {next:?}");
    let status = tokio::time::timeout(Duration::from_secs(30), raw.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

// ---------------------------------------------------------------------------------------
// The official Python SDK.

/// Whether the Python SDK is importable. Under CI (`CI` set) it must be: `.ci/run` installs it.
pub fn python_sdk() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import mcp.client.client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "CI must have the python `mcp` package (pip install \"mcp>=2\")"
    );
    found
}

#[tokio::test]
async fn the_python_sdk_works_with_discover_and_with_initialize() {
    if !python_sdk() {
        eprintln!("SKIPPED: the python `mcp` package is not importable (pip install \"mcp>=2\")");
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/fixtures/py_client.py"
    );
    for (mode, version) in [
        ("discover", MODERN),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
    ] {
        let f = Folder::new(&mcp_config());
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new("python3")
                .arg(script)
                .arg(mode)
                .arg(enact_bin())
                .arg(f.config())
                .env("ENACT_SECRET", SECRET)
                .env("RUST_LOG", "warn")
                .env_remove("ENACT_CONFIG")
                .env_remove("ENACT_ACTOR_EMAIL")
                .env_remove("ENACT_ACTOR_ROLE")
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the python client timed out")
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["protocol_version"], version, "{mode}: {v}");
        assert_eq!(v["server_name"], "enact");
        let tools: Vec<&str> = v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        for name in ["save", "enact_preview", "enact_get_receipt"] {
            assert!(tools.contains(&name), "{mode}: {tools:?}");
        }
        assert_eq!(v["call"]["is_error"], false, "{mode}: {v}");
        assert_eq!(v["call"]["structured"]["decision"], "PASS");
        assert_eq!(v["block"]["is_error"], true);
        assert_eq!(v["block"]["structured"]["decision"], "BLOCK");
        assert_eq!(v["receipt"]["run_id"], v["call"]["structured"]["run_id"]);
        assert_eq!(v["unknown_tool"]["code"], -32602, "{mode}: {v}");
        assert!(f.workspace().join(format!("notes/py-{mode}.md")).exists());
        assert_eq!(f.receipt_files().len(), 2);
    }
}
