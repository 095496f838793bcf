//! The real `enact serve` binary over stdio (SPEC §3): an rmcp client for the protocol, and a
//! raw line client for what no well-behaved client sends (garbage, oversized lines).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ReadResourceRequestParams};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::engine::{FILES_CONFIG, SECRET};

pub type Client = RunningService<RoleClient, ()>;

/// A temp folder with `enact.toml`, `workspace/notes/` and `receipts/`.
pub struct Folder {
    pub dir: tempfile::TempDir,
}

impl Folder {
    pub fn new(config: &str) -> Folder {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("workspace/notes")).unwrap();
        std::fs::write(dir.path().join("enact.toml"), config).unwrap();
        Folder { dir }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("enact.toml")
    }
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }
    pub fn receipts(&self) -> PathBuf {
        self.dir.path().join("receipts")
    }
    /// Every receipt in the journal, oldest first.
    pub fn receipt_files(&self) -> Vec<Value> {
        crate::journal::receipts(&self.receipts())
    }
}

/// The `enact` binary under test.
pub fn enact_bin() -> &'static str {
    env!("CARGO_BIN_EXE_enact")
}

/// `enact serve --config <folder>/enact.toml` with `ENACT_SECRET` and extra env vars.
pub fn serve_command(folder: &Folder, env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(enact_bin());
    cmd.arg("serve")
        .arg("--config")
        .arg(folder.config())
        .env("ENACT_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .env_remove("ENACT_CONFIG")
        .env_remove("ENACT_ACTOR_EMAIL")
        .env_remove("ENACT_ACTOR_ROLE")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Spawns the server and completes the MCP handshake with an rmcp client.
pub async fn connect(folder: &Folder, env: &[(&str, &str)]) -> Client {
    let (transport, _stderr) = TokioChildProcess::builder(serve_command(folder, env))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ().serve(transport).await.unwrap()
}

/// Like [`connect`], plus a task that collects everything the server writes to stderr (its
/// log); it finishes once the server has exited (after `client.cancel()`).
pub async fn connect_with_stderr(
    folder: &Folder,
    env: &[(&str, &str)],
) -> (Client, tokio::task::JoinHandle<String>) {
    let (transport, stderr) = TokioChildProcess::builder(serve_command(folder, env))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = stderr.expect("stderr is piped");
    let log = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text)
            .await
            .unwrap();
        text
    });
    (().serve(transport).await.unwrap(), log)
}

pub async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    try_call(client, tool, args).await.unwrap()
}

pub async fn try_call(
    client: &Client,
    tool: &str,
    args: Value,
) -> Result<CallToolResult, ServiceError> {
    let params = CallToolRequestParams::new(tool.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    tokio::time::timeout(Duration::from_secs(60), client.call_tool(params))
        .await
        .expect("tool call timed out")
}

/// The texts of a result's content blocks.
pub fn texts(r: &CallToolResult) -> Vec<String> {
    r.content
        .iter()
        .map(|c| {
            let v = serde_json::to_value(c).unwrap();
            assert_eq!(v["type"], "text", "{v}");
            v["text"].as_str().unwrap().to_string()
        })
        .collect()
}

pub fn structured(r: &CallToolResult) -> Value {
    r.structured_content.clone().expect("structuredContent")
}

pub fn is_error(r: &CallToolResult) -> bool {
    r.is_error == Some(true)
}

/// Asserts the SPEC's result shape: summary line, then the same JSON as `structuredContent`.
pub fn assert_shape(r: &CallToolResult) -> Value {
    let t = texts(r);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(!t[0].contains('\n'), "the summary is one line: {}", t[0]);
    let s = structured(r);
    assert_eq!(serde_json::from_str::<Value>(&t[1]).unwrap(), s);
    s
}

pub async fn read_json(client: &Client, uri: &str) -> Value {
    let r = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap();
    let v = serde_json::to_value(&r.contents[0]).unwrap();
    assert_eq!(v["uri"], uri);
    assert_eq!(v["mimeType"], "application/json");
    serde_json::from_str(v["text"].as_str().unwrap()).unwrap()
}

/// RFC 8785 canonical JSON, written here again on purpose (not the library's), so the tests
/// check signatures against an independent implementation: every number is the IEEE 754
/// double it parses to, written as ECMAScript does (ryu-js); object keys are sorted by their
/// UTF-16 code units; strings are escaped as JSON requires and no more (serde_json's form).
pub fn jcs(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by_key(|k| k.encode_utf16().collect::<Vec<u16>>());
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", serde_json::to_string(k).unwrap(), jcs(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(jcs).collect::<Vec<_>>().join(",")),
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            assert!(f.is_finite(), "JSON numbers are finite: {n}");
            if f == 0.0 {
                "0".into()
            } else {
                ryu_js::Buffer::new().format_finite(f).to_string()
            }
        }
        other => serde_json::to_string(other).unwrap(),
    }
}

