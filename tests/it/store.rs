//! Integration tests: the receipts journal (SPEC §5.3–5.6, rate counting of §4).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use enact::kernel::policy::{Decision, PolicyResult, RateQuery};
use enact::kernel::receipt::{self, ActionRecord, GENESIS_HASH, Receipt};
use enact::secret::Secret;
use enact::store::{Audit, ListFilter, Problem, RateCounts, Store, StoreError, Summary};
use serde_json::{Map, Value, json};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const OTHER_KEY: &str = "another key that is long enough!!";
/// Set in a child process (see [`child`]): what it does.
const CHILD_MODE: &str = "ENACT_TEST_STORE_CHILD_MODE";
const CHILD_DIR: &str = "ENACT_TEST_STORE_CHILD_DIR";
const CHILD_OFFSET: &str = "ENACT_TEST_STORE_CHILD_OFFSET";
const ACTOR: &str = "agent@company.com";
/// What a child process prints once its store is open.
const READY: &str = "child ready";
/// How long a test waits for something that must happen (or for a hostile folder to end in an
/// error) before it fails instead of hanging.
const BOUND: StdDuration = StdDuration::from_secs(60);

fn open(dir: &Path) -> Store {
    Store::open(dir, false, Secret::new(KEY)).unwrap()
}

/// A deterministic run id.
fn id(n: u128) -> String {
    uuid::Uuid::from_u128(0x0b6f_1a2c_3d4e_4f50_8a6b_0000_0000_0000 + n).to_string()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn receipt(run_id: &str, workflow: &str, decision: Decision) -> Receipt {
    Receipt {
        kind: String::new(),
        run_id: run_id.into(),
        workflow: workflow.into(),
        actor_email: ACTOR.into(),
        actor_role: "engineer".into(),
        payload: json!({"path": "a.txt", "content": "hi"}),
        inputs: None,
        policy_results: vec![PolicyResult::pass(
            "no_delete_file",
            "no delete_file is planned",
        )],
        decision,
        actions_taken: vec![ActionRecord {
            action: "write_file".into(),
            system: "files".into(),
            success: true,
            output: json!({"path": "a.txt", "already_done": false}),
            rollback_data: json!({"existed": false}),
            target: json!({"type": "filesystem", "root": "/w"}),
            args: Map::new(),
        }],
        timestamp: "2026-11-26T01:02:03.456789Z".into(),
        rollback_of: None,
        plan: json!([]),
        policy_set_hash: "00".into(),
        interrupted: false,
        approvals: Default::default(),
        seq: 999,
        prev_hash: "garbage".into(),
        signature: String::new(),
    }
}

/// The fields of an intent record, as the engine hands them to the store.
fn intent(run_id: &str, workflow: &str, args: Value, at: DateTime<Utc>) -> Map<String, Value> {
    json!({
        "run_id": run_id,
        "workflow": workflow,
        "actor_email": ACTOR,
        "actor_role": "engineer",
        "payload": args.clone(),
        "inputs": args,
        "policy_results": [],
        "timestamp": stamp(at),
        "plan": [],
        "policy_set_hash": "00",
    })
    .as_object()
    .unwrap()
    .clone()
}

/// The fields of a step record.
fn step(run_id: &str, index: u64) -> Map<String, Value> {
    json!({
        "run_id": run_id,
        "index": index,
        "system": "files",
        "action": "write_file",
        "args": {"path": format!("{index}.txt")},
        "target": {"type": "filesystem", "root": "/w"},
        "pre": {"existed": false},
        "timestamp": stamp(now()),
    })
    .as_object()
    .unwrap()
    .clone()
}

/// A folder with `n` PASS receipts `id(0)..id(n)` (seq 0..n).
fn folder_with(dir: &Path, n: u128) -> Store {
    let store = open(dir);
    for i in 0..n {
        store
            .append(receipt(&id(i), "save_note", Decision::Pass))
            .unwrap();
    }
    store
}

fn segment(dir: &Path, n: u64) -> PathBuf {
    dir.join("journal").join(format!("{n:020}.log"))
}

fn seg1(dir: &Path) -> PathBuf {
    segment(dir, 1)
}

fn head_file(dir: &Path) -> PathBuf {
    dir.join("journal").join("head")
}

/// The complete lines of the first segment (without newlines).
fn lines(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(seg1(dir)).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a torn line: {text}"
    );
    text.lines().map(str::to_owned).collect()
}

fn write_lines(dir: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    fs::write(seg1(dir), text).unwrap();
}

/// The index of the line holding `run_id`'s receipt.
fn line_of(lines: &[String], run_id: &str) -> usize {
    lines
        .iter()
        .position(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["run_id"] == json!(run_id) && v["kind"] == json!("receipt")
        })
        .unwrap()
}

/// Rewrites `run_id`'s receipt line with `edit` applied to its text.
fn edit_line(dir: &Path, run_id: &str, edit: impl FnOnce(&str) -> String) {
    let mut all = lines(dir);
    let at = line_of(&all, run_id);
    all[at] = edit(&all[at]);
    write_lines(dir, &all);
}

/// Rewrites `run_id`'s receipt with `edit` applied to its value (re-serialised compactly).
fn edit_value(dir: &Path, run_id: &str, edit: impl FnOnce(&mut Value)) {
    edit_line(dir, run_id, |line| {
        let mut v: Value = serde_json::from_str(line).unwrap();
        edit(&mut v);
        serde_json::to_string(&v).unwrap()
    });
}

fn append_raw(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// Cuts the first segment after its first `keep` lines.
fn keep_lines(dir: &Path, keep: usize) {
    let len: usize = lines(dir)[..keep].iter().map(|l| l.len() + 1).sum();
    OpenOptions::new()
        .write(true)
        .open(seg1(dir))
        .unwrap()
        .set_len(len as u64)
        .unwrap();
}

fn value_of(store: &Store, run_id: &str) -> Value {
    let loaded = store.load(run_id).unwrap();
    assert!(loaded.signature_valid, "{run_id}");
    loaded.value
}

/// (kind, subject) of each problem, sorted.
fn kinds(problems: &[Problem]) -> Vec<(String, String)> {
    let mut out: Vec<_> = problems
        .iter()
        .map(|p| (p.kind.clone(), p.subject.clone()))
        .collect();
    out.sort();
    out
}

fn expect(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = pairs
        .iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect();
    out.sort();
    out
}

/// `verify_all` found nothing wrong and has nothing to say.
fn assert_clean(store: &Store) -> Audit {
    let audit = store.verify_all().unwrap();
    assert_eq!(audit.problems, vec![], "{audit:?}");
    assert_eq!(audit.notes, Vec::<String>::new(), "{audit:?}");
    audit
}

/// The position subject `verify_all` gives a line it cannot read as a record.
fn position(dir: &Path, line: usize) -> String {
    let offset: usize = lines(dir)[..line].iter().map(|l| l.len() + 1).sum();
    format!("journal/{:020}.log:{offset}", 1)
}

/// Runs `f` on a thread and fails the test if it has not returned within [`BOUND`].
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND)
        .expect("the store hung on a hostile folder")
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

// ---------------------------------------------------------------- append / load

#[test]
fn append_then_load_round_trips_as_one_signed_compact_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let written = store
        .append(receipt(&id(1), "save_note", Decision::Pass))
        .unwrap();
    assert_eq!(written.kind, "receipt");
    assert_eq!(written.seq, 0);
    assert_eq!(written.prev_hash, GENESIS_HASH);
    assert!(receipt::verify(&written.to_value().unwrap(), &mac(KEY)));

    let expected = json!({
        "kind": "receipt",
        "run_id": id(1),
        "workflow": "save_note",
        "actor_email": ACTOR,
        "actor_role": "engineer",
        "payload": {"content": "hi", "path": "a.txt"},
        "policy_results": [
            {"policy": "no_delete_file", "passed": true, "reason": "no delete_file is planned"}
        ],
        "decision": "PASS",
        "actions_taken": [{
            "action": "write_file",
            "system": "files",
            "success": true,
            "output": {"already_done": false, "path": "a.txt"},
            "rollback_data": {"existed": false},
            "target": {"root": "/w", "type": "filesystem"},
            "args": {}
        }],
        "timestamp": "2026-11-26T01:02:03.456789Z",
        "rollback_of": null,
        "plan": [],
        "policy_set_hash": "00",
        "seq": 0,
        "prev_hash": GENESIS_HASH,
        "signature": written.signature,
    });
    // One compact JSON line per record, in the first segment.
    let text = fs::read_to_string(seg1(dir.path())).unwrap();
    let line = text.strip_suffix('\n').unwrap();
    assert!(!line.contains('\n'));
    let on_disk: Value = serde_json::from_str(line).unwrap();
    assert_eq!(on_disk, expected);
    assert_eq!(line, serde_json::to_string(&on_disk).unwrap());

    let loaded = store.load(&id(1)).unwrap();
    assert!(loaded.signature_valid);
    assert_eq!(loaded.value, expected);
    assert_eq!(loaded.value, written.to_value().unwrap());
}

#[test]
fn the_record_kind_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 2);
    let v = value_of(&store, &id(0));
    assert_eq!(v["kind"], json!("receipt"));
    let mut unkinded = v.clone();
    unkinded.as_object_mut().unwrap().remove("kind");
    assert!(!receipt::verify(&unkinded, &mac(KEY)));

    // The same length, so the record stays where the index has it.
    edit_line(dir.path(), &id(0), |l| {
        l.replace("\"kind\":\"receipt\"", "\"kind\":\"intent!\"")
    });
    let loaded = store.load(&id(0)).unwrap();
    assert!(!loaded.signature_valid);
    assert_eq!(loaded.value["kind"], json!("intent!"));
    // No longer a receipt to the audit: seq 0 is missing from the chain.
    assert_eq!(
        kinds(&store.verify_all().unwrap().problems),
        expect(&[("bad_signature", &id(0)), ("gap", &id(1))])
    );
}

