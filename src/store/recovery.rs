//! What recovery asks of the journal: the interrupted runs (with their owners' locks
//! claimed), and repairing a journal cut short.

use super::*;

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
    pub(super) pg: Vec<String>,
}

impl Store {
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
        if let Some(pg) = &self.pg {
            return self.pg_claim(pg, owner, claims);
        }
        if !is_valid_run_id(owner) {
            // Not an id this store hands out: nobody can hold its lock.
            return Ok(true);
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
    /// `prev_hash` is the chain hash of the last surviving receipt; `lost.to_seq` is `null`
    /// when the head record was missing or invalid (how many were lost is then unknown).
    /// `Ok(None)`: nothing to repair.
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
        if !is_valid_run_id(run_id) {
            return Err(StoreError::InvalidRunId(run_id.into()));
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
        if index.has_run(run_id) {
            return Err(StoreError::Duplicate(run_id.into()));
        }
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
        // Without a valid head record nobody knows how many receipts were lost.
        let to_seq = head_known.map(|_| seq.saturating_sub(1));
        let lost = json!({
            "from_seq": from_seq,
            "to_seq": to_seq,
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
            "timestamp": crate::kernel::receipt::timestamp(now),
            "rollback_of": null,
            "lost": lost,
            "seq": seq,
            "prev_hash": prev_hash,
        });
        let value = self.sign(record);
        // The head check is what refuses ordinary appends; this record is the acknowledgement,
        // so it is written without it — under the same lock hold, so two repairs cannot both
        // acknowledge.
        let (span, hash) = self.write_record(&mut index, &value, true)?;
        drop(index);
        self.make_durable(span.end())?;
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
}
