//! Integration tests: the receipts folder (SPEC §5.3–5.4, rate counting of §4).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use enact::kernel::policy::{Decision, PolicyResult, RateQuery};
use enact::kernel::receipt::{self, ActionRecord, GENESIS_HASH, Receipt};
use enact::secret::Secret;
use enact::store::{ListFilter, Problem, Store, StoreError, Summary};
use serde_json::{Map, Value, json};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const OTHER_KEY: &str = "another key that is long enough!!";
const CHILD_ENV: &str = "ENACT_TEST_STORE_CHILD_DIR";

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
        run_id: run_id.into(),
        workflow: workflow.into(),
        actor_email: "agent@company.com".into(),
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
        seq: 999,
        prev_hash: "garbage".into(),
        signature: String::new(),
    }
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

fn file(dir: &Path, run_id: &str) -> std::path::PathBuf {
    dir.join(format!("{run_id}.json"))
}

fn read_value(dir: &Path, run_id: &str) -> Value {
    serde_json::from_str(&fs::read_to_string(file(dir, run_id)).unwrap()).unwrap()
}

fn write_value(dir: &Path, run_id: &str, value: &Value) {
    fs::write(
        file(dir, run_id),
        serde_json::to_string_pretty(value).unwrap(),
    )
    .unwrap();
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

// ---------------------------------------------------------------- append / load

#[test]
fn append_then_load_round_trips_with_the_spec_file_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let written = store
        .append(receipt(&id(1), "save_note", Decision::Pass))
        .unwrap();
    assert_eq!(written.seq, 0);
    assert_eq!(written.prev_hash, GENESIS_HASH);
    assert!(receipt::verify(&written.to_value(), KEY.as_bytes()));

    let expected = format!(
        r#"{{
  "run_id": "{run_id}",
  "workflow": "save_note",
  "actor_email": "agent@company.com",
  "actor_role": "engineer",
  "payload": {{
    "content": "hi",
    "path": "a.txt"
  }},
  "policy_results": [
    {{
      "policy": "no_delete_file",
      "passed": true,
      "reason": "no delete_file is planned"
    }}
  ],
  "decision": "PASS",
  "actions_taken": [
    {{
      "action": "write_file",
      "system": "files",
      "success": true,
      "output": {{
        "already_done": false,
        "path": "a.txt"
      }},
      "rollback_data": {{
        "existed": false
      }},
      "target": {{
        "root": "/w",
        "type": "filesystem"
      }},
      "args": {{}}
    }}
  ],
  "timestamp": "2026-11-26T01:02:03.456789Z",
  "rollback_of": null,
  "plan": [],
  "policy_set_hash": "00",
  "seq": 0,
  "prev_hash": "{GENESIS_HASH}",
  "signature": "{signature}"
}}
"#,
        run_id = id(1),
        signature = written.signature,
    );
    assert_eq!(
        fs::read_to_string(file(dir.path(), &id(1))).unwrap(),
        expected
    );

    let loaded = store.load(&id(1)).unwrap();
    assert!(loaded.signature_valid);
    assert_eq!(loaded.value, written.to_value());
}

#[test]
fn appends_link_seq_and_prev_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 4);
    for i in 0..4u128 {
        let v = store.load(&id(i)).unwrap().value;
        assert_eq!(v["seq"], json!(i as u64));
        let prev = if i == 0 {
            GENESIS_HASH.to_string()
        } else {
            receipt::chain_hash(&store.load(&id(i - 1)).unwrap().value)
        };
        assert_eq!(v["prev_hash"], json!(prev));
    }
    assert_eq!(store.verify_all().unwrap(), vec![]);
}

#[test]
fn appending_works_with_fsync_on_and_off_and_survives_reopening() {
    for fsync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&dir.path().join("nested/receipts"), fsync, Secret::new(KEY)).unwrap();
        store.append(receipt(&id(1), "a", Decision::Pass)).unwrap();
        store.append(receipt(&id(2), "a", Decision::Block)).unwrap();
        drop(store);
        let store =
            Store::open(&dir.path().join("nested/receipts"), fsync, Secret::new(KEY)).unwrap();
        assert_eq!(
            store
                .append(receipt(&id(3), "a", Decision::Pass))
                .unwrap()
                .seq,
            2
        );
        assert!(store.load(&id(3)).unwrap().signature_valid);
        assert_eq!(store.verify_all().unwrap(), vec![]);
        // No temporary files left behind.
        let names: Vec<String> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp-")), "{names:?}");
    }
}

