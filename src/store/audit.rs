//! `verify_all`: reads every record of the journal once, from the files alone (the in-memory
//! index is not trusted here), and checks signatures, the chain and the head record.
//!
//! How problems are told apart:
//! - A line that does not parse strictly, is over 16 MiB, or lacks the chain fields →
//!   `invalid`; a run id with two receipts → `invalid` (the second). A signature that does not
//!   verify → `bad_signature`.
//! - Receipts form the chain in journal order. When receipt N+1's `seq` is not N's plus one:
//!   lower or equal → `reordered` (or `duplicate_seq` when equal); higher → `gap`, unless the
//!   receipt is an `ACK_TRUNCATION` whose `lost` range covers the gap (reported as a note, not a
//!   problem). When its `prev_hash` is not the chain hash of N: if it is the hash of another
//!   receipt → `reordered`; otherwise N was changed after N+1 was chained to it → `edited`
//!   (subject N — or N+1, when only N+1's signature is broken, since then its `prev_hash` is
//!   the likelier edit).
//! - The head record: missing (with receipts), or no valid slot → `bad_head`; naming a seq past
//!   the newest receipt → `truncated`; naming a present seq with another hash → `edited`.
//!   Behind the journal is normal.
//! - A file in the folder that is not the store's own → `unknown_file`.

use std::collections::{HashMap, HashSet};
use std::fs;

use serde::Serialize;
use serde_json::Value;

use super::head::{self, HeadState};
use super::problem_kind::{
    BAD_HEAD, BAD_SIGNATURE, DUPLICATE_SEQ, EDITED, GAP, INVALID, REORDERED, TRUNCATED,
    UNKNOWN_FILE,
};
use super::segment::{self, Line, Reader, Span};
use super::{LOCK_FILE, LOCKS_DIR, OWNERS_DIR, Problem, Store, StoreError, strict};
use crate::kernel::receipt::{self, GENESIS_HASH};

/// What `verify_all` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Audit {
    pub problems: Vec<Problem>,
    /// Facts that are not problems: acknowledged truncations, a head behind the journal.
    pub notes: Vec<String>,
    /// Number of receipts read.
    pub receipts: u64,
    /// Chain hash of the newest receipt (genesis for an empty chain).
    pub head_hash: String,
    /// Every receipt's chain hash, for `--expect-head`.
    #[serde(skip)]
    pub hashes: HashSet<String>,
}

struct Link {
    run_id: String,
    seq: u64,
    hash: String,
    signature_valid: bool,
}

fn problem(subject: &str, kind: &str, message: String) -> Problem {
    Problem {
        subject: subject.into(),
        kind: kind.into(),
        message,
    }
}

fn at(span: Span) -> String {
    format!(
        "journal/{}:{}",
        segment::segment_name(span.segment),
        span.offset
    )
}

