//! STUB: the receipts folder (SPEC §5.3–5.4). API fixed; implementation to come.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::kernel::policy::RateQuery;
use crate::kernel::receipt::Receipt;
use crate::secret::Secret;

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
    pub limit: usize,
    pub workflow: Option<String>,
    pub decision: Option<String>,
}

/// One problem found by [`Store::verify_all`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The run id (or file name) concerned.
    pub subject: String,
    /// `bad_signature`, `edited`, `gap`, `reordered`, `truncated`, `unknown_file`, `invalid`, …
    pub kind: String,
    pub message: String,
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
        Ok(Store {
            dir: dir.to_path_buf(),
            fsync,
            secret,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Chains, signs and writes a receipt: under the folder lock, sets `seq` and `prev_hash`
    /// from the head, signs, writes the file atomically, updates head record and index, and
    /// drops the run's rate-limit reservation. Returns the receipt as written.
    pub fn append(&self, receipt: Receipt) -> Result<Receipt, StoreError> {
        let _ = (self.fsync, &self.secret);
        Ok(receipt)
    }

    /// Loads one receipt by run id (validated first) and checks its signature.
    pub fn load(&self, run_id: &str) -> Result<Loaded, StoreError> {
        Err(StoreError::NotFound(run_id.into()))
    }

    /// Summaries, newest first by `seq`.
    pub fn list(&self, _filter: &ListFilter) -> Result<Vec<Summary>, StoreError> {
        Ok(vec![])
    }

    /// Verifies every receipt, the chain and the head record.
    pub fn verify_all(&self) -> Result<Vec<Problem>, StoreError> {
        Ok(vec![])
    }

    /// Rate limiting, counted and reserved in one step under the folder lock (also across
    /// processes): counts, for each query, the validly signed PASS receipts (rollbacks
    /// excluded) and the pending reservations of `actor_email` inside the window ending at
    /// `now`; calls `decide` with the counts; if it returns true, records a reservation for
    /// `run_id` (removed when its receipt is appended). With no queries, just calls `decide`.
    pub fn count_and_reserve(
        &self,
        _queries: &[RateQuery],
        _actor_email: &str,
        _workflow: &str,
        _payload: &Map<String, Value>,
        _now: DateTime<Utc>,
        _run_id: &str,
        decide: &mut dyn FnMut(&BTreeMap<usize, Result<u64, String>>) -> bool,
    ) -> Result<bool, StoreError> {
        Ok(decide(&BTreeMap::new()))
    }

    /// The count `count_and_reserve` would pass to `decide` for one query (for previews;
    /// reserves nothing).
    pub fn count_runs(
        &self,
        _query: &RateQuery,
        _actor_email: &str,
        _now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Drops a reservation without a receipt (the call failed before one could be written).
    pub fn release(&self, _run_id: &str) {}

    /// Rollback receipts whose `rollback_of` is `original`, oldest first: (run id, decision,
    /// the rollback receipt value).
    pub fn rollbacks_of(
        &self,
        _original: &str,
    ) -> Result<Vec<(String, String, Value)>, StoreError> {
        Ok(vec![])
    }

    /// Holds an exclusive cross-process lock for rolling back `original` until dropped, so two
    /// rollbacks of one run cannot interleave.
    pub fn lock_rollback(&self, original: &str) -> Result<RollbackLock, StoreError> {
        Ok(RollbackLock {
            _path: self.dir.join(format!(".rollback-{original}.lock")),
        })
    }
}

/// See [`Store::lock_rollback`].
pub struct RollbackLock {
    _path: PathBuf,
}
