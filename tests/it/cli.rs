//! The operator's CLI through the real binary (SPEC §1): `receipts list|show|verify`,
//! `rollback [--dry-run]`, exit codes, and reading receipts without the systems' credentials.

use std::path::Path;
use std::process::{Command, Output};

use enact::mcp::summary::Summarise;
use serde_json::{Value, json};

use crate::engine::{FILES_CONFIG, SECRET, args, setup_with};
use crate::mcp::enact_bin;

fn enact(dir: &Path, cli_args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(enact_bin());
    cmd.args(cli_args)
        .current_dir(dir)
        .env_remove("ENACT_CONFIG")
        .env_remove("ENACT_ACTOR_EMAIL")
        .env_remove("GITHUB_TOKEN")
        .env("ENACT_SECRET", SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A files folder with three runs: PASS (writes notes/a.md over "before"), BLOCK, PASS.
async fn three_runs() -> (crate::engine::Setup, [String; 3]) {
    let s = setup_with(FILES_CONFIG);
    std::fs::write(s.workspace().join("notes/a.md"), "before").unwrap();
    let a = s
        .engine
        .call(
            "save",
            args(json!({"path": "notes/a.md", "content": "after"})),
            &[],
        )
        .await
        .unwrap();
    let b = s
        .engine
        .call("save", args(json!({"path": "x.pem", "content": "k"})), &[])
        .await
        .unwrap();
    let c = s
        .engine
        .call(
            "save",
            args(json!({"path": "docs/c.md", "content": "c"})),
            &[],
        )
        .await
        .unwrap();
    (s, [a.run_id, b.run_id, c.run_id])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_list_prints_a_table_or_json_newest_first_with_filters() {
    let (s, [a, b, c]) = three_runs().await;
    let o = enact(s.dir.path(), &["receipts", "list"], &[]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("RUN ID"), "{text}");
    assert!(lines[1].starts_with(&c) && lines[2].starts_with(&b) && lines[3].starts_with(&a));
    assert!(lines[2].contains("BLOCK") && lines[2].contains("agent@company.com"));

    let o = enact(
        s.dir.path(),
        &["receipts", "list", "--json", "--limit", "2"],
        &[],
    );
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    let ids: Vec<&str> = v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [c.as_str(), b.as_str()]);
    let keys: Vec<&String> = v["receipts"][0].as_object().unwrap().keys().collect();
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

    let o = enact(
        s.dir.path(),
        &["receipts", "list", "--json", "--decision", "BLOCK"],
        &[],
    );
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["receipts"].as_array().unwrap().len(), 1);
    let o = enact(
        s.dir.path(),
        &["receipts", "list", "--json", "--workflow", "nope"],
        &[],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&out(&o)).unwrap(),
        json!({"receipts": []})
    );

    let o = enact(
        s.dir.path(),
        &["receipts", "list", "--decision", "maybe"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        err(&o),
        "error: invalid --decision `maybe`: expected one of PASS, BLOCK, PARTIAL, PENDING, APPROVE, DENY, GRANT, REVOKE\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_show_prints_the_whole_receipt_and_its_signature_state() {
    let (s, [a, _, _]) = three_runs().await;
    let o = enact(s.dir.path(), &["receipts", "show", &a], &[]);
    assert!(o.status.success(), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["receipt"]["run_id"], a.as_str());
    // The CLI shows rollback data whole (the MCP view redacts it).
    assert!(out(&o).contains("before"), "{}", out(&o));

    let o = enact(s.dir.path(), &["receipts", "show", "../x"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err(&o), "error: Invalid run_id: '../x'\n");
    let missing = "00000000-0000-4000-8000-000000000000";
    let o = enact(s.dir.path(), &["receipts", "show", missing], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err(&o),
        format!("error: No receipt found for run_id: {missing}\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_verify_passes_then_names_each_tampered_receipt() {
    let (s, [a, b, _]) = three_runs().await;
    let o = enact(s.dir.path(), &["receipts", "verify"], &[]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).starts_with("ok: 3 receipt(s) in "), "{}", out(&o));
    let o = enact(s.dir.path(), &["receipts", "verify", &a], &[]);
    assert_eq!(out(&o), format!("ok: receipt {a} has a valid signature\n"));

    crate::journal::edit_receipt(&s.receipts(), &b, |line| line.replace("x.pem", "y.pem"));
    let o = enact(s.dir.path(), &["receipts", "verify"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let report = out(&o);
    assert!(
        report.contains(&format!("{b}: bad_signature: ")),
        "{report}"
    );
    assert!(report.contains("problem(s) found in"), "{report}");
    let o = enact(s.dir.path(), &["receipts", "verify", &b], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        out(&o),
        format!("{b}: bad_signature: the signature does not verify\n")
    );

    // Signed with another key: every receipt is reported.
    let o = enact(
        s.dir.path(),
        &["receipts", "verify"],
        &[("ENACT_SECRET", "another-secret-that-is-long-enough-000")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        out(&o).matches(": bad_signature: ").count(),
        3,
        "{}",
        out(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_dry_run_changes_nothing_then_rollback_restores_once() {
    let (s, [a, b, c]) = three_runs().await;
    let o = enact(s.dir.path(), &["rollback", &a, "--dry-run"], &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!(
            "rollback of {a} would run, in order:\n  undo: write_file on files, file notes/a.md (action #1 of the run)\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(s.workspace().join("notes/a.md")).unwrap(),
        "after"
    );
    assert_eq!(s.engine.store().list(&Default::default()).unwrap().len(), 3);

    let o = enact(s.dir.path(), &["rollback", &a], &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).starts_with(&format!("ROLLBACK PASS: run {a} undone")),
        "{}",
        out(&o)
    );
    assert_eq!(
        std::fs::read_to_string(s.workspace().join("notes/a.md")).unwrap(),
        "before"
    );

    let o = enact(s.dir.path(), &["rollback", &a], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).starts_with(&format!("error: Run {a} was already rolled back by ")));
    let o = enact(s.dir.path(), &["rollback", &b], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err(&o),
        "error: Cannot rollback a blocked run — no actions were taken\n"
    );

    // A drifted file: PARTIAL, exit 1, nothing overwritten.
    std::fs::write(s.workspace().join("docs/c.md"), "edited by a human").unwrap();
    let o = enact(s.dir.path(), &["rollback", &c], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).starts_with("ROLLBACK PARTIAL"), "{}", out(&o));
    assert_eq!(
        std::fs::read_to_string(s.workspace().join("docs/c.md")).unwrap(),
        "edited by a human"
    );
}

/// SPEC §1 `--dry-run` prints the inverse steps, each naming what it touches; SPEC §6: a
/// read-only step is a succeeded step whose output is `skipped: read-only action`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_dry_run_names_each_target_and_read_only_steps_are_skipped() {
    let s = setup_with(FILES_CONFIG);
    std::fs::write(s.workspace().join("notes/c.txt"), "old c").unwrap();
    let r = s
        .engine
        .call("pair", args(json!({"a": "new a", "b": "new b"})), &[])
        .await
        .unwrap();
    assert!(r.success, "{}", r.summary());
    let id = r.run_id;

    let o = enact(s.dir.path(), &["rollback", &id, "--dry-run"], &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!(
            "rollback of {id} would run, in order:\n\
             \x20 undo: delete_file on files, file notes/c.txt (action #4 of the run)\n\
             \x20 undo: write_file on files, file notes/b.txt (action #3 of the run)\n\
             \x20 skip (read-only action): read_file on files, file notes/a.txt (action #2 of the run)\n\
             \x20 undo: write_file on files, file notes/a.txt (action #1 of the run)\n"
        )
    );

    let o = enact(s.dir.path(), &["rollback", &id], &[]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let (summary, json_text) = text.split_once('\n').unwrap();
    assert!(
        summary.starts_with(&format!("ROLLBACK PASS: run {id} undone, 4 step(s)")),
        "{summary}"
    );
    let result: Value = serde_json::from_str(json_text).unwrap();
    let skipped = &result["actions"][2];
    assert_eq!(
        skipped,
        &json!({"action": "read_file", "system": "files", "success": true,
                "output": "skipped: read-only action"})
    );
    // The signed rollback receipt records the same step.
    let rb = result["run_id"].as_str().unwrap();
    let o = enact(s.dir.path(), &["receipts", "show", rb], &[]);
    assert!(o.status.success(), "{}", err(&o));
    let shown: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(shown["signature_valid"], true);
    assert_eq!(
        shown["receipt"]["actions_taken"][2]["output"],
        "skipped: read-only action"
    );
    assert_eq!(shown["receipt"]["plan"][2]["target"], "file notes/a.txt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_is_refused_when_disabled() {
    let config = FILES_CONFIG.replace("enabled = true", "enabled = false");
    let s = setup_with(&config);
    let r = s
        .engine
        .call(
            "save",
            args(json!({"path": "notes/z.md", "content": "z"})),
            &[],
        )
        .await
        .unwrap();
    let o = enact(s.dir.path(), &["rollback", &r.run_id], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err(&o),
        "error: Rollback is disabled: set `[rollback] enabled = true` in the config\n"
    );
    assert!(s.workspace().join("notes/z.md").exists());
}

#[test]
fn receipts_need_no_system_credentials_but_rollback_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("enact.toml"),
        r#"
[actor]
email = "agent@company.com"

[rollback]
enabled = true

[systems.gh]
type = "github"
repos = ["acme/*"]
"#,
    )
    .unwrap();
    let o = enact(dir.path(), &["receipts", "list", "--json"], &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        serde_json::from_str::<Value>(&out(&o)).unwrap(),
        json!({"receipts": []})
    );
    let o = enact(dir.path(), &["receipts", "verify"], &[]);
    assert!(o.status.success(), "{}", err(&o));

    for cmd in [
        &["rollback", "00000000-0000-4000-8000-000000000000"][..],
        &["check"][..],
        &["serve"][..],
    ] {
        let o = enact(dir.path(), cmd, &[]);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}");
        assert!(
            err(&o).contains(
                "systems.gh.token_env: environment variable `GITHUB_TOKEN` is unset or empty"
            ),
            "{cmd:?}: {}",
            err(&o)
        );
    }
}

/// SPEC §2: policy parameters are type-checked at load, and `enact check` reports every error;
/// each parameter error names the entry and its policy.
#[test]
fn check_names_the_policy_in_every_parameter_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workspace")).unwrap();
    std::fs::write(
        dir.path().join("enact.toml"),
        r#"
[actor]
email = "agent@company.com"

[systems.files]
type = "filesystem"
root = "workspace"

[[policies]]
policy = "max_files_per_commit"
max = "ten"

[[policies]]
policy = "no_delete_file"
max = 3

[[policies]]
policy = "within_maintenance_window"
start = "25:00"

[[policies]]
policy = "restrict_paths"
paths = ["/etc"]

[[policies]]
policy = "rate_limit"
max = 5
per = "path"

[[workflows]]
name = "list"
[[workflows.steps]]
system = "files"
action = "list_dir"
"#,
    )
    .unwrap();
    let o = enact(dir.path(), &["check"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert_eq!(
        err(&o),
        "enact.toml: 6 errors\n\
         \x20 - policies[0] (max_files_per_commit): parameter max must be a non-negative integer, got \"ten\"\n\
         \x20 - policies[1] (no_delete_file): unknown parameter max (it takes no parameters)\n\
         \x20 - policies[2] (within_maintenance_window): parameter start must be a time \"HH:MM\" from 00:00 to 23:59, got \"25:00\"\n\
         \x20 - policies[2] (within_maintenance_window): missing parameter end\n\
         \x20 - policies[3] (restrict_paths): parameter paths: entry \"/etc\" must be relative to the system root\n\
         \x20 - policies[4] (rate_limit): parameter per must name an input of workflow `list`, got \"path\" \
         (hint: scope the policy with `workflows = [...]` to workflows that have this input)\n"
    );
}

#[test]
fn usage_errors_exit_2_and_version_and_help_work() {
    let dir = tempfile::tempdir().unwrap();
    let o = enact(dir.path(), &["receipts", "frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = enact(dir.path(), &["--version"], &[]);
    assert_eq!(out(&o), format!("enact {}\n", env!("CARGO_PKG_VERSION")));
    for cmd in ["serve", "check", "init", "receipts", "rollback", "demo"] {
        let o = enact(dir.path(), &[cmd, "--help"], &[]);
        assert!(o.status.success(), "{cmd} --help");
        assert!(out(&o).contains("Usage: enact"), "{cmd}: {}", out(&o));
    }
    // No config where one is looked for: a clear error naming the path, exit 2.
    let o = enact(dir.path(), &["receipts", "list"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("cannot read `enact.toml`"), "{}", err(&o));
}
