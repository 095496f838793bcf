//! `verify_all`: reads every record of the journal once, from the files alone (the in-memory
//! index is not trusted here), and checks signatures, the chain and the head record.
//!
//! How problems are told apart:
//! - A line that does not parse strictly, is over 16 MiB, or lacks the chain fields →
//!   `invalid`; a run id with two receipts → `invalid` (the second). A signature that does not
//!   verify → `bad_signature` (once per run).
//! - The receipts form the chain by `seq`; the first receipt of each seq is its link, a later
//!   one with the same seq is a `duplicate_seq`. Seqs missing below the highest → one `gap` per
//!   missing range (subject: the receipt after it), unless that receipt is an `ACK_TRUNCATION`
//!   (every one is noted with its `lost` range; what it acknowledges is not a problem).
//!   Receipts whose place in the journal is not their place in seq order → `reordered` (each
//!   one out of place). Where seq N and N+1 are both present and
//!   N+1's `prev_hash` is not N's chain hash, N was changed after N+1 was chained to it →
//!   `edited` (subject N — or N+1, when only N+1's signature is broken, since then its
//!   `prev_hash` is the likelier edit). Across a gap nothing is linked (the gap is the report),
//!   except for an `ACK_TRUNCATION`, which links to the last receipt before it.
//! - The head record: missing (with receipts), or no valid slot → `bad_head`; naming a seq past
//!   the newest receipt → `truncated`; naming a present seq with another hash → `edited`
//!   (subject: that receipt).
//!   Behind the journal is normal.
//! - A file in the folder that is not the store's own → `unknown_file`.

use std::collections::{BTreeMap, HashSet};
use std::fs;

use serde::Serialize;
use serde_json::Value;

use self::problem_kind::{
    BAD_HEAD, BAD_SIGNATURE, DUPLICATE_SEQ, EDITED, GAP, INVALID, REORDERED, TRUNCATED,
    UNKNOWN_FILE,
};
use super::head::{self, HeadState};
use super::segment::{self, Line, Reader, Span};
use super::{LOCK_FILE, LOCKS_DIR, OWNERS_DIR, Store, StoreError, strict};
use crate::kernel::receipt::{self, GENESIS_HASH};

/// One problem found by [`Store::verify_all`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The run id (or record position) concerned.
    pub subject: String,
    /// One of the constants in [`problem_kind`], e.g. `bad_signature`.
    pub kind: String,
    pub message: String,
}

/// The kinds of [`Problem`] that [`Store::verify_all`] reports.
pub mod problem_kind {
    /// A record's signature does not verify with this folder's key.
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// A line that is not a valid record: not JSON, duplicate keys, over 16 MiB, missing
    /// fields, a run id used twice.
    pub const INVALID: &str = "invalid";
    /// A receipt changed after the next link (receipt or head record) was chained to it.
    pub const EDITED: &str = "edited";
    /// Receipts out of order: a `seq` going backwards, or a `prev_hash` that links to another
    /// receipt than the one before it.
    pub const REORDERED: &str = "reordered";
    /// One or more `seq` values are missing (a receipt was removed).
    pub const GAP: &str = "gap";
    /// Two receipts claim the same `seq`.
    pub const DUPLICATE_SEQ: &str = "duplicate_seq";
    /// The head record names a newer receipt than any present: the newest were removed.
    pub const TRUNCATED: &str = "truncated";
    /// The head record is missing (with receipts present), unreadable or wrongly signed.
    pub const BAD_HEAD: &str = "bad_head";
    /// A file in the folder that is not the store's own.
    pub const UNKNOWN_FILE: &str = "unknown_file";
    /// `--expect-head`: no receipt has the expected chain hash.
    pub const EXPECTED_HEAD: &str = "expected_head";
}

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