/// See the module documentation. Must run under the folder lock.
pub(super) fn verify_all(store: &Store) -> Result<Audit, StoreError> {
    let key = store.secret.expose().as_bytes();
    let mut audit = Audit {
        head_hash: GENESIS_HASH.into(),
        ..Audit::default()
    };
    let mut problems = Vec::new();
    let (segments, others) = if store.journal.exists() {
        segment::list(&store.journal).map_err(StoreError::io(&store.journal))?
    } else {
        (Vec::new(), Vec::new())
    };
    let mut seen_runs: HashSet<String> = HashSet::new();
    let mut bad_signatures: HashSet<String> = HashSet::new();
    let mut by_hash: HashMap<String, String> = HashMap::new();
    let mut prev: Option<Link> = None;
    let mut newest: Option<(u64, String)> = None;
    let mut chain_hashes: HashMap<u64, String> = HashMap::new();
    for n in segments {
        let path = segment::segment_path(&store.journal, n);
        let mut reader = Reader::open(&store.journal, n, 0).map_err(StoreError::io(&path))?;
        while let Some(line) = reader.next_line().map_err(StoreError::io(&path))? {
            let (span, bytes) = match line {
                Line::Record(span, bytes) => (span, bytes),
                Line::TooLong(span) => {
                    problems.push(problem(&at(span), INVALID, "a record over 16 MiB".into()));
                    continue;
                }
                Line::Partial(pos) => {
                    audit.notes.push(format!(
                        "an unfinished line at journal/{}:{} (a crash during a write; cut at the next append)",
                        segment::segment_name(pos.segment),
                        pos.offset
                    ));
                    continue;
                }
            };
            let value = match strict::parse(&bytes) {
                Ok(v) if v.is_object() => v,
                Ok(_) => {
                    problems.push(problem(&at(span), INVALID, "not a JSON object".into()));
                    continue;
                }
                Err(e) => {
                    problems.push(problem(&at(span), INVALID, format!("not valid JSON: {e}")));
                    continue;
                }
            };
            let run_id = value
                .get("run_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let subject = if run_id.is_empty() {
                at(span)
            } else {
                run_id.clone()
            };
            let signature_valid = receipt::verify(&value, key);
            // One report per run (its intent, steps and receipt share the run id).
            if !signature_valid && bad_signatures.insert(subject.clone()) {
                problems.push(problem(
                    &subject,
                    BAD_SIGNATURE,
                    format!("{subject}: the signature does not verify"),
                ));
            }
            let kind = value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("receipt");
            if kind != "receipt" {
                continue;
            }
            let (Some(seq), Some(prev_hash)) = (
                value.get("seq").and_then(Value::as_u64),
                value.get("prev_hash").and_then(Value::as_str),
            ) else {
                problems.push(problem(
                    &subject,
                    INVALID,
                    format!("{subject}: no seq or prev_hash"),
                ));
                continue;
            };
            if !seen_runs.insert(run_id.clone()) {
                problems.push(problem(
                    &subject,
                    INVALID,
                    format!("{subject}: a second receipt for this run id"),
                ));
                continue;
            }
            audit.receipts += 1;
            if value.get("decision").and_then(Value::as_str) == Some("ACK_TRUNCATION") {
                let lost = value.get("lost").cloned().unwrap_or(Value::Null);
                audit.notes.push(format!(
                    "acknowledged truncation by {} at {} ({subject}): {}",
                    value
                        .get("actor_email")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    value
                        .get("timestamp")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    lost
                ));
            }
            let hash = receipt::chain_hash(&value);
            let expected_prev = prev.as_ref().map_or(GENESIS_HASH, |p| p.hash.as_str());
            let expected_seq = prev.as_ref().map_or(0, |p| p.seq + 1);
            if seq != expected_seq {
                let acknowledged = value.get("decision").and_then(Value::as_str)
                    == Some("ACK_TRUNCATION")
                    && seq > expected_seq;
                if acknowledged {
                    // Noted above with the record's own `lost` range.
                } else if seq > expected_seq {
                    problems.push(problem(
                        &subject,
                        GAP,
                        format!(
                            "{subject}: seq {seq} follows seq {} — receipts {expected_seq}..{} are missing",
                            prev.as_ref().map_or_else(|| "(none)".to_string(), |p| p.seq.to_string()),
                            seq - 1
                        ),
                    ));
                } else if chain_hashes.contains_key(&seq) {
                    problems.push(problem(
                        &subject,
                        DUPLICATE_SEQ,
                        format!("{subject}: seq {seq} is used by an earlier receipt too"),
                    ));
                } else {
                    problems.push(problem(
                        &subject,
                        REORDERED,
                        format!(
                            "{subject}: seq {seq} comes after seq {}",
                            expected_seq.saturating_sub(1)
                        ),
                    ));
                }
            }
            if prev_hash != expected_prev {
                if let Some(other) = by_hash.get(prev_hash) {
                    problems.push(problem(
                        &subject,
                        REORDERED,
                        format!("{subject}: links to {other}, not to the receipt before it"),
                    ));
                } else if let Some(p) = &prev {
                    let blame_self = p.signature_valid && !signature_valid;
                    let who = if blame_self { &subject } else { &p.run_id };
                    problems.push(problem(
                        who,
                        EDITED,
                        format!(
                            "{who}: changed after the next receipt was chained to it (prev_hash of {subject} does not match)"
                        ),
                    ));
                } else if value.get("decision").and_then(Value::as_str) != Some("ACK_TRUNCATION") {
                    problems.push(problem(
                        &subject,
                        GAP,
                        format!("{subject}: the first receipt in the journal links to a receipt that is not there"),
                    ));
                }
            }
            by_hash.insert(hash.clone(), subject.clone());
            chain_hashes.insert(seq, hash.clone());
            audit.hashes.insert(hash.clone());
            if newest.as_ref().is_none_or(|(s, _)| seq > *s) {
                newest = Some((seq, hash.clone()));
            }
            prev = Some(Link {
                run_id: subject,
                seq,
                hash,
                signature_valid,
            });
        }
    }
    if let Some((_, hash)) = &newest {
        audit.head_hash = hash.clone();
    }
    // The head record.
    let head_state = if store.journal.exists() {
        head::read(&store.journal, key).map_err(StoreError::io(&store.journal))?
    } else {
        HeadState::Missing
    };
    match head_state {
        HeadState::Missing if newest.is_some() => problems.push(problem(
            "journal/head",
            BAD_HEAD,
            "the head record is missing while the journal holds receipts".into(),
        )),
        HeadState::Missing => {}
        HeadState::Invalid(why) => problems.push(problem(
            "journal/head",
            BAD_HEAD,
            format!("the head record is not valid: {why}"),
        )),
        HeadState::Valid(h) => match (h.seq, &newest) {
            (None, _) => {}
            (Some(s), Some((n, _))) if s <= *n => match chain_hashes.get(&s) {
                Some(hash) if *hash == h.hash => {
                    if s < *n {
                        audit
                            .notes
                            .push(format!("the head record is behind the journal (seq {s} of {n}); the next append moves it"));
                    }
                }
                _ => problems.push(problem(
                    "journal/head",
                    EDITED,
                    format!("the receipt at seq {s} is not the one the head record names"),
                )),
            },
            (Some(s), newest) => problems.push(problem(
                "journal/head",
                TRUNCATED,
                format!(
                    "the head record names seq {s} but the journal ends at {}: the newest receipts were removed",
                    newest
                        .as_ref()
                        .map_or_else(|| "no receipt".to_string(), |(n, _)| format!("seq {n}"))
                ),
            )),
        },
    }
    // Stray files.
    for name in others {
        if name != head::HEAD_FILE {
            problems.push(problem(
                &format!("journal/{name}"),
                UNKNOWN_FILE,
                format!("journal/{name} is not part of the journal"),
            ));
        }
    }
    for entry in fs::read_dir(&store.dir).map_err(StoreError::io(&store.dir))? {
        let name = entry
            .map_err(StoreError::io(&store.dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let ours = [
            segment::JOURNAL_DIR,
            LOCK_FILE,
            LOCKS_DIR,
            OWNERS_DIR,
            super::legacy::MIGRATED_DIR,
            ".gitkeep",
        ];
        if !ours.contains(&name.as_str()) {
            problems.push(problem(
                &name,
                UNKNOWN_FILE,
                format!("{name} is not part of the receipts folder"),
            ));
        }
    }
    audit.problems = problems;
    Ok(audit)
}
