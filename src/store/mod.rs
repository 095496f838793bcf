//! The receipts store: a write-ahead journal (SPEC §5.3–§5.6).
//!
//! Layout of the receipts folder:
//!
//! | name | what |
//! |---|---|
//! | `journal/<n>.log` | segments: one signed record per line (`intent`, `step`, `receipt`); the only truth |
//! | `journal/head` | the signed head record, two slots (module `head`) |
//! | `.lock` | the folder lock: every append happens under it, across processes |
//! | `.locks/rollback-<run_id>.lock` | one lock per run being rolled back |
//! | `owners/<owner>.lock` | held by a live process for its whole life; recovery finishes only the runs of owners whose lock is free |
//! | `migrated/` | receipt files of the earlier layout, moved aside by `receipts migrate` |
//!
//! An append, under the folder lock: read the journal's tail into the in-memory index (other
//! processes' appends), cut a line torn by a crash, check the chain against the head record
//! (a truncated or rewound chain refuses every append until `receipts repair`), write the line
//! with `O_APPEND`, then — for receipts — update the head. With `fsync`, the append is synced
//! after the lock is released, so concurrent appends share one sync (group commit), and the
//! head is written only once its receipt is durable, so it is never ahead of the journal.

mod audit;
mod head;
mod index;
mod legacy;
mod lock;
mod pg;
mod segment;
mod strict;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use self::head::{Head, HeadState};
use self::index::{Entry, Index};
use self::segment::{JOURNAL_DIR, Line, Pos, Reader, SEGMENT_MAX, Span};
use crate::kernel::policy::RateQuery;
use crate::kernel::receipt::{self, GENESIS_HASH, Receipt, is_valid_run_id};
use crate::secret::Secret;

pub use self::audit::Audit;

const LOCK_FILE: &str = ".lock";
const LOCKS_DIR: &str = ".locks";
const OWNERS_DIR: &str = "owners";
/// How long an append waits for the folder lock before failing closed. Overridable (for the
/// tests) with `ENACT_LOCK_TIMEOUT_MS`.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Room reserved past a record written before an action, beyond three times its own length.
const RESERVE_SLACK: u64 = 64 * 1024;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `Invalid run_id: '<id>'`
    #[error("Invalid run_id: '{0}'")]
    InvalidRunId(String),
    /// `No receipt found for run_id: <id>`
    #[error("No receipt found for run_id: {0}")]
    NotFound(String),
    /// The record exists but is not a valid receipt (bad JSON, duplicate keys).
    #[error("receipt `{run_id}` is invalid: {reason}")]
    Invalid { run_id: String, reason: String },
    /// The run already has a receipt (recovery racing another process, or a reused id).
    #[error("run `{0}` already has a receipt")]
    Duplicate(String),
    /// The chain was truncated or rewound: appends wait for `receipts repair`.
    #[error(
        "the receipts chain is truncated or its head record is damaged ({0}); appends are refused until an operator runs `enact receipts repair --accept-truncation`"
    )]
    Truncated(String),
    /// A receipts folder of the earlier layout, not migrated yet.
    #[error(
        "receipts folder `{0}` holds receipts in the earlier layout (one file per run): run `enact receipts migrate` first"
    )]
    Legacy(String),
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
pub type RateCounts = std::collections::BTreeMap<usize, Result<u64, String>>;

/// A receipt as read from the journal.
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

/// A run interrupted by a crash: its intent, its step records, and the owner that died.
#[derive(Debug, Clone)]
pub struct Interrupted {
    pub run_id: String,
    pub owner: String,
    pub intent: Value,
    pub steps: Vec<Value>,
}

/// Owner locks of dead processes, held while their runs are recovered.
#[derive(Debug, Default)]
pub struct OwnerClaims {
    claims: Vec<(PathBuf, File)>,
    /// Owners whose database lock is held (a database journal).
    pg: Vec<String>,
}

/// This process's owner id and the lock that says it is alive.
struct Owner {
    id: String,
    _file: File,
}

/// Group commit: how far the journal is known durable.
#[derive(Default)]
struct Synced {
    upto: Pos,
}

/// The receipts store.
pub struct Store {
    dir: PathBuf,
    journal: PathBuf,
    fsync: bool,
    secret: Secret,
    index: Mutex<Index>,
    synced: Mutex<Synced>,
    owner: OnceLock<Result<Owner, String>>,
    lock_timeout: Duration,
    /// `Some`: the journal is in PostgreSQL (module `pg`), not in this folder.
    pg: Option<Box<pg::PgJournal>>,
}

