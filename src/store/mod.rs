//! The receipts folder (SPEC §5.3–5.4): one pretty-printed, signed JSON file per run, linked
//! into a hash chain by `seq` and `prev_hash`, shared safely by several processes.
//!
//! Layout of the folder:
//!
//! | name | what |
//! |---|---|
//! | `<run_id>.json` | a receipt (the only files that matter; everything else can be rebuilt or is a guard) |
//! | `.head.json` | signed head record: the newest chain link as last written (format: module `head`) |
//! | `.index.jsonl` | index: one summary line per receipt file, a cache (format: module `index`) |
//! | `.lock` | folder lock: held from reading the head to writing it, and while counting rates |
//! | `.pending/<run_id>.json` | rate-limit reservations of runs that passed the gate and have no receipt yet |
//! | `.locks/rollback-<run_id>.lock` | one lock per run being rolled back |
//! | `.tmp-*` | temporary files of atomic writes (a crash may leave one; ignored) |
//!
//! Appending, under the folder lock: read the head; if it is valid and the index's length is
//! the one it records, the head gives the previous link without reading any receipt;
//! otherwise (first receipt, interrupted append, deleted or edited head or index) the index is
//! rebuilt from the receipt files and the previous link is the newer of the head (if valid)
//! and the newest receipt. Continuing from a valid head that is ahead of the files keeps a
//! truncation visible as a `gap` after later appends. Then, in this order: the index line is
//! appended, the receipt is written atomically, the head is rewritten. A crash between any two
//! steps leaves the index length different from the head's record, which forces a rebuild at
//! the next append, so a `seq` is never handed out twice.
//!
//! Reading (list, rate counts, rollback lookups) uses the index after checking, under the
//! lock, that it has one line per receipt file and (with a valid head) the recorded length;
//! else it is rebuilt first.

mod audit;
mod file;
mod head;
mod index;
mod lock;
mod rate;
mod strict;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use self::head::{Head, HeadState};
use self::index::{Entry, Line};
use crate::kernel::policy::RateQuery;
use crate::kernel::receipt::{self, GENESIS_HASH, Receipt, is_valid_run_id};
use crate::secret::Secret;

const LOCK_FILE: &str = ".lock";
const LOCKS_DIR: &str = ".locks";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `Invalid run_id: '<id>'`
    #[error("Invalid run_id: '{0}'")]
    InvalidRunId(String),
    /// `No receipt found for run_id: <id>`
    #[error("No receipt found for run_id: {0}")]
    NotFound(String),
    /// The file exists but is not a valid receipt (bad JSON, duplicate keys, name mismatch).
    #[error("receipt `{run_id}` is invalid: {reason}")]
    Invalid { run_id: String, reason: String },
    #[error("receipts folder `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl StoreError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Rate-limit counts keyed by the `rate_limit` policy's index in the config (`Err`: the count
/// could not be taken, so the policy fails closed).
pub type RateCounts = BTreeMap<usize, Result<u64, String>>;

/// A receipt as read from disk.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub value: Value,
    pub signature_valid: bool,
}

/// One line of a listing (SPEC §3.1 `enact_list_receipts`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub run_id: String,
    pub workflow: String,
    pub actor_email: String,
    pub decision: String,
    pub timestamp: String,
    pub rollback_of: Option<String>,
    #[serde(skip)]
    pub seq: u64,
}

/// Listing filters.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// At most this many summaries; 0 means no limit.
    pub limit: usize,
    pub workflow: Option<String>,
    pub decision: Option<String>,
}

/// One problem found by [`Store::verify_all`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The run id (or file name) concerned.
    pub subject: String,
    /// One of the constants in [`problem_kind`], e.g. `bad_signature`.
    pub kind: String,
    pub message: String,
}