#[test]
fn appends_link_seq_and_prev_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 4);
    let mut prev = GENESIS_HASH.to_string();
    for i in 0..4u128 {
        let v = value_of(&store, &id(i));
        assert_eq!(v["seq"], json!(i as u64));
        assert_eq!(v["prev_hash"], json!(prev));
        prev = receipt::chain_hash(&v);
    }
    assert_eq!(store.head_hash().unwrap(), prev);
    let audit = assert_clean(&store);
    assert_eq!(audit.receipts, 4);
    assert_eq!(audit.head_hash, prev);
    assert_eq!(audit.hashes.len(), 4);
    assert!(audit.hashes.contains(&prev));
    assert_eq!(lines(dir.path()).len(), 4);
}

#[test]
fn appending_works_with_fsync_on_and_off_and_survives_reopening() {
    for fsync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/receipts");
        let store = Store::open(&path, fsync, Secret::new(KEY)).unwrap();
        store.append(receipt(&id(1), "a", Decision::Pass)).unwrap();
        store
            .append_intent(intent(&id(2), "a", json!({}), now()))
            .unwrap();
        store.append_step(step(&id(2), 0)).unwrap();
        store.append(receipt(&id(2), "a", Decision::Block)).unwrap();
        drop(store);
        let store = Store::open(&path, fsync, Secret::new(KEY)).unwrap();
        assert!(store.load(&id(1)).unwrap().signature_valid);
        assert!(store.load(&id(2)).unwrap().signature_valid);
        assert_eq!(
            store
                .append(receipt(&id(3), "a", Decision::Pass))
                .unwrap()
                .seq,
            2
        );
        assert!(store.load(&id(3)).unwrap().signature_valid);
        assert_eq!(store.list(&ListFilter::default()).unwrap().len(), 3);
        assert_clean(&store);
        store.check_writable().unwrap();
        // Nothing but the store's own files: no probe or temporary files left behind.
        let mut names: Vec<String> = fs::read_dir(path.join("journal"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec![format!("{:020}.log", 1), "head".to_string()]);
    }
}

#[test]
fn a_second_store_on_the_same_folder_sees_the_first_ones_appends() {
    let dir = tempfile::tempdir().unwrap();
    let first = folder_with(dir.path(), 2);
    let second = open(dir.path());
    assert_eq!(second.list(&ListFilter::default()).unwrap().len(), 2);
    let q = [query(0, 99, 3600, None, None)];

    let mut r = receipt(&id(2), "save_note", Decision::Pass);
    r.timestamp = stamp(now());
    first.append(r).unwrap();
    // Look-ups, listings and counts read the other store's appends from the tail.
    assert!(second.load(&id(2)).unwrap().signature_valid);
    assert_eq!(
        second.list(&ListFilter::default()).unwrap()[0].run_id,
        id(2)
    );
    assert_eq!(second.count_runs(&q[0], ACTOR, now()).unwrap(), 1);
    assert_eq!(second.head_hash().unwrap(), first.head_hash().unwrap());
    first
        .append_intent(intent(&id(3), "save_note", json!({}), now()))
        .unwrap();
    assert_eq!(second.count_runs(&q[0], ACTOR, now()).unwrap(), 2);

    // Appends of either continue the one chain.
    assert_eq!(
        second
            .append(receipt(&id(4), "save_note", Decision::Pass))
            .unwrap()
            .seq,
        3
    );
    assert_eq!(
        first
            .append(receipt(&id(5), "save_note", Decision::Pass))
            .unwrap()
            .seq,
        4
    );
    assert_eq!(
        value_of(&first, &id(5))["prev_hash"],
        json!(receipt::chain_hash(&value_of(&second, &id(4))))
    );
    assert_eq!(
        first.list(&ListFilter::default()).unwrap(),
        second.list(&ListFilter::default()).unwrap()
    );
    assert_clean(&second);
}

#[test]
fn a_run_id_gets_one_receipt_and_one_intent() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 1);
    let err = store
        .append(receipt(&id(0), "again", Decision::Pass))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("run `{}` already has a receipt", id(0))
    );
    assert!(matches!(&err, StoreError::Duplicate(r) if *r == id(0)));
    assert_eq!(value_of(&store, &id(0))["workflow"], json!("save_note"));

    // Another Store instance knows it from the journal.
    let other = open(dir.path());
    let err = other
        .append(receipt(&id(0), "again", Decision::Pass))
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)));

    // An intent for a run that has a receipt, or that has an intent already, is refused.
    let err = store
        .append_intent(intent(&id(0), "w", json!({}), now()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("run `{}` already has a receipt", id(0))
    );
    store
        .append_intent(intent(&id(1), "w", json!({}), now()))
        .unwrap();
    let err = other
        .append_intent(intent(&id(1), "w", json!({}), now()))
        .unwrap_err();
    assert!(matches!(&err, StoreError::Duplicate(r) if *r == id(1)));
    // Its receipt closes the run; a second one is refused.
    store.append(receipt(&id(1), "w", Decision::Pass)).unwrap();
    assert!(matches!(
        other.append(receipt(&id(1), "w", Decision::Pass)),
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(lines(dir.path()).len(), 3);
    assert_clean(&store);
}

#[test]
fn invalid_run_ids_are_refused_with_the_spec_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 1);
    for bad in ["../x", "0B6F1A2C-3D4E-4F50-8A6B-7C8D9E0F1A2B", ""] {
        let expected = format!("Invalid run_id: '{bad}'");
        assert_eq!(store.load(bad).unwrap_err().to_string(), expected);
        assert_eq!(
            store
                .append(receipt(bad, "w", Decision::Pass))
                .unwrap_err()
                .to_string(),
            expected
        );
        assert_eq!(
            store
                .append_intent(intent(bad, "w", json!({}), now()))
                .unwrap_err()
                .to_string(),
            expected
        );
        let err = store
            .gate_and_intend(&[], ACTOR, now(), &mut |_| {
                Some(intent(bad, "w", json!({}), now()))
            })
            .unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_eq!(store.rollbacks_of(bad).unwrap_err().to_string(), expected);
        assert_eq!(store.lock_rollback(bad).unwrap_err().to_string(), expected);
        assert!(matches!(store.load(bad), Err(StoreError::InvalidRunId(s)) if s == bad));
    }
    // Nothing was written.
    assert_eq!(lines(dir.path()).len(), 1);
}

#[test]
fn a_missing_receipt_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 1);
    let err = store.load(&id(7)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("No receipt found for run_id: {}", id(7))
    );
    assert!(matches!(err, StoreError::NotFound(_)));
    // A run with an intent only has no receipt either.
    store
        .append_intent(intent(&id(8), "w", json!({}), now()))
        .unwrap();
    assert!(matches!(store.load(&id(8)), Err(StoreError::NotFound(r)) if r == id(8)));
}

#[test]
fn duplicate_json_keys_make_a_receipt_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 3);
    let mut column = 0;
    // A second `workflow` in place of `actor_role` (the same length, so the record stays
    // where the running store's index has it): serde_json alone would silently keep it.
    edit_line(dir.path(), &id(1), |l| {
        let tampered = l.replace("\"actor_role\":\"engineer\"", "\"workflow\":\"abcdefghij\"");
        assert_eq!(tampered.len(), l.len());
        column = tampered.rfind("\"workflow\"").unwrap() + 10;
        tampered
    });
    // The running store reads the record itself, so the edit is seen.
    let err = store.load(&id(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "receipt `{}` is invalid: duplicate key `workflow` at line 1 column {column}",
            id(1)
        )
    );
    assert!(matches!(err, StoreError::Invalid { .. }));
    // A store opened now does not index it.
    let fresh = open(dir.path());
    assert!(matches!(fresh.load(&id(1)), Err(StoreError::NotFound(_))));

    let audit = store.verify_all().unwrap();
    assert_eq!(
        kinds(&audit.problems),
        expect(&[("invalid", &position(dir.path(), 1)), ("gap", &id(2))])
    );
    let invalid = audit.problems.iter().find(|p| p.kind == "invalid").unwrap();
    assert_eq!(
        invalid.message,
        format!("not valid JSON: duplicate key `workflow` at line 1 column {column}")
    );
}

#[test]
fn a_record_edited_in_place_loads_with_signature_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 2);
    edit_line(dir.path(), &id(0), |l| l.replace("\"hi\"", "\"ho\""));
    let loaded = store.load(&id(0)).unwrap();
    assert!(!loaded.signature_valid);
    assert_eq!(loaded.value["payload"]["content"], json!("ho"));
    assert!(open(dir.path()).load(&id(1)).unwrap().signature_valid);
}

// ---------------------------------------------------------------- listing

fn listing_folder(dir: &Path) -> Store {
    let store = open(dir);
    let plan = [
        ("a", Decision::Pass),
        ("b", Decision::Block),
        ("a", Decision::Block),
        ("b", Decision::Pass),
        ("a", Decision::Pass),
    ];
    for (i, (workflow, decision)) in plan.into_iter().enumerate() {
        // Intents and steps are not listed.
        if decision == Decision::Pass {
            store
                .append_intent(intent(&id(i as u128), workflow, json!({}), now()))
                .unwrap();
            store.append_step(step(&id(i as u128), 0)).unwrap();
        }
        store
            .append(receipt(&id(i as u128), workflow, decision))
            .unwrap();
    }
    let mut rollback = receipt(&id(9), "rollback:a", Decision::Partial);
    rollback.rollback_of = Some(id(0));
    store.append(rollback).unwrap();
    store
}

fn summary(n: u128, workflow: &str, decision: &str, seq: u64) -> Summary {
    Summary {
        run_id: id(n),
        workflow: workflow.into(),
        actor_email: ACTOR.into(),
        decision: decision.into(),
        timestamp: "2026-11-26T01:02:03.456789Z".into(),
        rollback_of: if n == 9 { Some(id(0)) } else { None },
        seq,
    }
}

fn list(
    store: &Store,
    limit: usize,
    workflow: Option<&str>,
    decision: Option<&str>,
) -> Vec<Summary> {
    store
        .list(&ListFilter {
            limit,
            workflow: workflow.map(Into::into),
            decision: decision.map(Into::into),
        })
        .unwrap()
}

