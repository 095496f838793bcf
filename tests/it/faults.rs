//! Issue 12's table, re-run against the real binary: `enact serve` killed (at exact points of
//! the write order and at random times), stopped by SIGTERM, and given a hostile receipts
//! folder (full, read-only, locked, FIFOs, symlinks, truncated). After each, recovery runs and
//! every changed file or row must be covered by a receipt, `verify` must pass, and every run
//! must roll back (SPEC §5.3–§5.5).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::engine::{FILES_CONFIG, SECRET};
use crate::journal;
use crate::mcp::{Folder, Raw, enact_bin};

/// `enact <args> --config <folder>/enact.toml`.
pub fn enact(folder: &Folder, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(enact_bin());
    cmd.args(args)
        .arg("--config")
        .arg(folder.config())
        .env("ENACT_SECRET", SECRET)
        .env_remove("ENACT_CONFIG")
        .env_remove("ENACT_TEST_CRASH_AT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn save(id: u64, path: &str, content: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "save", "arguments": {"path": path, "content": content}}})
}

/// A small deterministic pseudo-random sequence (the loops must be reproducible).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Writes every request in one write, without waiting for answers (a pipelining client).
async fn send_pipelined(raw: &mut Raw, requests: impl Iterator<Item = Value>) {
    let lines: Vec<String> = requests.map(|r| r.to_string()).collect();
    raw.send(lines.join("\n").as_bytes()).await;
}

/// A folder with `n` PASS runs of `save` (`notes/<prefix><k>.md`), the server stopped.
async fn folder_with_saves(n: u64, prefix: &str) -> Folder {
    folder_with_saves_in(FILES_CONFIG, n, prefix).await
}

/// [`folder_with_saves`] with another config.
async fn folder_with_saves_in(config: &str, n: u64, prefix: &str) -> Folder {
    let f = Folder::new(config);
    let mut raw = Raw::start(&f).await;
    raw.initialize("2025-11-25").await;
    for k in 0..n {
        raw.send_json(save(k + 1, &format!("notes/{prefix}{k}.md"), "x"))
            .await;
        assert!(!call_result(&raw.recv().await).0);
    }
    raw.finish().await;
    f
}

/// Waits for the child to exit (it was killed or aborted), with a timeout.
async fn wait_exit(raw: &mut Raw) -> std::process::ExitStatus {
    tokio::time::timeout(Duration::from_secs(30), raw.child.wait())
        .await
        .expect("the server did not exit within 30 s")
        .unwrap()
}

/// The receipts whose actions changed `path` (successful write/delete of it).
fn covering(receipts: &[Value], path: &str) -> Vec<Value> {
    receipts
        .iter()
        .filter(|r| r["rollback_of"].is_null())
        .filter(|r| {
            r["actions_taken"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["success"] == true && x["args"]["path"] == path)
            })
        })
        .cloned()
        .collect()
}

