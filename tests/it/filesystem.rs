//! Integration tests: the filesystem connector, called directly (actions, idempotency, undo,
//! and attempts to reach outside the root).

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use enact::config::Config;
use enact::connector::filesystem::{FsConnector, MAX_FILE_BYTES};
use enact::connector::{ActionOutcome, UndoMode};
use enact::kernel::context::Actor;
use enact::kernel::receipt::ActionRecord;
use enact::secret::Secret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const OUTSIDE_CONTENT: &str = "outside secret";

/// A temp folder with `workspace/` (the root) and `outside/secret.txt` beside it.
struct Fixture {
    _tmp: TempDir,
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
    fs: FsConnector,
}

fn config(receipts_dir: PathBuf, secret_file: PathBuf, path: PathBuf) -> Config {
    Config {
        path,
        actor: Actor {
            email: "agent@company.com".into(),
            role: "engineer".into(),
        },
        secret: Secret::new("0123456789abcdef0123456789abcdef"),
        mac_key: enact::kernel::receipt::MacKey::new(b"0123456789abcdef0123456789abcdef").unwrap(),
        secret_file: Some(secret_file),
        receipts_dir,
        fsync: true,
        receipts_backend: enact::config::ReceiptsBackend::Files,
        receipts_db: enact::config::ReceiptsDb {
            dsn_env: "ENACT_RECEIPTS_DSN".into(),
            dsn: Secret::default(),
            schema: "enact".into(),
        },
        http: enact::config::HttpConfig::default(),
        rollback_enabled: true,
        approvals: enact::config::ApprovalsConfig::default(),
        systems: vec![],
        policies: vec![],
        workflows: vec![],
    }
}

fn fixture() -> Fixture {
    let tmp = TempDir::new().unwrap();
    let base = tmp.path().to_path_buf();
    let root = base.join("workspace");
    let outside = base.join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), OUTSIDE_CONTENT).unwrap();
    let cfg = config(
        base.join("receipts"),
        base.join(".enact/secret"),
        base.join("enact.toml"),
    );
    let fs = FsConnector::new(&root, &cfg).unwrap();
    Fixture {
        _tmp: tmp,
        base,
        root,
        outside,
        fs,
    }
}

async fn run(fs: &FsConnector, action: &str, args: Value) -> ActionOutcome {
    let Value::Object(args) = args else {
        panic!("args must be an object")
    };
    fs.execute(action, &args, &mut crate::steplog::Probe::ok())
        .await
}

fn record(fs: &FsConnector, action: &str, args: Value, outcome: &ActionOutcome) -> ActionRecord {
    ActionRecord {
        action: action.into(),
        system: "files".into(),
        success: outcome.success,
        output: outcome.output.clone(),
        rollback_data: outcome.rollback_data.clone(),
        target: fs.target(),
        args: args.as_object().cloned().unwrap_or_default(),
    }
}

fn failure(outcome: &ActionOutcome) -> String {
    assert!(!outcome.success, "expected a failure, got {outcome:?}");
    assert_eq!(outcome.rollback_data, json!({}));
    outcome.error().unwrap().to_string()
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn outside_msg(p: &str) -> String {
    format!("Path '{p}' resolves outside the root — operation blocked")
}

/// Every entry under `dir` (not following symlinks): content or link target, and mode.
fn snapshot(dir: &Path) -> BTreeMap<String, (String, u32)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (String, u32)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let m = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    (
                        format!("-> {}", std::fs::read_link(&path).unwrap().display()),
                        0,
                    ),
                );
            } else if meta.is_dir() {
                out.insert(rel.clone() + "/", (String::new(), m));
                walk(base, &path, out);
            } else if meta.is_file() {
                out.insert(rel, (hex::encode(std::fs::read(&path).unwrap()), m));
            } else {
                out.insert(rel, ("special".into(), m));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[tokio::test]
async fn target_names_the_absolute_root() {
    let f = fixture();
    assert_eq!(
        f.fs.target(),
        json!({"type": "filesystem", "root": f.root.display().to_string()})
    );
}

#[tokio::test]
async fn write_creates_parents_then_read_overwrite_and_repeat() {
    let f = fixture();
    let out = run(
        &f.fs,
        "write_file",
        json!({"path": "notes/day/a.txt", "content": "hello"}),
    )
    .await;
    assert_eq!(
        out,
        ActionOutcome::ok(
            json!({"path": "notes/day/a.txt", "bytes": 5, "already_done": false}),
            json!({"path": "notes/day/a.txt", "existed": false, "previous_content": null, "previous_mode": null,
                   "written_sha256": sha("hello"), "created_dirs": ["notes", "notes/day"]}),
        )
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("notes/day/a.txt")).unwrap(),
        "hello"
    );

    let out = run(&f.fs, "read_file", json!({"path": "notes/day/a.txt"})).await;
    assert_eq!(
        out,
        ActionOutcome::ok(
            json!({"path": "notes/day/a.txt", "content": "hello"}),
            json!({})
        )
    );

    std::fs::set_permissions(
        f.root.join("notes/day/a.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let out = run(
        &f.fs,
        "write_file",
        json!({"path": "notes/day/a.txt", "content": "bye ✓"}),
    )
    .await;
    assert_eq!(
        out,
        ActionOutcome::ok(
            json!({"path": "notes/day/a.txt", "bytes": 7, "already_done": false}),
            json!({"path": "notes/day/a.txt", "existed": true, "previous_content": "hello", "previous_mode": 0o640,
                   "written_sha256": sha("bye ✓"), "created_dirs": []}),
        )
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("notes/day/a.txt")).unwrap(),
        "bye ✓"
    );
    assert_eq!(
        mode(&f.root.join("notes/day/a.txt")),
        0o640,
        "a replaced file keeps its permissions"
    );

    let again = run(
        &f.fs,
        "write_file",
        json!({"path": "notes/day/a.txt", "content": "bye ✓"}),
    )
    .await;
    assert_eq!(
        again,
        ActionOutcome::ok(
            json!({"path": "notes/day/a.txt", "bytes": 7, "already_done": "written"}),
            json!({})
        )
    );

    // No temporary files are left behind.
    assert_eq!(
        snapshot(&f.root).keys().cloned().collect::<Vec<_>>(),
        ["notes/", "notes/day/", "notes/day/a.txt"]
    );
}