#[test]
fn appending_an_existing_run_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 1);
    let err = store
        .append(receipt(&id(0), "again", Decision::Pass))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "receipt `{}` is invalid: a receipt with this run_id already exists",
            id(0)
        )
    );
    assert_eq!(
        store.load(&id(0)).unwrap().value["workflow"],
        json!("save_note")
    );
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
        assert_eq!(store.rollbacks_of(bad).unwrap_err().to_string(), expected);
        assert_eq!(store.lock_rollback(bad).unwrap_err().to_string(), expected);
        assert!(matches!(store.load(bad), Err(StoreError::InvalidRunId(s)) if s == bad));
    }
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
}

#[test]
fn duplicate_json_keys_make_a_receipt_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 1);
    let text = fs::read_to_string(file(dir.path(), &id(0))).unwrap();
    // A second `workflow` at the end: serde_json alone would silently keep it.
    let tampered = text.replacen("\n}", ",\n  \"workflow\": \"other\"\n}", 1);
    fs::write(file(dir.path(), &id(0)), &tampered).unwrap();
    let line = tampered.lines().count() - 1;
    let err = store.load(&id(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "receipt `{}` is invalid: duplicate key `workflow` at line {line} column 12",
            id(0)
        )
    );
    assert!(matches!(err, StoreError::Invalid { .. }));
}

#[test]
fn a_receipt_under_another_name_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 1);
    fs::copy(file(dir.path(), &id(0)), file(dir.path(), &id(5))).unwrap();
    let err = store.load(&id(5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "receipt `{}` is invalid: its signed run_id is `{}`, not the file name",
            id(5),
            id(0)
        )
    );
}

#[test]
fn a_tampered_receipt_loads_with_signature_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 1);
    let mut v = read_value(dir.path(), &id(0));
    v["payload"]["content"] = json!("changed");
    write_value(dir.path(), &id(0), &v);
    let loaded = store.load(&id(0)).unwrap();
    assert!(!loaded.signature_valid);
    assert_eq!(loaded.value["payload"]["content"], json!("changed"));
}

// ---------------------------------------------------------------- listing and the index

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
        actor_email: "agent@company.com".into(),
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
        json!({"run_id": id(9), "workflow": "rollback:a", "actor_email": "agent@company.com", "decision": "PARTIAL",
               "timestamp": "2026-11-26T01:02:03.456789Z", "rollback_of": id(0)})
    );
}

#[test]
fn a_deleted_or_damaged_index_is_rebuilt_with_the_same_listing() {
    let dir = tempfile::tempdir().unwrap();
    let store = listing_folder(dir.path());
    let before = list(&store, 0, None, None);
    let index = dir.path().join(".index.jsonl");
    assert_eq!(fs::read_to_string(&index).unwrap().lines().count(), 6);

    fs::remove_file(&index).unwrap();
    assert_eq!(list(&store, 0, None, None), before);
    assert_eq!(fs::read_to_string(&index).unwrap().lines().count(), 6);

    fs::write(&index, "{not json\n").unwrap();
    assert_eq!(list(&store, 0, None, None), before);

    // A rebuilt index does not disturb the chain: the next append continues it.
    fs::remove_file(&index).unwrap();
    assert_eq!(
        store
            .append(receipt(&id(20), "a", Decision::Pass))
            .unwrap()
            .seq,
        6
    );
    assert_eq!(store.verify_all().unwrap(), vec![]);
    assert_eq!(
        list(&store, 1, None, None),
        vec![summary(20, "a", "PASS", 6)]
    );
}