/// Runs with an intent and no receipt.
fn open_intents(receipts_dir: &Path) -> Vec<String> {
    let records = journal::records(receipts_dir);
    let closed: Vec<&Value> = records
        .iter()
        .filter(|r| r.get("kind").is_none_or(|k| k == "receipt"))
        .map(|r| &r["run_id"])
        .collect();
    records
        .iter()
        .filter(|r| r["kind"] == "intent" && !closed.contains(&&r["run_id"]))
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_verifies(folder: &Folder) {
    let o = enact(folder, &["receipts", "verify"], &[]);
    assert!(o.status.success(), "verify: {}{}", stdout(&o), stderr(&o));
}

/// Each file's content under `workspace/notes`.
fn notes(folder: &Folder) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(folder.workspace().join("notes")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_file() {
            out.insert(
                format!("notes/{name}"),
                std::fs::read_to_string(e.path()).unwrap(),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_point_of_the_write_order_is_recovered_exactly() {
    // (point, what recovery must find, the file afterwards)
    for (point, recovered, content) in [
        ("intent", None, "old"),
        ("step", Some("not_done"), "old"),
        ("action", Some("done"), "new"),
    ] {
        let f = Folder::new(FILES_CONFIG);
        std::fs::write(f.workspace().join("notes/a.md"), "old").unwrap();
        let mut raw = Raw::start_with(&f, &[("ENACT_TEST_CRASH_AT", point)]).await;
        raw.initialize("2025-11-25").await;
        raw.send_json(save(1, "notes/a.md", "new")).await;
        let status = wait_exit(&mut raw).await;
        assert!(!status.success(), "{point}: the server was meant to abort");
        assert_eq!(open_intents(&f.receipts()).len(), 1, "{point}");
        assert!(journal::receipts(&f.receipts()).is_empty(), "{point}");

        let o = enact(&f, &["recover"], &[]);
        assert!(o.status.success(), "{point}: {}{}", stdout(&o), stderr(&o));
        let receipts = journal::receipts(&f.receipts());
        assert_eq!(receipts.len(), 1, "{point}");
        let r = &receipts[0];
        assert!(
            stdout(&o).starts_with(&format!(
                "recovered {} (run of `save`)",
                r["run_id"].as_str().unwrap()
            )),
            "{point}: {}",
            stdout(&o)
        );
        assert_eq!(r["interrupted"], true, "{point}");
        assert_eq!(r["decision"], "PASS", "{point}");
        let actions = r["actions_taken"].as_array().unwrap();
        match recovered {
            None => assert!(actions.is_empty(), "{point}: {r}"),
            Some(status) => {
                assert_eq!(actions.len(), 1, "{point}");
                assert_eq!(actions[0]["output"]["recovered"], status, "{point}: {r}");
                assert_eq!(actions[0]["success"], status == "done", "{point}");
            }
        }
        assert_eq!(
            std::fs::read_to_string(f.workspace().join("notes/a.md")).unwrap(),
            content,
            "{point}"
        );
        assert_verifies(&f);
        // Idempotent: a second recovery finds nothing.
        let o = enact(&f, &["recover"], &[]);
        assert_eq!(stdout(&o), "nothing to recover\n", "{point}");
        if point == "action" {
            let id = r["run_id"].as_str().unwrap();
            let o = enact(&f, &["rollback", id], &[]);
            assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
            assert_eq!(
                std::fs::read_to_string(f.workspace().join("notes/a.md")).unwrap(),
                "old"
            );
        }
    }
}

/// Pipelined writes, `kill -9` after a random delay, 30 times: after recovery, every changed
/// file is covered by a receipt, `verify` passes and every run rolls back to the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_times_leaves_no_change_unrecorded() {
    let mut rng = Lcg(12);
    let mut changed_total = 0;
    for round in 0..30 {
        let f = Folder::new(FILES_CONFIG);
        for k in 0..8 {
            std::fs::write(f.workspace().join(format!("notes/f{k}.md")), "v0").unwrap();
        }
        let before = notes(&f);
        let mut raw = Raw::start(&f).await;
        raw.initialize("2025-11-25").await;
        send_pipelined(
            &mut raw,
            (0..8u64).map(|k| save(k + 1, &format!("notes/f{k}.md"), &format!("v1-{round}"))),
        )
        .await;
        let delay = rng.next(60);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        raw.child.start_kill().unwrap();
        wait_exit(&mut raw).await;

        let o = enact(&f, &["recover"], &[]);
        assert!(
            o.status.success(),
            "round {round}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(open_intents(&f.receipts()).is_empty(), "round {round}");
        let receipts = journal::receipts(&f.receipts());
        for (path, content) in notes(&f) {
            if content != before[&path] {
                changed_total += 1;
                assert_eq!(
                    covering(&receipts, &path).len(),
                    1,
                    "round {round}: {path} changed with no receipt"
                );
            }
        }
        assert_verifies(&f);
        for r in receipts.iter().filter(|r| {
            r["actions_taken"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["success"] == true))
        }) {
            let o = enact(&f, &["rollback", r["run_id"].as_str().unwrap()], &[]);
            assert!(
                o.status.success(),
                "round {round}: {}{}",
                stdout(&o),
                stderr(&o)
            );
        }
        assert_eq!(notes(&f), before, "round {round}: every run rolled back");
    }
    eprintln!("sigkill loop: {changed_total} changed files, all recorded");
}

/// SIGTERM is stdin closing: no new request is read, started runs finish and are recorded
/// without any recovery, and the exit code is 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_and_records_started_runs_and_exits_0() {
    let mut rng = Lcg(7);
    for round in 0..10 {
        let f = Folder::new(FILES_CONFIG);
        let mut raw = Raw::start(&f).await;
        raw.initialize("2025-11-25").await;
        send_pipelined(
            &mut raw,
            (0..20u64).map(|k| save(k + 1, &format!("notes/t{k}.md"), "x")),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.next(6))).await;
        let pid = raw.child.id().unwrap().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = wait_exit(&mut raw).await;
        assert_eq!(status.code(), Some(0), "round {round}");
        assert!(
            open_intents(&f.receipts()).is_empty(),
            "round {round}: a run left unfinished"
        );
        let receipts = journal::receipts(&f.receipts());
        for path in notes(&f).keys() {
            assert_eq!(covering(&receipts, path).len(), 1, "round {round}: {path}");
        }
        assert_verifies(&f);
    }
}

/// A rollback killed at each undo point, then retried: the retry finishes it (PASS), and the
/// files are back — never PARTIAL forever because the first attempt's undo had happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_interrupted_by_a_crash_is_recovered_and_the_retry_passes() {
    for point in ["undo_step", "undo"] {
        let f = Folder::new(FILES_CONFIG);
        std::fs::write(f.workspace().join("notes/c.txt"), "c").unwrap();
        std::fs::write(f.workspace().join("notes/a.txt"), "a0").unwrap();
        let before = notes(&f);
        let mut raw = Raw::start(&f).await;
        raw.initialize("2025-11-25").await;
        raw.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "pair", "arguments": {"a": "a1", "b": "b1"}}}))
            .await;
        let answer = raw.recv().await;
        let run_id = answer["result"]["structuredContent"]["run_id"]
            .as_str()
            .unwrap()
            .to_owned();
        raw.finish().await;
        assert_ne!(notes(&f), before);

        let o = enact(
            &f,
            &["rollback", &run_id],
            &[("ENACT_TEST_CRASH_AT", point)],
        );
        assert!(
            o.status.code().is_none(),
            "{point}: the rollback was meant to abort"
        );
        // The retry recovers the interrupted rollback first, then retries its failed steps.
        let o = enact(&f, &["rollback", &run_id], &[]);
        assert!(o.status.success(), "{point}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).starts_with("ROLLBACK PASS"),
            "{point}: {}",
            stdout(&o)
        );
        assert_eq!(notes(&f), before, "{point}");
        let rollbacks: Vec<Value> = journal::receipts(&f.receipts())
            .into_iter()
            .filter(|r| r["rollback_of"] == run_id)
            .collect();
        assert_eq!(
            rollbacks.len(),
            2,
            "{point}: the recovered one and the retry"
        );
        assert_eq!(rollbacks[0]["interrupted"], true);
        assert_eq!(rollbacks[0]["decision"], "PARTIAL");
        assert_eq!(rollbacks[1]["decision"], "PASS");
        assert_verifies(&f);
    }
}

