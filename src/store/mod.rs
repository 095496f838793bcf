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

mod approvals;
mod audit;
mod error;
mod gate;
mod head;
mod index;
mod legacy;
mod lock;
mod pg;
mod recovery;
mod rollback;
mod segment;
mod strict;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use self::head::{Head, HeadState};
use self::index::{Entry, Index};
use self::segment::{JOURNAL_DIR, Line, Pos, Reader, SEGMENT_MAX, Span};
use crate::kernel::receipt::{self, GENESIS_HASH, MacKey, Receipt, is_valid_run_id};
use crate::secret::Secret;

pub use self::approvals::{Answer, Claim, Refusal, Request, Status, Waiting};
pub use self::audit::{Audit, Problem, problem_kind};
pub use self::error::StoreError;
pub use self::gate::{Decided, GateFacts, Recorded};
pub use self::recovery::{Interrupted, OwnerClaims};
pub use self::rollback::RollbackLock;

const LOCK_FILE: &str = ".lock";
const LOCKS_DIR: &str = ".locks";
const OWNERS_DIR: &str = "owners";
/// How long an append waits for the folder lock before failing closed. Overridable (for the
/// tests) with `ENACT_LOCK_TIMEOUT_MS`.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Room reserved past a record written before an action, beyond three times its own length.
const RESERVE_SLACK: u64 = 64 * 1024;

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
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
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

/// This process's owner id and the lock that says it is alive.
struct Owner {
    id: String,
    _file: File,
}

/// Group commit: how far the journal is known durable.
#[derive(Default)]
struct Synced {
    upto: Pos,
    /// The index generation `upto` was taken in.
    generation: u64,
}

