//! `verify_all`: checks every receipt file, the chain they form and the head record, from the
//! files alone (the index is not trusted here).
//!
//! How problems are told apart:
//! - Each `<run_id>.json` is parsed strictly; failure → `invalid`. A signed `run_id` that is
//!   not the file name → `invalid`, unless the named run's own file also holds another run's
//!   receipt (contents permuted between files) → `reordered` for each such file. A signature
//!   that does not verify → `bad_signature`.
//! - Receipts that parse (whatever their signature or file name) form the chain, ordered by
//!   `seq`. Per `seq` the receipt in its own file with a good signature is preferred; the others
//!   at that `seq` → `duplicate_seq`. Missing `seq` values → `gap`, naming the receipt after
//!   the gap (and the one before). When receipt N+1's `prev_hash` is not the hash of receipt
//!   N: if it is the hash of another receipt of the folder, the links are out of order →
//!   `reordered` (subject N+1); otherwise receipt N was changed after N+1 was chained to it →
//!   `edited` (subject N — or N+1, when only N+1's signature is broken, since then its
//!   `prev_hash` is the likelier edit).
//! - The head record: missing (with receipts), unreadable or wrongly signed → `bad_head`;
//!   naming a newer `seq` than any receipt → `truncated` (subject: the run it names); same
//!   `seq` but another hash → `edited` (the newest receipt changed); older than the newest
//!   receipt → `bad_head` (an interrupted append, or an old head record put back).
//! - Any other file, except the store's own and `.gitkeep` → `unknown_file`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;

use serde_json::Value;

use super::head::{HEAD_FILE, HeadState};
use super::problem_kind::{
    BAD_HEAD, BAD_SIGNATURE, DUPLICATE_SEQ, EDITED, GAP, INVALID, REORDERED, TRUNCATED,
    UNKNOWN_FILE,
};
use super::{
    LOCK_FILE, LOCKS_DIR, Problem, Store, StoreError, file::TEMP_PREFIX, index::INDEX_FILE, rate,
    receipt_file_id, strict,
};
use crate::kernel::receipt::{self, GENESIS_HASH};

/// A receipt file that parsed well enough to take part in the chain.
struct Node {
    /// The run id in the file name.
    file_id: String,
    /// The signed run id inside.
    content_id: String,
    seq: u64,
    prev_hash: String,
    hash: String,
    signature_valid: bool,
}

impl Node {
    fn in_own_file(&self) -> bool {
        self.file_id == self.content_id
    }
}

/// See the module documentation. Must run under the folder lock.
pub(super) fn verify_all(store: &Store) -> Result<Vec<Problem>, StoreError> {
    let names = super::file_names(&store.dir).map_err(StoreError::io(&store.dir))?;
    let mut problems = Vec::new();
    let mut nodes = Vec::new();
    let mut unknown = Vec::new();
    for name in &names {
        match receipt_file_id(name) {
            Some(run_id) => match read_node(store, run_id) {
                Ok(node) => nodes.push(node),
                Err(message) => problems.push(problem(run_id, INVALID, message)),
            },
            None if is_own(name) => {}
            None => unknown.push(problem(
                name,
                UNKNOWN_FILE,
                "not a receipt: only `<run_id>.json` files belong in the receipts folder".into(),
            )),
        }
    }
    nodes.sort_by(|a, b| (a.seq, &a.file_id).cmp(&(b.seq, &b.file_id)));
    problems.extend(file_problems(&nodes));
    let chain = Chain::new(&nodes);
    problems.extend(chain.problems());
    let head = super::head::read(&store.dir, store.key())
        .map_err(StoreError::io(&store.dir.join(HEAD_FILE)))?;
    problems.extend(head_problems(
        &head,
        &chain,
        names.iter().any(|n| receipt_file_id(n).is_some()),
    ));
    problems.extend(unknown);
    Ok(problems)
}

fn problem(subject: &str, kind: &str, message: String) -> Problem {
    Problem {
        subject: subject.to_owned(),
        kind: kind.to_owned(),
        message,
    }
}