#[test]
fn listing_is_newest_first_filtered_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let store = listing_folder(dir.path());
    let all = vec![
        summary(9, "rollback:a", "PARTIAL", 5),
        summary(4, "a", "PASS", 4),
        summary(3, "b", "PASS", 3),
        summary(2, "a", "BLOCK", 2),
        summary(1, "b", "BLOCK", 1),
        summary(0, "a", "PASS", 0),
    ];
    assert_eq!(list(&store, 0, None, None), all);
    assert_eq!(list(&store, 2, None, None), all[..2].to_vec());
    assert_eq!(
        list(&store, 0, Some("a"), None),
        vec![
            summary(4, "a", "PASS", 4),
            summary(2, "a", "BLOCK", 2),
            summary(0, "a", "PASS", 0)
        ]
    );
    assert_eq!(
        list(&store, 0, None, Some("BLOCK")),
        vec![summary(2, "a", "BLOCK", 2), summary(1, "b", "BLOCK", 1)]
    );
    assert_eq!(
        list(&store, 1, Some("a"), Some("PASS")),
        vec![summary(4, "a", "PASS", 4)]
    );
    assert_eq!(list(&store, 0, Some("nope"), None), vec![]);
    let json = serde_json::to_value(&all[0]).unwrap();
    assert_eq!(
        json,
        json!({"run_id": id(9), "workflow": "rollback:a", "actor_email": ACTOR, "decision": "PARTIAL",
               "timestamp": "2026-11-26T01:02:03.456789Z", "rollback_of": id(0)})
    );
    // A store opened on the folder lists the same.
    assert_eq!(list(&open(dir.path()), 0, None, None), all);
}

#[test]
fn a_listing_leaves_out_records_whose_signature_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = listing_folder(dir.path());
    // A foreign process appends a receipt signed with another key.
    let mut forged = receipt(&id(30), "a", Decision::Pass);
    forged.kind = "receipt".into();
    forged.seq = 6;
    forged.prev_hash = store.head_hash().unwrap();
    forged.sign(&mac(OTHER_KEY)).unwrap();
    let mut line = serde_json::to_vec(&forged.to_value().unwrap()).unwrap();
    line.push(b'\n');
    append_raw(&seg1(dir.path()), &line);
    let ids: Vec<String> = list(&store, 2, None, None)
        .into_iter()
        .map(|s| s.run_id)
        .collect();
    assert_eq!(ids, vec![id(9), id(4)]);
    // Found by id, so a look-up can say its signature fails, but never trusted.
    for store in [&store, &open(dir.path())] {
        assert!(!store.load(&id(30)).unwrap().signature_valid);
        assert_eq!(list(store, 0, Some("a"), Some("PASS")).len(), 2);
        assert_eq!(store.rollbacks_of(&id(0)).unwrap().len(), 1);
    }
    // It keeps its place in the chain: the next receipt links to it, and `verify` names it.
    let next = store.append(receipt(&id(31), "a", Decision::Pass)).unwrap();
    assert_eq!(next.seq, 7);
    assert_eq!(
        next.prev_hash,
        receipt::chain_hash(&forged.to_value().unwrap())
    );
    assert_eq!(
        kinds(&store.verify_all().unwrap().problems),
        expect(&[("bad_signature", &id(30))])
    );
}

// ---------------------------------------------------------------- the head record

#[test]
fn a_head_behind_the_journal_is_normal_and_the_next_append_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 3);
    // A crash after the receipt was appended but before the head record was moved: put the
    // head record of seq 2 back.
    let old_head = fs::read(head_file(dir.path())).unwrap();
    store
        .append(receipt(&id(3), "save_note", Decision::Pass))
        .unwrap();
    fs::write(head_file(dir.path()), old_head).unwrap();
    let audit = store.verify_all().unwrap();
    assert_eq!(audit.problems, vec![]);
    assert_eq!(
        audit.notes,
        vec!["the head record is behind the journal (seq 2 of 3); the next append moves it"]
    );
    // Nothing was lost, so appends continue, with the next seq.
    let fresh = open(dir.path());
    assert_eq!(
        fresh
            .append(receipt(&id(4), "save_note", Decision::Pass))
            .unwrap()
            .seq,
        4
    );
    assert_clean(&store);
}

// ---------------------------------------------------------------- verify_all: tamper corpus

/// Builds a clean journal of six receipts (seq 0..5), applies `tamper`, and returns what
/// `verify_all` finds then.
fn tampered(tamper: impl FnOnce(&Path)) -> Audit {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    assert_clean(&store);
    tamper(dir.path());
    store.verify_all().unwrap()
}

#[test]
fn a_clean_journal_has_no_problems() {
    let dir = tempfile::tempdir().unwrap();
    let audit = assert_clean(&open(dir.path()));
    assert_eq!(audit.receipts, 0);
    assert_eq!(audit.head_hash, GENESIS_HASH);
    fs::write(dir.path().join(".gitkeep"), "").unwrap();
    let store = folder_with(dir.path(), 3);
    store
        .append_intent(intent(&id(3), "save_note", json!({}), now()))
        .unwrap();
    store.append_step(step(&id(3), 0)).unwrap();
    store
        .append(receipt(&id(3), "save_note", Decision::Pass))
        .unwrap();
    store.load(&id(1)).unwrap();
    store.list(&ListFilter::default()).unwrap();
    drop(store.lock_rollback(&id(1)).unwrap());
    let audit = assert_clean(&store);
    assert_eq!(audit.receipts, 4);
}

#[test]
fn a_changed_character_is_a_bad_signature_and_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    edit_line(dir.path(), &id(2), |l| {
        l.replace("\"save_note\"", "\"save_nose\"")
    });
    let audit = store.verify_all().unwrap();
    assert_eq!(
        audit.problems,
        vec![
            Problem {
                subject: id(2),
                kind: "bad_signature".into(),
                message: "the signature does not verify".into(),
            },
            Problem {
                subject: id(2),
                kind: "edited".into(),
                message: format!(
                    "changed after the next receipt was chained to it (the prev_hash of {} does not match)",
                    id(3)
                ),
            },
        ]
    );
}

#[test]
fn swapped_field_values_are_a_bad_signature_and_an_edit() {
    let audit = tampered(|dir| {
        edit_value(dir, &id(3), |v| {
            let (a, b) = (v["workflow"].clone(), v["actor_role"].clone());
            v["workflow"] = b;
            v["actor_role"] = a;
        });
    });
    assert_eq!(
        kinds(&audit.problems),
        expect(&[("bad_signature", &id(3)), ("edited", &id(3))])
    );
}

#[test]
fn an_edit_of_the_newest_receipt_is_caught_by_the_head_record() {
    let audit = tampered(|dir| {
        edit_value(dir, &id(5), |v| v["decision"] = json!("BLOCK"));
    });
    assert_eq!(
        kinds(&audit.problems),
        expect(&[("bad_signature", &id(5)), ("edited", &id(5))])
    );
    let edited = audit.problems.iter().find(|p| p.kind == "edited").unwrap();
    assert_eq!(
        edited.message,
        "changed after it was appended: the head record names seq 5 with another chain hash"
    );
}

#[test]
fn a_line_removed_from_the_middle_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    let mut all = lines(dir.path());
    all.remove(2);
    write_lines(dir.path(), &all);
    let audit = store.verify_all().unwrap();
    assert_eq!(
        audit.problems,
        vec![Problem {
            subject: id(3),
            kind: "gap".into(),
            message: "seq 3 follows seq 1: receipts seq 2..2 are missing".into(),
        }]
    );
    // The first ones too.
    all.drain(..2);
    write_lines(dir.path(), &all);
    let audit = store.verify_all().unwrap();
    assert_eq!(kinds(&audit.problems), expect(&[("gap", &id(3))]));
    assert_eq!(
        audit.problems[0].message,
        "seq 3 follows the start: receipts seq 0..2 are missing"
    );
}

#[test]
fn swapped_lines_are_reordered() {
    let audit = tampered(|dir| {
        let mut all = lines(dir);
        all.swap(1, 3);
        write_lines(dir, &all);
    });
    assert_eq!(
        audit.problems,
        vec![
            Problem {
                subject: id(3),
                kind: "reordered".into(),
                message: "out of order: seq 3 stands in the journal where seq 1 belongs".into(),
            },
            Problem {
                subject: id(1),
                kind: "reordered".into(),
                message: "out of order: seq 1 stands in the journal where seq 3 belongs".into(),
            },
        ]
    );
    // Neighbours swapped.
    let audit = tampered(|dir| {
        let mut all = lines(dir);
        all.swap(4, 5);
        write_lines(dir, &all);
    });
    assert_eq!(
        kinds(&audit.problems),
        expect(&[("reordered", &id(4)), ("reordered", &id(5))])
    );
    // One moved to the end: each receipt out of place is named.
    let audit = tampered(|dir| {
        let mut all = lines(dir);
        let moved = all.remove(3);
        all.push(moved);
        write_lines(dir, &all);
    });
    assert_eq!(
        kinds(&audit.problems),
        expect(&[
            ("reordered", &id(3)),
            ("reordered", &id(4)),
            ("reordered", &id(5))
        ])
    );
}

#[test]
fn a_record_found_where_another_run_was_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let running = folder_with(dir.path(), 4);
    // Lines of the same length swapped: the running store still has each run where it was.
    let mut all = lines(dir.path());
    assert_eq!(all[1].len(), all[2].len());
    all.swap(1, 2);
    write_lines(dir.path(), &all);
    let loaded = running.load(&id(1)).unwrap();
    assert_eq!(loaded.value["run_id"], json!(id(2)));
    assert!(receipt::verify(&loaded.value, &mac(KEY)));
    assert!(!loaded.signature_valid, "a valid receipt of another run");
    // A store opened now finds each where it is.
    assert!(open(dir.path()).load(&id(1)).unwrap().signature_valid);
}