#[tokio::test]
async fn list_dir_sorts_and_marks_folders() {
    let f = fixture();
    for p in ["b.txt", "A.txt", "a.txt", "sub/x.txt", "a/y.txt", ".hidden"] {
        std::fs::create_dir_all(f.root.join(p).parent().unwrap()).unwrap();
        std::fs::write(f.root.join(p), "x").unwrap();
    }
    std::fs::create_dir(f.root.join("empty")).unwrap();
    let out = run(&f.fs, "list_dir", json!({})).await;
    assert_eq!(
        out,
        ActionOutcome::ok(
            json!({"path": ".", "entries": [".hidden", "A.txt", "a/", "a.txt", "b.txt", "empty/", "sub/"]}),
            json!({})
        )
    );
    let out = run(&f.fs, "list_dir", json!({"path": "sub"})).await;
    assert_eq!(out.output, json!({"path": "sub", "entries": ["x.txt"]}));
    let out = run(&f.fs, "list_dir", json!({"path": "empty/"})).await;
    assert_eq!(out.output, json!({"path": "empty/", "entries": []}));
    assert_eq!(
        failure(&run(&f.fs, "list_dir", json!({"path": "a.txt"})).await),
        "'a.txt' is not a folder"
    );
    assert_eq!(
        failure(&run(&f.fs, "list_dir", json!({"path": "nope"})).await),
        "'nope' does not exist"
    );
    assert_eq!(
        failure(&run(&f.fs, "list_dir", json!({"path": "nope/deeper"})).await),
        "'nope/deeper' does not exist"
    );
}