/// The store's own files and folders, and temporary files an interrupted write left behind.
fn is_own(name: &str) -> bool {
    [
        HEAD_FILE,
        INDEX_FILE,
        LOCK_FILE,
        LOCKS_DIR,
        rate::PENDING_DIR,
        ".gitkeep",
    ]
    .contains(&name)
        || name.starts_with(TEMP_PREFIX)
}

fn read_node(store: &Store, file_id: &str) -> Result<Node, String> {
    let bytes =
        fs::read(store.receipt_path(file_id)).map_err(|e| format!("cannot be read: {e}"))?;
    let value = strict::parse(&bytes).map_err(|e| format!("not a valid receipt: {e}"))?;
    let text = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
    let content_id =
        text("run_id").ok_or("not a valid receipt: `run_id` is missing or not a string")?;
    let seq = value
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("not a valid receipt: `seq` is missing or not a non-negative integer")?;
    let prev_hash =
        text("prev_hash").ok_or("not a valid receipt: `prev_hash` is missing or not a string")?;
    Ok(Node {
        file_id: file_id.to_owned(),
        content_id,
        seq,
        prev_hash,
        hash: receipt::chain_hash(&value),
        signature_valid: receipt::verify(&value, store.key()),
    })
}

/// Name mismatches (`invalid` / `reordered`) and bad signatures, in `seq` order.
fn file_problems(nodes: &[Node]) -> Vec<Problem> {
    let displaced: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| !n.in_own_file())
        .map(|n| n.file_id.as_str())
        .collect();
    let mut problems = Vec::new();
    for node in nodes {
        if !node.in_own_file() {
            problems.push(if displaced.contains(node.content_id.as_str()) {
                problem(
                    &node.file_id,
                    REORDERED,
                    format!("file holds the receipt of `{}` (seq {}), while that run's file holds another receipt", node.content_id, node.seq),
                )
            } else {
                problem(&node.file_id, INVALID, format!("its signed run_id is `{}`, not the file name", node.content_id))
            });
        }
        if !node.signature_valid {
            problems.push(problem(
                &node.file_id,
                BAD_SIGNATURE,
                format!(
                    "the signature of seq {} does not verify with this folder's key",
                    node.seq
                ),
            ));
        }
    }
    problems
}

/// The receipts by `seq`, one preferred receipt per `seq`.
struct Chain<'a> {
    by_seq: BTreeMap<u64, Vec<&'a Node>>,
    by_hash: HashMap<&'a str, &'a Node>,
}

impl<'a> Chain<'a> {
    fn new(nodes: &'a [Node]) -> Chain<'a> {
        let mut by_seq: BTreeMap<u64, Vec<&Node>> = BTreeMap::new();
        for node in nodes {
            by_seq.entry(node.seq).or_default().push(node);
        }
        for claimants in by_seq.values_mut() {
            claimants.sort_by_key(|n| (!n.in_own_file(), !n.signature_valid, n.file_id.clone()));
        }
        Chain {
            by_seq,
            by_hash: nodes.iter().map(|n| (n.hash.as_str(), n)).collect(),
        }
    }

    /// The preferred receipt of each `seq`, in order.
    fn primaries(&self) -> impl Iterator<Item = &'a Node> + '_ {
        self.by_seq
            .values()
            .filter_map(|claimants| claimants.first().copied())
    }

    fn newest(&self) -> Option<&'a Node> {
        self.primaries().last()
    }

    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for claimants in self.by_seq.values() {
            let Some((first, others)) = claimants.split_first() else {
                continue;
            };
            for other in others {
                problems.push(problem(
                    &other.file_id,
                    DUPLICATE_SEQ,
                    format!("seq {} is also claimed by `{}`", other.seq, first.file_id),
                ));
            }
        }
        let mut previous: Option<&Node> = None;
        for node in self.primaries() {
            let expected_seq = previous.map_or(0, |p| p.seq + 1);
            if node.seq > expected_seq {
                problems.push(gap(previous, node));
            } else if let Some(link) = self.link_problem(previous, node) {
                problems.push(link);
            }
            previous = Some(node);
        }
        problems
    }

    /// Checks `node.prev_hash` against the receipt right before it (`None`: genesis).
    fn link_problem(&self, previous: Option<&Node>, node: &Node) -> Option<Problem> {
        let expected = previous.map_or(GENESIS_HASH, |p| p.hash.as_str());
        if node.prev_hash == expected {
            return None;
        }
        let before = previous.map_or_else(
            || "the start of the chain".to_owned(),
            |p| format!("`{}` (seq {})", p.file_id, p.seq),
        );
        if let Some(other) = self.by_hash.get(node.prev_hash.as_str()) {
            return Some(problem(
                &node.file_id,
                REORDERED,
                format!(
                    "its prev_hash links to `{}` (seq {}), not to {before}",
                    other.file_id, other.seq
                ),
            ));
        }
        Some(match previous {
            Some(p) if node.signature_valid || !p.signature_valid => problem(
                &p.file_id,
                EDITED,
                format!(
                    "changed after `{}` (seq {}) was chained to it: its hash no longer matches that receipt's prev_hash",
                    node.file_id, node.seq
                ),
            ),
            _ => problem(
                &node.file_id,
                EDITED,
                format!("its prev_hash does not match {before}"),
            ),
        })
    }
}