#[test]
fn a_receipt_resigned_with_another_key_is_a_bad_signature() {
    let audit = tampered(|dir| {
        edit_value(dir, &id(4), |v| {
            v["payload"]["content"] = json!("rewritten");
            v["signature"] = json!(receipt::sign(v, &mac(OTHER_KEY)));
        });
    });
    assert_eq!(
        kinds(&audit.problems),
        expect(&[("bad_signature", &id(4)), ("edited", &id(4))])
    );
    // Only re-signed (the content unchanged): the chain still holds, the signature does not.
    let audit = tampered(|dir| {
        edit_value(dir, &id(4), |v| {
            v["signature"] = json!(receipt::sign(v, &mac(OTHER_KEY)));
        });
    });
    assert_eq!(
        kinds(&audit.problems),
        expect(&[("bad_signature", &id(4)), ("edited", &id(4))])
    );
}

#[test]
fn a_second_receipt_for_a_run_id_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    let mut all = lines(dir.path());
    all.push(all[2].clone());
    write_lines(dir.path(), &all);
    let audit = store.verify_all().unwrap();
    assert_eq!(
        audit.problems,
        vec![Problem {
            subject: id(2),
            kind: "invalid".into(),
            message: "a second receipt for this run id".into(),
        }]
    );
    // The store keeps the first.
    let fresh = open(dir.path());
    assert_eq!(value_of(&fresh, &id(2))["seq"], json!(2));
    assert_eq!(
        fresh
            .append(receipt(&id(6), "save_note", Decision::Pass))
            .unwrap()
            .seq,
        6
    );
}

#[test]
fn unparsable_lines_are_invalid_and_leave_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    let mut all = lines(dir.path());
    all[2] = all[2][..all[2].len() / 2].to_string();
    all[4] = format!("{},\"seq\":4}}", &all[4][..all[4].len() - 1]);
    write_lines(dir.path(), &all);
    let audit = store.verify_all().unwrap();
    assert_eq!(
        kinds(&audit.problems),
        expect(&[
            ("invalid", &position(dir.path(), 2)),
            ("gap", &id(3)),
            ("invalid", &position(dir.path(), 4)),
            ("gap", &id(5)),
        ])
    );
}

#[test]
fn a_missing_or_forged_head_record_is_bad_head() {
    let audit = tampered(|dir| fs::remove_file(head_file(dir)).unwrap());
    assert_eq!(
        audit.problems,
        vec![Problem {
            subject: "journal/head".into(),
            kind: "bad_head".into(),
            message: "the head record is missing while the journal holds receipts".into(),
        }]
    );
    let audit = tampered(|dir| {
        let text = fs::read_to_string(head_file(dir)).unwrap();
        let forged = text
            .replace("\"seq\":5", "\"seq\":7")
            .replace("\"seq\":4", "\"seq\":6");
        assert_ne!(forged, text);
        fs::write(head_file(dir), forged).unwrap();
    });
    assert_eq!(
        kinds(&audit.problems),
        expect(&[("bad_head", "journal/head")])
    );
    assert_eq!(
        audit.problems[0].message,
        "the head record is not valid: its signature does not verify"
    );
}

#[test]
fn stray_files_are_unknown() {
    let audit = tampered(|dir| {
        fs::write(dir.join("notes.txt"), "hello").unwrap();
        fs::create_dir(dir.join("sub")).unwrap();
        fs::write(dir.join("journal").join("1.log"), "").unwrap();
    });
    assert_eq!(
        kinds(&audit.problems),
        expect(&[
            ("unknown_file", "journal/1.log"),
            ("unknown_file", "notes.txt"),
            ("unknown_file", "sub")
        ])
    );
}

#[test]
fn problems_name_every_tamper_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    edit_value(dir.path(), &id(3), |v| {
        v["actor_email"] = json!("someone@else.com")
    });
    let mut all = lines(dir.path());
    all.remove(5);
    all.remove(1);
    write_lines(dir.path(), &all);
    fs::write(dir.path().join("x.bak"), "").unwrap();
    assert_eq!(
        kinds(&store.verify_all().unwrap().problems),
        expect(&[
            ("gap", &id(2)),
            ("bad_signature", &id(3)),
            ("edited", &id(3)),
            ("truncated", "journal/head"),
            ("unknown_file", "x.bak")
        ])
    );
}

// ---------------------------------------------------------------- truncation

const REPAIR: &str =
    "appends are refused until an operator runs `enact receipts repair --accept-truncation`";

/// The note `verify_all` gives an `ACK_TRUNCATION` record.
fn ack_note(ack: &Value) -> String {
    format!(
        "acknowledged truncation by {} at {} ({}): {}",
        ack["actor_email"].as_str().unwrap(),
        ack["timestamp"].as_str().unwrap(),
        ack["run_id"].as_str().unwrap(),
        ack["lost"]
    )
}

fn truncated_message(why: &str) -> String {
    format!("the receipts chain is truncated or its head record is damaged ({why}); {REPAIR}")
}

#[test]
fn cutting_the_newest_receipts_off_is_truncation_and_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let running = folder_with(dir.path(), 6);
    keep_lines(dir.path(), 4);
    let audit = running.verify_all().unwrap();
    assert_eq!(
        audit.problems,
        vec![Problem {
            subject: "journal/head".into(),
            kind: "truncated".into(),
            message: "the head record names seq 5 but the journal ends at seq 3: the newest receipts were removed".into(),
        }]
    );
    let why = "the head record names seq 5, the journal ends at seq 3";
    // A store opened now, and the store that was running all along, refuse alike.
    for store in [open(dir.path()), running] {
        let err = store
            .append(receipt(&id(6), "save_note", Decision::Pass))
            .unwrap_err();
        assert_eq!(err.to_string(), truncated_message(why));
        assert!(matches!(&err, StoreError::Truncated(w) if w == why));
        assert!(matches!(store.load(&id(5)), Err(StoreError::NotFound(_))));
    }
    assert_eq!(lines(dir.path()).len(), 4);
}

#[test]
fn repair_acknowledges_the_truncation_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    let survivor = receipt::chain_hash(&value_of(&store, &id(3)));
    let lost_head = store.head_hash().unwrap();
    assert_eq!(
        store
            .repair_truncation("ops@company.com", now(), &id(90))
            .unwrap(),
        None,
        "nothing to repair"
    );
    keep_lines(dir.path(), 4);
    let store = open(dir.path());

    let ack = store
        .repair_truncation("ops@company.com", now(), &id(90))
        .unwrap()
        .unwrap();
    assert!(receipt::verify(&ack, &mac(KEY)));
    assert_eq!(ack["kind"], json!("receipt"));
    assert_eq!(ack["run_id"], json!(id(90)));
    assert_eq!(ack["decision"], json!("ACK_TRUNCATION"));
    assert_eq!(ack["actor_email"], json!("ops@company.com"));
    assert_eq!(ack["timestamp"], json!(stamp(now())));
    // The seq after the highest the head record knew: no seq is reused.
    assert_eq!(ack["seq"], json!(6));
    assert_eq!(ack["prev_hash"], json!(survivor));
    assert_eq!(ack["lost"]["from_seq"], json!(4));
    assert_eq!(ack["lost"]["to_seq"], json!(5));
    assert_eq!(ack["lost"]["head_hash"], json!(lost_head));
    assert_eq!(value_of(&store, &id(90)), ack);

    let next = store
        .append(receipt(&id(6), "save_note", Decision::Pass))
        .unwrap();
    assert_eq!(next.seq, 7);
    assert_eq!(next.prev_hash, receipt::chain_hash(&ack));
    let audit = store.verify_all().unwrap();
    assert_eq!(audit.problems, vec![]);
    assert_eq!(audit.notes, vec![ack_note(&ack)]);
    // Once is enough.
    assert_eq!(
        open(dir.path())
            .repair_truncation("ops@company.com", now(), &id(91))
            .unwrap(),
        None
    );
    assert_eq!(
        open(dir.path())
            .append(receipt(&id(7), "save_note", Decision::Pass))
            .unwrap()
            .seq,
        8
    );
}

#[test]
fn cutting_receipts_and_deleting_the_head_never_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let running = folder_with(dir.path(), 6);
    keep_lines(dir.path(), 4);
    fs::remove_file(head_file(dir.path())).unwrap();
    let why = "the head record is missing";
    for store in [open(dir.path()), running] {
        let err = store
            .append(receipt(&id(6), "save_note", Decision::Pass))
            .unwrap_err();
        assert_eq!(err.to_string(), truncated_message(why));
        assert!(matches!(err, StoreError::Truncated(_)));
    }
    assert_eq!(lines(dir.path()).len(), 4);
    assert!(!head_file(dir.path()).exists());
    let audit = open(dir.path()).verify_all().unwrap();
    assert_eq!(
        kinds(&audit.problems),
        expect(&[("bad_head", "journal/head")])
    );
}

#[test]
fn cutting_every_receipt_off_is_truncation_and_repair_acknowledges_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let running = folder_with(dir.path(), 3);
    keep_lines(dir.path(), 0);
    let audit = running.verify_all().unwrap();
    assert_eq!(
        audit.problems,
        vec![Problem {
            subject: "journal/head".into(),
            kind: "truncated".into(),
            message: "the head record names seq 2 but the journal ends at no receipt: the newest receipts were removed".into(),
        }]
    );
    let err = running
        .append(receipt(&id(3), "save_note", Decision::Pass))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        truncated_message("the head record names seq 2, the journal ends at no receipt")
    );
    // Intents are refused too: nothing may run that could not be recorded.
    let err = running
        .append_intent(intent(&id(3), "save_note", json!({}), now()))
        .unwrap_err();
    assert!(matches!(err, StoreError::Truncated(_)));
    let ack = running
        .repair_truncation("ops@company.com", now(), &id(90))
        .unwrap()
        .unwrap();
    assert_eq!(ack["seq"], json!(3));
    assert_eq!(ack["prev_hash"], json!(GENESIS_HASH));
    assert_eq!(ack["lost"]["from_seq"], json!(0));
    assert_eq!(ack["lost"]["to_seq"], json!(2));
    let audit = running.verify_all().unwrap();
    assert_eq!(audit.problems, vec![]);
    assert_eq!(audit.notes, vec![ack_note(&ack)]);
    assert_eq!(
        running
            .append(receipt(&id(3), "save_note", Decision::Pass))
            .unwrap()
            .seq,
        4
    );
}

