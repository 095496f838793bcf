//! Set-up (SPEC §1): `enact init`, a folder it made served as is, a client nobody here wrote
//! (the MCP Inspector CLI), and `enact demo`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

use crate::mcp::{call, enact_bin, is_error, structured};

fn enact(args: &[&str], cwd: &Path) -> Output {
    Command::new(enact_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("ENACT_CONFIG")
        .env_remove("ENACT_SECRET")
        .env_remove("ENACT_ACTOR_EMAIL")
        .env_remove("ENACT_ACTOR_ROLE")
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A folder made by `enact init`.
fn initialised() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = enact(&["init", "."], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

#[test]
fn init_writes_a_config_a_private_secret_and_a_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let out = enact(&["init", "agent"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let root = dir.path().join("agent");
    let secret = std::fs::read_to_string(root.join(".enact/secret")).unwrap();
    let key = secret.trim_end();
    assert_eq!(key.len(), 64);
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let mode = std::fs::metadata(root.join(".enact/secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(root.join("workspace/notes").is_dir());
    let config = std::fs::read_to_string(root.join("enact.toml")).unwrap();
    assert_eq!(config, enact::init::STARTER_CONFIG);
    // Next steps, with the client JSON to paste (it parses, and names this config).
    let text = stdout(&out);
    assert!(text.contains("Next steps:"), "{text}");
    let json_start = text.find('{').unwrap();
    let json_end = text.rfind('}').unwrap();
    let snippet: Value = serde_json::from_str(&text[json_start..=json_end]).unwrap();
    let args = &snippet["mcpServers"]["enact"]["args"];
    assert_eq!(args[0], "serve");
    assert!(args[2].as_str().unwrap().ends_with("agent/enact.toml"));
    assert!(!text.contains(key), "init must not print the secret");

    let check = enact(&["check", "--config", "agent/enact.toml"], dir.path());
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("save_note"));
}

#[test]
fn init_refuses_to_overwrite_and_changes_nothing() {
    let dir = initialised();
    std::fs::write(dir.path().join("enact.toml"), "# mine\n").unwrap();
    let secret_before = std::fs::read(dir.path().join(".enact/secret")).unwrap();
    let out = enact(&["init"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: refusing to overwrite existing `"),
        "{err}"
    );
    assert!(
        err.contains("enact.toml") && err.contains(".enact/secret"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("enact.toml")).unwrap(),
        "# mine\n"
    );
    assert_eq!(
        std::fs::read(dir.path().join(".enact/secret")).unwrap(),
        secret_before
    );
}

#[tokio::test]
async fn serve_works_in_an_init_folder_with_no_further_set_up() {
    let dir = initialised();
    let mut cmd = tokio::process::Command::new(enact_bin());
    cmd.arg("serve")
        .current_dir(dir.path())
        .env_remove("ENACT_CONFIG")
        .env_remove("ENACT_SECRET")
        .kill_on_drop(true);
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    let r = call(
        &client,
        "save_note",
        json!({"name": "todo.md", "content": "ship it"}),
    )
    .await;
    assert!(!is_error(&r));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("workspace/notes/todo.md")).unwrap(),
        "ship it"
    );
    let r = call(&client, "read_note", json!({"name": "todo.md"})).await;
    assert_eq!(structured(&r)["actions"][0]["output"]["content"], "ship it");
    let r = call(
        &client,
        "save_note",
        json!({"name": "../escape.md", "content": "x"}),
    )
    .await;
    assert!(is_error(&r), "restrict_paths keeps the agent in notes/");
    let r = call(
        &client,
        "save_note",
        json!({"name": "creds.env", "content": "x"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(!dir.path().join("workspace/escape.md").exists());
    client.cancel().await.unwrap();
}

/// The MCP Inspector's CLI, pinned: its 0.17 line still runs on Node.js 20.
const INSPECTOR: &str = "@modelcontextprotocol/inspector@0.17.2";

/// Runs `npx <inspector> --cli <enact> serve <args…>` in `dir` and parses its JSON output.
fn inspector(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new("npx")
        .args(["-y", INSPECTOR, "--cli", enact_bin(), "serve"])
        .args(args)
        .current_dir(dir)
        .env_remove("ENACT_CONFIG")
        .env_remove("ENACT_SECRET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inspector {args:?} failed: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("inspector printed no JSON ({e}): {}", stdout(&out)))
}

#[test]
fn the_mcp_inspector_cli_lists_calls_and_reads() {
    if Command::new("npx").arg("--version").output().is_err() {
        eprintln!("SKIPPED the_mcp_inspector_cli_lists_calls_and_reads: `npx` is not installed");
        return;
    }
    let dir = initialised();
    let listed = inspector(dir.path(), &["--method", "tools/list"]);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "save_note",
            "read_note",
            "list_notes",
            "enact_preview",
            "enact_list_receipts",
            "enact_get_receipt",
            "enact_rollback"
        ]
    );

    let pass = inspector(
        dir.path(),
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "save_note",
            "--tool-arg",
            "name=hello.md",
            "--tool-arg",
            "content=hi",
        ],
    );
    assert_eq!(pass["isError"], false, "{pass}");
    assert_eq!(pass["structuredContent"]["decision"], "PASS");
    let run_id = pass["structuredContent"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();

    let block = inspector(
        dir.path(),
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "save_note",
            "--tool-arg",
            "name=keys.pem",
            "--tool-arg",
            "content=x",
        ],
    );
    assert_eq!(block["isError"], true, "{block}");
    assert_eq!(block["structuredContent"]["decision"], "BLOCK");
    assert!(
        block["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("block_extensions")
    );

    let resources = inspector(dir.path(), &["--method", "resources/list"]);
    let uris: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "enact://receipts",
            "enact://policies",
            "enact://workflows",
            "enact://approvals"
        ]
    );

    let uri = format!("enact://receipts/{run_id}");
    let read = inspector(dir.path(), &["--method", "resources/read", "--uri", &uri]);
    let receipt: Value =
        serde_json::from_str(read["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(receipt["run_id"], run_id);
    assert_eq!(receipt["decision"], "PASS");
    assert!(receipt["actions_taken"][0]["rollback_data"]["sha256"].is_string());
}

/// The demo's temp folder, as it announces it.
fn demo_folder(text: &str) -> std::path::PathBuf {
    let line = text
        .lines()
        .find(|l| l.contains("demo folder "))
        .unwrap_or_else(|| panic!("no demo folder line: {text}"));
    let path = line.split("demo folder ").nth(1).unwrap();
    std::path::PathBuf::from(path.split(' ').next().unwrap())
}

fn assert_demo_story(out: &Output) -> String {
    let text = stdout(out);
    assert!(
        out.status.success(),
        "demo failed:\n{text}\n{}",
        stderr(out)
    );
    for expected in [
        "Act 1 — BLOCK",
        "no_push_to_main          Direct push to 'main' is blocked",
        "GitHub received 0 write requests",
        "Act 2 — PASS",
        "gh.create_pr",
        "Act 3 — APPROVAL",
        "APPROVAL_REQUIRED `merge_pr` waits for a human",
        "enact approvals approve ",
        "approved by lead@example.com via cli",
        "Act 4 — ROLLBACK",
        "ROLLBACK PASS",
        "Act 6 — CRM",
        "no_duplicate_contacts    Contact grace@example.com already exists (id=501)",
        "HubSpot unchanged: grace@example.com already exists, nothing was written",
        "crm.create_task",
        "task 503 archived, then contact 502",
        "Act 5 — ROLLBACK on Slack",
        "chat.post_message",
        "is gone from #deploys",
        "signatures and chain verify",
    ] {
        assert!(
            text.contains(expected),
            "demo output lacks `{expected}`:\n{text}"
        );
    }
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(
        !demo_folder(&text).exists(),
        "the demo folder is removed without --keep"
    );
    text
}

#[test]
fn the_demo_runs_its_acts_on_files_without_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let out = enact(&["demo", "--no-postgres"], dir.path());
    let text = assert_demo_story(&out);
    assert!(
        text.contains("all 3 notes are back, byte for byte"),
        "{text}"
    );
}

#[test]
fn the_demo_restores_every_row_of_a_real_postgres_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = enact(&["demo"], dir.path());
    let text = assert_demo_story(&out);
    assert!(
        text.contains("has 25 rows again: a full dump"),
        "act 4 must run on PostgreSQL here:\n{text}"
    );
}

#[test]
fn demo_keep_leaves_the_folder_with_its_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let out = enact(&["demo", "--no-postgres", "--keep"], dir.path());
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let folder = demo_folder(&text);
    assert!(folder.join("enact.toml").exists());
    assert!(folder.join("server.log").exists());
    let receipts = crate::journal::receipts(&folder.join("receipts")).len();
    assert_eq!(
        receipts, 12,
        "BLOCK, PASS, the merge's PENDING, APPROVE and resumed PASS, the wipe and its rollback, the Slack post and its rollback, the CRM's BLOCK, PASS and rollback"
    );
    std::fs::remove_dir_all(folder).unwrap();
}

#[test]
fn check_refuses_a_dsn_that_serve_would_refuse_without_printing_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("enact.toml"),
        r#"
[actor]
email = "agent@company.com"

[systems.db]
type = "postgres"
dsn_env = "CHECK_DSN"
"#,
    )
    .unwrap();
    let out = Command::new(enact_bin())
        .args(["check", "--config", "enact.toml"])
        .current_dir(dir.path())
        .env("ENACT_SECRET", crate::engine::SECRET)
        .env(
            "CHECK_DSN",
            "host=127.0.0.1 user=u password=hunter2-secret sslmode=verify-full",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("enact.toml: 1 error\n  - system `db`: invalid DSN: "),
        "{err}"
    );
    assert!(err.contains("sslmode"), "{err}");
    assert!(!err.contains("hunter2-secret") && !stdout(&out).contains("hunter2-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_uses_database_url_and_drops_its_table_afterwards() {
    let dsn = crate::postgres::test_dsn();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(enact_bin())
        .arg("demo")
        .current_dir(dir.path())
        .env("DATABASE_URL", &dsn)
        .env("NO_COLOR", "1")
        .env_remove("ENACT_CONFIG")
        .output()
        .unwrap();
    let text = assert_demo_story(&out);
    assert!(
        text.contains("$DATABASE_URL with `enact_demo_customers_"),
        "{text}"
    );
    assert!(text.contains("has 25 rows again"), "{text}");
    assert!(!text.contains(&crate::postgres::test_password()));
    let table = text
        .split('`')
        .find(|w| w.starts_with("enact_demo_customers_"))
        .unwrap()
        .to_string();
    let c = crate::postgres::client().await;
    let exists: bool = c
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0);
    assert!(
        !exists,
        "the demo leaves no table behind in someone else's database"
    );
}
