//! The engine end to end on a real temp folder, through the library: gate, run, receipts,
//! rollback (SPEC §3.1 semantics, §5, §6, §7 filesystem).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use enact::engine::{Engine, Requester};
use enact::kernel::policy::Decision;
use enact::mcp::summary::Summarise;
use enact::registry::Registry;
use enact::store::Store;
use serde_json::{Map, Value, json};

pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";

/// A temp folder with `enact.toml`, `workspace/` and `receipts/`.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub engine: Arc<Engine>,
}

impl Setup {
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }
    pub fn receipts(&self) -> PathBuf {
        self.dir.path().join("receipts")
    }
}

pub fn env_with_secret(name: &str) -> Option<String> {
    match name {
        "ENACT_SECRET" => Some(SECRET.to_string()),
        _ => None,
    }
}

/// Files-only config: `save` (write), `remove` (delete), `pair` (write a, write b, delete c),
/// `read`; policies restrict_paths ["."], block_extensions; rollback enabled.
pub const FILES_CONFIG: &str = r#"
[actor]
email = "agent@company.com"
role = "engineer"

[rollback]
enabled = true

[systems.files]
type = "filesystem"
root = "workspace"

[[policies]]
policy = "block_extensions"

[[policies]]
policy = "restrict_paths"
paths = ["notes", "docs"]

[[workflows]]
name = "save"
[workflows.inputs.path]
type = "string"
[workflows.inputs.content]
type = "string"
[[workflows.steps]]
system = "files"
action = "write_file"
args = { path = "{{path}}", content = "{{content}}" }

[[workflows]]
name = "remove"
[workflows.inputs.path]
type = "string"
[[workflows.steps]]
system = "files"
action = "delete_file"
args = { path = "{{path}}" }

[[workflows]]
name = "pair"
[workflows.inputs.a]
type = "string"
[workflows.inputs.b]
type = "string"
[[workflows.steps]]
system = "files"
action = "write_file"
args = { path = "notes/a.txt", content = "{{a}}" }
[[workflows.steps]]
system = "files"
action = "read_file"
args = { path = "notes/a.txt" }
[[workflows.steps]]
system = "files"
action = "write_file"
args = { path = "notes/b.txt", content = "{{b}}" }
[[workflows.steps]]
system = "files"
action = "delete_file"
args = { path = "notes/c.txt" }
"#;

pub fn setup_with(config_text: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workspace/notes")).unwrap();
    let path = dir.path().join("enact.toml");
    std::fs::write(&path, config_text).unwrap();
    let config = enact::config::load(&path, &env_with_secret).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&config.receipts_dir, config.fsync, config.secret.clone()).unwrap();
    let registry = Registry::build(config).unwrap();
    Setup {
        dir,
        engine: Arc::new(Engine::new(registry, store)),
    }
}

pub fn setup() -> Setup {
    setup_with(FILES_CONFIG)
}