#[test]
fn repair_without_a_head_record_says_how_many_were_lost_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let survivor = receipt::chain_hash(&value_of(&folder_with(dir.path(), 6), &id(3)));
    keep_lines(dir.path(), 4);
    fs::remove_file(head_file(dir.path())).unwrap();
    let store = open(dir.path());
    let ack = store
        .repair_truncation("ops@company.com", now(), &id(90))
        .unwrap()
        .unwrap();
    assert_eq!(ack["seq"], json!(4));
    assert_eq!(ack["prev_hash"], json!(survivor));
    assert_eq!(
        ack["lost"],
        json!({"from_seq": 4, "to_seq": null, "head_hash": null, "reason": "the head record is missing"})
    );
    assert_eq!(
        store
            .append(receipt(&id(6), "save_note", Decision::Pass))
            .unwrap()
            .seq,
        5
    );
    let audit = store.verify_all().unwrap();
    assert_eq!(audit.problems, vec![]);
    assert_eq!(
        audit.notes,
        vec![format!(
            "acknowledged truncation by ops@company.com at {} ({}): {}",
            stamp(now()),
            id(90),
            r#"{"from_seq":4,"head_hash":null,"reason":"the head record is missing","to_seq":null}"#
        )]
    );
}

#[test]
fn concurrent_repairs_acknowledge_once() {
    let dir = tempfile::tempdir().unwrap();
    drop(folder_with(dir.path(), 6));
    keep_lines(dir.path(), 4);
    let start = Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8u128)
        .map(|i| {
            let (start, path) = (start.clone(), dir.path().to_path_buf());
            std::thread::spawn(move || {
                let store = open(&path);
                start.wait();
                store
                    .repair_truncation("ops@company.com", now(), &id(90 + i))
                    .unwrap()
                    .is_some()
            })
        })
        .collect();
    let acknowledged = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|a| *a)
        .count();
    assert_eq!(acknowledged, 1);
    assert_eq!(lines(dir.path()).len(), 5);
    let audit = open(dir.path()).verify_all().unwrap();
    assert_eq!(audit.problems, vec![]);
    assert_eq!(audit.notes.len(), 1);
}

#[test]
fn repair_refuses_an_invalid_or_used_run_id() {
    let dir = tempfile::tempdir().unwrap();
    drop(folder_with(dir.path(), 3));
    keep_lines(dir.path(), 2);
    let store = open(dir.path());
    let err = store
        .repair_truncation("ops@company.com", now(), "../x")
        .unwrap_err();
    assert_eq!(err.to_string(), "Invalid run_id: '../x'");
    let err = store
        .repair_truncation("ops@company.com", now(), &id(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("run `{}` already has a receipt", id(0))
    );
    assert_eq!(lines(dir.path()).len(), 2);
    assert!(matches!(
        store.append(receipt(&id(5), "save_note", Decision::Pass)),
        Err(StoreError::Truncated(_))
    ));
}

#[test]
fn a_running_store_reads_a_journal_rewritten_under_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let running = folder_with(dir.path(), 6);
    // A receipt removed from the middle: every later record moves.
    let mut all = lines(dir.path());
    all.remove(2);
    write_lines(dir.path(), &all);
    let next = running
        .append(receipt(&id(6), "save_note", Decision::Pass))
        .unwrap();
    assert_eq!(next.seq, 6);
    assert_eq!(
        next.prev_hash,
        receipt::chain_hash(&value_of(&running, &id(5)))
    );
    assert!(matches!(running.load(&id(2)), Err(StoreError::NotFound(_))));
    let fresh = open(dir.path());
    for store in [&running, &fresh] {
        assert_eq!(value_of(store, &id(6))["seq"], json!(6));
        assert_eq!(value_of(store, &id(3))["seq"], json!(3));
    }
    assert_eq!(list(&running, 0, None, None), list(&fresh, 0, None, None));
    // Another store's later appends are seen too.
    fresh
        .append(receipt(&id(7), "save_note", Decision::Pass))
        .unwrap();
    assert_eq!(value_of(&running, &id(7))["seq"], json!(7));
    assert_eq!(
        kinds(&running.verify_all().unwrap().problems),
        expect(&[("gap", &id(3))])
    );
}

#[test]
fn a_damaged_head_record_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 2);
    fs::write(head_file(dir.path()), "garbage").unwrap();
    let err = store
        .append(receipt(&id(2), "save_note", Decision::Pass))
        .unwrap_err();
    assert!(matches!(err, StoreError::Truncated(_)));
    assert!(
        err.to_string()
            .starts_with("the receipts chain is truncated or its head record is damaged (the head record is invalid: "),
        "{err}"
    );
    assert!(err.to_string().ends_with(REPAIR), "{err}");
}

// ---------------------------------------------------------------- hostile folders

#[test]
fn a_fifo_named_like_a_segment_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    // A store running all along, and one opened after the FIFO appeared.
    let store = folder_with(dir.path(), 2);
    let fifo = segment(dir.path(), 2);
    mkfifo(&fifo);
    let path = dir.path().to_path_buf();
    let (opened, appended, verified) = bounded(move || {
        let opened = Store::open(&path, false, Secret::new(KEY)).err();
        let appended = store
            .append(receipt(&id(2), "save_note", Decision::Pass))
            .err();
        (opened, appended, store.verify_all().err())
    });
    let not_regular = format!("`{}` is not a regular file", fifo.display());
    for err in [opened, appended, verified] {
        let err = err.expect("a FIFO segment must be an error");
        assert!(err.to_string().ends_with(&not_regular), "{err}");
    }
}

#[test]
fn a_fifo_as_the_head_record_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    drop(folder_with(dir.path(), 2));
    fs::remove_file(head_file(dir.path())).unwrap();
    mkfifo(&head_file(dir.path()));
    let path = dir.path().to_path_buf();
    let (appended, verified, store) = bounded(move || {
        let store = Store::open(&path, false, Secret::new(KEY)).unwrap();
        let appended = store
            .append(receipt(&id(2), "save_note", Decision::Pass))
            .err();
        let verified = store.verify_all().err();
        (appended, verified, store)
    });
    let not_regular = format!(
        "`{}` is not a regular file",
        head_file(dir.path()).display()
    );
    for err in [appended, verified] {
        let err = err.expect("a FIFO head record must be an error");
        assert!(err.to_string().ends_with(&not_regular), "{err}");
    }
    // Reading the receipts does not need the head record.
    assert!(store.load(&id(1)).unwrap().signature_valid);
    assert_eq!(lines(dir.path()).len(), 2);
}

#[test]
fn a_segment_that_is_a_symlink_to_a_real_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    drop(folder_with(dir.path(), 2));
    let real = dir.path().join("elsewhere.log");
    fs::rename(seg1(dir.path()), &real).unwrap();
    std::os::unix::fs::symlink(&real, seg1(dir.path())).unwrap();
    let path = dir.path().to_path_buf();
    let err = bounded(move || Store::open(&path, false, Secret::new(KEY)).err())
        .expect("a symlinked segment must be an error");
    assert!(
        err.to_string().ends_with(&format!(
            "`{}` is a symlink, which is never followed",
            seg1(dir.path()).display()
        )),
        "{err}"
    );
}

#[test]
fn a_segment_that_is_a_symlink_to_dev_zero_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 2);
    // A new segment, as a store running all along would find it.
    std::os::unix::fs::symlink("/dev/zero", segment(dir.path(), 2)).unwrap();
    let path = dir.path().to_path_buf();
    let (opened, appended, loaded, verified) = bounded(move || {
        let opened = Store::open(&path, false, Secret::new(KEY)).err();
        let appended = store
            .append(receipt(&id(2), "save_note", Decision::Pass))
            .err();
        let loaded = store.load(&id(1)).err();
        (opened, appended, loaded, store.verify_all().err())
    });
    let symlink = format!(
        "`{}` is a symlink, which is never followed",
        segment(dir.path(), 2).display()
    );
    for err in [opened, appended, loaded, verified] {
        let err = err.expect("a symlinked segment must be an error");
        assert!(err.to_string().ends_with(&symlink), "{err}");
    }
    // The first segment itself.
    fs::remove_file(segment(dir.path(), 2)).unwrap();
    fs::remove_file(seg1(dir.path())).unwrap();
    std::os::unix::fs::symlink("/dev/zero", seg1(dir.path())).unwrap();
    let path = dir.path().to_path_buf();
    let err = bounded(move || Store::open(&path, false, Secret::new(KEY)).err())
        .expect("a symlinked segment must be an error");
    assert!(
        err.to_string()
            .contains("is a symlink, which is never followed"),
        "{err}"
    );
}

#[test]
fn a_line_over_16_mib_is_invalid_and_appends_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 2);
    let at = fs::metadata(seg1(dir.path())).unwrap().len();
    let mut huge = vec![b'x'; 17 * 1024 * 1024];
    append_raw(&seg1(dir.path()), &huge);
    huge.clear();
    append_raw(&seg1(dir.path()), b"\n");
    let path = dir.path().to_path_buf();
    let (store, appended, fresh_seq) = bounded(move || {
        let appended = store
            .append(receipt(&id(2), "save_note", Decision::Pass))
            .map(|r| r.seq);
        let fresh = Store::open(&path, false, Secret::new(KEY)).unwrap();
        let fresh_seq = fresh
            .append(receipt(&id(3), "save_note", Decision::Pass))
            .map(|r| r.seq);
        (store, appended, fresh_seq)
    });
    assert_eq!(appended.unwrap(), 2);
    assert_eq!(fresh_seq.unwrap(), 3);
    assert!(store.load(&id(3)).unwrap().signature_valid);
    assert_eq!(store.list(&ListFilter::default()).unwrap().len(), 4);
    let audit = store.verify_all().unwrap();
    assert_eq!(
        audit.problems,
        vec![Problem {
            subject: format!("journal/{:020}.log:{at}", 1),
            kind: "invalid".into(),
            message: "a record over 16 MiB".into(),
        }]
    );
    assert_eq!(audit.receipts, 4);
}