/// `enact rollback` killed at random times, 30 times: the retry always ends with the files
/// restored and exactly one PASS rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollbacks_killed_at_random_times_always_finish_on_retry() {
    let mut rng = Lcg(99);
    let f = Folder::new(FILES_CONFIG);
    for round in 0..30 {
        std::fs::write(f.workspace().join("notes/c.txt"), "c").unwrap();
        std::fs::write(f.workspace().join("notes/a.txt"), "a0").unwrap();
        std::fs::write(f.workspace().join("notes/b.txt"), "b0").unwrap();
        let before = notes(&f);
        let mut raw = Raw::start(&f).await;
        raw.initialize("2025-11-25").await;
        raw.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "pair", "arguments": {"a": format!("a{round}"), "b": "b1"}}}))
            .await;
        let answer = raw.recv().await;
        let run_id = answer["result"]["structuredContent"]["run_id"]
            .as_str()
            .unwrap()
            .to_owned();
        raw.finish().await;

        let mut child = tokio::process::Command::new(enact_bin())
            .args(["rollback", &run_id, "--config"])
            .arg(f.config())
            .env("ENACT_SECRET", SECRET)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(rng.next(25))).await;
        let _ = child.start_kill();
        let _ = child.wait().await;

        let o = enact(&f, &["rollback", &run_id], &[]);
        let text = stdout(&o) + &stderr(&o);
        assert!(
            o.status.success() || text.contains("was already rolled back by"),
            "round {round}: {text}"
        );
        assert_eq!(notes(&f), before, "round {round}: {text}");
        let passes = journal::receipts(&f.receipts())
            .into_iter()
            .filter(|r| r["rollback_of"] == run_id && r["decision"] == "PASS")
            .count();
        assert_eq!(passes, 1, "round {round}");
    }
    assert_verifies(&f);
}