/// The kinds of [`Problem`] that [`Store::verify_all`] reports.
pub mod problem_kind {
    /// A receipt's signature does not verify with this folder's key.
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// A receipt-named file is not a valid receipt: unreadable, not JSON, duplicate keys,
    /// missing chain fields, or its signed `run_id` differs from its file name.
    pub const INVALID: &str = "invalid";
    /// A receipt changed after the next link (receipt or head record) was chained to it.
    pub const EDITED: &str = "edited";
    /// Receipts are out of place: file contents swapped between names, or a `prev_hash` that
    /// links to another receipt of the folder than the one before it.
    pub const REORDERED: &str = "reordered";
    /// One or more `seq` values are missing (a receipt was removed).
    pub const GAP: &str = "gap";
    /// Two receipt files claim the same `seq`.
    pub const DUPLICATE_SEQ: &str = "duplicate_seq";
    /// The head record names a newer receipt than any present: the newest were removed.
    pub const TRUNCATED: &str = "truncated";
    /// The head record is missing (with receipts present), unreadable, wrongly signed, or
    /// older than the newest receipt.
    pub const BAD_HEAD: &str = "bad_head";
    /// A file in the folder that is neither a receipt nor the store's own.
    pub const UNKNOWN_FILE: &str = "unknown_file";
}

/// The receipts folder.
pub struct Store {
    dir: PathBuf,
    fsync: bool,
    secret: Secret,
}