/// A receipt as a link of the chain.
struct Link {
    subject: String,
    seq: u64,
    prev_hash: String,
    hash: String,
    signature_valid: bool,
    ack: bool,
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
    let key = store.key();
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
    let mut links: Vec<Link> = Vec::new();
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
            let (signature_valid, hash) = receipt::verify_and_hash(&value, key);
            // One report per run (its intent, steps and receipt share the run id).
            if !signature_valid && bad_signatures.insert(subject.clone()) {
                problems.push(problem(
                    &subject,
                    BAD_SIGNATURE,
                    "the signature does not verify".into(),
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
                problems.push(problem(&subject, INVALID, "no seq or prev_hash".into()));
                continue;
            };
            if !seen_runs.insert(run_id.clone()) {
                problems.push(problem(
                    &subject,
                    INVALID,
                    "a second receipt for this run id".into(),
                ));
                continue;
            }
            audit.receipts += 1;
            let ack = value.get("decision").and_then(Value::as_str) == Some("ACK_TRUNCATION");
            if ack {
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
            audit.hashes.insert(hash.clone());
            links.push(Link {
                subject,
                seq,
                prev_hash: prev_hash.to_owned(),
                hash,
                signature_valid,
                ack,
            });
        }
    }
    let by_seq = check_chain(&links, &mut problems);
    let newest = by_seq
        .last_key_value()
        .map(|(seq, i)| (*seq, links[*i].hash.clone()));
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
            (Some(s), Some((n, _))) if s <= *n => match by_seq.get(&s).map(|i| &links[*i]) {
                Some(link) if link.hash != h.hash => problems.push(problem(
                    &link.subject,
                    EDITED,
                    format!("changed after it was appended: the head record names seq {s} with another chain hash"),
                )),
                Some(_) if s < *n => audit.notes.push(format!(
                    "the head record is behind the journal (seq {s} of {n}); the next append moves it"
                )),
                // At the newest receipt; or missing below it, which is reported as a gap.
                _ => {}
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

/// Checks the receipts (in journal order) as a chain (see the module documentation). Returns
/// the link of each seq: its index in `links`.
fn check_chain(links: &[Link], problems: &mut Vec<Problem>) -> BTreeMap<u64, usize> {
    let mut by_seq: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, link) in links.iter().enumerate() {
        match by_seq.get(&link.seq) {
            Some(first) => problems.push(problem(
                &link.subject,
                DUPLICATE_SEQ,
                format!("seq {} is used by {} too", link.seq, links[*first].subject),
            )),
            None => {
                by_seq.insert(link.seq, i);
            }
        }
    }
    // Place in the journal against place in seq order (both ascending journal indexes when
    // nothing was moved).
    let mut in_journal: Vec<usize> = by_seq.values().copied().collect();
    in_journal.sort_unstable();
    for (at, (seq, i)) in in_journal.iter().zip(by_seq.iter()) {
        if at != i {
            let here = &links[*at];
            problems.push(problem(
                &here.subject,
                REORDERED,
                format!(
                    "out of order: seq {} stands in the journal where seq {seq} belongs",
                    here.seq
                ),
            ));
        }
    }
    let mut prev: Option<&Link> = None;
    for link in by_seq.values().map(|i| &links[*i]) {
        let expected = prev.map_or(0, |p| p.seq + 1);
        // An ACK_TRUNCATION's gap is what it acknowledges (noted with its `lost` range).
        if link.seq > expected && !link.ack {
            let after = prev.map_or_else(|| "the start".to_string(), |p| format!("seq {}", p.seq));
            problems.push(problem(
                &link.subject,
                GAP,
                format!(
                    "seq {} follows {after}: receipts seq {expected}..{} are missing",
                    link.seq,
                    link.seq - 1
                ),
            ));
        }
        let linked_to = if link.seq == expected || link.ack {
            Some(prev.map_or(GENESIS_HASH, |p| p.hash.as_str()))
        } else {
            None
        };
        if let Some(expected_hash) = linked_to
            && link.prev_hash != expected_hash
        {
            match prev {
                Some(p) if !p.signature_valid || link.signature_valid => problems.push(problem(
                    &p.subject,
                    EDITED,
                    format!(
                        "changed after the next receipt was chained to it (the prev_hash of {} does not match)",
                        link.subject
                    ),
                )),
                Some(p) => problems.push(problem(
                    &link.subject,
                    EDITED,
                    format!("its prev_hash does not match the receipt before it ({})", p.subject),
                )),
                None => problems.push(problem(
                    &link.subject,
                    EDITED,
                    "the first receipt's prev_hash is not the genesis hash".into(),
                )),
            }
        }
        prev = Some(link);
    }
    by_seq
}