impl Store {
    /// Opens (creating if needed) a receipts folder and reads its journal into the index.
    /// A folder of the earlier layout is refused with [`StoreError::Legacy`].
    pub fn open(dir: &Path, fsync: bool, secret: Secret) -> Result<Store, StoreError> {
        let store = Store::open_unchecked(dir, fsync, secret)?;
        if legacy::has_receipt_files(&store.dir)? && !store.journal.exists() {
            return Err(StoreError::Legacy(store.dir.display().to_string()));
        }
        store.ensure_journal()?;
        store.refresh()?;
        Ok(store)
    }

    fn open_unchecked(dir: &Path, fsync: bool, secret: Secret) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        // The canonical path is the in-process lock key, so two spellings of one folder share it.
        let dir = fs::canonicalize(dir).map_err(StoreError::io(dir))?;
        let lock_timeout = std::env::var("ENACT_LOCK_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(LOCK_TIMEOUT, Duration::from_millis);
        Ok(Store {
            journal: dir.join(JOURNAL_DIR),
            dir,
            fsync,
            secret,
            index: Mutex::new(Index::default()),
            synced: Mutex::new(Synced::default()),
            owner: OnceLock::new(),
            lock_timeout,
            pg: None,
        })
    }

    /// Creates the journal folder, its first segment and an empty head record, under the lock.
    fn ensure_journal(&self) -> Result<(), StoreError> {
        let first = segment::segment_path(&self.journal, 1);
        if first.exists() || self.journal.join(head::HEAD_FILE).exists() {
            return Ok(());
        }
        let _lock = self.lock_folder()?;
        if !self.journal.exists() {
            fs::create_dir(&self.journal).map_err(StoreError::io(&self.journal))?;
        }
        let (segments, _) = segment::list(&self.journal).map_err(StoreError::io(&self.journal))?;
        if segments.is_empty() {
            segment::open_append(&first, true).map_err(StoreError::io(&first))?;
        }
        if !self.journal.join(head::HEAD_FILE).exists() {
            let empty = Head {
                seq: None,
                hash: GENESIS_HASH.into(),
                segment: 1,
                offset: 0,
            };
            head::write(&self.journal, &empty, self.key(), true)
                .map_err(StoreError::io(&self.journal))?;
        }
        if self.fsync {
            segment::sync_dir(&self.journal).map_err(StoreError::io(&self.journal))?;
            segment::sync_dir(&self.dir).map_err(StoreError::io(&self.dir))?;
        }
        Ok(())
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
        lock::exclusive_timeout(&path, self.lock_timeout).map_err(StoreError::io(&path))
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // A poisoned index only means a panic elsewhere mid-update of plain data; appends
        // re-read the tail, so the index stays consistent with the journal.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the journal's complete lines past the index's tail into the index.
    fn refresh(&self) -> Result<(), StoreError> {
        let mut index = self.index();
        self.read_tail(&mut index)?;
        Ok(())
    }

    /// Reads new complete lines into `index`; returns the position of a trailing partial line.
    fn read_tail(&self, index: &mut Index) -> Result<Option<Pos>, StoreError> {
        if let Some(pg) = &self.pg {
            return self.pg_read_tail(pg, index);
        }
        let (segments, _) = segment::list(&self.journal).map_err(StoreError::io(&self.journal))?;
        let mut partial = None;
        let from = index.tail.segment;
        for n in segments.into_iter().filter(|n| *n >= from) {
            let offset = if n == index.tail.segment {
                index.tail.offset
            } else {
                0
            };
            let path = segment::segment_path(&self.journal, n);
            let mut reader =
                Reader::open(&self.journal, n, offset).map_err(StoreError::io(&path))?;
            index.tail = Pos { segment: n, offset };
            while let Some(line) = reader.next_line().map_err(StoreError::io(&path))? {
                match line {
                    Line::Record(span, bytes) => {
                        self.index_line(index, span, &bytes);
                        index.tail = span.end();
                    }
                    Line::TooLong(span) => {
                        index.skipped.push((span, "a record over 16 MiB".into()));
                        index.tail = span.end();
                    }
                    Line::Partial(pos) => partial = Some(pos),
                }
            }
        }
        Ok(partial)
    }

    fn index_line(&self, index: &mut Index, span: Span, bytes: &[u8]) {
        match strict::parse(bytes) {
            Ok(value) => {
                let verified = receipt::verify(&value, self.key());
                if !verified {
                    let id = value.get("run_id").and_then(Value::as_str).unwrap_or("?");
                    tracing::warn!(
                        run_id = id,
                        "journal record whose signature does not verify: never trusted"
                    );
                }
                let hash = receipt::chain_hash(&value);
                index.apply(span, &value, hash, verified);
            }
            Err(e) => index
                .skipped
                .push((span, format!("not a valid record: {e}"))),
        }
    }

    /// Appends one signed record line under the folder lock. `prepare` sees the index (after
    /// the tail was read) and returns the record to write, already signed, and whether it is
    /// a receipt (chained: checked against the head, and the head then moved) — or `None` to
    /// append nothing.
    fn append_line(
        &self,
        prepare: impl FnOnce(&Index) -> Result<Option<(Value, bool)>, StoreError>,
    ) -> Result<Option<(Value, Span)>, StoreError> {
        if let Some(pg) = &self.pg {
            return self.pg_append_line(pg, prepare);
        }
        let (value, span, chained) = {
            let _lock = self.lock_folder()?;
            let mut index = self.index();
            if let Some(torn) = self.read_tail(&mut index)? {
                self.cut_torn_line(torn)?;
            }
            index.link_override = None;
            // Checked before `prepare` (which takes the next link) for every append, so a
            // truncated chain also refuses intents: nothing runs that could not be recorded.
            index.link_override = self.check_chain(&index)?;
            let Some((value, _)) = prepare(&index)? else {
                return Ok(None);
            };
            let chained = value.get("kind").and_then(Value::as_str) == Some("receipt")
                || value.get("kind").is_none();
            let mut line = serde_json::to_vec(&value)
                .map_err(|e| StoreError::io(&self.journal)(io::Error::other(e)))?;
            line.push(b'\n');
            let mut at = index.tail;
            if at.segment == 0 {
                at.segment = 1;
            }
            if at.offset > 0 && at.offset + line.len() as u64 > SEGMENT_MAX {
                at = Pos {
                    segment: at.segment + 1,
                    offset: 0,
                };
            }
            let path = segment::segment_path(&self.journal, at.segment);
            let mut file =
                segment::open_append(&path, at.offset == 0).map_err(StoreError::io(&path))?;
            if at.offset == 0 && self.fsync {
                segment::sync_dir(&self.journal).map_err(StoreError::io(&self.journal))?;
            }
            if !chained {
                // An intent or step record comes before an action: reserve the room for the
                // records that will follow it (the step's undo data and the receipt, which
                // holds it again), so a full disk refuses the run here, before it acts, and
                // never between an action and its receipt.
                let room = 3 * line.len() as u64 + RESERVE_SLACK;
                segment::reserve(&file, at.offset, room).map_err(StoreError::io(&path))?;
            }
            if let Err(e) = file.write_all(&line) {
                // Leave no half line for the next reader to stumble on.
                let _ = file.set_len(at.offset);
                return Err(StoreError::io(&path)(e));
            }
            let span = Span {
                segment: at.segment,
                offset: at.offset,
                len: line.len() as u64 - 1,
            };
            let hash = if chained {
                receipt::chain_hash(&value)
            } else {
                String::new()
            };
            index.apply(span, &value, hash.clone(), true);
            index.tail = span.end();
            index.link_override = None;
            if chained && !self.fsync {
                self.move_head(&value, &hash, span)?;
            }
            (value, span, chained.then_some(hash))
        };
        self.make_durable(span.end())?;
        if let Some(hash) = chained
            && self.fsync
        {
            self.move_head(&value, &hash, span)?;
        }
        Ok(Some((value, span)))
    }

    fn cut_torn_line(&self, torn: Pos) -> Result<(), StoreError> {
        let path = segment::segment_path(&self.journal, torn.segment);
        tracing::warn!(segment = %path.display(), offset = torn.offset, "cutting a journal line torn by a crash");
        let file = segment::open_write(&path, false).map_err(StoreError::io(&path))?;
        file.set_len(torn.offset).map_err(StoreError::io(&path))
    }

    /// Refuses to continue a chain the head record says was longer, or whose head is gone.
    /// `Ok(Some(hash))`: the head names the newest receipt with another hash (an edit in
    /// place), and the next receipt links to the head's hash.
    fn check_chain(&self, index: &Index) -> Result<Option<String>, StoreError> {
        match head::read(&self.journal, self.key()).map_err(StoreError::io(&self.journal))? {
            HeadState::Valid(h) => match (h.seq, &index.newest) {
                (None, _) => Ok(None),
                (Some(s), Some((newest, hash))) if s == *newest => {
                    Ok((*hash != h.hash).then(|| h.hash.clone()))
                }
                (Some(s), Some((newest, _))) if s < *newest => Ok(None),
                (Some(s), newest) => Err(StoreError::Truncated(format!(
                    "the head record names seq {s}, the journal ends at {}",
                    newest
                        .as_ref()
                        .map_or_else(|| "no receipt".to_string(), |(n, _)| format!("seq {n}"))
                ))),
            },
            HeadState::Missing if index.newest.is_none() => Ok(None),
            HeadState::Missing => Err(StoreError::Truncated("the head record is missing".into())),
            HeadState::Invalid(why) => Err(StoreError::Truncated(format!(
                "the head record is invalid: {why}"
            ))),
        }
    }

    fn move_head(&self, value: &Value, hash: &str, span: Span) -> Result<(), StoreError> {
        let seq = value.get("seq").and_then(Value::as_u64);
        let end = span.end();
        let head = Head {
            seq,
            hash: hash.to_owned(),
            segment: end.segment,
            offset: end.offset,
        };
        // With fsync this runs outside the folder lock, after the receipt is durable: another
        // append may have moved the head further already, but the slot for this seq is still
        // the right one to fill (readers take the newest valid slot), and a head behind the
        // journal is normal.
        head::write(&self.journal, &head, self.key(), false).map_err(StoreError::io(&self.journal))
    }

    /// With `fsync`: syncs the journal up to `end`, sharing one sync with concurrent appends.
    fn make_durable(&self, end: Pos) -> Result<(), StoreError> {
        if !self.fsync {
            return Ok(());
        }
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        if synced.upto >= end {
            return Ok(());
        }
        // Everything appended up to now is covered by this sync.
        let target = self.index().tail.max(end);
        for n in end.segment.min(synced.upto.segment.max(1))..=target.segment {
            let path = segment::segment_path(&self.journal, n);
            match segment::open_read(&path) {
                Ok(f) => f.sync_data().map_err(StoreError::io(&path))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path)(e)),
            }
        }
        synced.upto = target;
        Ok(())
    }

    /// This process's owner id (created, with its lock, on first use).
    fn owner(&self) -> Result<&str, StoreError> {
        if let Some(pg) = &self.pg {
            return pg.owner_id();
        }
        let owner = self.owner.get_or_init(|| {
            let dir = self.dir.join(OWNERS_DIR);
            fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let id = uuid::Uuid::new_v4().to_string();
            let path = dir.join(format!("{id}.lock"));
            let file = segment::open_write(&path, true).map_err(|e| e.to_string())?;
            file.try_lock().map_err(|e| e.to_string())?;
            Ok(Owner { id, _file: file })
        });
        match owner {
            Ok(o) => Ok(&o.id),
            Err(e) => Err(StoreError::Io {
                path: self.dir.join(OWNERS_DIR).display().to_string(),
                source: io::Error::other(e.clone()),
            }),
        }
    }

    /// Checks that the folder can be written (SPEC §5.5: `serve` refuses to start otherwise).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        if let Some(pg) = &self.pg {
            return pg.check_writable();
        }
        self.owner()?;
        let _lock = self.lock_folder()?;
        head::read(&self.journal, self.key()).map_err(StoreError::io(&self.journal))?;
        let tail = self.index().tail;
        let path = segment::segment_path(&self.journal, tail.segment.max(1));
        segment::open_append(&path, false).map_err(StoreError::io(&path))?;
        let probe = self
            .journal
            .join(format!(".probe-{}", uuid::Uuid::new_v4()));
        let written = fs::write(&probe, b"probe");
        let _ = fs::remove_file(&probe);
        written.map_err(StoreError::io(&self.journal))
    }

    fn sign(&self, mut value: Value) -> Value {
        if let Value::Object(map) = &mut value {
            map.remove("signature");
        }
        let signature = receipt::sign(&value, self.key());
        if let Value::Object(map) = &mut value {
            map.insert("signature".into(), Value::String(signature));
        }
        value
    }

    /// Appends a run's `intent` record (SPEC §5.5): `fields` holds run id, workflow, actor,
    /// payload, plan, policy results and timestamp; the store adds `kind`, `owner` and the
    /// signature. Durable (with `fsync`) when this returns.
    pub fn append_intent(&self, fields: Map<String, Value>) -> Result<(), StoreError> {
        let owner = self.owner()?.to_owned();
        self.append_line(|index| self.intent_record(index, fields, &owner).map(Some))?;
        Ok(())
    }

    /// Appends a `step` record: `fields` holds run id, step index, system, action, target and
    /// the undo data as known before acting (`pre`). Durable (with `fsync`) when this returns.
    pub fn append_step(&self, mut fields: Map<String, Value>) -> Result<(), StoreError> {
        fields.insert("kind".into(), json!("step"));
        let value = self.sign(Value::Object(fields));
        self.append_line(|_| Ok(Some((value, false))))?;
        Ok(())
    }

    /// Chains, signs and appends a receipt (SPEC §5.4): `seq` and `prev_hash` come from the
    /// newest receipt in the journal. Returns the receipt as written.
    pub fn append(&self, mut receipt: Receipt) -> Result<Receipt, StoreError> {
        if !is_valid_run_id(&receipt.run_id) {
            return Err(StoreError::InvalidRunId(receipt.run_id));
        }
        let key = self.secret.expose().as_bytes().to_vec();
        let mut written = None;
        self.append_line(|index| {
            if index.get(&receipt.run_id).is_some() {
                return Err(StoreError::Duplicate(receipt.run_id.clone()));
            }
            (receipt.seq, receipt.prev_hash) = index.next_link();
            receipt.kind = "receipt".into();
            receipt.sign(&key);
            let value = receipt.to_value();
            written = Some(receipt.clone());
            Ok(Some((value, true)))
        })?;
        written.ok_or_else(|| StoreError::io(&self.journal)(io::Error::other("nothing appended")))
    }

    /// Rate limiting and the intent in one step under the folder lock (also across processes):
    /// counts, for each query, the PASS runs of `actor_email` in the window ending at `now`
    /// (receipts and open intents, so runs in flight count); hands the counts to `decide`,
    /// which returns the intent record's fields when the call passes. Returns whether an
    /// intent was appended. `decide` runs under the folder lock: it must not call back into
    /// this store.
    pub fn gate_and_intend(
        &self,
        queries: &[RateQuery],
        actor_email: &str,
        now: DateTime<Utc>,
        decide: &mut dyn FnMut(&RateCounts) -> Option<Map<String, Value>>,
    ) -> Result<bool, StoreError> {
        let owner = self.owner()?.to_owned();
        let appended = self.append_line(|index| {
            let counts: RateCounts = queries
                .iter()
                .map(|q| (q.index, count(index, q, actor_email, now)))
                .collect();
            let Some(fields) = decide(&counts) else {
                return Ok(None);
            };
            self.intent_record(index, fields, &owner).map(Some)
        })?;
        Ok(appended.is_some())
    }

    fn intent_record(
        &self,
        index: &Index,
        mut fields: Map<String, Value>,
        owner: &str,
    ) -> Result<(Value, bool), StoreError> {
        let run_id = fields
            .get("run_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !is_valid_run_id(&run_id) {
            return Err(StoreError::InvalidRunId(run_id));
        }
        if index.has_run(&run_id) {
            return Err(StoreError::Duplicate(run_id));
        }
        fields.insert("kind".into(), json!("intent"));
        fields.insert("owner".into(), json!(owner));
        Ok((self.sign(Value::Object(fields)), false))
    }

    /// The count `gate_and_intend` would hand to `decide` for one query (for `enact_preview`).
    pub fn count_runs(
        &self,
        query: &RateQuery,
        actor_email: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.refresh()?;
        count(&self.index(), query, actor_email, now).map_err(|reason| StoreError::Invalid {
            run_id: String::new(),
            reason,
        })
    }

    /// Reads and strictly parses the record at `span`.
    fn read_record(&self, run_id: &str, span: Span) -> Result<Value, StoreError> {
        if let Some(pg) = &self.pg {
            return self.pg_read_record(pg, run_id, span);
        }
        let bytes =
            segment::read_span(&self.journal, span).map_err(StoreError::io(&self.journal))?;
        strict::parse(&bytes).map_err(|e| StoreError::Invalid {
            run_id: run_id.into(),
            reason: e.to_string(),
        })
    }

    /// Loads one receipt by run id (validated first), reading the record itself from the
    /// journal and checking its signature (so an edit in place is seen).
    pub fn load(&self, run_id: &str) -> Result<Loaded, StoreError> {
        if !is_valid_run_id(run_id) {
            return Err(StoreError::InvalidRunId(run_id.into()));
        }
        self.refresh()?;
        let span = self
            .index()
            .get(run_id)
            .map(|e| e.span)
            .ok_or_else(|| StoreError::NotFound(run_id.into()))?;
        let value = self.read_record(run_id, span)?;
        let signature_valid = receipt::verify(&value, self.key())
            && value.get("run_id").and_then(Value::as_str) == Some(run_id);
        Ok(Loaded {
            value,
            signature_valid,
        })
    }

    /// Summaries, newest first by `seq`.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Summary>, StoreError> {
        self.refresh()?;
        let index = self.index();
        let limit = if filter.limit == 0 {
            usize::MAX
        } else {
            filter.limit
        };
        let mut picked: Vec<&Entry> = index
            .entries
            .iter()
            .filter(|e| {
                e.verified
                    && filter.workflow.as_ref().is_none_or(|w| **w == *e.workflow)
                    && filter.decision.as_ref().is_none_or(|d| **d == *e.decision)
            })
            .collect();
        // Journal order is seq order in an undamaged journal; sorting keeps "newest first by
        // seq" exact in a damaged one too. Stable on ties.
        if !picked.windows(2).all(|w| w[0].seq < w[1].seq) {
            picked.sort_by_key(|e| e.seq);
        }
        Ok(picked
            .into_iter()
            .rev()
            .take(limit)
            .map(Summary::from)
            .collect())
    }

    /// Every receipt value in journal order (for export and copy): verified or not.
    pub fn for_each_receipt(
        &self,
        mut f: impl FnMut(&Value) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.refresh()?;
        let spans: Vec<(String, Span)> = self
            .index()
            .entries
            .iter()
            .map(|e| (e.run_id.clone(), e.span))
            .collect();
        for (run_id, span) in spans {
            f(&self.read_record(&run_id, span)?)?;
        }
        Ok(())
    }

    /// Verifies every record, the chain and the head record (module `audit`).
    pub fn verify_all(&self) -> Result<Audit, StoreError> {
        if let Some(pg) = &self.pg {
            return self.pg_verify_all(pg);
        }
        let _lock = self.lock_folder()?;
        audit::verify_all(self)
    }

    /// Rollback receipts whose `rollback_of` is `original`, oldest first: (run id, decision,
    /// the rollback receipt value). Only validly signed receipts are returned.
    pub fn rollbacks_of(&self, original: &str) -> Result<Vec<(String, String, Value)>, StoreError> {
        if !is_valid_run_id(original) {
            return Err(StoreError::InvalidRunId(original.into()));
        }
        self.refresh()?;
        let found: Vec<(String, Span)> = {
            let index = self.index();
            let mut entries = index.rollbacks_of(original);
            entries.sort_by_key(|e| e.seq);
            entries.iter().map(|e| (e.run_id.clone(), e.span)).collect()
        };
        let mut out = Vec::new();
        for (run_id, span) in found {
            let value = self.read_record(&run_id, span)?;
            if !receipt::verify(&value, self.key())
                || value.get("rollback_of").and_then(Value::as_str) != Some(original)
            {
                tracing::warn!(run_id = %run_id, "ignoring rollback receipt whose signature does not verify");
                continue;
            }
            let decision = value
                .get("decision")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            out.push((run_id, decision, value));
        }
        Ok(out)
    }

    /// Holds an exclusive cross-process lock for rolling back `original` until dropped, so two
    /// rollbacks of one run cannot interleave. Blocks while another holder has it.
    pub fn lock_rollback(&self, original: &str) -> Result<RollbackLock, StoreError> {
        if !is_valid_run_id(original) {
            return Err(StoreError::InvalidRunId(original.into()));
        }
        if let Some(pg) = &self.pg {
            return self.pg_lock_rollback(pg, original);
        }
        let dir = self.dir.join(LOCKS_DIR);
        fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        let path = dir.join(format!("rollback-{original}.lock"));
        Ok(RollbackLock {
            _lock: Box::new(lock::exclusive(&path).map_err(StoreError::io(&path))?),
        })
    }

    /// Runs with an intent and no receipt whose owner process is gone, with their step
    /// records; their owners' locks are held (in the returned claims) until recovery is done,
    /// so two recovering processes never finish the same run twice. Runs of live processes
    /// (this one included) are left alone.
    pub fn interrupted(&self) -> Result<(Vec<Interrupted>, OwnerClaims), StoreError> {
        self.refresh()?;
        let mine = match &self.pg {
            Some(pg) => pg.mine(),
            None => self
                .owner
                .get()
                .and_then(|o| o.as_ref().ok())
                .map(|o| o.id.clone()),
        };
        let open: Vec<(String, index::Open)> = self
            .index()
            .open
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut claims = OwnerClaims::default();
        let mut dead = std::collections::BTreeMap::<String, bool>::new();
        let mut runs = Vec::new();
        for (run_id, open) in open {
            if Some(&open.owner) == mine.as_ref() {
                continue;
            }
            let is_dead = match dead.get(&open.owner) {
                Some(d) => *d,
                None => {
                    let d = self.claim_owner(&open.owner, &mut claims)?;
                    dead.insert(open.owner.clone(), d);
                    d
                }
            };
            if !is_dead {
                continue;
            }
            let intent = self.read_record(&run_id, open.intent)?;
            let mut steps = Vec::new();
            for span in &open.steps {
                steps.push(self.read_record(&run_id, *span)?);
            }
            runs.push(Interrupted {
                run_id,
                owner: open.owner,
                intent,
                steps,
            });
        }
        runs.sort_by(|a, b| {
            let t = |r: &Interrupted| {
                r.intent
                    .get("timestamp")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            t(a).cmp(&t(b))
        });
        Ok((runs, claims))
    }

    /// Tries to take a (dead) owner's lock. `Ok(false)`: the owner is alive.
    fn claim_owner(&self, owner: &str, claims: &mut OwnerClaims) -> Result<bool, StoreError> {
        if !is_valid_run_id(owner) {
            // Not an id this store hands out: nobody can hold its lock.
            return Ok(true);
        }
        if let Some(pg) = &self.pg {
            return self.pg_claim(pg, owner, claims);
        }
        let dir = self.dir.join(OWNERS_DIR);
        fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        let path = dir.join(format!("{owner}.lock"));
        let file = segment::open_write(&path, true).map_err(StoreError::io(&path))?;
        match file.try_lock() {
            Ok(()) => {
                claims.claims.push((path, file));
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(&path)(e)),
        }
    }

    /// Removes the lock files of dead owners that have no open run left.
    pub fn release_claims(&self, claims: OwnerClaims) {
        if let Some(pg) = &self.pg {
            pg.release(claims.pg);
            return;
        }
        let _ = self.refresh();
        let index = self.index();
        for (path, file) in claims.claims {
            let owner = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !index.open.values().any(|o| o.owner == owner) {
                let _ = fs::remove_file(&path);
            }
            drop(file);
        }
    }

    /// `enact receipts repair --accept-truncation` (SPEC §5.4): appends a signed
    /// `ACK_TRUNCATION` record whose seq follows the highest seq the head record knew and whose
    /// `prev_hash` is the chain hash of the last surviving receipt. `Ok(None)`: nothing to repair.
    pub fn repair_truncation(
        &self,
        operator: &str,
        now: DateTime<Utc>,
        run_id: &str,
    ) -> Result<Option<Value>, StoreError> {
        if self.pg.is_some() {
            // No head record: the database journal cannot be truncated by a crash.
            return Ok(None);
        }
        let _lock = self.lock_folder()?;
        let mut index = self.index();
        if let Some(torn) = self.read_tail(&mut index)? {
            self.cut_torn_line(torn)?;
        }
        let problem = match self.check_chain(&index) {
            Ok(_) => return Ok(None),
            Err(StoreError::Truncated(why)) => why,
            Err(e) => return Err(e),
        };
        let head = head::read(&self.journal, self.key()).map_err(StoreError::io(&self.journal))?;
        let (surviving_seq, prev_hash) = match &index.newest {
            Some((s, h)) => (Some(*s), h.clone()),
            None => (None, GENESIS_HASH.to_owned()),
        };
        let head_known = match &head {
            HeadState::Valid(h) => h.seq,
            _ => None,
        };
        let seq = match (head_known, surviving_seq) {
            (Some(h), Some(s)) => h.max(s) + 1,
            (Some(h), None) => h + 1,
            (None, Some(s)) => s + 1,
            (None, None) => 0,
        };
        let from_seq = surviving_seq.map_or(0, |s| s + 1);
        let lost = json!({
            "from_seq": from_seq,
            "to_seq": seq.saturating_sub(1),
            "head_hash": match &head { HeadState::Valid(h) => json!(h.hash), _ => Value::Null },
            "reason": problem,
        });
        let record = json!({
            "kind": "receipt",
            "run_id": run_id,
            "workflow": "receipts:repair",
            "actor_email": operator,
            "payload": {},
            "policy_results": [],
            "decision": "ACK_TRUNCATION",
            "actions_taken": [],
            "timestamp": crate::engine::timestamp(now),
            "rollback_of": null,
            "lost": lost,
            "seq": seq,
            "prev_hash": prev_hash,
        });
        let value = self.sign(record);
        drop(index);
        drop(_lock);
        // The head check is what refuses ordinary appends; this record is the acknowledgement,
        // so it is written without it (under the lock again, re-reading the tail).
        let hash = receipt::chain_hash(&value);
        let span = {
            let _lock = self.lock_folder()?;
            let mut index = self.index();
            self.read_tail(&mut index)?;
            let mut line = serde_json::to_vec(&value)
                .map_err(|e| StoreError::io(&self.journal)(io::Error::other(e)))?;
            line.push(b'\n');
            let at = index.tail;
            let at = Pos {
                segment: at.segment.max(1),
                offset: at.offset,
            };
            let path = segment::segment_path(&self.journal, at.segment);
            let mut file = segment::open_append(&path, true).map_err(StoreError::io(&path))?;
            file.write_all(&line).map_err(StoreError::io(&path))?;
            if self.fsync {
                file.sync_data().map_err(StoreError::io(&path))?;
            }
            let span = Span {
                segment: at.segment,
                offset: at.offset,
                len: line.len() as u64 - 1,
            };
            index.apply(span, &value, hash.clone(), true);
            index.tail = span.end();
            span
        };
        // Both slots, so an old head left in the other slot cannot outrank this one.
        let end = span.end();
        head::write(
            &self.journal,
            &Head {
                seq: Some(seq),
                hash,
                segment: end.segment,
                offset: end.offset,
            },
            self.key(),
            true,
        )
        .map_err(StoreError::io(&self.journal))?;
        Ok(Some(value))
    }

    /// The chain hash of the newest receipt (what the next receipt's `prev_hash` will be).
    pub fn head_hash(&self) -> Result<String, StoreError> {
        self.refresh()?;
        Ok(self.index().next_link().1)
    }

    /// `enact receipts migrate`: imports receipt files of the earlier layout into the journal,
    /// keeping seq, prev_hash and signatures; the files are moved to `migrated/`. Returns how
    /// many were imported.
    pub fn migrate(dir: &Path, fsync: bool, secret: Secret) -> Result<usize, StoreError> {
        let store = Store::open_unchecked(dir, fsync, secret)?;
        store.ensure_journal()?;
        store.refresh()?;
        legacy::migrate(&store)
    }
}