/// Runs `sh -c` and reports whether it succeeded (for mount, which needs privileges).
fn sh(script: &str) -> bool {
    Command::new("sh")
        .args(["-c", script])
        .status()
        .is_ok_and(|s| s.success())
}

/// A small tmpfs mounted over `dir` (None when mounting is not permitted here).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = sh(&format!(
            "mount -t tmpfs -o size={size} enact-test '{}' 2>/dev/null",
            dir.display()
        ));
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
    fn remount_read_only(&self) -> bool {
        sh(&format!("mount -o remount,ro '{}'", self.0.display()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = sh(&format!("umount -l '{}'", self.0.display()));
    }
}

fn call_result(answer: &Value) -> (bool, String) {
    let result = &answer["result"];
    (
        result["isError"] == true,
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_closed_and_nothing_runs() {
    let f = Folder::new(FILES_CONFIG);
    let Some(_mount) = Tmpfs::mount(&f.receipts(), "256k") else {
        eprintln!("skipped: mounting a tmpfs is not permitted here (the test needs root)");
        return;
    };
    let mut raw = Raw::start(&f).await;
    raw.initialize("2025-11-25").await;
    raw.send_json(save(1, "notes/first.md", "x")).await;
    let (err, text) = call_result(&raw.recv().await);
    assert!(!err, "{text}");
    // Fill the disk, to the last byte.
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(f.receipts().join("filler")).unwrap();
        let page = vec![b'x'; 4096];
        while filler.write_all(&page).is_ok() {}
        while filler.write_all(b"x").is_ok() {}
    }
    raw.send_json(save(2, "notes/second.md", "x")).await;
    let (err, text) = call_result(&raw.recv().await);
    assert!(err, "{text}");
    assert!(
        text.starts_with("the receipts journal cannot be written: ")
            && text.ends_with(" — nothing was done"),
        "{text}"
    );
    assert!(!f.workspace().join("notes/second.md").exists());
    // Room again: the next call runs and is recorded.
    std::fs::remove_file(f.receipts().join("filler")).unwrap();
    raw.send_json(save(3, "notes/third.md", "x")).await;
    let (err, text) = call_result(&raw.recv().await);
    assert!(!err, "{text}");
    raw.finish().await;
    assert_eq!(
        covering(&journal::receipts(&f.receipts()), "notes/third.md").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_on_a_read_only_receipts_folder() {
    let f = Folder::new(FILES_CONFIG);
    let Some(mount) = Tmpfs::mount(&f.receipts(), "1m") else {
        eprintln!("skipped: mounting a tmpfs is not permitted here (the test needs root)");
        return;
    };
    // A journal exists, then the folder becomes read-only.
    let o = enact(&f, &["receipts", "list"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(mount.remount_read_only());
    let mut raw = Raw::start(&f).await;
    let status = wait_exit(&mut raw).await;
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(raw.child.stderr.as_mut().unwrap(), &mut err)
        .await
        .unwrap();
    assert!(
        err.contains(
            "error: the receipts journal cannot be written, so nothing could run safely: "
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_another_process_fails_the_call_closed_within_the_timeout() {
    let f = Folder::new(FILES_CONFIG);
    let mut raw = Raw::start_with(&f, &[("ENACT_LOCK_TIMEOUT_MS", "300")]).await;
    raw.initialize("2025-11-25").await;
    // Another process takes the folder lock and keeps it until told to stop.
    let lock = f.receipts().join(".lock");
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sh", "-c", "echo locked; read line"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    let started = Instant::now();
    raw.send_json(save(1, "notes/locked.md", "x")).await;
    let (err, text) = call_result(&raw.recv().await);
    assert!(err, "{text}");
    assert!(text.contains("is held by another process"), "{text}");
    assert!(text.ends_with(" — nothing was done"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!f.workspace().join("notes/locked.md").exists());
    drop(holder.stdin.take());
    holder.wait().unwrap();
    raw.send_json(save(2, "notes/locked.md", "x")).await;
    let (err, text) = call_result(&raw.recv().await);
    assert!(!err, "{text}");
    raw.finish().await;
}

/// Runs `f` on a thread and fails the test if it has not returned within 20 s.
fn within_bounded_time<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what} hung"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_symlinks_and_devices_in_the_journal_are_errors_never_hangs() {
    let make = || {
        let f = Folder::new(FILES_CONFIG);
        let o = enact(&f, &["receipts", "list"], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        f
    };
    let segment = |f: &Folder| f.receipts().join("journal/00000000000000000002.log");
    type Damage = Box<dyn Fn(&Folder)>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "a FIFO named like a segment",
            Box::new(move |f: &Folder| {
                assert!(sh(&format!("mkfifo '{}'", segment(f).display())));
            }),
        ),
        (
            "a FIFO as the head record",
            Box::new(|f: &Folder| {
                let head = f.receipts().join("journal/head");
                std::fs::remove_file(&head).unwrap();
                assert!(sh(&format!("mkfifo '{}'", head.display())));
            }),
        ),
        (
            "a segment symlinked to /dev/zero",
            Box::new(move |f: &Folder| {
                std::os::unix::fs::symlink("/dev/zero", segment(f)).unwrap();
            }),
        ),
        (
            "a segment symlinked to a regular file",
            Box::new(move |f: &Folder| {
                let other = f.dir.path().join("elsewhere.log");
                std::fs::write(&other, "").unwrap();
                std::os::unix::fs::symlink(&other, segment(f)).unwrap();
            }),
        ),
    ];
    for (what, damage) in cases {
        let f = make();
        damage(&f);
        let config = f.config();
        for args in [&["receipts", "verify"][..], &["receipts", "list"][..]] {
            let config = config.clone();
            let verify = args[1] == "verify";
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let o = within_bounded_time(what, move || {
                Command::new(enact_bin())
                    .args(&args)
                    .arg("--config")
                    .arg(config)
                    .env("ENACT_SECRET", SECRET)
                    .output()
                    .unwrap()
            });
            if !verify && o.status.success() {
                // `list` does not read the head record: answering is fine, hanging is not.
                continue;
            }
            assert_eq!(
                o.status.code(),
                Some(1),
                "{what}: {}{}",
                stdout(&o),
                stderr(&o)
            );
            let text = stdout(&o) + &stderr(&o);
            assert!(
                text.contains("is not a regular file")
                    || text.contains("is a symlink, which is never followed"),
                "{what}: {text}"
            );
        }
        // serve refuses to start, within a bounded time.
        let mut raw = Raw::start(&f).await;
        let status = wait_exit(&mut raw).await;
        assert_eq!(status.code(), Some(1), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_chain_is_never_continued_silently_until_repair() {
    let f = folder_with_saves(4, "r").await;
    let o = enact(&f, &["receipts", "verify"], &[]);
    let kept_head = stdout(&o)
        .lines()
        .last()
        .unwrap()
        .strip_prefix("head: ")
        .unwrap()
        .to_owned();

    // Remove the two newest receipts (and everything after them) and the head record.
    let seg = &journal::segments(&f.receipts())[0];
    let text = std::fs::read_to_string(seg).unwrap();
    let receipts = journal::receipts(&f.receipts());
    let third = receipts[2]["run_id"].as_str().unwrap();
    let cut = text
        .find(&format!("\"run_id\":\"{third}\""))
        .map(|i| text[..i].rfind('\n').map_or(0, |n| n + 1))
        .unwrap();
    // Keep the third run's intent and step lines out too: cut at its first record.
    std::fs::write(seg, &text[..cut]).unwrap();
    std::fs::remove_file(f.receipts().join("journal/head")).unwrap();

    let o = enact(&f, &["receipts", "verify"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("journal/head: bad_head: "),
        "{}",
        stdout(&o)
    );
    let o = enact(
        &f,
        &["receipts", "verify", "--expect-head", &kept_head],
        &[],
    );
    assert!(
        stdout(&o).contains("journal: expected_head: "),
        "{}",
        stdout(&o)
    );

    // A call is refused, runs nothing.
    let mut raw = Raw::start(&f).await;
    raw.initialize("2025-11-25").await;
    raw.send_json(save(9, "notes/after.md", "x")).await;
    let (err, text) = call_result(&raw.recv().await);
    assert!(err, "{text}");
    assert!(
        text.contains("enact receipts repair --accept-truncation"),
        "{text}"
    );
    assert!(!f.workspace().join("notes/after.md").exists());
    raw.finish().await;

    let o = enact(&f, &["receipts", "repair"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = enact(
        &f,
        &[
            "receipts",
            "repair",
            "--accept-truncation",
            "--as",
            "ops@company.com",
        ],
        &[],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = enact(&f, &["receipts", "verify"], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("note: acknowledged truncation"),
        "{}",
        stdout(&o)
    );
    let ack = journal::receipts(&f.receipts()).pop().unwrap();
    assert_eq!(ack["decision"], "ACK_TRUNCATION");
    assert_eq!(ack["actor_email"], "ops@company.com");

    let mut raw = Raw::start(&f).await;
    raw.initialize("2025-11-25").await;
    raw.send_json(save(10, "notes/after.md", "x")).await;
    assert!(!call_result(&raw.recv().await).0);
    raw.finish().await;
    assert_verifies(&f);
}

const RATE_CONFIG_EXTRA: &str = r#"
[[policies]]
policy = "rate_limit"
max = 2
window = "1h"
"#;

/// Editing a receipt (e.g. its decision) cannot lower a rate count: the edited record no
/// longer verifies, and counting then fails closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_receipt_makes_rate_limits_fail_closed() {
    let f = folder_with_saves_in(&format!("{FILES_CONFIG}{RATE_CONFIG_EXTRA}"), 2, "e").await;
    let first = journal::receipts(&f.receipts())[0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    journal::edit_receipt(&f.receipts(), &first, |l| {
        l.replace("\"decision\":\"PASS\"", "\"decision\":\"XXXX\"")
    });
    let mut raw = Raw::start(&f).await;
    raw.initialize("2025-11-25").await;
    raw.send_json(save(5, "notes/e5.md", "x")).await;
    let (err, text) = call_result(&raw.recv().await);
    assert!(err, "{text}");
    assert!(text.contains("rate_limit: policy error: "), "{text}");
    assert!(!f.workspace().join("notes/e5.md").exists());
    raw.finish().await;
}

/// Three servers on one folder, calls in parallel, a rate limit of 5 across them: one
/// contiguous chain, exactly 5 PASS runs, and one PASS rollback per run even when three
/// processes roll the same run back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_one_chain_exact_counts_and_one_rollback_per_run() {
    let f = Folder::new(&format!(
        "{FILES_CONFIG}\n[[policies]]\npolicy = \"rate_limit\"\nmax = 5\nwindow = \"1h\"\nworkflows = [\"save\"]\n"
    ));
    let mut servers = Vec::new();
    for _ in 0..3 {
        let mut raw = Raw::start(&f).await;
        raw.initialize("2025-11-25").await;
        servers.push(raw);
    }
    for (i, raw) in servers.iter_mut().enumerate() {
        send_pipelined(
            raw,
            (0..4u64).map(|k| save(k + 1, &format!("notes/p{i}-{k}.md"), "x")),
        )
        .await;
    }
    for raw in &mut servers {
        for _ in 0..4 {
            raw.recv().await;
        }
    }
    for raw in servers {
        raw.finish().await;
    }
    let receipts = journal::receipts(&f.receipts());
    assert_eq!(receipts.len(), 12);
    let seqs: Vec<u64> = receipts
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..12).collect::<Vec<_>>());
    let passed: Vec<&Value> = receipts
        .iter()
        .filter(|r| r["decision"] == "PASS")
        .collect();
    assert_eq!(passed.len(), 5);
    assert_eq!(notes(&f).len(), 5);
    assert_verifies(&f);

    let run = passed[0]["run_id"].as_str().unwrap().to_owned();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let config = f.config();
            let run = run.clone();
            std::thread::spawn(move || {
                Command::new(enact_bin())
                    .args(["rollback", &run, "--config"])
                    .arg(config)
                    .env("ENACT_SECRET", SECRET)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let outs: Vec<Output> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outs.iter().filter(|o| o.status.success()).count(), 1);
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(
            stderr(o).contains("was already rolled back by"),
            "{}",
            stderr(o)
        );
    }
    let rollbacks = journal::receipts(&f.receipts())
        .into_iter()
        .filter(|r| r["rollback_of"] == run)
        .count();
    assert_eq!(rollbacks, 1);
    assert_verifies(&f);
}

/// A receipts folder of the earlier layout is refused by `serve`, naming the migration;
/// `receipts migrate` imports it keeping every signature and the chain hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_layout_is_refused_then_migrated_keeping_signatures() {
    let f = folder_with_saves(3, "m").await;
    let head = stdout(&enact(&f, &["receipts", "verify"], &[]));
    let head = head.lines().last().unwrap().to_owned();
    // Rebuild the folder as the earlier layout: one pretty file per receipt.
    let receipts = journal::receipts(&f.receipts());
    std::fs::remove_dir_all(f.receipts()).unwrap();
    std::fs::create_dir_all(f.receipts()).unwrap();
    for r in &receipts {
        let path = f
            .receipts()
            .join(format!("{}.json", r["run_id"].as_str().unwrap()));
        std::fs::write(path, serde_json::to_string_pretty(r).unwrap()).unwrap();
    }
    let mut raw = Raw::start(&f).await;
    assert_eq!(wait_exit(&mut raw).await.code(), Some(1));
    let o = enact(&f, &["receipts", "list"], &[]);
    assert!(
        stderr(&o).contains("run `enact receipts migrate` first"),
        "{}",
        stderr(&o)
    );
    let o = enact(&f, &["receipts", "migrate"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("migrated 3 receipt(s)"),
        "{}",
        stdout(&o)
    );
    let o = enact(&f, &["receipts", "verify"], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(stdout(&o).lines().last().unwrap(), head);
    // And export writes them back as files, the same JSON `show` prints.
    let out = f.dir.path().join("export");
    let o = enact(&f, &["receipts", "export", out.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for r in &receipts {
        let id = r["run_id"].as_str().unwrap();
        let exported: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(format!("{id}.json"))).unwrap())
                .unwrap();
        assert_eq!(&exported, r);
    }
}

fn update(id: u64, table: &str, row: u64, v: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "update", "arguments": {"table": table, "data": {"v": v}, "where": {"id": row}}}})
}

/// A Postgres update killed between its step record (inside the transaction, before COMMIT)
/// and the commit is `not_done` and changed nothing; killed after the action, `done`, and it
/// rolls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_a_postgres_update_is_recovered_by_the_transaction_status() {
    let dsn = crate::postgres::test_dsn();
    for (point, recovered, value) in [("step", "not_done", "old"), ("action", "done", "new")] {
        let (c, s) = crate::postgres::schema_with(
            "CREATE TABLE {s}.t (id int PRIMARY KEY, v text); INSERT INTO {s}.t VALUES (1, 'old');",
        )
        .await;
        let table = format!("{s}.t");
        let f = Folder::new(&crate::postgres::config(100, ""));
        let mut raw =
            Raw::start_with(&f, &[("TEST_PG_DSN", &dsn), ("ENACT_TEST_CRASH_AT", point)]).await;
        raw.initialize("2025-11-25").await;
        raw.send_json(update(1, &table, 1, "new")).await;
        wait_exit(&mut raw).await;
        let o = enact(&f, &["recover"], &[("TEST_PG_DSN", &dsn)]);
        assert!(o.status.success(), "{point}: {}{}", stdout(&o), stderr(&o));
        let receipts = journal::receipts(&f.receipts());
        assert_eq!(receipts.len(), 1);
        let action = &receipts[0]["actions_taken"][0];
        assert_eq!(
            action["output"]["recovered"], recovered,
            "{point}: {action}"
        );
        let now: String = c
            .query_one(&format!("SELECT v FROM {table} WHERE id = 1"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(now, value, "{point}");
        assert_verifies(&f);
        if point == "action" {
            let id = receipts[0]["run_id"].as_str().unwrap();
            let o = enact(&f, &["rollback", id], &[("TEST_PG_DSN", &dsn)]);
            assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
            let now: String = c
                .query_one(&format!("SELECT v FROM {table} WHERE id = 1"), &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(now, "old");
        }
    }
}

/// Pipelined Postgres updates, `kill -9` at random times, 30 times: every changed row is
/// covered by a receipt, `verify` passes, and rolling every run back restores the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_postgres_updates_leaves_no_row_change_unrecorded() {
    let dsn = crate::postgres::test_dsn();
    let mut rng = Lcg(5);
    let mut changed_total = 0;
    for round in 0..30 {
        let (c, s) = crate::postgres::schema_with(
            "CREATE TABLE {s}.t (id int PRIMARY KEY, v text); \
             INSERT INTO {s}.t SELECT g, 'v0' FROM generate_series(1, 6) g;",
        )
        .await;
        let table = format!("{s}.t");
        let before = crate::postgres::dump(&c, &table, "id").await;
        let f = Folder::new(&crate::postgres::config(100, ""));
        let mut raw = Raw::start_with(&f, &[("TEST_PG_DSN", &dsn)]).await;
        raw.initialize("2025-11-25").await;
        send_pipelined(
            &mut raw,
            (1..=6u64).map(|k| update(k, &table, k, &format!("v1-{round}"))),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.next(60))).await;
        raw.child.start_kill().unwrap();
        wait_exit(&mut raw).await;

        let o = enact(&f, &["recover"], &[("TEST_PG_DSN", &dsn)]);
        assert!(
            o.status.success(),
            "round {round}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let receipts = journal::receipts(&f.receipts());
        let rows = c
            .query(&format!("SELECT id, v FROM {table} ORDER BY id"), &[])
            .await
            .unwrap();
        for row in rows {
            let (id, v): (i32, String) = (row.get(0), row.get(1));
            if v != "v0" {
                changed_total += 1;
                let covered = receipts.iter().any(|r| {
                    r["actions_taken"].as_array().is_some_and(|a| {
                        a.iter()
                            .any(|x| x["success"] == true && x["args"]["where"]["id"] == id)
                    })
                });
                assert!(covered, "round {round}: row {id} changed with no receipt");
            }
        }
        assert_verifies(&f);
        for r in receipts.iter().filter(|r| {
            r["actions_taken"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["success"] == true))
        }) {
            let o = enact(
                &f,
                &["rollback", r["run_id"].as_str().unwrap()],
                &[("TEST_PG_DSN", &dsn)],
            );
            assert!(
                o.status.success(),
                "round {round}: {}{}",
                stdout(&o),
                stderr(&o)
            );
        }
        assert_eq!(
            crate::postgres::dump(&c, &table, "id").await,
            before,
            "round {round}"
        );
    }
    eprintln!("postgres sigkill loop: {changed_total} changed rows, all recorded");
}

/// Several processes recovering at once finish each interrupted run once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_recoveries_write_one_receipt_per_run() {
    let f = Folder::new(FILES_CONFIG);
    // All three start (and recover nothing) before any of them crashes.
    let mut servers = Vec::new();
    for _ in 0..3 {
        let mut raw = Raw::start_with(&f, &[("ENACT_TEST_CRASH_AT", "action")]).await;
        raw.initialize("2025-11-25").await;
        servers.push(raw);
    }
    for (k, raw) in servers.iter_mut().enumerate() {
        raw.send_json(save(1, &format!("notes/c{k}.md"), "x")).await;
        wait_exit(raw).await;
    }
    assert_eq!(open_intents(&f.receipts()).len(), 3);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let config = f.config();
            std::thread::spawn(move || {
                Command::new(enact_bin())
                    .args(["recover", "--config"])
                    .arg(config)
                    .env("ENACT_SECRET", SECRET)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        let o = h.join().unwrap();
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    }
    let receipts = journal::receipts(&f.receipts());
    assert_eq!(receipts.len(), 3);
    assert!(receipts.iter().all(|r| r["interrupted"] == true));
    assert!(open_intents(&f.receipts()).is_empty());
    assert_verifies(&f);
}

/// A Postgres rollback killed after its undo committed: the retry finds the rows already
/// restored and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_rollback_interrupted_after_its_undo_passes_on_retry() {
    let dsn = crate::postgres::test_dsn();
    let (c, s) = crate::postgres::schema_with(
        "CREATE TABLE {s}.t (id int PRIMARY KEY, v text); INSERT INTO {s}.t VALUES (1, 'old'), (2, 'old');",
    )
    .await;
    let table = format!("{s}.t");
    let before = crate::postgres::dump(&c, &table, "id").await;
    let f = Folder::new(&crate::postgres::config(100, ""));
    let mut raw = Raw::start_with(&f, &[("TEST_PG_DSN", &dsn)]).await;
    raw.initialize("2025-11-25").await;
    raw.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "update", "arguments": {"table": table, "data": {"v": "new"}, "where": {"v": "old"}}}}))
        .await;
    let answer = raw.recv().await;
    let run_id = answer["result"]["structuredContent"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    raw.finish().await;
    assert_ne!(crate::postgres::dump(&c, &table, "id").await, before);
    let o = enact(
        &f,
        &["rollback", &run_id],
        &[("TEST_PG_DSN", &dsn), ("ENACT_TEST_CRASH_AT", "undo")],
    );
    assert!(o.status.code().is_none(), "the rollback was meant to abort");
    assert_eq!(
        crate::postgres::dump(&c, &table, "id").await,
        before,
        "the undo committed"
    );
    let o = enact(&f, &["rollback", &run_id], &[("TEST_PG_DSN", &dsn)]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("already undone"), "{}", stdout(&o));
    assert_eq!(crate::postgres::dump(&c, &table, "id").await, before);
    assert_verifies(&f);
}