pub fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// Every file under `root` with its bytes (directories as `None`).
pub fn snapshot(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if entry.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                walk(root, &path, out);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn receipt_files(dir: &Path) -> Vec<Value> {
    crate::journal::receipts(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_then_overwrite_then_idempotent_repeat() {
    let s = setup();
    let r = s
        .engine
        .call(
            "save",
            args(json!({"path": "notes/x.md", "content": "one"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.decision, r.success), (Decision::Pass, true));
    assert_eq!(r.actions[0].output["already_done"], json!(false));
    assert_eq!(
        std::fs::read_to_string(s.workspace().join("notes/x.md")).unwrap(),
        "one"
    );

    let r = s
        .engine
        .call(
            "save",
            args(json!({"path": "notes/x.md", "content": "two"})),
            &[],
        )
        .await
        .unwrap();
    assert!(r.success);
    assert_eq!(
        std::fs::read_to_string(s.workspace().join("notes/x.md")).unwrap(),
        "two"
    );

    let r = s
        .engine
        .call(
            "save",
            args(json!({"path": "notes/x.md", "content": "two"})),
            &[],
        )
        .await
        .unwrap();
    assert!(r.success);
    assert_eq!(r.actions[0].output["already_done"], json!("written"));

    let receipts = receipt_files(&s.receipts());
    assert_eq!(receipts.len(), 3, "one receipt per call");
    assert_eq!(receipts[2]["actions_taken"][0]["rollback_data"], json!({}));
    assert_eq!(
        receipts[0]["payload"],
        json!({"path": "notes/x.md", "content": "one"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_runs_nothing_and_names_every_failed_policy() {
    let s = setup();
    let r = s
        .engine
        .call(
            "save",
            args(json!({"path": "secrets/.env", "content": "K=V"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.decision, Decision::Block);
    assert!(!r.success);
    assert!(r.actions.is_empty());
    let failed: Vec<&str> = r
        .policy_results
        .iter()
        .filter(|p| !p.passed)
        .map(|p| p.policy.as_str())
        .collect();
    assert_eq!(failed, vec!["block_extensions", "restrict_paths"]);
    let summary = r.summary();
    assert!(
        summary.starts_with("BLOCK: `save` was blocked — block_extensions: "),
        "{summary}"
    );
    assert!(summary.contains("restrict_paths: "), "{summary}");
    assert!(!s.workspace().join("secrets").exists());
    let receipts = receipt_files(&s.receipts());
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["decision"], json!("BLOCK"));
    assert_eq!(receipts[0]["actions_taken"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_schema_block_has_a_receipt_and_skips_policies() {
    let s = setup();
    let r = s
        .engine
        .call("save", args(json!({"path": "notes/a", "content": 5})), &[])
        .await
        .unwrap();
    assert_eq!(r.decision, Decision::Block);
    assert_eq!(r.policy_results.len(), 1);
    assert_eq!(r.policy_results[0].policy, "input_schema");
    assert_eq!(
        r.policy_results[0].reason,
        "argument `content` must be a string, got an integer 5"
    );
    let r = s
        .engine
        .call("save", args(json!({"path": "notes/a"})), &[])
        .await
        .unwrap();
    assert_eq!(
        r.policy_results[0].reason,
        "missing required argument `content`"
    );
    let big: Map<String, Value> =
        serde_json::from_str(r#"{"path": "notes/a", "content": "x", "n": 9007199254740993}"#)
            .unwrap();
    let r = s.engine.call("save", big, &[]).await.unwrap();
    assert_eq!(r.policy_results[0].policy, "input_schema");
    // Stored as the string of its digits (SPEC §5.2): any RFC 8785 implementation verifies it.
    let stored = s.engine.store().load(&r.run_id).unwrap();
    assert!(stored.signature_valid);
    assert_eq!(stored.value["payload"]["n"], "9007199254740993");
    assert!(crate::mcp::signature_recomputes(&stored.value));
    assert_eq!(receipt_files(&s.receipts()).len(), 3);
    assert!(
        s.engine.call("nope", Map::new(), &[]).await.is_err(),
        "unknown workflow is not a receipt"
    );
    assert_eq!(receipt_files(&s.receipts()).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_folder_byte_for_byte() {
    let s = setup();
    std::fs::write(s.workspace().join("notes/a.txt"), "old a").unwrap();
    std::fs::write(s.workspace().join("notes/c.txt"), "old c\n\u{1F600}").unwrap();
    let before = snapshot(&s.workspace());
    let r = s
        .engine
        .call("pair", args(json!({"a": "new a", "b": "new b"})), &[])
        .await
        .unwrap();
    assert!(r.success, "{}", r.summary());
    assert_eq!(r.actions.len(), 4);
    assert_ne!(snapshot(&s.workspace()), before);

    let rb = s
        .engine
        .rollback(&r.run_id, Requester::Agent)
        .await
        .unwrap();
    assert_eq!(rb.decision, Decision::Pass, "{}", rb.summary());
    assert_eq!(rb.rollback_of, r.run_id);
    // Reverse order: delete c undone first, then b, the read skipped, then a.
    let order: Vec<&str> = rb.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        order,
        vec!["delete_file", "write_file", "read_file", "write_file"]
    );
    assert_eq!(rb.actions[2].output, json!("skipped: read-only action"));
    assert_eq!(
        snapshot(&s.workspace())
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .collect::<Vec<_>>(),
        before
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .collect::<Vec<_>>()
    );

    let receipts = receipt_files(&s.receipts());
    let last = receipts.last().unwrap();
    assert_eq!(last["workflow"], json!("rollback:pair"));
    assert_eq!(last["rollback_of"], json!(r.run_id));
    assert_eq!(last["payload"], json!({"original_run_id": r.run_id}));
    assert_eq!(last["actor_email"], json!("agent@company.com"));

    let again = s
        .engine
        .rollback(&r.run_id, Requester::Agent)
        .await
        .unwrap_err();
    assert_eq!(
        again.0,
        format!("Run {} was already rolled back by {}", r.run_id, rb.run_id)
    );
    let of_rollback = s
        .engine
        .rollback(&rb.run_id, Requester::Operator)
        .await
        .unwrap_err();
    assert!(
        of_rollback
            .0
            .starts_with("Cannot rollback a rollback receipt"),
        "{}",
        of_rollback.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_gives_partial_and_a_retry_runs_only_the_failed_steps() {
    let s = setup();
    let r = s
        .engine
        .call("pair", args(json!({"a": "A", "b": "B"})), &[])
        .await
        .unwrap();
    assert!(r.success);
    let a = s.workspace().join("notes/a.txt");
    std::fs::write(&a, "edited by a human").unwrap();

    let rb = s
        .engine
        .rollback(&r.run_id, Requester::Agent)
        .await
        .unwrap();
    assert_eq!(rb.decision, Decision::Partial);
    assert!(!rb.success);
    let failed: Vec<_> = rb.actions.iter().filter(|x| !x.success).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].action, "write_file");
    assert_eq!(
        std::fs::read_to_string(&a).unwrap(),
        "edited by a human",
        "nothing overwritten"
    );
    assert!(
        !s.workspace().join("notes/b.txt").exists(),
        "the other undo still ran"
    );

    std::fs::write(&a, "A").unwrap();
    let retry = s
        .engine
        .rollback(&r.run_id, Requester::Agent)
        .await
        .unwrap();
    assert_eq!(retry.decision, Decision::Pass, "{}", retry.summary());
    assert_eq!(retry.actions.len(), 1, "only the failed step is retried");
    assert!(!a.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_refusals_use_the_spec_messages() {
    let s = setup();
    let e = s
        .engine
        .rollback("../x", Requester::Agent)
        .await
        .unwrap_err();
    assert_eq!(e.0, "Invalid run_id: '../x'");
    let id = "0b6f1a2c-3d4e-4f50-8a6b-7c8d9e0f1a2b";
    let e = s.engine.rollback(id, Requester::Agent).await.unwrap_err();
    assert_eq!(e.0, format!("No receipt found for run_id: {id}"));
    let b = s
        .engine
        .call("save", args(json!({"path": "x/.env", "content": ""})), &[])
        .await
        .unwrap();
    let e = s
        .engine
        .rollback(&b.run_id, Requester::Agent)
        .await
        .unwrap_err();
    assert_eq!(e.0, "Cannot rollback a blocked run — no actions were taken");

    let ok = s
        .engine
        .call(
            "save",
            args(json!({"path": "notes/t", "content": "1"})),
            &[],
        )
        .await
        .unwrap();
    crate::journal::edit_receipt(&s.receipts(), &ok.run_id, |line| {
        line.replace("\"notes/t\"", "\"notes/u\"")
    });
    let e = s
        .engine
        .rollback(&ok.run_id, Requester::Agent)
        .await
        .unwrap_err();
    assert_eq!(
        e.0,
        format!(
            "Receipt signature verification failed for run_id: {}",
            ok.run_id
        )
    );
    assert_eq!(
        std::fs::read_to_string(s.workspace().join("notes/t")).unwrap(),
        "1",
        "nothing ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_runs_make_a_contiguous_verified_chain() {
    let s = setup();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let engine = s.engine.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .call(
                    "save",
                    args(json!({"path": format!("notes/{i}.txt"), "content": "x"})),
                    &[],
                )
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().success);
    }
    let receipts = receipt_files(&s.receipts());
    let seqs: Vec<u64> = receipts
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..50).collect::<Vec<u64>>());
    assert_eq!(s.engine.store().verify_all().unwrap().problems, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_exact_under_concurrency() {
    let config = format!(
        "{FILES_CONFIG}\n[[policies]]\npolicy = \"rate_limit\"\nmax = 5\nwindow = \"1h\"\nworkflows = [\"save\"]\n"
    );
    let s = setup_with(&config);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let engine = s.engine.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .call(
                    "save",
                    args(json!({"path": format!("notes/{i}"), "content": "x"})),
                    &[],
                )
                .await
                .unwrap()
        }));
    }
    let mut pass = 0;
    for t in tasks {
        if t.await.unwrap().decision == Decision::Pass {
            pass += 1;
        }
    }
    assert_eq!(pass, 5);
    // Other workflows are outside the scope and still run.
    let r = s
        .engine
        .call("pair", args(json!({"a": "1", "b": "2"})), &[])
        .await
        .unwrap();
    assert!(r.success);
}