/// Recomputes a receipt file's HMAC-SHA256 from its bytes.
pub fn signature_recomputes(receipt: &Value) -> bool {
    let mut unsigned = receipt.clone();
    let sig = unsigned
        .as_object_mut()
        .unwrap()
        .remove("signature")
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(jcs(&unsigned).as_bytes());
    hex::encode(mac.finalize().into_bytes()) == sig.as_str().unwrap()
}

/// `(policy, passed, reason)` of each policy result.
pub fn results(s: &Value) -> Vec<(String, bool, String)> {
    s["policy_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["policy"].as_str().unwrap().to_string(),
                p["passed"].as_bool().unwrap(),
                p["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The failed policies and their reasons.
pub fn failures(s: &Value) -> Vec<(String, String)> {
    results(s)
        .into_iter()
        .filter(|(_, passed, _)| !passed)
        .map(|(p, _, r)| (p, r))
        .collect()
}

pub fn fail(policy: &str, reason: &str) -> (String, String) {
    (policy.to_string(), reason.to_string())
}

/// Asserts a BLOCK result: isError, no actions, the summary naming every failed policy and
/// its reason. Returns the failed policies.
pub fn assert_block(r: &CallToolResult) -> Vec<(String, String)> {
    assert!(is_error(r));
    let s = assert_shape(r);
    assert_eq!(s["decision"], "BLOCK", "{s}");
    assert_eq!(s["success"], false);
    assert_eq!(s["actions"], json!([]));
    let failed = failures(&s);
    assert!(!failed.is_empty());
    let summary = &texts(r)[0];
    assert!(summary.starts_with("BLOCK: `"), "{summary}");
    for (policy, reason) in &failed {
        assert!(
            summary.contains(&format!("{policy}: {reason}")),
            "{summary} lacks {policy}: {reason}"
        );
    }
    failed
}

/// Asserts a failed action: PASS, `success: false`, isError, the summary naming the error.
/// Returns the failed action's error.
pub fn assert_failed_action_on(r: &CallToolResult, system: &str, action: &str) -> String {
    assert!(is_error(r));
    let s = assert_shape(r);
    assert_eq!(s["decision"], "PASS", "{s}");
    assert_eq!(s["success"], false);
    let last = s["actions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], action, "{s}");
    assert_eq!(last["success"], false);
    let error = last["output"]["error"].as_str().unwrap().to_string();
    let summary = &texts(r)[0];
    assert!(
        summary.starts_with(&format!(
            "FAILED: `{}` passed the gate but action `{action}` on `{system}` failed: {error}",
            s["workflow"].as_str().unwrap()
        )),
        "{summary}"
    );
    error
}

/// The engine tests' files config plus a `read` workflow.
pub fn mcp_config() -> String {
    format!(
        "{FILES_CONFIG}{}",
        r#"
[[workflows]]
name = "read"
[workflows.inputs.path]
type = "string"
[[workflows.steps]]
system = "files"
action = "read_file"
args = { path = "{{path}}" }
"#
    )
}

#[tokio::test]
async fn initialize_reports_enact_and_the_crate_version() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let info = client.peer_info().unwrap();
    let server = info.server_info.as_ref().unwrap();
    assert_eq!(server.name, "enact");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some());
    assert!(info.capabilities.resources.is_some());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tools_list_matches_the_config() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "save",
            "remove",
            "pair",
            "read",
            "enact_preview",
            "enact_list_receipts",
            "enact_get_receipt",
            "enact_rollback"
        ]
    );
    let save = &tools[0];
    let schema = Value::Object((*save.input_schema).clone());
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["path"]["type"], "string");
    assert_eq!(schema["required"], json!(["path", "content"]));
    for t in &tools {
        let out = t
            .output_schema
            .as_ref()
            .expect("every tool has an output schema");
        assert_eq!(out["type"], "object", "{}", t.name);
    }
    client.cancel().await.unwrap();

    // Rollback disabled: no enact_rollback tool, and calling it is an unknown tool.
    let f = Folder::new(&FILES_CONFIG.replace("enabled = true", "enabled = false"));
    let client = connect(&f, &[]).await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "save",
            "remove",
            "pair",
            "enact_preview",
            "enact_list_receipts",
            "enact_get_receipt"
        ]
    );
    let err = try_call(&client, "enact_rollback", json!({"run_id": "x"}))
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("-32602"), "{err:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn pass_writes_the_file_and_one_signed_receipt() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let r = call(
        &client,
        "save",
        json!({"path": "notes/a.md", "content": "hello"}),
    )
    .await;
    assert!(!is_error(&r));
    let s = assert_shape(&r);
    assert_eq!(s["workflow"], "save");
    assert_eq!(s["decision"], "PASS");
    assert_eq!(s["success"], true);
    assert_eq!(s["actions"][0]["action"], "write_file");
    assert_eq!(s["actions"][0]["system"], "files");
    assert_eq!(s["actions"][0]["success"], true);
    assert!(s["actions"][0].get("rollback_data").is_none());
    let run_id = s["run_id"].as_str().unwrap();
    assert_eq!(s["receipt"], format!("enact://receipts/{run_id}"));
    let names: Vec<&str> = s["policy_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["block_extensions", "restrict_paths"]);
    assert!(texts(&r)[0].starts_with("PASS: `save`"), "{}", texts(&r)[0]);
    assert_eq!(
        std::fs::read_to_string(f.workspace().join("notes/a.md")).unwrap(),
        "hello"
    );
    let receipts = f.receipt_files();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["run_id"], run_id);
    assert_eq!(
        receipts[0]["payload"],
        json!({"path": "notes/a.md", "content": "hello"})
    );
    assert!(signature_recomputes(&receipts[0]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn block_names_every_failed_policy_and_runs_nothing() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let r = call(
        &client,
        "save",
        json!({"path": "secrets/.env", "content": "x"}),
    )
    .await;
    assert!(is_error(&r));
    let s = assert_shape(&r);
    assert_eq!(s["decision"], "BLOCK");
    assert_eq!(s["success"], false);
    assert_eq!(s["actions"], json!([]));
    let summary = &texts(&r)[0];
    assert!(
        summary.starts_with("BLOCK: `save` was blocked"),
        "{summary}"
    );
    for p in s["policy_results"].as_array().unwrap() {
        assert_eq!(p["passed"], false, "{p}");
        let reason = p["reason"].as_str().unwrap();
        assert!(summary.contains(reason), "{summary} lacks {reason}");
        assert!(summary.contains(p["policy"].as_str().unwrap()));
    }
    assert!(!f.workspace().join("secrets").exists());
    let receipts = f.receipt_files();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["decision"], "BLOCK");
    assert!(signature_recomputes(&receipts[0]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_arguments_are_an_input_schema_block_with_a_receipt() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let cases = [
        (json!({"path": "notes/a.md"}), "content"),
        (
            json!({"path": "notes/a.md", "content": "x", "extra": 1}),
            "extra",
        ),
        (json!({"path": 5, "content": "x"}), "path"),
        (
            json!({"path": "notes/a.md", "content": "x", "n": 9007199254740993u64}),
            "9007199254740993",
        ),
    ];
    for (args, named) in &cases {
        let r = call(&client, "save", args.clone()).await;
        assert!(is_error(&r));
        let s = assert_shape(&r);
        assert_eq!(s["decision"], "BLOCK", "{args}");
        let results = s["policy_results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "only input_schema: {results:?}");
        assert_eq!(results[0]["policy"], "input_schema");
        let reason = results[0]["reason"].as_str().unwrap();
        assert!(reason.contains(named), "{reason} should name {named}");
    }
    assert_eq!(f.receipt_files().len(), cases.len());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_failed_action_is_an_error_result_with_its_message() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let r = call(&client, "read", json!({"path": "notes/missing.md"})).await;
    assert!(is_error(&r));
    let s = assert_shape(&r);
    assert_eq!(
        (s["decision"].clone(), s["success"].clone()),
        (json!("PASS"), json!(false))
    );
    let error = s["actions"][0]["output"]["error"].as_str().unwrap();
    let summary = &texts(&r)[0];
    assert!(summary.starts_with("FAILED: `read`"), "{summary}");
    assert!(summary.contains(error), "{summary} lacks {error}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn preview_runs_nothing_and_writes_no_receipt() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let r = call(
        &client,
        "enact_preview",
        json!({"workflow": "save", "arguments": {"path": "notes/p.md", "content": "x"}}),
    )
    .await;
    assert!(!is_error(&r));
    let s = assert_shape(&r);
    assert_eq!(s["workflow"], "save");
    assert_eq!(s["decision"], "PASS");
    assert_eq!(
        s["plan"],
        json!([{"system": "files", "action": "write_file", "args": {"path": "notes/p.md", "content": "x"}}])
    );
    assert_eq!(s["policy_results"].as_array().unwrap().len(), 2);

    let r = call(
        &client,
        "enact_preview",
        json!({"workflow": "save", "arguments": {"path": "etc/x.pem", "content": "x"}}),
    )
    .await;
    let s = assert_shape(&r);
    assert_eq!(s["decision"], "BLOCK");
    assert!(texts(&r)[0].contains("restrict_paths"), "{:?}", texts(&r));

    let r = call(
        &client,
        "enact_preview",
        json!({"workflow": "save", "arguments": [1]}),
    )
    .await;
    assert_eq!(
        texts(&r),
        ["enact_preview: `arguments` must be an object, got [1]"]
    );
    let r = call(&client, "enact_preview", json!({"workflow": "nope"})).await;
    assert!(is_error(&r));
    assert_eq!(texts(&r), ["enact_preview: unknown workflow `nope`"]);

    assert!(!f.workspace().join("notes/p.md").exists());
    assert!(f.receipt_files().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn list_and_get_receipts_redact_rollback_data() {
    let f = Folder::new(&mcp_config());
    std::fs::write(f.workspace().join("notes/a.md"), "old secret text").unwrap();
    let client = connect(&f, &[]).await;
    let first = structured(
        &call(
            &client,
            "save",
            json!({"path": "notes/a.md", "content": "new"}),
        )
        .await,
    );
    let second = structured(&call(&client, "save", json!({"path": "x.pem", "content": "k"})).await);

    let r = call(&client, "enact_list_receipts", json!({})).await;
    let s = assert_shape(&r);
    let list = s["receipts"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["run_id"], second["run_id"], "newest first");
    assert_eq!(list[1]["run_id"], first["run_id"]);
    let keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "actor_email",
            "decision",
            "rollback_of",
            "run_id",
            "timestamp",
            "workflow"
        ]
    );
    let r = call(
        &client,
        "enact_list_receipts",
        json!({"decision": "BLOCK", "limit": 5}),
    )
    .await;
    let s = structured(&r);
    assert_eq!(s["receipts"].as_array().unwrap().len(), 1);
    assert_eq!(s["receipts"][0]["decision"], "BLOCK");
    let r = call(&client, "enact_list_receipts", json!({"limit": 501})).await;
    assert!(is_error(&r));
    assert_eq!(
        texts(&r),
        ["enact_list_receipts: `limit` must be an integer from 1 to 500, got 501"]
    );
    let r = call(&client, "enact_list_receipts", json!({"decision": "maybe"})).await;
    assert_eq!(
        texts(&r),
        [
            "enact_list_receipts: `decision` must be one of PASS, BLOCK, PARTIAL, PENDING, APPROVE, DENY, GRANT, REVOKE, got \"maybe\""
        ]
    );
    let r = call(&client, "enact_list_receipts", json!({"order": "asc"})).await;
    assert_eq!(
        texts(&r),
        ["enact_list_receipts: unknown argument `order` (expected limit, workflow, decision)"]
    );

    let run_id = first["run_id"].as_str().unwrap();
    let r = call(&client, "enact_get_receipt", json!({"run_id": run_id})).await;
    let s = assert_shape(&r);
    assert_eq!(s["signature_valid"], true);
    let rd = &s["receipt"]["actions_taken"][0]["rollback_data"];
    assert_eq!(rd.as_object().unwrap().len(), 2, "{rd}");
    assert_eq!(rd["sha256"].as_str().unwrap().len(), 64);
    assert!(rd["bytes"].as_u64().unwrap() > 0);
    assert!(!texts(&r)[1].contains("old secret text"));
    // The journal itself keeps the whole rollback data (the CLI shows it).
    assert!(crate::journal::text(&f.receipts()).contains("old secret text"));

    let r = call(
        &client,
        "enact_get_receipt",
        json!({"run_id": "../etc/passwd"}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(texts(&r), ["Invalid run_id: '../etc/passwd'"]);
    let missing = "00000000-0000-4000-8000-000000000000";
    let r = call(&client, "enact_get_receipt", json!({"run_id": missing})).await;
    assert_eq!(
        texts(&r),
        [format!("No receipt found for run_id: {missing}")]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rollback_restores_and_refuses_as_the_spec_says() {
    let f = Folder::new(&mcp_config());
    std::fs::write(f.workspace().join("notes/a.md"), "before").unwrap();
    let client = connect(&f, &[]).await;
    let run = structured(
        &call(
            &client,
            "save",
            json!({"path": "notes/a.md", "content": "after"}),
        )
        .await,
    );
    let run_id = run["run_id"].as_str().unwrap();

    let r = call(&client, "enact_rollback", json!({"run_id": run_id})).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    let s = assert_shape(&r);
    assert_eq!(s["rollback_of"], run_id);
    assert_eq!(s["decision"], "PASS");
    assert_eq!(s["success"], true);
    let rb_id = s["run_id"].as_str().unwrap().to_string();
    assert_eq!(s["receipt"], format!("enact://receipts/{rb_id}"));
    assert_eq!(
        std::fs::read_to_string(f.workspace().join("notes/a.md")).unwrap(),
        "before"
    );

    let r = call(&client, "enact_rollback", json!({"run_id": run_id})).await;
    assert!(is_error(&r));
    assert_eq!(
        texts(&r),
        [format!("Run {run_id} was already rolled back by {rb_id}")]
    );
    let r = call(&client, "enact_rollback", json!({"run_id": rb_id})).await;
    assert!(is_error(&r));
    assert!(texts(&r)[0].starts_with("Cannot rollback a rollback receipt"));

    let blocked =
        structured(&call(&client, "save", json!({"path": "x.env", "content": "k"})).await);
    let r = call(
        &client,
        "enact_rollback",
        json!({"run_id": blocked["run_id"]}),
    )
    .await;
    assert_eq!(
        texts(&r),
        ["Cannot rollback a blocked run — no actions were taken"]
    );
    let r = call(&client, "enact_rollback", json!({"run_id": "NOT-A-UUID"})).await;
    assert_eq!(texts(&r), ["Invalid run_id: 'NOT-A-UUID'"]);

    // A tampered receipt is refused before anything runs.
    let run2 = structured(
        &call(
            &client,
            "save",
            json!({"path": "notes/b.md", "content": "b"}),
        )
        .await,
    );
    let id2 = run2["run_id"].as_str().unwrap();
    crate::journal::edit_receipt(&f.receipts(), id2, |line| {
        line.replace("\"notes/b.md\"", "\"notes/c.md\"")
    });
    let r = call(&client, "enact_rollback", json!({"run_id": id2})).await;
    assert_eq!(
        texts(&r),
        [format!(
            "Receipt signature verification failed for run_id: {id2}"
        )]
    );
    assert!(f.workspace().join("notes/b.md").exists());

    for receipt in f.receipt_files() {
        if receipt["run_id"] != id2 {
            assert!(signature_recomputes(&receipt), "{}", receipt["run_id"]);
        }
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn over_mcp_only_the_servers_own_actor_can_roll_back() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[("ENACT_ACTOR_EMAIL", "someone-else@company.com")]).await;
    let run = structured(
        &call(
            &client,
            "save",
            json!({"path": "notes/o.md", "content": "x"}),
        )
        .await,
    );
    client.cancel().await.unwrap();
    let client = connect(&f, &[]).await;
    let id = run["run_id"].as_str().unwrap();
    let r = call(&client, "enact_rollback", json!({"run_id": id})).await;
    assert!(is_error(&r));
    assert_eq!(
        texts(&r),
        [format!(
            "Run {id} belongs to another actor and cannot be rolled back here"
        )]
    );
    assert!(f.workspace().join("notes/o.md").exists());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn every_resource_reads_as_json() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let run = structured(
        &call(
            &client,
            "save",
            json!({"path": "notes/r.md", "content": "x"}),
        )
        .await,
    );
    let run_id = run["run_id"].as_str().unwrap();

    let listed = client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = listed.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "enact://receipts",
            "enact://policies",
            "enact://workflows",
            "enact://approvals"
        ]
    );
    let templates = client.list_all_resource_templates().await.unwrap();
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].uri_template, "enact://receipts/{run_id}");

    let receipts = read_json(&client, "enact://receipts").await;
    assert_eq!(receipts["receipts"][0]["run_id"], run_id);
    let one = read_json(&client, &format!("enact://receipts/{run_id}")).await;
    assert_eq!(one["run_id"], run_id);
    assert!(one["actions_taken"][0]["rollback_data"]["sha256"].is_string());
    let policies = read_json(&client, "enact://policies").await;
    assert_eq!(policies["policies"][1]["policy"], "restrict_paths");
    assert_eq!(
        policies["policies"][1]["params"]["paths"],
        json!(["notes", "docs"])
    );
    let workflows = read_json(&client, "enact://workflows").await;
    let save = &workflows["workflows"][0];
    assert_eq!(save["name"], "save");
    assert_eq!(save["steps"][0]["action"], "write_file");
    assert_eq!(save["inputs"][0]["name"], "path");
    assert_eq!(
        read_json(&client, "enact://approvals").await,
        json!({"approvals": []})
    );

    for (uri, code, message) in [
        ("enact://nope", -32002, "Resource not found: enact://nope"),
        (
            "enact://receipts/00000000-0000-4000-8000-000000000000",
            -32002,
            "No receipt found for run_id: 00000000-0000-4000-8000-000000000000",
        ),
        (
            "enact://receipts/../../x",
            -32602,
            "Invalid run_id: '../../x'",
        ),
    ] {
        let err = client
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains(&code.to_string()), "{uri}: {text}");
        assert!(text.contains(message), "{uri}: {text}");
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn unknown_tools_are_json_rpc_errors_without_receipts() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let err = try_call(&client, "no_such_tool", json!({}))
        .await
        .unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("-32602") && text.contains("Unknown tool: `no_such_tool`"),
        "{text}"
    );
    assert!(f.receipt_files().is_empty());
    // Still serving.
    let r = call(
        &client,
        "save",
        json!({"path": "notes/ok.md", "content": "x"}),
    )
    .await;
    assert!(!is_error(&r));
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_each_get_one_receipt_in_one_chain() {
    let f = Folder::new(&mcp_config());
    let client = connect(&f, &[]).await;
    let calls = (0..12).map(|i| {
        let client = &client;
        async move {
            call(
                client,
                "save",
                json!({"path": format!("notes/c{i}.md"), "content": format!("{i}")}),
            )
            .await
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| !is_error(r)));
    let receipts = f.receipt_files();
    assert_eq!(receipts.len(), 12);
    let seqs: Vec<u64> = receipts
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..12).collect::<Vec<u64>>());
    for pair in receipts.windows(2) {
        let prev = hex::encode(Sha256::digest(jcs(&pair[0]).as_bytes()));
        assert_eq!(pair[1]["prev_hash"], prev);
    }
    client.cancel().await.unwrap();
    let out = std::process::Command::new(enact_bin())
        .args(["receipts", "verify", "--config"])
        .arg(f.config())
        .env("ENACT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A server spoken to line by line.
pub struct Raw {
    pub child: tokio::process::Child,
    pub stdin: tokio::process::ChildStdin,
    pub stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Raw {
    pub async fn start(folder: &Folder) -> Raw {
        Raw::start_with(folder, &[]).await
    }
    pub async fn start_with(folder: &Folder, env: &[(&str, &str)]) -> Raw {
        let mut cmd = serve_command(folder, env);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Raw {
            child,
            stdin,
            stdout,
        }
    }
    pub async fn send(&mut self, line: &[u8]) {
        self.stdin.write_all(line).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }
    pub async fn send_json(&mut self, v: Value) {
        self.send(v.to_string().as_bytes()).await;
    }
    /// The next stdout line, which must be a JSON-RPC 2.0 message.
    pub async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line())
            .await
            .expect("no answer within 30 s")
            .unwrap()
            .expect("stdout closed");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout held a non-JSON line ({e}): {line}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
        v
    }
    pub async fn initialize(&mut self, version: &str) -> Value {
        self.send_json(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"}}}),
        )
        .await;
        let v = self.recv().await;
        self.send_json(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        v
    }
    /// Closes stdin; returns the exit status and everything written to stderr.
    pub async fn finish(mut self) -> (std::process::ExitStatus, String) {
        drop(self.stdin);
        let mut rest = Vec::new();
        while let Ok(Some(line)) = self.stdout.next_line().await {
            rest.push(line);
        }
        assert!(rest.is_empty(), "unexpected stdout after close: {rest:?}");
        let out = tokio::time::timeout(Duration::from_secs(30), self.child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn save_call(id: u64, path: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "save", "arguments": {"path": path, "content": "x"}}})
}

#[tokio::test]
async fn both_required_protocol_versions_are_negotiated() {
    let f = Folder::new(&mcp_config());
    for version in ["2025-06-18", "2025-11-25"] {
        let mut raw = Raw::start(&f).await;
        let v = raw.initialize(version).await;
        assert_eq!(v["result"]["protocolVersion"], version);
        assert_eq!(v["result"]["serverInfo"]["name"], "enact");
        let (status, _) = raw.finish().await;
        assert!(status.success());
    }
}

#[tokio::test]
async fn bad_lines_get_json_rpc_errors_and_the_server_keeps_serving() {
    let f = Folder::new(&mcp_config());
    let mut raw = Raw::start(&f).await;
    raw.initialize("2025-06-18").await;

    raw.send(b"this is not json").await;
    let v = raw.recv().await;
    assert_eq!(v["error"]["code"], -32700);
    assert_eq!(v["id"], Value::Null);

    raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":").await;
    assert_eq!(raw.recv().await["error"]["code"], -32700);

    raw.send_json(json!([1, 2])).await;
    assert_eq!(raw.recv().await["error"]["code"], -32600);

    raw.send_json(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                         "params": {"name": "save", "arguments": "path=x"}}))
        .await;
    let v = raw.recv().await;
    assert_eq!(v["id"], 3);
    assert_eq!(v["error"]["code"], -32602);
    assert_eq!(
        v["error"]["message"],
        "`arguments` must be a JSON object, got a string"
    );

    // Larger than the transport takes: answered, not buffered without bound.
    let mut big = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"save","arguments":{"path":"notes/big.md","content":""#.to_vec();
    big.extend(std::iter::repeat_n(
        b'a',
        enact::mcp::framing::MAX_MESSAGE_BYTES + 10,
    ));
    big.extend(br#""}}}"#);
    raw.send(&big).await;
    let v = raw.recv().await;
    assert_eq!(v["error"]["code"], -32600);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than")
    );

    // Arguments over 1 MiB but under the transport limit reach the gate: a BLOCK receipt.
    let content = "b".repeat(1024 * 1024 + 1);
    raw.send_json(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                         "params": {"name": "save", "arguments": {"path": "notes/m.md", "content": content}}}))
        .await;
    let v = raw.recv().await;
    assert_eq!(v["id"], 5);
    assert_eq!(v["result"]["isError"], true);
    assert_eq!(v["result"]["structuredContent"]["decision"], "BLOCK");
    assert_eq!(
        v["result"]["structuredContent"]["policy_results"][0]["policy"],
        "input_schema"
    );

    // A number whose text a double cannot hold exactly: only the raw line shows it.
    raw.send(br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"save","arguments":{"path":"notes/n.md","content":"x","n":0.10000000000000000001}}}"#).await;
    let v = raw.recv().await;
    let reason = v["result"]["structuredContent"]["policy_results"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        reason,
        "number 0.10000000000000000001 cannot be represented exactly as a double"
    );

    raw.send_json(save_call(7, "notes/good.md")).await;
    let v = raw.recv().await;
    assert_eq!(v["id"], 7);
    assert_eq!(v["result"]["structuredContent"]["decision"], "PASS");
    assert!(f.workspace().join("notes/good.md").exists());

    let (status, stderr) = raw.finish().await;
    assert!(status.success(), "exit 0 when stdin closes: {status}");
    assert!(!stderr.contains(SECRET), "the secret leaked into the log");
    assert!(
        stderr.contains("run recorded"),
        "logs go to stderr: {stderr}"
    );
    // Receipts: the two BLOCKs and the PASS; the rejected lines wrote none.
    assert_eq!(f.receipt_files().len(), 3);
}

