//! What rollback asks of the journal: the earlier rollbacks of a run, and the lock that keeps
//! two rollbacks of one run (in any process) from interleaving.

use super::*;
use crate::kernel::policy::Decision;

impl Store {
    /// Rollback receipts whose `rollback_of` is `original`, oldest first: (run id, decision,
    /// the rollback receipt value). Only validly signed receipts are returned.
    pub fn rollbacks_of(
        &self,
        original: &str,
    ) -> Result<Vec<(String, Decision, Value)>, StoreError> {
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
            let Some(decision) = value
                .get("decision")
                .and_then(Value::as_str)
                .and_then(Decision::parse)
            else {
                tracing::warn!(run_id = %run_id, "ignoring rollback receipt without a decision");
                continue;
            };
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
}

/// See [`Store::lock_rollback`].
pub struct RollbackLock {
    /// A folder lock file, or a database session holding an advisory lock.
    pub(super) _lock: Box<dyn std::any::Any + Send>,
}

impl std::fmt::Debug for RollbackLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RollbackLock")
    }
}