/// The receipts store.
pub struct Store {
    dir: PathBuf,
    journal: PathBuf,
    fsync: bool,
    /// The signing key, keyed once when the store is opened.
    key: MacKey,
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
        let store = Store::open_for_audit(dir, fsync, secret)?;
        store.refresh()?;
        Ok(store)
    }

    /// Opens a receipts folder for [`Store::verify_all`] alone: [`Store::open`] without reading
    /// the journal into the index, since the audit reads every line itself and trusts no index
    /// (reading it twice doubled `receipts verify`'s time). A folder of the earlier layout is
    /// refused likewise. Only `verify_all` may be used on the store this returns.
    pub fn open_for_audit(dir: &Path, fsync: bool, secret: Secret) -> Result<Store, StoreError> {
        let store = Store::open_unchecked(dir, fsync, secret)?;
        if legacy::has_receipt_files(&store.dir)? && !store.journal.exists() {
            return Err(StoreError::Legacy(store.dir.display().to_string()));
        }
        store.ensure_journal()?;
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
            key: MacKey::new(secret.expose().as_bytes())?,
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

    fn key(&self) -> &MacKey {
        &self.key
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

    /// Whether the journal still holds what the index read up to its tail: the tail segment
    /// is at least that long and the last line read is unchanged.
    fn tail_intact(&self, index: &Index) -> bool {
        let tail = index.tail;
        if tail.offset > 0 {
            let path = segment::segment_path(&self.journal, tail.segment);
            match segment::open_read(&path).and_then(|f| f.metadata()) {
                Ok(meta) if meta.len() >= tail.offset => {}
                _ => return false,
            }
        }
        index.last.as_ref().is_none_or(|(span, digest)| {
            segment::read_span(&self.journal, *span)
                .is_ok_and(|bytes| Sha256::digest(&bytes).as_slice() == digest)
        })
    }

    /// Reads new complete lines into `index`; returns the position of a trailing partial line.
    /// When the journal was cut or rewritten under this store (the index's tail or last line
    /// is no longer there), the index is rebuilt from the start, so a running store sees the
    /// journal as a store opened now would (and refuses to continue a truncated chain).
    fn read_tail(&self, index: &mut Index) -> Result<Option<Pos>, StoreError> {
        if let Some(pg) = &self.pg {
            return self.pg_read_tail(pg, index);
        }
        if !self.tail_intact(index) {
            tracing::warn!(journal = %self.journal.display(), "the journal changed under this store (cut or rewritten): reading it again from the start");
            let generation = index.generation + 1;
            *index = Index::default();
            index.generation = generation;
        }
        let (segments, _) = segment::list(&self.journal).map_err(StoreError::io(&self.journal))?;
        let mut partial = None;
        let mut last = None;
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
                        last = Some((span, bytes));
                    }
                    Line::TooLong(span) => {
                        index.skipped.push((span, "a record over 16 MiB".into()));
                        index.tail = span.end();
                        last = None;
                        index.last = None;
                    }
                    Line::Partial(pos) => partial = Some(pos),
                }
            }
        }
        if let Some((span, bytes)) = last {
            index.last = Some((span, Sha256::digest(&bytes).into()));
        }
        Ok(partial)
    }

    fn index_line(&self, index: &mut Index, span: Span, bytes: &[u8]) {
        match strict::parse(bytes) {
            Ok(value) => {
                let (verified, hash) = receipt::verify_and_hash(&value, self.key());
                if !verified {
                    let id = value.get("run_id").and_then(Value::as_str).unwrap_or("?");
                    tracing::warn!(
                        run_id = id,
                        "journal record whose signature does not verify: never trusted"
                    );
                }
                index.apply(span, &value, hash, verified);
            }
            Err(e) => index
                .skipped
                .push((span, format!("not a valid record: {e}"))),
        }
    }

    /// Appends one signed record line under the folder lock. `prepare` sees the index (after
    /// the tail was read) and returns the record to write, already signed — or `None` to
    /// append nothing. A receipt ([`is_chained`]) also moves the head record.
    pub(super) fn append_line(
        &self,
        prepare: impl FnOnce(&Index) -> Result<Option<Value>, StoreError>,
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
            let Some(value) = prepare(&index)? else {
                return Ok(None);
            };
            let chained = is_chained(&value);
            let (span, hash) = self.write_record(&mut index, &value, chained)?;
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

    /// Writes one record line at the journal's tail (starting a new segment past
    /// [`SEGMENT_MAX`]) and adds it to the index. Must run under the folder lock, with the
    /// tail just read. Returns where it lies and, for a receipt, its chain hash.
    fn write_record(
        &self,
        index: &mut Index,
        value: &Value,
        chained: bool,
    ) -> Result<(Span, String), StoreError> {
        let mut line = serde_json::to_vec(value)
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
            receipt::chain_hash(value)
        } else {
            String::new()
        };
        index.apply(span, value, hash.clone(), true);
        index.tail = span.end();
        index.last = Some((span, Sha256::digest(&line[..line.len() - 1]).into()));
        Ok((span, hash))
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
        let (tail, generation) = {
            let index = self.index();
            (index.tail, index.generation)
        };
        let same = synced.generation == generation;
        if same && synced.upto >= end {
            return Ok(());
        }
        // Everything appended up to now is covered by this sync.
        let target = tail.max(end);
        let from = if same {
            end.segment.min(synced.upto.segment.max(1))
        } else {
            end.segment
        };
        for n in from..=target.segment {
            let path = segment::segment_path(&self.journal, n);
            match segment::open_read(&path) {
                Ok(f) => f.sync_data().map_err(StoreError::io(&path))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path)(e)),
            }
        }
        synced.upto = target;
        synced.generation = generation;
        Ok(())
    }

    /// This process's owner id (created, with its lock, on first use).
    pub(super) fn owner(&self) -> Result<&str, StoreError> {
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
        self.append_line(|_| Ok(Some(value)))?;
        Ok(())
    }

    /// Chains, signs and appends a receipt (SPEC §5.4): `seq` and `prev_hash` come from the
    /// newest receipt in the journal. Returns the receipt as written.
    pub fn append(&self, receipt: Receipt) -> Result<Receipt, StoreError> {
        self.append_checked(receipt, |_| Ok(()))
    }

    /// [`Store::append`] if `check`, run under the lock on the index as it is then, allows it.
    pub(crate) fn append_checked(
        &self,
        mut receipt: Receipt,
        check: impl FnOnce(&Index) -> Result<(), Refusal>,
    ) -> Result<Receipt, StoreError> {
        if !is_valid_run_id(&receipt.run_id) {
            return Err(StoreError::InvalidRunId(receipt.run_id));
        }
        self.append_line(|index| {
            check(index)?;
            self.chain_receipt(index, &mut receipt).map(Some)
        })?;
        Ok(receipt)
    }

    /// Gives `receipt` the next link of the chain and signs it; returns the value to write.
    pub(super) fn chain_receipt(
        &self,
        index: &Index,
        receipt: &mut Receipt,
    ) -> Result<Value, StoreError> {
        if index.get(&receipt.run_id).is_some() {
            return Err(StoreError::Duplicate(receipt.run_id.clone()));
        }
        (receipt.seq, receipt.prev_hash) = index.next_link();
        receipt.kind = "receipt".into();
        receipt.sign(&self.key)?;
        Ok(receipt.to_value()?)
    }

    pub(super) fn intent_record(
        &self,
        index: &Index,
        mut fields: Map<String, Value>,
        owner: &str,
    ) -> Result<Value, StoreError> {
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
        Ok(self.sign(Value::Object(fields)))
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

/// Whether a record is a link of the chain: a receipt (records of the earlier layout have no
/// `kind`), not an intent or step record.
pub(crate) fn is_chained(value: &Value) -> bool {
    matches!(
        value.get("kind").and_then(Value::as_str),
        Some("receipt") | None
    )
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