#[test]
fn a_stale_index_is_noticed_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = listing_folder(dir.path());
    fs::remove_file(file(dir.path(), &id(3))).unwrap();
    // A folder named like a receipt neither breaks listing nor shows up in it.
    fs::create_dir(file(dir.path(), &id(40))).unwrap();
    let ids: Vec<String> = list(&store, 0, None, None)
        .into_iter()
        .map(|s| s.run_id)
        .collect();
    assert_eq!(ids, vec![id(9), id(4), id(2), id(1), id(0)]);
}

#[test]
fn an_interrupted_append_never_reuses_a_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 3);
    // Simulate a crash after the receipt was written but before the head record was: put the
    // head record of seq 2 back, and a torn index line.
    let head = dir.path().join(".head.json");
    let index = dir.path().join(".index.jsonl");
    let (old_head, old_index) = (fs::read(&head).unwrap(), fs::read(&index).unwrap());
    store
        .append(receipt(&id(3), "save_note", Decision::Pass))
        .unwrap();
    fs::write(&head, old_head).unwrap();
    let mut index_text = old_index;
    index_text.extend_from_slice(b"{\"partial");
    fs::write(&index, index_text).unwrap();
    assert_eq!(
        kinds(&store.verify_all().unwrap()),
        expect(&[("bad_head", ".head.json")])
    );
    assert_eq!(
        store
            .append(receipt(&id(4), "save_note", Decision::Pass))
            .unwrap()
            .seq,
        4
    );
    assert_eq!(store.verify_all().unwrap(), vec![]);
}

// ---------------------------------------------------------------- verify_all: tamper corpus

/// Builds a clean folder of six receipts (seq 0..5), applies `tamper`, and returns the
/// problems found as (kind, subject).
fn tampered(tamper: impl FnOnce(&Path)) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    assert_eq!(store.verify_all().unwrap(), vec![]);
    tamper(dir.path());
    kinds(&store.verify_all().unwrap())
}

#[test]
fn a_clean_folder_has_no_problems() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(open(dir.path()).verify_all().unwrap(), vec![]);
    fs::write(dir.path().join(".gitkeep"), "").unwrap();
    let store = folder_with(dir.path(), 3);
    store.load(&id(1)).unwrap();
    store.list(&ListFilter::default()).unwrap();
    assert_eq!(store.verify_all().unwrap(), vec![]);
}

#[test]
fn a_changed_character_is_a_bad_signature_and_an_edit() {
    let found = tampered(|dir| {
        let text = fs::read_to_string(file(dir, &id(2))).unwrap();
        fs::write(
            file(dir, &id(2)),
            text.replace("\"save_note\"", "\"save_nose\""),
        )
        .unwrap();
    });
    assert_eq!(
        found,
        expect(&[("bad_signature", &id(2)), ("edited", &id(2))])
    );
}

#[test]
fn swapped_field_values_are_a_bad_signature_and_an_edit() {
    let found = tampered(|dir| {
        let mut v = read_value(dir, &id(3));
        let (a, b) = (v["workflow"].clone(), v["actor_role"].clone());
        v["workflow"] = b;
        v["actor_role"] = a;
        write_value(dir, &id(3), &v);
    });
    assert_eq!(
        found,
        expect(&[("bad_signature", &id(3)), ("edited", &id(3))])
    );
}

#[test]
fn an_edit_of_the_newest_receipt_is_caught_by_the_head_record() {
    let found = tampered(|dir| {
        let mut v = read_value(dir, &id(5));
        v["decision"] = json!("BLOCK");
        write_value(dir, &id(5), &v);
    });
    assert_eq!(
        found,
        expect(&[("bad_signature", &id(5)), ("edited", &id(5))])
    );
}

#[test]
fn a_receipt_removed_from_the_middle_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    fs::remove_file(file(dir.path(), &id(2))).unwrap();
    let problems = store.verify_all().unwrap();
    assert_eq!(
        problems,
        vec![Problem {
            subject: id(3),
            kind: "gap".into(),
            message: format!(
                "seq 2 is missing between `{}` (seq 1) and `{}` (seq 3)",
                id(1),
                id(3)
            ),
        }]
    );
    fs::remove_file(file(dir.path(), &id(0))).unwrap();
    fs::remove_file(file(dir.path(), &id(1))).unwrap();
    let problems = store.verify_all().unwrap();
    assert_eq!(
        problems[0].message,
        format!("seqs 0 to 2 are missing before `{}` (seq 3)", id(3))
    );
    assert_eq!(kinds(&problems), expect(&[("gap", &id(3))]));
}