/// SPEC §5.2: a call refused for numbers a double cannot hold stores each of them, wherever it
/// is nested, as the string of its literal text, so any RFC 8785 implementation (here one with
/// plain doubles, written in this test) verifies the BLOCK receipt.
#[tokio::test]
async fn inexact_numbers_are_stored_as_their_text_and_any_jcs_verifies_the_receipt() {
    let f = Folder::new(&mcp_config());
    let mut raw = Raw::start(&f).await;
    raw.initialize("2025-06-18").await;
    raw.send(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"save","arguments":{"path":"notes/n.md","content":"x","order":{"price":9007199254740993,"lines":[{"qty":2,"unit":0.10000000000000000001},1.5,-18446744073709551617]}}}}"#).await;
    let v = raw.recv().await;
    let s = &v["result"]["structuredContent"];
    assert_eq!(s["decision"], "BLOCK", "{v}");
    assert_eq!(
        s["policy_results"],
        json!([{"policy": "input_schema", "passed": false,
                "reason": "number 9007199254740993 cannot be represented exactly as a double"}])
    );
    let run_id = s["run_id"].as_str().unwrap().to_string();
    let (status, _) = raw.finish().await;
    assert!(status.success());

    let out = std::process::Command::new(enact_bin())
        .args(["receipts", "show", &run_id, "--config"])
        .arg(f.config())
        .env("ENACT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["signature_valid"], true);
    let receipt = &shown["receipt"];
    assert_eq!(
        receipt["payload"],
        json!({"path": "notes/n.md", "content": "x", "order": {
            "price": "9007199254740993",
            "lines": [{"qty": 2, "unit": "0.10000000000000000001"}, 1.5, "-18446744073709551617"]}})
    );
    assert!(
        signature_recomputes(receipt),
        "an independent RFC 8785 implementation does not verify {receipt}"
    );
    // The signature covers the exact text: changing a digit is detected.
    let mut edited = receipt.clone();
    edited["payload"]["order"]["price"] = json!("9007199254740992");
    assert!(!signature_recomputes(&edited));
}