fn gap(previous: Option<&Node>, node: &Node) -> Problem {
    let first = previous.map_or(0, |p| p.seq + 1);
    let missing = seq_range(first, node.seq - 1);
    let message = match previous {
        Some(p) => format!(
            "{missing} missing between `{}` (seq {}) and `{}` (seq {})",
            p.file_id, p.seq, node.file_id, node.seq
        ),
        None => format!(
            "{missing} missing before `{}` (seq {})",
            node.file_id, node.seq
        ),
    };
    problem(&node.file_id, GAP, message)
}

fn seq_range(first: u64, last: u64) -> String {
    if first == last {
        format!("seq {first} is")
    } else {
        format!("seqs {first} to {last} are")
    }
}

fn head_problems(head: &HeadState, chain: &Chain<'_>, any_receipt_file: bool) -> Vec<Problem> {
    let head = match head {
        HeadState::Missing if any_receipt_file => {
            return vec![problem(
                HEAD_FILE,
                BAD_HEAD,
                "the head record is missing, so removal of the newest receipts cannot be detected"
                    .into(),
            )];
        }
        HeadState::Missing => return vec![],
        HeadState::Invalid(why) => {
            return vec![problem(
                HEAD_FILE,
                BAD_HEAD,
                format!("the head record is not trustworthy: {why}"),
            )];
        }
        HeadState::Valid(head) => head,
    };
    let named = format!(
        "the head record names `{}` (seq {}) as the newest receipt",
        head.run_id, head.seq
    );
    let Some(newest) = chain.newest() else {
        return vec![problem(
            &head.run_id,
            TRUNCATED,
            format!("{} missing: {named}", seq_range(0, head.seq)),
        )];
    };
    if head.seq > newest.seq {
        let missing = seq_range(newest.seq + 1, head.seq);
        return vec![problem(
            &head.run_id,
            TRUNCATED,
            format!(
                "{missing} missing after `{}` (seq {}): {named}",
                newest.file_id, newest.seq
            ),
        )];
    }
    if head.seq < newest.seq {
        return vec![problem(
            HEAD_FILE,
            BAD_HEAD,
            format!(
                "{named}, but receipts up to seq {} exist (an interrupted append, or an old head record put back)",
                newest.seq
            ),
        )];
    }
    let claimants = chain
        .by_seq
        .get(&head.seq)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if claimants.iter().any(|n| n.hash == head.hash) {
        return vec![];
    }
    vec![problem(
        &newest.file_id,
        EDITED,
        format!(
            "changed after the head record was written: its hash no longer matches the head record, which names `{}`",
            head.run_id
        ),
    )]
}