/// The count of one rate query from the index.
/// `Err` when the journal holds a receipt whose signature does not verify: it cannot be told
/// whether that run counts, so the policy fails closed (an edit must not lower a count).
fn count(
    index: &Index,
    q: &RateQuery,
    actor_email: &str,
    now: DateTime<Utc>,
) -> Result<u64, String> {
    if index.unverified_receipts > 0 {
        return Err(format!(
            "the receipts journal holds {} receipt(s) whose signature does not verify, so earlier runs cannot be counted — run `enact receipts verify`",
            index.unverified_receipts
        ));
    }
    let from = i64::try_from(q.window_secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|w| now.checked_sub_signed(w))
        .map_or(i64::MIN, |t| t.timestamp_micros());
    let per = q
        .per
        .as_ref()
        .map(|(arg, value)| (arg.as_str(), index::value_digest(value)));
    Ok(index.count(actor_email, q.workflows.as_deref(), per, from))
}

/// See [`Store::lock_rollback`].
pub struct RollbackLock {
    /// A folder lock file, or a database session holding an advisory lock.
    _lock: Box<dyn std::any::Any + Send>,
}

impl std::fmt::Debug for RollbackLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RollbackLock")
    }
}

impl From<&Entry> for Summary {
    fn from(e: &Entry) -> Summary {
        Summary {
            run_id: e.run_id.clone(),
            workflow: e.workflow.to_string(),
            actor_email: e.actor_email.to_string(),
            decision: e.decision.to_string(),
            timestamp: e.timestamp.to_string(),
            rollback_of: e.rollback_of.clone(),
            seq: e.seq,
        }
    }
}