#[test]
fn the_test_jcs_writes_numbers_as_doubles() {
    let v: Value = serde_json::from_str(
        r#"{"b": [333333333.33333329, 1E30, 4.50, 2e-3, 1e-27, -0.0, 9007199254740993],
            "a": {"\u20ac": 1, "\ud83d\ude00": 2, "\ufb33": 3}}"#,
    )
    .unwrap();
    assert_eq!(
        jcs(&v),
        "{\"a\":{\"€\":1,\"😀\":2,\"\u{fb33}\":3},\"b\":[333333333.3333333,1e+30,4.5,0.002,1e-27,0,9007199254740992]}"
    );
}

#[tokio::test]
async fn stdout_holds_only_json_rpc_and_the_secret_never_appears() {
    let f = Folder::new(&mcp_config());
    let mut raw = Raw::start(&f).await;
    raw.initialize("2025-11-25").await;
    raw.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .await;
    let tools = raw.recv().await;
    raw.send_json(save_call(2, "notes/s.md")).await;
    let pass = raw.recv().await;
    raw.send_json(
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                         "params": {"uri": "enact://receipts"}}),
    )
    .await;
    let res = raw.recv().await;
    for v in [&tools, &pass, &res] {
        assert!(!v.to_string().contains(SECRET));
    }
    let (status, stderr) = raw.finish().await;
    assert!(status.success());
    assert!(!stderr.contains(SECRET));
    for receipt in f.receipt_files() {
        assert!(!receipt.to_string().contains(SECRET));
    }
}

#[tokio::test]
async fn exits_zero_when_stdin_closes_before_the_handshake() {
    let f = Folder::new(&mcp_config());
    let raw = Raw::start(&f).await;
    let (status, _) = raw.finish().await;
    assert!(status.success(), "{status}");
}