// ---------------------------------------------------------------- a torn last line

#[test]
fn a_torn_last_line_is_cut_at_the_next_append_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 3);
    let at = fs::metadata(seg1(dir.path())).unwrap().len();
    // A crash in the middle of writing a record.
    append_raw(&seg1(dir.path()), br#"{"kind":"receipt","run_id":"0b6f"#);
    let audit = store.verify_all().unwrap();
    assert_eq!(audit.problems, vec![]);
    assert_eq!(
        audit.notes,
        vec![format!(
            "an unfinished line at journal/{:020}.log:{at} (a crash during a write; cut at the next append)",
            1
        )]
    );
    // Readers do not mind it.
    let fresh = open(dir.path());
    assert!(fresh.load(&id(2)).unwrap().signature_valid);
    assert_eq!(fresh.list(&ListFilter::default()).unwrap().len(), 3);

    let next = fresh
        .append(receipt(&id(3), "save_note", Decision::Pass))
        .unwrap();
    assert_eq!(next.seq, 3);
    assert_eq!(
        next.prev_hash,
        receipt::chain_hash(&value_of(&store, &id(2)))
    );
    let all = lines(dir.path());
    assert_eq!(all.len(), 4);
    assert_eq!(line_of(&all, &id(3)), 3);
    assert_clean(&store);
    assert_eq!(
        store
            .append(receipt(&id(4), "save_note", Decision::Pass))
            .unwrap()
            .seq,
        4
    );
}

// ---------------------------------------------------------------- concurrency

#[test]
fn fifty_threads_append_one_contiguous_chain() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(open(dir.path()));
    let start = Arc::new(std::sync::Barrier::new(50));
    let handles: Vec<_> = (0..50u128)
        .map(|i| {
            let (shared, start) = (shared.clone(), start.clone());
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                // Half share one Store, half open their own: both must serialise.
                let own = (i % 2 == 1).then(|| open(&path));
                start.wait();
                own.as_ref()
                    .unwrap_or(&shared)
                    .append(receipt(&id(100 + i), "save_note", Decision::Pass))
                    .unwrap()
                    .seq
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (0..50).collect::<Vec<u64>>());
    assert_eq!(lines(dir.path()).len(), 50);
    let audit = assert_clean(&shared);
    assert_eq!(audit.receipts, 50);
    assert_eq!(shared.list(&ListFilter::default()).unwrap().len(), 50);
}

/// A copy of this test binary running [`child`]: it opens the store, says `ready`, and waits
/// for [`Child::go`] before doing its work, so that processes start at once.
struct Child {
    process: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    seen: String,
}

impl Child {
    fn spawn(mode: &str, dir: &Path, offset: u128) -> Child {
        let mut process = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "store::child", "--nocapture", "--test-threads=1"])
            .env(CHILD_MODE, mode)
            .env(CHILD_DIR, dir)
            .env(CHILD_OFFSET, offset.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(process.stdout.take().unwrap());
        let mut child = Child {
            process,
            stdout,
            seen: String::new(),
        };
        // Blocks until the child is ready (or has exited: then `finish` says why).
        loop {
            let mut line = String::new();
            if child.stdout.read_line(&mut line).unwrap() == 0 {
                break;
            }
            child.seen.push_str(&line);
            if line.trim_end().ends_with(READY) {
                break;
            }
        }
        child
    }

    fn go(&mut self) {
        let mut stdin = self.process.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }

    /// Waits for the child and checks that it ran `child` and succeeded.
    fn finish(mut self) {
        if self.process.stdin.is_some() {
            self.go();
        }
        self.stdout.read_to_string(&mut self.seen).unwrap();
        let status = self.process.wait().unwrap();
        let mut stderr = String::new();
        self.process
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let stdout = &self.seen;
        assert!(status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains(READY),
            "the child never got ready:\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test:\n{stdout}"
        );
    }
}

/// Spawns one child per offset, then lets them all go at once.
fn children(mode: &str, dir: &Path, offsets: &[u128]) -> Vec<Child> {
    let mut all: Vec<Child> = offsets
        .iter()
        .map(|offset| Child::spawn(mode, dir, *offset))
        .collect();
    for child in &mut all {
        child.go();
    }
    all
}

/// Run in child processes by the tests that need a second process; does nothing in a normal
/// test run.
#[test]
fn child() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(CHILD_DIR).unwrap());
    let offset: u128 = std::env::var(CHILD_OFFSET).unwrap().parse().unwrap();
    let store = open(&dir);
    println!("{READY}");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    match mode.as_str() {
        "append" => {
            for i in 0..20 {
                store
                    .append(receipt(&id(offset + i), "save_note", Decision::Pass))
                    .unwrap();
            }
        }
        "gate" => {
            for i in 0..10 {
                gate_below(&store, 5, &id(offset + i));
            }
        }
        "intent" => {
            // A run that this process will never finish: it exits after its second step.
            store
                .append_intent(intent(&id(offset), "save_note", json!({}), now()))
                .unwrap();
            store.append_step(step(&id(offset), 0)).unwrap();
            store.append_step(step(&id(offset), 1)).unwrap();
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn two_processes_append_one_contiguous_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let children = children("append", dir.path(), &[1000, 2000]);
    for i in 0..10 {
        store
            .append(receipt(&id(3000 + i), "save_note", Decision::Pass))
            .unwrap();
    }
    for child in children {
        child.finish();
    }
    let mut seqs: Vec<u64> = store
        .list(&ListFilter::default())
        .unwrap()
        .iter()
        .map(|s| s.seq)
        .collect();
    seqs.sort();
    assert_eq!(seqs, (0..50).collect::<Vec<u64>>());
    assert_eq!(lines(dir.path()).len(), 50);
    assert_eq!(assert_clean(&store).receipts, 50);
}

// ---------------------------------------------------------------- rate limiting

fn query(
    index: usize,
    max: u64,
    window_secs: u64,
    workflows: Option<&[&str]>,
    per: Option<(&str, Value)>,
) -> RateQuery {
    RateQuery {
        index,
        max,
        window_secs,
        workflows: workflows.map(|ws| ws.iter().map(|w| w.to_string()).collect()),
        per: per.map(|(k, v)| (k.to_string(), v)),
    }
}

/// Calls `gate_and_intend` for `actor`; `grant` decides whether the call passes (then with an
/// intent of `workflow` with `args` stamped `at`). Returns the counts `decide` saw and whether
/// an intent was appended.
#[expect(
    clippy::too_many_arguments,
    reason = "a test helper that sets every field of a rate query"
)]
fn gate(
    store: &Store,
    queries: &[RateQuery],
    actor: &str,
    workflow: &str,
    args: Value,
    at: DateTime<Utc>,
    run_id: &str,
    grant: bool,
) -> (RateCounts, bool) {
    let mut seen = None;
    let appended = store
        .gate_and_intend(queries, actor, at, &mut |c| {
            assert!(seen.is_none(), "decide runs once");
            seen = Some(c.clone());
            grant.then(|| {
                let mut fields = intent(run_id, workflow, args.clone(), at);
                fields.insert("actor_email".into(), json!(actor));
                fields
            })
        })
        .unwrap();
    (seen.unwrap(), appended)
}

/// Passes the call (appending its intent) when fewer than `max` runs count in the last hour.
/// The decision takes a few milliseconds, as a gate with many policies may: were counting and
/// appending not one atomic step, concurrent calls would all be deciding at once.
fn gate_below(store: &Store, max: u64, run_id: &str) -> bool {
    store
        .gate_and_intend(&[query(3, max, 3600, None, None)], ACTOR, now(), &mut |c| {
            std::thread::sleep(StdDuration::from_millis(3));
            matches!(c.get(&3), Some(Ok(n)) if *n < max)
                .then(|| intent(run_id, "save_note", json!({}), now()))
        })
        .unwrap()
}

/// The `kind` of every record in the first segment.
fn record_kinds(dir: &Path) -> Vec<String> {
    lines(dir)
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn the_gate_counts_runs_in_flight_and_a_refused_call_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let q = [query(0, 10, 3600, None, None)];
    let w = "w";
    assert_eq!(
        gate(&store, &q, ACTOR, w, json!({}), now(), &id(1), true),
        (BTreeMap::from([(0, Ok(0))]), true)
    );
    // The call being judged never counts itself; the one before, in flight, does.
    assert_eq!(
        gate(&store, &q, ACTOR, w, json!({}), now(), &id(2), true),
        (BTreeMap::from([(0, Ok(1))]), true)
    );
    // A refused call appends nothing.
    assert_eq!(
        gate(&store, &q, ACTOR, w, json!({}), now(), &id(3), false),
        (BTreeMap::from([(0, Ok(2))]), false)
    );
    assert_eq!(
        gate(&store, &q, ACTOR, w, json!({}), now(), &id(4), false).0,
        BTreeMap::from([(0, Ok(2))])
    );
    assert_eq!(record_kinds(dir.path()), vec!["intent", "intent"]);
    let written = serde_json::from_str::<Value>(&lines(dir.path())[0]).unwrap();
    assert!(receipt::verify(&written, &mac(KEY)));
    assert_eq!(written["run_id"], json!(id(1)));
    assert!(written["owner"].is_string());

    // Its PASS receipt takes the place of run 1's intent: still two.
    let mut r = receipt(&id(1), w, Decision::Pass);
    r.timestamp = stamp(now());
    store.append(r).unwrap();
    assert_eq!(store.count_runs(&q[0], ACTOR, now()).unwrap(), 2);
    // A run that ends in a BLOCK receipt (cancelled after its intent) no longer counts.
    let mut r = receipt(&id(2), w, Decision::Block);
    r.timestamp = stamp(now());
    store.append(r).unwrap();
    assert_eq!(store.count_runs(&q[0], ACTOR, now()).unwrap(), 1);

    // With no queries, `decide` alone answers.
    assert_eq!(
        gate(&store, &[], ACTOR, w, json!({}), now(), &id(5), true),
        (BTreeMap::new(), true)
    );
    assert_eq!(store.count_runs(&q[0], ACTOR, now()).unwrap(), 2);
    // Counts survive a restart: intents are in the journal.
    assert_eq!(open(dir.path()).count_runs(&q[0], ACTOR, now()).unwrap(), 2);
}