#[tokio::test]
async fn delete_captures_content_and_repeats_are_already_done() {
    let f = fixture();
    std::fs::create_dir(f.root.join("d")).unwrap();
    std::fs::write(f.root.join("d/gone.txt"), "bye").unwrap();
    std::fs::set_permissions(
        f.root.join("d/gone.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = run(&f.fs, "delete_file", json!({"path": "d/gone.txt"})).await;
    assert_eq!(
        out,
        ActionOutcome::ok(
            json!({"path": "d/gone.txt", "bytes": 3, "already_done": false}),
            json!({"path": "d/gone.txt", "content": "bye", "mode": 0o600}),
        )
    );
    assert!(!f.root.join("d/gone.txt").exists());
    let again = run(&f.fs, "delete_file", json!({"path": "d/gone.txt"})).await;
    assert_eq!(
        again,
        ActionOutcome::ok(
            json!({"path": "d/gone.txt", "already_done": "deleted"}),
            json!({})
        )
    );
    let no_parent = run(&f.fs, "delete_file", json!({"path": "nowhere/x.txt"})).await;
    assert_eq!(
        no_parent,
        ActionOutcome::ok(
            json!({"path": "nowhere/x.txt", "already_done": "deleted"}),
            json!({})
        )
    );
    assert!(!f.root.join("nowhere").exists());
    assert_eq!(
        failure(&run(&f.fs, "delete_file", json!({"path": "d"})).await),
        "'d' is a folder — delete_file only deletes files"
    );
    assert!(f.root.join("d").is_dir());
}

#[tokio::test]
async fn plain_errors() {
    let f = fixture();
    std::fs::create_dir(f.root.join("dir")).unwrap();
    assert_eq!(
        failure(&run(&f.fs, "read_file", json!({"path": "nope.txt"})).await),
        "'nope.txt' does not exist"
    );
    assert_eq!(
        failure(&run(&f.fs, "read_file", json!({"path": "x/nope.txt"})).await),
        "'x/nope.txt' does not exist"
    );
    assert_eq!(
        failure(&run(&f.fs, "read_file", json!({"path": "dir"})).await),
        "'dir' is a folder, not a file"
    );
    assert_eq!(
        failure(&run(&f.fs, "read_file", json!({"path": "."})).await),
        "'.' is a folder, not a file"
    );
    assert_eq!(
        failure(&run(&f.fs, "write_file", json!({"path": "dir", "content": "x"})).await),
        "'dir' is a folder, not a file"
    );
    assert_eq!(
        failure(&run(&f.fs, "write_file", json!({"path": ".", "content": "x"})).await),
        "'.' is a folder, not a file"
    );
    std::fs::write(f.root.join("file"), "x").unwrap();
    assert_eq!(
        failure(
            &run(
                &f.fs,
                "write_file",
                json!({"path": "file/x.txt", "content": "x"})
            )
            .await
        ),
        "'file/x.txt' cannot be reached: 'file' is not a folder"
    );
    assert_eq!(
        failure(&run(&f.fs, "chmod", json!({"path": "file"})).await),
        "unknown filesystem action `chmod`"
    );
    assert_eq!(
        failure(&run(&f.fs, "read_file", json!({})).await),
        "missing argument `path`"
    );
    assert_eq!(
        failure(&run(&f.fs, "write_file", json!({"path": "a.txt"})).await),
        "missing argument `content`"
    );
    assert_eq!(
        failure(&run(&f.fs, "write_file", json!({"path": 3, "content": "x"})).await),
        "argument `path` must be a string"
    );
    assert!(!f.root.join("a.txt").exists());
}

#[tokio::test]
async fn dot_dot_inside_the_root_is_resolved_lexically() {
    let f = fixture();
    let out = run(
        &f.fs,
        "write_file",
        json!({"path": "sub/../b.txt", "content": "b"}),
    )
    .await;
    assert!(out.success, "{out:?}");
    assert_eq!(std::fs::read_to_string(f.root.join("b.txt")).unwrap(), "b");
    assert!(
        !f.root.join("sub").exists(),
        "the lexically dropped folder is not created"
    );
    let out = run(&f.fs, "read_file", json!({"path": "./x/.././b.txt"})).await;
    assert_eq!(
        out.output,
        json!({"path": "./x/.././b.txt", "content": "b"})
    );
}

#[tokio::test]
async fn non_utf8_content_is_refused() {
    let f = fixture();
    let bin = f.root.join("bin.dat");
    std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    assert_eq!(
        failure(&run(&f.fs, "read_file", json!({"path": "bin.dat"})).await),
        "'bin.dat' is not UTF-8 text — only UTF-8 text files can be read"
    );
    assert_eq!(
        failure(&run(&f.fs, "delete_file", json!({"path": "bin.dat"})).await),
        "'bin.dat' holds content that is not UTF-8 text, which cannot be kept for rollback — not deleted"
    );
    assert_eq!(
        failure(
            &run(
                &f.fs,
                "write_file",
                json!({"path": "bin.dat", "content": "text"})
            )
            .await
        ),
        "'bin.dat' holds content that is not UTF-8 text, which cannot be kept for rollback — not overwritten"
    );
    assert_eq!(std::fs::read(&bin).unwrap(), [0xff, 0xfe, 0x00, 0x41]);
}

#[tokio::test]
async fn oversized_content_is_refused() {
    let f = fixture();
    assert_eq!(MAX_FILE_BYTES, 10 * 1024 * 1024);
    let big = "x".repeat(MAX_FILE_BYTES as usize + 1);
    assert_eq!(
        failure(
            &run(
                &f.fs,
                "write_file",
                json!({"path": "new/big.txt", "content": big})
            )
            .await
        ),
        "the content for 'new/big.txt' is 10485761 bytes, over the 10 MiB (10485760-byte) limit for files read, written or kept for rollback"
    );
    assert!(!f.root.join("new").exists(), "nothing is created");

    std::fs::write(f.root.join("big.txt"), &big).unwrap();
    let msg = "'big.txt' is 10485761 bytes, over the 10 MiB (10485760-byte) limit for files read, written or kept for rollback";
    assert_eq!(
        failure(&run(&f.fs, "read_file", json!({"path": "big.txt"})).await),
        msg
    );
    assert_eq!(
        failure(&run(&f.fs, "delete_file", json!({"path": "big.txt"})).await),
        msg
    );
    assert_eq!(
        failure(
            &run(
                &f.fs,
                "write_file",
                json!({"path": "big.txt", "content": "small"})
            )
            .await
        ),
        msg
    );
    assert_eq!(
        std::fs::metadata(f.root.join("big.txt")).unwrap().len(),
        MAX_FILE_BYTES + 1
    );

    // Exactly at the limit is fine.
    let exact = "y".repeat(MAX_FILE_BYTES as usize);
    assert!(
        run(
            &f.fs,
            "write_file",
            json!({"path": "exact.txt", "content": exact})
        )
        .await
        .success
    );
    assert!(
        run(&f.fs, "read_file", json!({"path": "exact.txt"}))
            .await
            .success
    );
}

#[tokio::test]
async fn undo_in_reverse_restores_the_folder_byte_for_byte() {
    let f = fixture();
    std::fs::create_dir(f.root.join("keep")).unwrap();
    std::fs::write(f.root.join("a.txt"), "A").unwrap();
    std::fs::write(f.root.join("keep/b.txt"), "B").unwrap();
    std::fs::set_permissions(
        f.root.join("keep/b.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(f.root.join("del.txt"), "D ✓\n").unwrap();
    std::fs::set_permissions(
        f.root.join("del.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::write(f.root.join("keep/del2.txt"), "").unwrap();
    let before = snapshot(&f.root);

    let steps = [
        ("write_file", json!({"path": "a.txt", "content": "A2"})),
        (
            "write_file",
            json!({"path": "new/deep/c.txt", "content": "C"}),
        ),
        ("delete_file", json!({"path": "del.txt"})),
        ("read_file", json!({"path": "a.txt"})),
        ("write_file", json!({"path": "keep/b.txt", "content": "B2"})),
        ("list_dir", json!({"path": "keep"})),
        ("write_file", json!({"path": "a.txt", "content": "A2"})),
        ("delete_file", json!({"path": "missing.txt"})),
        ("delete_file", json!({"path": "keep/del2.txt"})),
        (
            "write_file",
            json!({"path": "new/other.txt", "content": "O"}),
        ),
    ];
    let mut records = Vec::new();
    for (action, args) in steps {
        let out = run(&f.fs, action, args.clone()).await;
        assert!(out.success, "{action} {args}: {out:?}");
        records.push(record(&f.fs, action, args, &out));
    }
    assert_ne!(snapshot(&f.root), before);

    let mut undone = Vec::new();
    for rec in records.iter().rev() {
        let out = f.fs.undo(rec, UndoMode::Guarded).await;
        assert!(out.success, "undo {}: {out:?}", rec.action);
        undone.push(out.output);
    }
    assert_eq!(
        undone,
        vec![
            json!({"path": "new/other.txt", "undone": "deleted the file the run created"}),
            json!({"path": "keep/del2.txt", "undone": "wrote the deleted content back", "bytes": 0}),
            json!({"skipped": "nothing to undo"}),
            json!({"skipped": "nothing to undo"}),
            json!("skipped: read-only action"),
            json!({"path": "keep/b.txt", "undone": "restored the previous content"}),
            json!("skipped: read-only action"),
            json!({"path": "del.txt", "undone": "wrote the deleted content back", "bytes": 6}),
            json!({"path": "new/deep/c.txt", "undone": "deleted the file the run created"}),
            json!({"path": "a.txt", "undone": "restored the previous content"}),
        ]
    );
    assert_eq!(snapshot(&f.root), before);
}

#[tokio::test]
async fn undo_removes_created_folders_only_when_empty() {
    let f = fixture();
    let args = json!({"path": "n1/n2/c.txt", "content": "C"});
    let out = run(&f.fs, "write_file", args.clone()).await;
    std::fs::write(f.root.join("n1/other.txt"), "someone else's").unwrap();
    let undo =
        f.fs.undo(&record(&f.fs, "write_file", args, &out), UndoMode::Guarded)
            .await;
    assert!(undo.success, "{undo:?}");
    assert_eq!(
        snapshot(&f.root).keys().cloned().collect::<Vec<_>>(),
        ["n1/", "n1/other.txt"]
    );
}

#[tokio::test]
async fn undo_refuses_when_the_file_changed_after_the_run() {
    let f = fixture();
    std::fs::write(f.root.join("a.txt"), "orig").unwrap();
    let args = json!({"path": "a.txt", "content": "v1"});
    let out = run(&f.fs, "write_file", args.clone()).await;
    std::fs::write(f.root.join("a.txt"), "edited").unwrap();
    let undo =
        f.fs.undo(&record(&f.fs, "write_file", args, &out), UndoMode::Guarded)
            .await;
    assert_eq!(
        failure(&undo),
        format!(
            "'a.txt' was modified after the run (expected sha256 {}, found {}) — not restored",
            sha("v1"),
            sha("edited")
        )
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("a.txt")).unwrap(),
        "edited"
    );

    let args = json!({"path": "n.txt", "content": "new"});
    let out = run(&f.fs, "write_file", args.clone()).await;
    std::fs::remove_file(f.root.join("n.txt")).unwrap();
    let undo =
        f.fs.undo(&record(&f.fs, "write_file", args, &out), UndoMode::Guarded)
            .await;
    assert_eq!(
        failure(&undo),
        "'n.txt' was deleted after the run — not restored"
    );
    assert!(!f.root.join("n.txt").exists());

    let args = json!({"path": "gone/n.txt", "content": "new"});
    let out = run(&f.fs, "write_file", args.clone()).await;
    std::fs::remove_dir_all(f.root.join("gone")).unwrap();
    let undo =
        f.fs.undo(&record(&f.fs, "write_file", args, &out), UndoMode::Guarded)
            .await;
    assert_eq!(
        failure(&undo),
        "'gone/n.txt' was deleted after the run — not restored"
    );
    assert!(!f.root.join("gone").exists());

    let args = json!({"path": "dir.txt", "content": "new"});
    let out = run(&f.fs, "write_file", args.clone()).await;
    std::fs::remove_file(f.root.join("dir.txt")).unwrap();
    std::fs::create_dir(f.root.join("dir.txt")).unwrap();
    let undo =
        f.fs.undo(&record(&f.fs, "write_file", args, &out), UndoMode::Guarded)
            .await;
    assert_eq!(
        failure(&undo),
        "'dir.txt' was replaced by a folder after the run — not restored"
    );

    std::fs::write(f.root.join("d.txt"), "old").unwrap();
    let args = json!({"path": "d.txt"});
    let out = run(&f.fs, "delete_file", args.clone()).await;
    std::fs::write(f.root.join("d.txt"), "recreated").unwrap();
    let undo =
        f.fs.undo(&record(&f.fs, "delete_file", args, &out), UndoMode::Guarded)
            .await;
    assert_eq!(
        failure(&undo),
        "'d.txt' was recreated after the run — not restored"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("d.txt")).unwrap(),
        "recreated"
    );
}

#[tokio::test]
async fn undo_of_delete_recreates_parent_folders() {
    let f = fixture();
    std::fs::create_dir_all(f.root.join("p/q")).unwrap();
    std::fs::write(f.root.join("p/q/f.txt"), "keep me").unwrap();
    let args = json!({"path": "p/q/f.txt"});
    let out = run(&f.fs, "delete_file", args.clone()).await;
    std::fs::remove_dir_all(f.root.join("p")).unwrap();
    let undo =
        f.fs.undo(&record(&f.fs, "delete_file", args, &out), UndoMode::Guarded)
            .await;
    assert!(undo.success, "{undo:?}");
    assert_eq!(
        std::fs::read_to_string(f.root.join("p/q/f.txt")).unwrap(),
        "keep me"
    );
}

#[tokio::test]
async fn undo_of_unknown_or_failed_records() {
    let f = fixture();
    let failed = ActionOutcome::failed("boom");
    let rec = record(&f.fs, "write_file", json!({"path": "a"}), &failed);
    assert_eq!(
        f.fs.undo(&rec, UndoMode::Guarded).await,
        ActionOutcome::ok(json!({"skipped": "nothing to undo"}), json!({}))
    );
    let rec = record(
        &f.fs,
        "chmod",
        json!({}),
        &ActionOutcome::ok(json!({}), json!({})),
    );
    assert_eq!(
        failure(&f.fs.undo(&rec, UndoMode::Guarded).await),
        "cannot undo unknown filesystem action `chmod`"
    );
    let mut rec = record(
        &f.fs,
        "delete_file",
        json!({}),
        &ActionOutcome::ok(json!({"already_done": false}), json!({"path": "x"})),
    );
    assert_eq!(
        failure(&f.fs.undo(&rec, UndoMode::Guarded).await),
        "the recorded rollback data has no `content` — not restored"
    );
    // Undo is confined like execution: a tampered record cannot reach outside.
    rec.rollback_data = json!({"path": "../outside/secret.txt", "content": "overwritten"});
    assert_eq!(
        failure(&f.fs.undo(&rec, UndoMode::Guarded).await),
        outside_msg("../outside/secret.txt")
    );
    let rec = ActionRecord {
        rollback_data: json!({"path": "../outside/secret.txt", "existed": true, "previous_content": "x", "written_sha256": sha(OUTSIDE_CONTENT)}),
        ..record(
            &f.fs,
            "write_file",
            json!({}),
            &ActionOutcome::ok(json!({"already_done": false}), json!({})),
        )
    };
    assert_eq!(
        failure(&f.fs.undo(&rec, UndoMode::Guarded).await),
        outside_msg("../outside/secret.txt")
    );
    assert_eq!(
        std::fs::read_to_string(f.outside.join("secret.txt")).unwrap(),
        OUTSIDE_CONTENT
    );
}

/// Runs all four actions on `path` and asserts each fails with `msg`.
async fn all_refused(fs: &FsConnector, path: &str, msg: &str) {
    for (action, args) in [
        ("read_file", json!({"path": path})),
        ("write_file", json!({"path": path, "content": "pwned"})),
        ("delete_file", json!({"path": path})),
    ] {
        assert_eq!(
            failure(&run(fs, action, args).await),
            msg,
            "{action} {path}"
        );
    }
}

#[tokio::test]
async fn escapes_by_dot_dot_and_absolute_paths_are_blocked() {
    let f = fixture();
    let before_outside = snapshot(&f.base);
    let outside_abs = f.outside.join("secret.txt").display().to_string();
    let sneaky_abs = format!("{}/../outside/secret.txt", f.root.display());
    for p in [
        "../x",
        "a/../../x",
        "../outside/secret.txt",
        "..",
        "/etc/passwd",
        outside_abs.as_str(),
        sneaky_abs.as_str(),
    ] {
        all_refused(&f.fs, p, &outside_msg(p)).await;
        assert_eq!(
            failure(&run(&f.fs, "list_dir", json!({"path": p})).await),
            outside_msg(p)
        );
    }
    let prefix_twin = format!("{}x/a.txt", f.root.display());
    all_refused(&f.fs, &prefix_twin, &outside_msg(&prefix_twin)).await;
    assert_eq!(snapshot(&f.base), before_outside, "nothing was touched");
}

#[tokio::test]
async fn absolute_paths_inside_the_root_are_accepted() {
    let f = fixture();
    let p = f.root.join("abs/a.txt").display().to_string();
    let out = run(&f.fs, "write_file", json!({"path": p, "content": "abs"})).await;
    assert!(out.success, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(f.root.join("abs/a.txt")).unwrap(),
        "abs"
    );
    let out = run(&f.fs, "read_file", json!({"path": p})).await;
    assert_eq!(out.output, json!({"path": p, "content": "abs"}));
    let root = f.root.display().to_string();
    let out = run(&f.fs, "list_dir", json!({"path": root})).await;
    assert_eq!(out.output, json!({"path": root, "entries": ["abs/"]}));
}

#[tokio::test]
async fn symlinks_in_any_component_are_blocked() {
    let f = fixture();
    std::fs::create_dir(f.root.join("real")).unwrap();
    std::fs::write(f.root.join("real/in.txt"), "inside").unwrap();
    std::fs::write(f.root.join("plain.txt"), "plain").unwrap();
    symlink(f.outside.join("secret.txt"), f.root.join("out_file")).unwrap();
    symlink(f.root.join("plain.txt"), f.root.join("in_file")).unwrap();
    symlink("plain.txt", f.root.join("rel_file")).unwrap();
    symlink(&f.outside, f.root.join("out_dir")).unwrap();
    symlink(f.root.join("real"), f.root.join("in_dir")).unwrap();
    symlink("/nonexistent/target", f.root.join("dangling")).unwrap();
    std::fs::create_dir(f.root.join("deep")).unwrap();
    symlink(&f.outside, f.root.join("deep/out_dir")).unwrap();
    let before = snapshot(&f.base);

    for p in [
        "out_file",
        "in_file",
        "rel_file",
        "dangling",
        "out_dir/secret.txt",
        "out_dir/new.txt",
        "in_dir/in.txt",
        "in_dir/new.txt",
        "deep/out_dir/secret.txt",
        "deep/out_dir/sub/new.txt",
        "out_dir/../plain.txt/../out_file",
    ] {
        all_refused(&f.fs, p, &outside_msg(p)).await;
    }
    for p in ["out_dir", "in_dir", "deep/out_dir", "out_dir/.", "in_file"] {
        assert_eq!(
            failure(&run(&f.fs, "list_dir", json!({"path": p})).await),
            outside_msg(p),
            "list_dir {p}"
        );
    }
    assert_eq!(
        snapshot(&f.base),
        before,
        "nothing was touched, inside or outside"
    );

    // A symlink dropped lexically by `..` is never looked at.
    let out = run(&f.fs, "read_file", json!({"path": "out_dir/../plain.txt"})).await;
    assert_eq!(
        out.output,
        json!({"path": "out_dir/../plain.txt", "content": "plain"})
    );
    // Listing shows symlinks as plain names, not folders.
    let out = run(&f.fs, "list_dir", json!({"path": "."})).await;
    assert_eq!(
        out.output["entries"],
        json!([
            "dangling",
            "deep/",
            "in_dir",
            "in_file",
            "out_dir",
            "out_file",
            "plain.txt",
            "real/",
            "rel_file"
        ])
    );
}

#[tokio::test]
async fn hard_links_are_refused() {
    let f = fixture();
    std::fs::hard_link(f.outside.join("secret.txt"), f.root.join("hl.txt")).unwrap();
    let before = snapshot(&f.base);
    all_refused(
        &f.fs,
        "hl.txt",
        "'hl.txt' has 2 hard links — refused, since another link could lie outside the root",
    )
    .await;
    assert_eq!(snapshot(&f.base), before);
}

#[tokio::test]
async fn fifos_and_sockets_are_refused_without_blocking() {
    let f = fixture();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        f.root.join("pipe"),
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(f.root.join("sock")).unwrap();
    all_refused(
        &f.fs,
        "pipe",
        "'pipe' is a fifo, not a regular file — operation refused",
    )
    .await;
    all_refused(
        &f.fs,
        "sock",
        "'sock' is a socket, not a regular file — operation refused",
    )
    .await;
    assert_eq!(
        failure(&run(&f.fs, "list_dir", json!({"path": "pipe"})).await),
        "'pipe' is not a folder"
    );
    assert!(f.root.join("pipe").exists());
}

#[tokio::test]
async fn enacts_own_files_are_unreachable_even_inside_the_root() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("workspace");
    std::fs::create_dir_all(root.join("receipts")).unwrap();
    std::fs::create_dir_all(root.join(".enact")).unwrap();
    std::fs::write(root.join("receipts/r.json"), "{}").unwrap();
    std::fs::write(
        root.join(".enact/secret"),
        "0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    std::fs::write(root.join("enact.toml"), "[actor]\n").unwrap();
    let cfg = config(
        root.join("receipts"),
        root.join(".enact/secret"),
        root.join("enact.toml"),
    );
    let fs = FsConnector::new(&root, &cfg).unwrap();
    let before = snapshot(&root);

    all_refused(
        &fs,
        "enact.toml",
        "Path 'enact.toml' reaches Enact's config file — operation blocked",
    )
    .await;
    all_refused(
        &fs,
        ".enact/secret",
        "Path '.enact/secret' reaches Enact's signing secret file — operation blocked",
    )
    .await;
    all_refused(
        &fs,
        "receipts/r.json",
        "Path 'receipts/r.json' reaches Enact's receipts folder — operation blocked",
    )
    .await;
    all_refused(
        &fs,
        "receipts/new.json",
        "Path 'receipts/new.json' reaches Enact's receipts folder — operation blocked",
    )
    .await;
    all_refused(
        &fs,
        "receipts",
        "Path 'receipts' reaches Enact's receipts folder — operation blocked",
    )
    .await;
    assert_eq!(
        failure(&run(&fs, "list_dir", json!({"path": "receipts"})).await),
        "Path 'receipts' reaches Enact's receipts folder — operation blocked"
    );
    let abs = root.join("enact.toml").display().to_string();
    all_refused(
        &fs,
        &abs,
        &format!("Path '{abs}' reaches Enact's config file — operation blocked"),
    )
    .await;
    assert_eq!(snapshot(&root), before);

    // The root itself being the receipts folder blocks everything.
    let cfg = config(
        root.clone(),
        tmp.path().join("s"),
        tmp.path().join("c.toml"),
    );
    let fs = FsConnector::new(&root, &cfg).unwrap();
    assert_eq!(
        failure(&run(&fs, "list_dir", json!({})).await),
        "Path '.' reaches Enact's receipts folder — operation blocked"
    );
}

#[tokio::test]
async fn relative_roots_are_refused() {
    let tmp = TempDir::new().unwrap();
    let cfg = config(
        tmp.path().join("r"),
        tmp.path().join("s"),
        tmp.path().join("c.toml"),
    );
    let err = FsConnector::new(Path::new("workspace"), &cfg)
        .err()
        .unwrap();
    assert_eq!(err, "filesystem root 'workspace' must be an absolute path");
}

/// A writer and a reader race a thread that keeps swapping a folder inside the root for a
/// symlink to a folder outside it. Whatever the interleaving, nothing outside may be created,
/// changed or read.
#[test]
fn a_symlink_swapped_in_mid_flight_never_leaks() {
    let f = fixture();
    let before = snapshot(&f.outside);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (root, outside, stop) = (f.root.clone(), f.outside.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (swap, parked) = (root.join("swap"), root.join("parked"));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let _ = std::fs::remove_dir_all(&parked);
                let _ = std::fs::rename(&swap, &parked);
                let _ = symlink(&outside, &swap);
                std::thread::yield_now();
                if std::fs::symlink_metadata(&swap).is_ok_and(|m| m.file_type().is_symlink()) {
                    let _ = std::fs::remove_file(&swap);
                }
                let _ = std::fs::rename(&parked, &swap);
                let _ = std::fs::create_dir(&swap);
            }
            n
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut results = BTreeMap::<String, u32>::new();
    for i in 0..2000 {
        // Bounds the test on a loaded machine; not an assertion.
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
        let content = format!("agent {i}");
        for (action, args) in [
            (
                "write_file",
                json!({"path": "swap/agent.txt", "content": content}),
            ),
            (
                "write_file",
                json!({"path": "swap/new/deeper.txt", "content": content}),
            ),
            ("read_file", json!({"path": "swap/secret.txt"})),
            ("delete_file", json!({"path": "swap/secret.txt"})),
            ("list_dir", json!({"path": "swap"})),
        ] {
            let out = rt.block_on(run(&f.fs, action, args));
            // `secret.txt` exists only outside: seeing it at all means a leak.
            assert!(
                !(action == "read_file" && out.success),
                "read through the symlink: {out:?}"
            );
            if action == "delete_file" {
                assert_ne!(
                    out.output["already_done"],
                    json!(false),
                    "deleted through the symlink: {out:?}"
                );
            }
            if action == "list_dir" && out.success {
                let entries = out.output["entries"].as_array().unwrap();
                assert!(
                    !entries.contains(&json!("secret.txt")),
                    "listed through the symlink: {out:?}"
                );
            }
            let key = format!(
                "{action}: {}",
                if out.success {
                    "ok".to_string()
                } else {
                    out.error().unwrap().to_string()
                }
            );
            *results.entry(key).or_default() += 1;
        }
        assert_eq!(
            snapshot(&f.outside),
            before,
            "outside changed at iteration {i}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0);
    assert_eq!(snapshot(&f.outside), before);
    // Only these outcomes are possible: success inside the root, the escape refusal, or a
    // folder that vanished or was swapped mid-call.
    for key in results.keys() {
        let (_, what) = key.split_once(": ").unwrap();
        assert!(
            what == "ok"
                || what.starts_with("Path 'swap")
                || what.ends_with("does not exist")
                || what.starts_with("cannot ")
                || what.contains("is not a folder")
                || what.contains("changed while it was being opened"),
            "unexpected outcome {key}"
        );
    }
    eprintln!("race outcomes: {results:#?} after {swaps} swaps");
}

// --- Write-ahead step records (SPEC §5.5) and recovery ---

use crate::steplog::Probe;
use enact::connector::Recovered;

async fn run_logged(fs: &FsConnector, action: &str, args: Value, log: &mut Probe) -> ActionOutcome {
    fs.execute(action, args.as_object().unwrap(), log).await
}

async fn recover(
    fs: &FsConnector,
    action: &str,
    args: Value,
    pre: &Value,
) -> (Recovered, ActionOutcome) {
    fs.recover(action, args.as_object().unwrap(), pre).await
}

/// Names beneath `dir` that start with the atomic-write prefix.
fn temp_files(dir: &Path) -> Vec<String> {
    snapshot(dir)
        .into_keys()
        .filter(|k| {
            k.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(".enact-tmp-"))
        })
        .collect()
}

#[tokio::test]
async fn write_file_step_record_comes_before_the_write() {
    let f = fixture();
    std::fs::write(f.root.join("a.txt"), "old").unwrap();
    let file = f.root.join("a.txt");
    let mut log = Probe::checking(move |_| {
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "old");
    });
    let out = run_logged(
        &f.fs,
        "write_file",
        json!({"path": "a.txt", "content": "new"}),
        &mut log,
    )
    .await;
    assert!(out.success, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(f.root.join("a.txt")).unwrap(),
        "new"
    );
    let pre = log.pre();
    assert_eq!(pre, &out.rollback_data);
    assert_eq!(pre["previous_content"], "old");
    assert_eq!(pre["existed"], true);
    assert_eq!(pre["written_sha256"], sha("new"));

    // A new file in new folders: absent when the record is written, folders recorded.
    let file = f.root.join("d/e/b.txt");
    let mut log = Probe::checking(move |_| assert!(!file.exists()));
    let out = run_logged(
        &f.fs,
        "write_file",
        json!({"path": "d/e/b.txt", "content": "x"}),
        &mut log,
    )
    .await;
    assert!(out.success, "{out:?}");
    assert_eq!(log.pre(), &out.rollback_data);
    assert_eq!(log.pre()["existed"], false);
    assert_eq!(log.pre()["created_dirs"], json!(["d", "d/e"]));

    // Already written: one record saying so, nothing to undo.
    let mut log = Probe::ok();
    let out = run_logged(
        &f.fs,
        "write_file",
        json!({"path": "a.txt", "content": "new"}),
        &mut log,
    )
    .await;
    assert_eq!(out.output["already_done"], "written");
    assert_eq!(
        log.pre(),
        &json!({"path": "a.txt", "bytes": 3, "already_done": "written"})
    );
}

#[tokio::test]
async fn delete_and_read_only_step_records() {
    let f = fixture();
    std::fs::write(f.root.join("a.txt"), "keep me").unwrap();
    let file = f.root.join("a.txt");
    let mut log = Probe::checking(move |_| {
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    });
    let out = run_logged(&f.fs, "delete_file", json!({"path": "a.txt"}), &mut log).await;
    assert!(out.success, "{out:?}");
    assert!(!f.root.join("a.txt").exists());
    assert_eq!(log.pre(), &out.rollback_data);
    assert_eq!(log.pre()["content"], "keep me");

    let mut log = Probe::ok();
    let out = run_logged(&f.fs, "delete_file", json!({"path": "a.txt"}), &mut log).await;
    assert_eq!(out.output["already_done"], "deleted");
    assert_eq!(
        log.pre(),
        &json!({"path": "a.txt", "already_done": "deleted"})
    );

    std::fs::write(f.root.join("r.txt"), "r").unwrap();
    for (action, args) in [
        ("read_file", json!({"path": "r.txt"})),
        ("list_dir", json!({})),
        ("read_file", json!({"path": "missing.txt"})),
    ] {
        let mut log = Probe::ok();
        run_logged(&f.fs, action, args, &mut log).await;
        assert_eq!(log.pre(), &json!({}), "{action}");
    }
}

#[tokio::test]
async fn a_failing_step_log_changes_nothing() {
    let f = fixture();
    std::fs::write(f.root.join("a.txt"), "old").unwrap();
    let before = snapshot(&f.root);
    let journal_down = "the receipts journal cannot be written: disk full";
    for (action, args) in [
        ("write_file", json!({"path": "a.txt", "content": "new"})),
        (
            "write_file",
            json!({"path": "n/m/new.txt", "content": "new"}),
        ),
        ("delete_file", json!({"path": "a.txt"})),
        ("read_file", json!({"path": "a.txt"})),
        ("list_dir", json!({})),
    ] {
        let mut log = Probe::failing(journal_down);
        let out = run_logged(&f.fs, action, args, &mut log).await;
        assert_eq!(failure(&out), journal_down, "{action}");
        assert_eq!(log.calls.len(), 1, "{action}");
        assert_eq!(snapshot(&f.root), before, "{action} changed the root");
    }
    // Actions refused before the record is due write none.
    let mut log = Probe::ok();
    let out = run_logged(
        &f.fs,
        "write_file",
        json!({"path": "../x", "content": "x"}),
        &mut log,
    )
    .await;
    assert_eq!(failure(&out), outside_msg("../x"));
    assert!(log.calls.is_empty());
}

#[tokio::test]
async fn recover_write_file_done_not_done_and_unknown() {
    let f = fixture();
    std::fs::write(f.root.join("a.txt"), "old").unwrap();
    let args = json!({"path": "a.txt", "content": "new"});

    // Stopped by the log: the file still holds the previous content.
    let mut log = Probe::failing("journal down");
    run_logged(&f.fs, "write_file", args.clone(), &mut log).await;
    let pre = log.pre().clone();
    let (status, out) = recover(&f.fs, "write_file", args.clone(), &pre).await;
    assert_eq!(status, Recovered::NotDone);
    assert!(out.success);
    assert_eq!(out.rollback_data, json!({}));
    assert!(out.output["not_done"].is_string(), "{out:?}");

    // Completed: Done, with what undo needs; the undo built from it restores the file.
    let mut log = Probe::ok();
    let done = run_logged(&f.fs, "write_file", args.clone(), &mut log).await;
    let (status, out) = recover(&f.fs, "write_file", args.clone(), log.pre()).await;
    assert_eq!(status, Recovered::Done);
    assert_eq!(out, done);
    let undone =
        f.fs.undo(
            &record(&f.fs, "write_file", args.clone(), &out),
            UndoMode::Guarded,
        )
        .await;
    assert!(undone.success, "{undone:?}");
    assert_eq!(
        std::fs::read_to_string(f.root.join("a.txt")).unwrap(),
        "old"
    );

    // Changed by someone else: Unknown, the recorded undo data kept, and undo refuses.
    std::fs::write(f.root.join("a.txt"), "someone else's").unwrap();
    let (status, out) = recover(&f.fs, "write_file", args.clone(), log.pre()).await;
    assert_eq!(status, Recovered::Unknown);
    assert_eq!(&out.rollback_data, log.pre());
    assert!(
        out.output["unknown"].as_str().unwrap().contains("a.txt"),
        "{out:?}"
    );
    let undone =
        f.fs.undo(
            &record(&f.fs, "write_file", args.clone(), &out),
            UndoMode::Guarded,
        )
        .await;
    assert!(
        failure(&undone).contains("was modified after the run"),
        "{undone:?}"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("a.txt")).unwrap(),
        "someone else's"
    );

    // A file that did not exist: absent → NotDone (also when deleted again since: the state
    // before holds); other content → Unknown.
    let args = json!({"path": "new.txt", "content": "n"});
    let mut log = Probe::failing("journal down");
    run_logged(&f.fs, "write_file", args.clone(), &mut log).await;
    let (status, _) = recover(&f.fs, "write_file", args.clone(), log.pre()).await;
    assert_eq!(status, Recovered::NotDone);
    let mut log = Probe::ok();
    run_logged(&f.fs, "write_file", args.clone(), &mut log).await;
    assert_eq!(
        recover(&f.fs, "write_file", args.clone(), log.pre())
            .await
            .0,
        Recovered::Done
    );
    std::fs::write(f.root.join("new.txt"), "other").unwrap();
    let (status, out) = recover(&f.fs, "write_file", args, log.pre()).await;
    assert_eq!(status, Recovered::Unknown);
    assert_eq!(&out.rollback_data, log.pre());
}

#[tokio::test]
async fn recover_delete_file_and_read_only_and_already_done() {
    let f = fixture();
    std::fs::write(f.root.join("a.txt"), "content").unwrap();
    let args = json!({"path": "a.txt"});
    let mut log = Probe::failing("journal down");
    run_logged(&f.fs, "delete_file", args.clone(), &mut log).await;
    let (status, out) = recover(&f.fs, "delete_file", args.clone(), log.pre()).await;
    assert_eq!(status, Recovered::NotDone);
    assert_eq!(out.rollback_data, json!({}));

    let mut log = Probe::ok();
    let done = run_logged(&f.fs, "delete_file", args.clone(), &mut log).await;
    let (status, out) = recover(&f.fs, "delete_file", args.clone(), log.pre()).await;
    assert_eq!(status, Recovered::Done);
    assert_eq!(out, done);

    std::fs::write(f.root.join("a.txt"), "other").unwrap();
    let (status, out) = recover(&f.fs, "delete_file", args.clone(), log.pre()).await;
    assert_eq!(status, Recovered::Unknown);
    assert_eq!(&out.rollback_data, log.pre());

    let (status, out) = recover(&f.fs, "read_file", json!({"path": "a.txt"}), &json!({})).await;
    assert_eq!(status, Recovered::Done);
    assert_eq!(
        out,
        ActionOutcome::ok(json!({"skipped": "read-only action"}), json!({}))
    );

    let mut log = Probe::ok();
    let again = run_logged(
        &f.fs,
        "write_file",
        json!({"path": "a.txt", "content": "other"}),
        &mut log,
    )
    .await;
    let (status, out) = recover(&f.fs, "write_file", json!({}), log.pre()).await;
    assert_eq!(status, Recovered::Done);
    assert_eq!(out, again);
}

#[tokio::test]
async fn temporary_files_are_never_listed_and_recovery_removes_them() {
    let f = fixture();
    std::fs::create_dir_all(f.root.join("sub/deeper")).unwrap();
    std::fs::write(f.root.join(".enact-tmp-0123"), "half").unwrap();
    std::fs::write(f.root.join("sub/deeper/.enact-tmp-4567"), "half").unwrap();
    std::fs::write(f.root.join("sub/kept.txt"), "kept").unwrap();
    std::fs::write(f.outside.join(".enact-tmp-outside"), "not ours").unwrap();
    symlink(&f.outside, f.root.join("sub/link")).unwrap();

    let out = run(&f.fs, "list_dir", json!({})).await;
    assert_eq!(out.output["entries"], json!(["sub/"]));
    let out = run(&f.fs, "list_dir", json!({"path": "sub/deeper"})).await;
    assert_eq!(out.output["entries"], json!([]));

    // Too young to be a crash's leftover: kept.
    let removed =
        f.fs.remove_temp_files(Duration::from_secs(3600))
            .await
            .unwrap();
    assert!(removed.is_empty(), "{removed:?}");
    assert_eq!(temp_files(&f.root).len(), 2);

    let removed = f.fs.remove_temp_files(Duration::ZERO).await.unwrap();
    assert_eq!(removed, [".enact-tmp-0123", "sub/deeper/.enact-tmp-4567"]);
    assert!(temp_files(&f.root).is_empty());
    assert!(f.root.join("sub/kept.txt").exists());
    assert!(
        f.outside.join(".enact-tmp-outside").exists(),
        "followed a symlink"
    );

    // A root that does not exist holds nothing to remove.
    std::fs::remove_dir_all(&f.root).unwrap();
    assert_eq!(
        f.fs.remove_temp_files(Duration::ZERO).await.unwrap(),
        Vec::<String>::new()
    );
    let _ = &f.base;
}