#[test]
fn removing_the_newest_receipts_is_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 6);
    fs::remove_file(file(dir.path(), &id(5))).unwrap();
    fs::remove_file(file(dir.path(), &id(4))).unwrap();
    let problems = store.verify_all().unwrap();
    assert_eq!(
        problems,
        vec![Problem {
            subject: id(5),
            kind: "truncated".into(),
            message: format!(
                "seqs 4 to 5 are missing after `{}` (seq 3): the head record names `{}` (seq 5) as the newest receipt",
                id(3),
                id(5)
            ),
        }]
    );
    // Later appends continue from the head record, so the removal stays visible as a gap.
    store
        .append(receipt(&id(6), "save_note", Decision::Pass))
        .unwrap();
    assert_eq!(
        kinds(&store.verify_all().unwrap()),
        expect(&[("gap", &id(6))])
    );
}

#[test]
fn removing_every_receipt_is_truncation() {
    let found = tampered(|dir| {
        for i in 0..6 {
            fs::remove_file(file(dir, &id(i))).unwrap();
        }
    });
    assert_eq!(found, expect(&[("truncated", &id(5))]));
}

#[test]
fn swapped_file_contents_are_reordered() {
    let found = tampered(|dir| {
        let (a, b) = (
            fs::read(file(dir, &id(1))).unwrap(),
            fs::read(file(dir, &id(3))).unwrap(),
        );
        fs::write(file(dir, &id(1)), b).unwrap();
        fs::write(file(dir, &id(3)), a).unwrap();
    });
    assert_eq!(
        found,
        expect(&[("reordered", &id(1)), ("reordered", &id(3))])
    );
}

#[test]
fn a_receipt_resigned_with_another_key_is_a_bad_signature() {
    let found = tampered(|dir| {
        let mut v = read_value(dir, &id(4));
        v["payload"]["content"] = json!("rewritten");
        v["signature"] = json!(receipt::sign(&v, OTHER_KEY.as_bytes()));
        write_value(dir, &id(4), &v);
    });
    assert_eq!(
        found,
        expect(&[("bad_signature", &id(4)), ("edited", &id(4))])
    );
}

#[test]
fn a_receipt_copied_under_another_run_id_is_invalid_and_a_duplicate_seq() {
    let found = tampered(|dir| {
        fs::copy(file(dir, &id(2)), file(dir, &id(77))).unwrap();
    });
    assert_eq!(
        found,
        expect(&[("invalid", &id(77)), ("duplicate_seq", &id(77))])
    );
}

#[test]
fn stray_files_are_unknown() {
    let found = tampered(|dir| {
        fs::write(dir.join("notes.txt"), "hello").unwrap();
        fs::write(dir.join("NOT-A-UUID.json"), "{}").unwrap();
        fs::create_dir(dir.join("sub")).unwrap();
        fs::create_dir(file(dir, &id(40))).unwrap();
    });
    assert_eq!(
        found,
        expect(&[
            ("invalid", &id(40)),
            ("unknown_file", "NOT-A-UUID.json"),
            ("unknown_file", "notes.txt"),
            ("unknown_file", "sub")
        ])
    );
}

#[test]
fn unparsable_receipts_are_invalid_and_leave_a_gap() {
    let found = tampered(|dir| {
        let text = fs::read_to_string(file(dir, &id(2))).unwrap();
        fs::write(file(dir, &id(2)), &text[..text.len() / 2]).unwrap();
        let dup =
            fs::read_to_string(file(dir, &id(4)))
                .unwrap()
                .replacen("\n}", ",\n  \"seq\": 4\n}", 1);
        fs::write(file(dir, &id(4)), dup).unwrap();
    });
    assert_eq!(
        found,
        expect(&[
            ("invalid", &id(2)),
            ("gap", &id(3)),
            ("invalid", &id(4)),
            ("gap", &id(5))
        ])
    );
}