#[test]
fn intents_count_inside_the_window_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let q = [query(0, 10, 3600, None, None)];
    gate(&store, &q, ACTOR, "w", json!({}), now(), &id(1), true);
    let at = |minutes| now() + Duration::minutes(minutes);
    assert_eq!(store.count_runs(&q[0], ACTOR, at(59)).unwrap(), 1);
    assert_eq!(store.count_runs(&q[0], ACTOR, at(60)).unwrap(), 0);
    assert_eq!(
        gate(&store, &q, ACTOR, "w", json!({}), at(61), &id(2), false).0,
        BTreeMap::from([(0, Ok(0))])
    );
    let long = query(0, 10, 2 * 3600, None, None);
    assert_eq!(store.count_runs(&long, ACTOR, at(61)).unwrap(), 1);
}

#[test]
fn counting_respects_actor_window_scope_per_and_rollbacks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = ACTOR;
    let add = |n: u128,
               actor: &str,
               workflow: &str,
               decision: Decision,
               minutes_ago: i64,
               args: Value,
               rollback_of: Option<String>| {
        let mut r = receipt(&id(n), workflow, decision);
        r.actor_email = actor.into();
        r.timestamp = stamp(now() - Duration::minutes(minutes_ago));
        r.payload = args;
        r.rollback_of = rollback_of;
        store.append(r).unwrap();
    };
    add(1, a, "w1", Decision::Pass, 10, json!({"repo": "x"}), None); // counts everywhere
    add(
        2,
        "other@company.com",
        "w1",
        Decision::Pass,
        10,
        json!({"repo": "x"}),
        None,
    ); // another actor
    add(3, a, "w1", Decision::Block, 10, json!({"repo": "x"}), None); // blocked
    add(4, a, "w1", Decision::Pass, 120, json!({"repo": "x"}), None); // outside 1h, inside 3h
    add(
        5,
        a,
        "rollback:w1",
        Decision::Pass,
        10,
        json!({"original_run_id": id(1)}),
        Some(id(1)),
    ); // a rollback
    add(6, a, "w2", Decision::Pass, 10, json!({"repo": "x"}), None); // another workflow
    add(7, a, "w1", Decision::Pass, 10, json!({"repo": "y"}), None); // another per value
    add(8, a, "w1", Decision::Pass, 10, json!({"repo": 5.0}), None); // numeric per value
    add(10, a, "w1", Decision::Pass, 60, json!({"repo": "x"}), None); // exactly at the window edge: out

    let queries = [
        query(0, 99, 3600, None, None),
        query(1, 99, 3600, Some(&["w1"]), None),
        query(2, 99, 3600, None, Some(("repo", json!("x")))),
        query(3, 99, 3 * 3600, None, None),
        query(4, 99, 3600, Some(&["w2", "w3"]), None),
        query(5, 99, 3600, None, Some(("repo", json!(5)))),
        query(6, 99, 3600, None, Some(("branch", Value::Null))),
    ];
    // The running store and one opened now count alike.
    let fresh = open(dir.path());
    let expected = BTreeMap::from([
        (0, Ok(4)), // 1, 6, 7, 8
        (1, Ok(3)), // 1, 7, 8
        (2, Ok(2)), // 1, 6
        (3, Ok(6)), // 1, 4, 6, 7, 8, 10
        (4, Ok(1)), // 6
        (5, Ok(1)), // 8
        (6, Ok(4)), // no `branch` anywhere: absent equals null
    ]);
    let (seen, _) = gate(
        &fresh,
        &queries,
        a,
        "w1",
        json!({"repo": "x"}),
        now(),
        &id(50),
        false,
    );
    assert_eq!(seen, expected);
    for q in &queries {
        for store in [&store, &fresh] {
            assert_eq!(
                Ok(store.count_runs(q, a, now()).unwrap()),
                expected[&q.index],
                "query {}",
                q.index
            );
        }
    }
    let other = fresh
        .count_runs(&queries[0], "other@company.com", now())
        .unwrap();
    assert_eq!(other, 1);

    // An intent counts like a receipt, with the same criteria.
    gate(
        &fresh,
        &queries,
        a,
        "w2",
        json!({"repo": "x"}),
        now(),
        &id(51),
        true,
    );
    // A rollback's intent does not count.
    let mut rollback = intent(
        &id(52),
        "rollback:w1",
        json!({"original_run_id": id(1)}),
        now(),
    );
    rollback.insert("rollback_of".into(), json!(id(1)));
    fresh.append_intent(rollback).unwrap();
    // Nor does another actor's.
    let mut theirs = intent(&id(53), "w1", json!({"repo": "x"}), now());
    theirs.insert("actor_email".into(), json!("other@company.com"));
    fresh.append_intent(theirs).unwrap();
    let (seen, _) = gate(
        &fresh,
        &queries,
        a,
        "w1",
        json!({"repo": "x"}),
        now(),
        &id(54),
        false,
    );
    assert_eq!(
        seen,
        BTreeMap::from([
            (0, Ok(5)),
            (1, Ok(3)),
            (2, Ok(3)),
            (3, Ok(7)),
            (4, Ok(2)),
            (5, Ok(1)),
            (6, Ok(5))
        ])
    );
    // The running store reads the other store's intents from the tail.
    let (running, _) = gate(
        &store,
        &queries,
        a,
        "w1",
        json!({"repo": "x"}),
        now(),
        &id(56),
        false,
    );
    assert_eq!(running, seen);
    // `per` compares by JCS for intents too: 5 equals 5.0.
    gate(
        &fresh,
        &queries,
        a,
        "w1",
        json!({"repo": 5}),
        now(),
        &id(55),
        true,
    );
    assert_eq!(fresh.count_runs(&queries[5], a, now()).unwrap(), 2);
    assert_eq!(
        fresh
            .count_runs(
                &query(7, 99, 3600, None, Some(("repo", json!(5.0)))),
                a,
                now()
            )
            .unwrap(),
        2
    );
}

#[test]
fn a_receipt_whose_signature_fails_makes_rate_counts_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let running = folder_with(dir.path(), 3);
    let queries = [
        query(0, 99, 3600, None, None),
        query(1, 99, 3600, None, Some(("path", json!("a.txt")))),
    ];
    let uncountable = |n: usize| {
        format!(
            "the receipts journal holds {n} receipt(s) whose signature does not verify, so earlier runs cannot be counted — run `enact receipts verify`"
        )
    };
    let fails_closed = |store: &Store, n: usize| {
        let (seen, _) = gate(
            store,
            &queries,
            ACTOR,
            "w",
            json!({}),
            now(),
            &id(50),
            false,
        );
        assert_eq!(
            seen,
            BTreeMap::from([(0, Err(uncountable(n))), (1, Err(uncountable(n)))])
        );
        for q in &queries {
            let err = store.count_runs(q, ACTOR, now()).unwrap_err();
            assert!(matches!(err, StoreError::Uncountable(_)));
            // `enact_preview` says what the gate says.
            assert_eq!(err.to_string(), uncountable(n));
        }
    };
    // Re-signed in place with another key: a store opened now cannot tell whether it counts.
    edit_value(dir.path(), &id(1), |v| {
        v["signature"] = json!(receipt::sign(v, &mac(OTHER_KEY)));
    });
    fails_closed(&open(dir.path()), 1);
    // The running store verified it when it was appended (an edit in place never lowers
    // its counts), but a receipt another process appends with another key stops it too.
    assert_eq!(running.count_runs(&queries[0], ACTOR, now()).unwrap(), 0);
    let mut forged = receipt(&id(11), "w", Decision::Pass);
    forged.kind = "receipt".into();
    forged.timestamp = stamp(now());
    forged.seq = 3;
    forged.sign(&mac(OTHER_KEY)).unwrap();
    let mut line = serde_json::to_vec(&forged.to_value().unwrap()).unwrap();
    line.push(b'\n');
    append_raw(&seg1(dir.path()), &line);
    fails_closed(&running, 1);
    fails_closed(&open(dir.path()), 2);
}

#[test]
fn twenty_threads_cannot_overshoot_a_limit_of_five() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let start = Arc::new(std::sync::Barrier::new(20));
    let handles: Vec<_> = (0..20u128)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                // A few share one Store, the others open their own; all start at once.
                let own = (i % 4 != 0).then(|| open(&path));
                start.wait();
                gate_below(own.as_ref().unwrap_or(&store), 5, &id(500 + i))
            })
        })
        .collect();
    let granted = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|g| *g)
        .count();
    assert_eq!(granted, 5);
    assert_eq!(record_kinds(dir.path()), vec!["intent"; 5]);
    assert_eq!(
        store
            .count_runs(&query(3, 5, 3600, None, None), ACTOR, now())
            .unwrap(),
        5
    );
}

#[test]
fn two_processes_cannot_overshoot_a_limit_of_five() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let children = children("gate", dir.path(), &[1000, 2000, 4000]);
    for i in 0..10 {
        gate_below(&store, 5, &id(3000 + i));
    }
    for child in children {
        child.finish();
    }
    assert_eq!(record_kinds(dir.path()), vec!["intent"; 5]);
    assert_eq!(
        store
            .count_runs(&query(3, 5, 3600, None, None), ACTOR, now())
            .unwrap(),
        5
    );
}

// ---------------------------------------------------------------- interrupted runs