impl Store {
    /// Opens (creating if needed) a receipts folder.
    pub fn open(dir: &Path, fsync: bool, secret: Secret) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        // The canonical path is the in-process lock key, so two spellings of one folder share it.
        let dir = fs::canonicalize(dir).map_err(StoreError::io(dir))?;
        Ok(Store { dir, fsync, secret })
    }

    /// The folder (canonical path).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key(&self) -> &[u8] {
        self.secret.expose().as_bytes()
    }

    fn lock_folder(&self) -> Result<lock::Exclusive, StoreError> {
        let path = self.dir.join(LOCK_FILE);
        lock::exclusive(&path).map_err(StoreError::io(&path))
    }

    fn receipt_path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.json"))
    }

    /// Chains, signs and writes a receipt: under the folder lock, sets `seq` and `prev_hash`
    /// from the head, signs, writes the file atomically, updates head record and index, and
    /// drops the run's rate-limit reservation. Returns the receipt as written.
    pub fn append(&self, mut receipt: Receipt) -> Result<Receipt, StoreError> {
        if !is_valid_run_id(&receipt.run_id) {
            return Err(StoreError::InvalidRunId(receipt.run_id));
        }
        let _lock = self.lock_folder()?;
        let path = self.receipt_path(&receipt.run_id);
        if path.exists() {
            return Err(StoreError::Invalid {
                run_id: receipt.run_id,
                reason: "a receipt with this run_id already exists".into(),
            });
        }
        let previous = self.previous_link()?;
        receipt.seq = previous.as_ref().map_or(0, |(seq, _)| seq + 1);
        receipt.prev_hash = previous.map_or_else(|| GENESIS_HASH.to_owned(), |(_, hash)| hash);
        receipt.sign(self.key());
        let value = receipt.to_value();
        let hash = receipt::chain_hash(&value);
        let entry =
            Entry::from_receipt(&value, hash.clone()).map_err(|reason| StoreError::Invalid {
                run_id: receipt.run_id.clone(),
                reason,
            })?;

        let index_path = self.dir.join(index::INDEX_FILE);
        let (before, after) =
            index::append(&self.dir, &entry).map_err(StoreError::io(&index_path))?;
        if let Err(e) = self.write_receipt(&receipt) {
            // Best effort: a leftover line would only force a rebuild at the next append.
            let _ = index::truncate(&self.dir, before);
            return Err(e);
        }
        let head = Head {
            seq: receipt.seq,
            run_id: receipt.run_id.clone(),
            hash,
            index_bytes: after,
        };
        if let Err(e) = head::write(&self.dir, &head, self.key(), self.fsync) {
            // The receipt is written and must not be written twice, so this is not an error
            // of the append: the stale head record makes the next append rebuild the index and
            // continue from the receipt files.
            tracing::error!(dir = %self.dir.display(), "could not update the head record: {e}");
        }
        rate::remove_reservation(&self.dir, &receipt.run_id);
        Ok(receipt)
    }

    fn write_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        let path = self.receipt_path(&receipt.run_id);
        // Serialising the struct (not the Value) keeps the field order of SPEC §5.1 in the file.
        let mut text = serde_json::to_string_pretty(receipt)
            .map_err(|e| StoreError::io(&path)(io::Error::other(e)))?;
        text.push('\n');
        file::write_atomic(
            &self.dir,
            &format!("{}.json", receipt.run_id),
            text.as_bytes(),
            self.fsync,
        )
        .map_err(StoreError::io(&path))
    }

    /// The `(seq, chain hash)` the next receipt links to, or `None` for an empty chain. Must be
    /// called under the folder lock.
    fn previous_link(&self) -> Result<Option<(u64, String)>, StoreError> {
        let head = self.read_head()?;
        let index_len =
            index::len(&self.dir).map_err(StoreError::io(&self.dir.join(index::INDEX_FILE)))?;
        if let Some(head) = head.valid()
            && Some(head.index_bytes) == index_len
        {
            return Ok(Some((head.seq, head.hash.clone())));
        }
        if let HeadState::Invalid(why) = &head {
            tracing::warn!(dir = %self.dir.display(), "head record is not trustworthy ({why}); continuing the chain from the receipt files");
        }
        let (lines, _) = self.rebuild_index()?;
        let newest_file = lines
            .iter()
            .filter_map(Line::entry)
            .max_by_key(|e| e.seq)
            .map(|e| (e.seq, e.hash.clone()));
        if head == HeadState::Missing && newest_file.is_some() {
            tracing::warn!(dir = %self.dir.display(), "head record missing; continuing the chain from the receipt files");
        }
        let from_head = head.valid().map(|h| (h.seq, h.hash.clone()));
        Ok(match (from_head, newest_file) {
            (Some(h), Some(f)) => Some(if f.0 > h.0 { f } else { h }),
            (h, f) => h.or(f),
        })
    }

    fn read_head(&self) -> Result<HeadState, StoreError> {
        head::read(&self.dir, self.key()).map_err(StoreError::io(&self.dir.join(head::HEAD_FILE)))
    }

    /// Rewrites the index from the receipt files.
    fn rebuild_index(&self) -> Result<(Vec<Line>, u64), StoreError> {
        tracing::info!(dir = %self.dir.display(), "rebuilding the receipts index");
        let mut lines = Vec::new();
        for run_id in self.receipt_file_ids()? {
            let line = match self.read_receipt(&run_id) {
                Ok(value) => Entry::from_receipt(&value, receipt::chain_hash(&value)).map_or_else(
                    |invalid| Line::Invalid {
                        run_id: run_id.clone(),
                        invalid,
                    },
                    Line::Entry,
                ),
                Err(StoreError::Invalid { reason, .. }) => Line::Invalid {
                    run_id: run_id.clone(),
                    invalid: reason,
                },
                // Removed since the folder was listed.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            lines.push(line);
        }
        index::write(&self.dir, lines).map_err(StoreError::io(&self.dir.join(index::INDEX_FILE)))
    }

    /// The index entries, rebuilding the index first if it does not match the folder. Must be
    /// called under the folder lock.
    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let index_path = self.dir.join(index::INDEX_FILE);
        let head = self.read_head()?;
        let files = self.receipt_file_ids()?.len();
        let current = index::read(&self.dir)
            .map_err(StoreError::io(&index_path))?
            .filter(|(lines, len)| {
                lines.len() == files && head.valid().is_none_or(|h| h.index_bytes == *len)
            });
        let lines = match current {
            Some((lines, _)) => lines,
            None => {
                let (lines, len) = self.rebuild_index()?;
                // Keep a valid head's record of the index current (else every append would
                // rebuild again), and move it forward past receipts an interrupted append left
                // beyond it, so the next append cannot reuse their seq. An untrustworthy head
                // is left as it is, for `verify` to report.
                if let Some(h) = head.valid() {
                    let mut updated = h.clone();
                    if let Some(newest) = lines.iter().filter_map(Line::entry).max_by_key(|e| e.seq)
                        && newest.seq > h.seq
                    {
                        (updated.seq, updated.run_id, updated.hash) =
                            (newest.seq, newest.run_id.clone(), newest.hash.clone());
                    }
                    updated.index_bytes = len;
                    head::write(&self.dir, &updated, self.key(), self.fsync)
                        .map_err(StoreError::io(&self.dir.join(head::HEAD_FILE)))?;
                }
                lines
            }
        };
        Ok(lines
            .into_iter()
            .filter_map(|line| {
                if let Line::Entry(e) = line {
                    Some(e)
                } else {
                    None
                }
            })
            .collect())
    }

    /// Run ids of the files named `<run_id>.json` (whatever they hold). A folder with such a
    /// name is left out here (it cannot be read as a receipt; the audit reports it).
    fn receipt_file_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(StoreError::io(&self.dir))? {
            let entry = entry.map_err(StoreError::io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = receipt_file_id(&name)
                && !entry.file_type().is_ok_and(|t| t.is_dir())
            {
                ids.push(id.to_owned());
            }
        }
        Ok(ids)
    }

    /// Reads `<run_id>.json` strictly: JSON object, no duplicate keys, signed `run_id` equal to
    /// the file name. The signature is not checked here.
    fn read_receipt(&self, run_id: &str) -> Result<Value, StoreError> {
        let path = self.receipt_path(run_id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(run_id.into()));
            }
            Err(e) => return Err(StoreError::io(&path)(e)),
        };
        let invalid = |reason: String| StoreError::Invalid {
            run_id: run_id.into(),
            reason,
        };
        let value = strict::parse(&bytes).map_err(|e| invalid(e.to_string()))?;
        match value.get("run_id") {
            Some(Value::String(signed)) if signed == run_id => Ok(value),
            Some(Value::String(signed)) => Err(invalid(format!(
                "its signed run_id is `{signed}`, not the file name"
            ))),
            _ if !value.is_object() => Err(invalid("not a JSON object".into())),
            _ => Err(invalid("`run_id` is missing or not a string".into())),
        }
    }

    /// Loads one receipt by run id (validated first) and checks its signature.
    pub fn load(&self, run_id: &str) -> Result<Loaded, StoreError> {
        if !is_valid_run_id(run_id) {
            return Err(StoreError::InvalidRunId(run_id.into()));
        }
        let value = self.read_receipt(run_id)?;
        let signature_valid = receipt::verify(&value, self.key());
        Ok(Loaded {
            value,
            signature_valid,
        })
    }

    /// Summaries, newest first by `seq` (ties, which only a damaged folder has, by run id).
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Summary>, StoreError> {
        let mut entries = {
            let _lock = self.lock_folder()?;
            self.entries()?
        };
        entries.retain(|e| {
            filter.workflow.as_ref().is_none_or(|w| *w == e.workflow)
                && filter.decision.as_ref().is_none_or(|d| *d == e.decision)
        });
        entries.sort_by(|a, b| b.seq.cmp(&a.seq).then_with(|| a.run_id.cmp(&b.run_id)));
        let limit = if filter.limit == 0 {
            usize::MAX
        } else {
            filter.limit
        };
        Ok(entries.into_iter().take(limit).map(Summary::from).collect())
    }

    /// Verifies every receipt, the chain and the head record (see the `audit` module for how
    /// problems are told apart). Problems are listed unreadable receipt files first, then the
    /// others' name and signature problems in `seq` order, then the chain, then the head
    /// record, then stray files.
    pub fn verify_all(&self) -> Result<Vec<Problem>, StoreError> {
        let _lock = self.lock_folder()?;
        audit::verify_all(self)
    }

    /// Rate limiting, counted and reserved in one step under the folder lock (also across
    /// processes): counts, for each query, the validly signed PASS receipts (rollbacks
    /// excluded) and the pending reservations of `actor_email` inside the window ending at
    /// `now`; calls `decide` with the counts; if it returns true, records a reservation for
    /// `run_id` (removed when its receipt is appended). With no queries, just calls `decide`.
    ///
    /// Counted: receipts and reservations of `actor_email` whose workflow is in the query's
    /// scope and whose timestamp is after `now - window` — also those stamped after `now`,
    /// which are runs of concurrent callers whose clock read came later; leaving them out would
    /// let two callers overshoot. With `per = (arg, value)`, only runs whose stored payload has
    /// `arg` equal to `value` (compared as JCS, so `5` equals `5.0`; a missing argument equals
    /// `null`) count; payloads over 64 KiB are stored as digests and so never match. Receipts
    /// are re-read and their signatures checked; a receipt that cannot be read makes that
    /// query's count an `Err` (the policy then fails closed). `decide` runs under the folder
    /// lock: it must not call back into this store.
    #[allow(clippy::too_many_arguments)] // The signature is fixed: the engine calls it.
    pub fn count_and_reserve(
        &self,
        queries: &[RateQuery],
        actor_email: &str,
        workflow: &str,
        payload: &Map<String, Value>,
        now: DateTime<Utc>,
        run_id: &str,
        decide: &mut dyn FnMut(&RateCounts) -> bool,
    ) -> Result<bool, StoreError> {
        if queries.is_empty() {
            return Ok(decide(&BTreeMap::new()));
        }
        if !is_valid_run_id(run_id) {
            return Err(StoreError::InvalidRunId(run_id.into()));
        }
        let _lock = self.lock_folder()?;
        let call = rate::Call {
            actor_email,
            workflow,
            payload,
            now,
            run_id,
        };
        let counts = rate::count(self, queries, &call)?;
        let granted = decide(&counts);
        if granted {
            rate::reserve(&self.dir, &call)?;
        }
        Ok(granted)
    }

    /// The count `count_and_reserve` would hand to `decide` for one query, reserving nothing
    /// (for `enact_preview`).
    pub fn count_runs(
        &self,
        query: &RateQuery,
        actor_email: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let _lock = self.lock_folder()?;
        let payload = Map::new();
        let call = rate::Call {
            actor_email,
            workflow: "",
            payload: &payload,
            now,
            run_id: "",
        };
        let counts = rate::count(self, std::slice::from_ref(query), &call)?;
        match counts.get(&query.index) {
            Some(Ok(n)) => Ok(*n),
            Some(Err(e)) => Err(StoreError::Invalid {
                run_id: String::new(),
                reason: e.clone(),
            }),
            None => Ok(0),
        }
    }

    /// Drops a reservation without a receipt (the call failed before one could be written).
    pub fn release(&self, run_id: &str) {
        if is_valid_run_id(run_id) {
            rate::remove_reservation(&self.dir, run_id);
        }
    }

    /// Rollback receipts whose `rollback_of` is `original`, oldest first: (run id, decision,
    /// the rollback receipt value). Only validly signed receipts are returned: a forged
    /// rollback receipt must not stop a real rollback.
    pub fn rollbacks_of(&self, original: &str) -> Result<Vec<(String, String, Value)>, StoreError> {
        if !is_valid_run_id(original) {
            return Err(StoreError::InvalidRunId(original.into()));
        }
        let mut entries = {
            let _lock = self.lock_folder()?;
            self.entries()?
        };
        entries.retain(|e| e.rollback_of.as_deref() == Some(original));
        entries.sort_by_key(|e| e.seq);
        let mut out = Vec::new();
        for entry in entries {
            let loaded = match self.load(&entry.run_id) {
                Ok(loaded) => loaded,
                Err(StoreError::NotFound(_) | StoreError::Invalid { .. }) => continue,
                Err(e) => return Err(e),
            };
            let value = loaded.value;
            if !loaded.signature_valid
                || value.get("rollback_of").and_then(Value::as_str) != Some(original)
            {
                tracing::warn!(run_id = %entry.run_id, "ignoring rollback receipt whose signature does not verify");
                continue;
            }
            let decision = value
                .get("decision")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            out.push((entry.run_id, decision, value));
        }
        Ok(out)
    }

    /// Holds an exclusive cross-process lock for rolling back `original` until dropped, so two
    /// rollbacks of one run cannot interleave. Blocks while another holder has it.
    pub fn lock_rollback(&self, original: &str) -> Result<RollbackLock, StoreError> {
        if !is_valid_run_id(original) {
            return Err(StoreError::InvalidRunId(original.into()));
        }
        let dir = self.dir.join(LOCKS_DIR);
        fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        let path = dir.join(format!("rollback-{original}.lock"));
        Ok(RollbackLock {
            _lock: lock::exclusive(&path).map_err(StoreError::io(&path))?,
        })
    }
}

/// See [`Store::lock_rollback`].
#[derive(Debug)]
pub struct RollbackLock {
    _lock: lock::Exclusive,
}

impl From<Entry> for Summary {
    fn from(e: Entry) -> Summary {
        Summary {
            run_id: e.run_id,
            workflow: e.workflow,
            actor_email: e.actor_email,
            decision: e.decision,
            timestamp: e.timestamp,
            rollback_of: e.rollback_of,
            seq: e.seq,
        }
    }
}

/// The names in a folder (not valid UTF-8 names are kept lossily, so the audit can name them).
fn file_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// The run id of a receipt file name (`<run_id>.json`).
fn receipt_file_id(name: &str) -> Option<&str> {
    name.strip_suffix(".json").filter(|id| is_valid_run_id(id))
}