#[test]
fn a_missing_or_forged_head_record_is_reported() {
    let found = tampered(|dir| fs::remove_file(dir.join(".head.json")).unwrap());
    assert_eq!(found, expect(&[("bad_head", ".head.json")]));
    let found = tampered(|dir| {
        let path = dir.join(".head.json");
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("\"seq\": 5", "\"seq\": 4");
        fs::write(path, text).unwrap();
    });
    assert_eq!(found, expect(&[("bad_head", ".head.json")]));
}

#[test]
fn problems_name_every_tamper_at_once() {
    let found = tampered(|dir| {
        fs::remove_file(file(dir, &id(5))).unwrap();
        fs::remove_file(file(dir, &id(1))).unwrap();
        fs::write(dir.join("x.bak"), "").unwrap();
        let mut v = read_value(dir, &id(3));
        v["actor_email"] = json!("someone@else.com");
        write_value(dir, &id(3), &v);
    });
    assert_eq!(
        found,
        expect(&[
            ("gap", &id(2)),
            ("bad_signature", &id(3)),
            ("edited", &id(3)),
            ("truncated", &id(5)),
            ("unknown_file", "x.bak")
        ])
    );
}

// ---------------------------------------------------------------- concurrency

#[test]
fn fifty_threads_append_one_contiguous_chain() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(open(dir.path()));
    let handles: Vec<_> = (0..50u128)
        .map(|i| {
            let shared = shared.clone();
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                // Half share one Store, half open their own: both must serialise.
                let own;
                let store = if i % 2 == 0 {
                    &*shared
                } else {
                    own = open(&path);
                    &own
                };
                store
                    .append(receipt(&id(100 + i), "save_note", Decision::Pass))
                    .unwrap()
                    .seq
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (0..50).collect::<Vec<u64>>());
    let files = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .count();
    // 50 receipts plus the head record.
    assert_eq!(files, 51);
    assert_eq!(shared.verify_all().unwrap(), vec![]);
    assert_eq!(shared.list(&ListFilter::default()).unwrap().len(), 50);
}

/// Run by [`two_processes_append_one_contiguous_chain`] in child processes; does nothing in a
/// normal test run.
#[test]
fn child_appender() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let offset: u128 = std::env::var("ENACT_TEST_STORE_CHILD_OFFSET")
        .unwrap()
        .parse()
        .unwrap();
    let store = open(Path::new(&dir));
    for i in 0..20 {
        store
            .append(receipt(&id(offset + i), "save_note", Decision::Pass))
            .unwrap();
    }
}

#[test]
fn two_processes_append_one_contiguous_chain() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = [1000u128, 2000]
        .into_iter()
        .map(|offset| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "store::child_appender",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, dir.path())
                .env("ENACT_TEST_STORE_CHILD_OFFSET", offset.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let store = open(dir.path());
    for i in 0..10 {
        store
            .append(receipt(&id(3000 + i), "save_note", Decision::Pass))
            .unwrap();
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test:\n{stdout}"
        );
    }
    let mut seqs: Vec<u64> = store
        .list(&ListFilter::default())
        .unwrap()
        .iter()
        .map(|s| s.seq)
        .collect();
    seqs.sort();
    assert_eq!(seqs, (0..50).collect::<Vec<u64>>());
    assert_eq!(store.verify_all().unwrap(), vec![]);
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