/// Checks one interrupted run: its intent and `steps` step records, signed, of `owner`.
fn assert_interrupted(run: &enact::store::Interrupted, run_id: &str, steps: u64) {
    assert_eq!(run.run_id, run_id);
    assert_eq!(run.intent["kind"], json!("intent"));
    assert_eq!(run.intent["run_id"], json!(run_id));
    assert_eq!(run.intent["owner"], json!(run.owner));
    assert_eq!(run.intent["workflow"], json!("save_note"));
    assert!(receipt::verify(&run.intent, &mac(KEY)));
    assert_eq!(run.steps.len() as u64, steps);
    for (i, s) in run.steps.iter().enumerate() {
        assert_eq!(s["kind"], json!("step"));
        assert_eq!(s["run_id"], json!(run_id));
        assert_eq!(s["index"], json!(i));
        assert_eq!(s["pre"], json!({"existed": false}));
        assert!(receipt::verify(s, &mac(KEY)));
    }
}

fn owner_lock(dir: &Path, owner: &str) -> PathBuf {
    dir.join("owners").join(format!("{owner}.lock"))
}

#[test]
fn a_run_of_a_dropped_store_is_interrupted_until_its_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let gone = open(dir.path());
    gone.append_intent(intent(&id(1), "save_note", json!({}), now()))
        .unwrap();
    gone.append_step(step(&id(1), 0)).unwrap();
    gone.append_step(step(&id(1), 1)).unwrap();
    // A finished run of the same owner is not interrupted.
    gone.append_intent(intent(&id(2), "save_note", json!({}), now()))
        .unwrap();
    gone.append(receipt(&id(2), "save_note", Decision::Pass))
        .unwrap();
    drop(gone);

    let recovering = open(dir.path());
    let (runs, claims) = recovering.interrupted().unwrap();
    assert_eq!(runs.len(), 1);
    assert_interrupted(&runs[0], &id(1), 2);
    let owner = runs[0].owner.clone();
    assert!(owner_lock(dir.path(), &owner).exists());

    // While its claims are held, another recovery leaves the run alone.
    let other = open(dir.path());
    assert_eq!(other.interrupted().unwrap().0.len(), 0);
    // Released with the run still open: the run is someone else's to recover again.
    recovering.release_claims(claims);
    assert!(owner_lock(dir.path(), &owner).exists());
    let (runs, claims) = other.interrupted().unwrap();
    assert_eq!(runs.len(), 1);
    assert_interrupted(&runs[0], &id(1), 2);

    let mut r = receipt(&id(1), "save_note", Decision::Pass);
    r.interrupted = true;
    let written = other.append(r).unwrap();
    assert_eq!(value_of(&other, &id(1))["interrupted"], json!(true));
    assert_eq!(written.seq, 1);
    other.release_claims(claims);
    // The owner has no open run left: its lock file goes.
    assert!(!owner_lock(dir.path(), &owner).exists());
    assert_eq!(recovering.interrupted().unwrap().0.len(), 0);
    assert_eq!(open(dir.path()).interrupted().unwrap().0.len(), 0);
    assert_clean(&other);
}

#[test]
fn a_run_of_a_process_that_exited_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    Child::spawn("intent", dir.path(), 7).finish();
    let store = open(dir.path());
    let (runs, claims) = store.interrupted().unwrap();
    assert_eq!(runs.len(), 1);
    assert_interrupted(&runs[0], &id(7), 2);
    let mut r = receipt(&id(7), "save_note", Decision::Pass);
    r.interrupted = true;
    store.append(r).unwrap();
    store.release_claims(claims);
    assert_eq!(store.interrupted().unwrap().0.len(), 0);
}

#[test]
fn a_run_of_a_live_owner_is_not_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let live = open(dir.path());
    live.append_intent(intent(&id(1), "save_note", json!({}), now()))
        .unwrap();
    live.append_step(step(&id(1), 0)).unwrap();
    // Neither another store (of this or another process) nor the owner itself recovers it.
    let other = open(dir.path());
    let (runs, _claims) = other.interrupted().unwrap();
    assert_eq!(runs.len(), 0);
    let (runs, _claims) = live.interrupted().unwrap();
    assert_eq!(runs.len(), 0);
    // Once the owner is gone, it is.
    drop(live);
    let (runs, _claims) = other.interrupted().unwrap();
    assert_eq!(runs.len(), 1);
    assert_interrupted(&runs[0], &id(1), 1);
}

// ---------------------------------------------------------------- migration

/// A folder in the earlier layout: `<run_id>.json` files, pretty-printed, chained by seq and
/// prev_hash and signed without `kind`, as the earlier store wrote them. Returns the values.
fn legacy_folder(dir: &Path, n: u128) -> Vec<Value> {
    let mut prev = GENESIS_HASH.to_string();
    let mut values = Vec::new();
    for i in 0..n {
        let mut r = receipt(&id(i), "save_note", Decision::Pass);
        r.seq = i as u64;
        r.prev_hash = prev.clone();
        r.sign(&mac(KEY)).unwrap();
        let value = r.to_value().unwrap();
        assert!(value.get("kind").is_none());
        prev = receipt::chain_hash(&value);
        let mut text = serde_json::to_string_pretty(&r).unwrap();
        text.push('\n');
        fs::write(dir.join(format!("{}.json", id(i))), text).unwrap();
        values.push(value);
    }
    fs::write(dir.join(".head.json"), "{}").unwrap();
    fs::write(dir.join(".index.jsonl"), "{}\n").unwrap();
    fs::create_dir(dir.join(".pending")).unwrap();
    values
}

#[test]
fn a_legacy_folder_is_refused_until_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let values = legacy_folder(dir.path(), 4);
    let err = Store::open(dir.path(), false, Secret::new(KEY))
        .err()
        .unwrap();
    let canonical = fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "receipts folder `{}` holds receipts in the earlier layout (one file per run): run `enact receipts migrate` first",
            canonical.display()
        )
    );
    assert!(matches!(err, StoreError::Legacy(_)));
    assert!(!dir.path().join("journal").exists());

    assert_eq!(
        Store::migrate(dir.path(), true, Secret::new(KEY)).unwrap(),
        4
    );
    let store = open(dir.path());
    for (i, v) in values.iter().enumerate() {
        let loaded = store.load(&id(i as u128)).unwrap();
        assert!(loaded.signature_valid);
        assert_eq!(&loaded.value, v);
    }
    let newest = receipt::chain_hash(&values[3]);
    assert_eq!(store.head_hash().unwrap(), newest);
    let audit = assert_clean(&store);
    assert_eq!(audit.receipts, 4);
    assert_eq!(audit.head_hash, newest);
    // The files were moved aside, with the earlier layout's own.
    for i in 0..4 {
        assert!(!dir.path().join(format!("{}.json", id(i))).exists());
        assert!(
            dir.path()
                .join("migrated")
                .join(format!("{}.json", id(i)))
                .exists()
        );
    }
    assert!(dir.path().join("migrated/.head.json").exists());
    assert!(!dir.path().join(".pending").exists());

    let next = store
        .append(receipt(&id(4), "save_note", Decision::Pass))
        .unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(next.prev_hash, newest);
    assert_clean(&store);
    // Migrating again imports nothing.
    assert_eq!(
        Store::migrate(dir.path(), false, Secret::new(KEY)).unwrap(),
        0
    );
    assert_eq!(lines(dir.path()).len(), 5);
}

// ---------------------------------------------------------------- rollbacks

#[test]
fn rollbacks_of_lists_validly_signed_rollback_receipts_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 2);
    assert_eq!(store.rollbacks_of(&id(0)).unwrap().len(), 0);
    for (n, decision) in [
        (10, Decision::Partial),
        (11, Decision::Pass),
        (12, Decision::Pass),
    ] {
        let mut r = receipt(&id(n), "rollback:save_note", decision);
        r.rollback_of = Some(id(0));
        store.append(r).unwrap();
    }
    let mut other = receipt(&id(13), "rollback:save_note", Decision::Pass);
    other.rollback_of = Some(id(1));
    store.append(other).unwrap();
    edit_value(dir.path(), &id(12), |v| {
        v["signature"] = json!(receipt::sign(v, &mac(OTHER_KEY)));
    });

    let found = |store: &Store| -> Vec<(String, String)> {
        store
            .rollbacks_of(&id(0))
            .unwrap()
            .into_iter()
            .map(|(r, d, v)| {
                assert_eq!(v["run_id"], json!(r));
                assert_eq!(v["rollback_of"], json!(id(0)));
                (r, d.as_str().to_string())
            })
            .collect()
    };
    let expected = vec![
        (id(10), "PARTIAL".to_string()),
        (id(11), "PASS".to_string()),
    ];
    // The running store reads each record itself; a store opened now never indexed it.
    assert_eq!(found(&store), expected);
    assert_eq!(found(&open(dir.path())), expected);
    // Seen by another store too, as soon as it is appended.
    let reader = open(dir.path());
    let mut r = receipt(&id(14), "rollback:save_note", Decision::Pass);
    r.rollback_of = Some(id(0));
    store.append(r).unwrap();
    assert_eq!(found(&reader).len(), 3);
}

#[test]
fn a_rollback_lock_excludes_a_second_holder_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(folder_with(dir.path(), 1));
    let guard = store.lock_rollback(&id(0)).unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let path = dir.path().to_path_buf();
        std::thread::spawn(move || {
            // Another Store on the same folder, as another process would have.
            let other = open(&path);
            let _second = other.lock_rollback(&id(0)).unwrap();
            tx.send(()).unwrap();
        })
    };
    // Another run's lock is independent.
    drop(store.lock_rollback(&id(1)).unwrap());
    assert_eq!(
        rx.recv_timeout(StdDuration::from_millis(300)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "the second holder got the lock while the first held it"
    );
    drop(guard);
    rx.recv_timeout(BOUND).unwrap();
    waiter.join().unwrap();
    // The lock files live in the store's own folder, which the audit ignores.
    assert_clean(&store);
}

/// The signing key for a secret, as the store keys it.
fn mac(secret: &str) -> enact::kernel::receipt::MacKey {
    enact::kernel::receipt::MacKey::new(secret.as_bytes()).unwrap()
}