fn payload(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Calls `count_and_reserve` and returns the counts it saw and whether it reserved.
#[allow(clippy::too_many_arguments)]
fn counts(
    store: &Store,
    queries: &[RateQuery],
    actor: &str,
    workflow: &str,
    args: Value,
    at: DateTime<Utc>,
    run_id: &str,
    grant: bool,
) -> (BTreeMap<usize, Result<u64, String>>, bool) {
    let mut seen = BTreeMap::new();
    let granted = store
        .count_and_reserve(
            queries,
            actor,
            workflow,
            &payload(args),
            at,
            run_id,
            &mut |c| {
                seen = c.clone();
                grant
            },
        )
        .unwrap();
    (seen, granted)
}

#[test]
fn twenty_threads_cannot_overshoot_a_limit_of_five() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let queries = Arc::new(vec![query(3, 5, 3600, None, None)]);
    let handles: Vec<_> = (0..20u128)
        .map(|i| {
            let (store, queries) = (store.clone(), queries.clone());
            std::thread::spawn(move || {
                store
                    .count_and_reserve(
                        &queries,
                        "agent@company.com",
                        "save_note",
                        &Map::new(),
                        now(),
                        &id(500 + i),
                        &mut |c| matches!(c.get(&3), Some(Ok(n)) if *n < 5),
                    )
                    .unwrap()
            })
        })
        .collect();
    let granted = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|g| *g)
        .count();
    assert_eq!(granted, 5);
    assert_eq!(
        fs::read_dir(dir.path().join(".pending")).unwrap().count(),
        5
    );
}

#[test]
fn reservations_end_with_the_receipt_or_a_release() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let q = [query(0, 10, 3600, None, None)];
    let a = "agent@company.com";
    assert_eq!(
        counts(&store, &q, a, "w", json!({}), now(), &id(1), true),
        (BTreeMap::from([(0, Ok(0))]), true)
    );
    assert_eq!(
        counts(&store, &q, a, "w", json!({}), now(), &id(2), true).0,
        BTreeMap::from([(0, Ok(1))])
    );
    // The call being judged never counts itself.
    assert_eq!(
        counts(&store, &q, a, "w", json!({}), now(), &id(2), false).0,
        BTreeMap::from([(0, Ok(1))])
    );
    // A refused call reserves nothing.
    assert_eq!(
        counts(&store, &q, a, "w", json!({}), now(), &id(3), false),
        (BTreeMap::from([(0, Ok(2))]), false)
    );
    assert_eq!(
        counts(&store, &q, a, "w", json!({}), now(), &id(4), false).0,
        BTreeMap::from([(0, Ok(2))])
    );

    // Its receipt replaces run 1's reservation: still two.
    let mut r = receipt(&id(1), "w", Decision::Pass);
    r.timestamp = stamp(now());
    store.append(r).unwrap();
    assert_eq!(
        counts(&store, &q, a, "w", json!({}), now(), &id(4), false).0,
        BTreeMap::from([(0, Ok(2))])
    );
    store.release(&id(2));
    assert_eq!(
        counts(&store, &q, a, "w", json!({}), now(), &id(4), false).0,
        BTreeMap::from([(0, Ok(1))])
    );
    assert!(
        !dir.path()
            .join(".pending")
            .join(format!("{}.json", id(1)))
            .exists()
    );

    // With no queries, `decide` alone answers and nothing is reserved.
    assert_eq!(
        counts(&store, &[], a, "w", json!({}), now(), &id(5), true),
        (BTreeMap::new(), true)
    );
    assert_eq!(
        counts(&store, &q, a, "w", json!({}), now(), &id(4), false).0,
        BTreeMap::from([(0, Ok(1))])
    );
}

#[test]
fn old_reservations_expire_and_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let q = [query(0, 10, 3600, None, None)];
    let a = "agent@company.com";
    counts(&store, &q, a, "w", json!({}), now(), &id(1), true);
    assert_eq!(
        counts(
            &store,
            &q,
            a,
            "w",
            json!({}),
            now() + Duration::minutes(59),
            &id(2),
            false
        )
        .0,
        BTreeMap::from([(0, Ok(1))])
    );
    assert_eq!(
        counts(
            &store,
            &q,
            a,
            "w",
            json!({}),
            now() + Duration::minutes(61),
            &id(2),
            false
        )
        .0,
        BTreeMap::from([(0, Ok(0))])
    );
    assert!(
        dir.path()
            .join(".pending")
            .join(format!("{}.json", id(1)))
            .exists()
    );
    // Older than a day (and than every window counted): garbage.
    counts(
        &store,
        &q,
        a,
        "w",
        json!({}),
        now() + Duration::hours(25),
        &id(2),
        false,
    );
    assert!(
        !dir.path()
            .join(".pending")
            .join(format!("{}.json", id(1)))
            .exists()
    );
}

#[test]
fn counting_respects_actor_window_scope_per_rollbacks_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = "agent@company.com";
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
    add(9, a, "w1", Decision::Pass, 10, json!({"repo": "x"}), None); // re-signed below: never counts
    add(10, a, "w1", Decision::Pass, 60, json!({"repo": "x"}), None); // exactly at the window edge: out
    let mut forged = read_value(dir.path(), &id(9));
    forged["signature"] = json!(receipt::sign(&forged, OTHER_KEY.as_bytes()));
    write_value(dir.path(), &id(9), &forged);

    let queries = [
        query(0, 99, 3600, None, None),
        query(1, 99, 3600, Some(&["w1"]), None),
        query(2, 99, 3600, None, Some(("repo", json!("x")))),
        query(3, 99, 3 * 3600, None, None),
        query(4, 99, 3600, Some(&["w2", "w3"]), None),
        query(5, 99, 3600, None, Some(("repo", json!(5)))),
        query(6, 99, 3600, None, Some(("branch", Value::Null))),
    ];
    let (seen, _) = counts(
        &store,
        &queries,
        a,
        "w1",
        json!({"repo": "x"}),
        now(),
        &id(50),
        false,
    );
    assert_eq!(
        seen,
        BTreeMap::from([
            (0, Ok(4)), // 1, 6, 7, 8
            (1, Ok(3)), // 1, 7, 8
            (2, Ok(2)), // 1, 6
            (3, Ok(6)), // 1, 4, 6, 7, 8, 10
            (4, Ok(1)), // 6
            (5, Ok(1)), // 8
            (6, Ok(4)), // no `branch` anywhere: all equal to null
        ])
    );
    let (other, _) = counts(
        &store,
        &queries[..1],
        "other@company.com",
        "w1",
        json!({}),
        now(),
        &id(50),
        false,
    );
    assert_eq!(other, BTreeMap::from([(0, Ok(1))]));

    // A reservation counts like a receipt, with the same criteria.
    counts(
        &store,
        &queries,
        a,
        "w2",
        json!({"repo": "x"}),
        now(),
        &id(51),
        true,
    );
    let (seen, _) = counts(
        &store,
        &queries,
        a,
        "w1",
        json!({"repo": "x"}),
        now(),
        &id(52),
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
}

// ---------------------------------------------------------------- rollbacks

#[test]
fn rollbacks_of_lists_validly_signed_rollback_receipts_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_with(dir.path(), 2);
    assert_eq!(store.rollbacks_of(&id(0)).unwrap(), vec![]);
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
    let mut forged = read_value(dir.path(), &id(12));
    forged["signature"] = json!(receipt::sign(&forged, OTHER_KEY.as_bytes()));
    write_value(dir.path(), &id(12), &forged);

    let found: Vec<(String, String)> = store
        .rollbacks_of(&id(0))
        .unwrap()
        .into_iter()
        .map(|(r, d, v)| {
            assert_eq!(v["run_id"], json!(r));
            (r, d)
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (id(10), "PARTIAL".to_string()),
            (id(11), "PASS".to_string())
        ]
    );
}

#[test]
fn a_rollback_lock_excludes_a_second_holder_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(folder_with(dir.path(), 1));
    let guard = store.lock_rollback(&id(0)).unwrap();
    let acquired = Arc::new(Mutex::new(false));
    let waiter = {
        let (store, acquired) = (store.clone(), acquired.clone());
        std::thread::spawn(move || {
            let _second = store.lock_rollback(&id(0)).unwrap();
            *acquired.lock().unwrap() = true;
        })
    };
    // Another run's lock is independent.
    drop(store.lock_rollback(&id(1)).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!*acquired.lock().unwrap());
    drop(guard);
    waiter.join().unwrap();
    assert!(*acquired.lock().unwrap());
    // The lock files live in the store's own folder, which the audit ignores.
    assert_eq!(store.verify_all().unwrap(), vec![]);
}
