//! The [`Store`] side of the database journal: opening one, and the few store operations
//! that differ from the folder journal (reading rows into the index, appending in a
//! transaction holding the chain's lock, owners, rollback locks). `mod.rs` dispatches here
//! when the store is a database journal; everything else (listings, counts, look-ups,
//! rollback checks) runs on the shared in-memory index unchanged.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::super::index::Index;
use super::super::segment::{Pos, Span};
use super::super::{OwnerClaims, RollbackLock, Store, StoreError, Synced, strict};
use super::PgJournal;
use crate::kernel::receipt;
use crate::secret::Secret;

impl Store {
    /// Opens the database journal in `schema` (creating its tables if they do not exist and
    /// the role may) and reads it into the index.
    pub fn open_postgres(dsn: &Secret, schema: &str, secret: Secret) -> Result<Store, StoreError> {
        let pg = PgJournal::open(dsn, schema)?;
        let label = PathBuf::from(pg.describe());
        let store = Store {
            journal: label.clone(),
            dir: label,
            fsync: true,
            key: crate::kernel::receipt::MacKey::new(secret.expose().as_bytes())?,
            index: Mutex::new(Index::default()),
            synced: Mutex::new(Synced::default()),
            owner: OnceLock::new(),
            lock_timeout: std::time::Duration::from_secs(30),
            pg: Some(Box::new(pg)),
        };
        store.refresh()?;
        Ok(store)
    }

    /// `enact receipts init-db`: creates the journal's schema and tables. `Ok(false)`: they
    /// were there already.
    pub fn init_db(dsn: &Secret, schema: &str) -> Result<bool, StoreError> {
        PgJournal::connect_only(dsn, schema)?.init_db()
    }

    /// Whether this store is a database journal.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Reads the rows past the index's tail into the index.
    pub(in crate::store) fn pg_read_tail(
        &self,
        pg: &PgJournal,
        index: &mut Index,
    ) -> Result<Option<Pos>, StoreError> {
        let rows = pg.rows_from(tail_pos(index))?;
        self.pg_apply_rows(index, rows);
        Ok(None)
    }

    fn pg_apply_rows(&self, index: &mut Index, rows: super::Rows) {
        for (pos, body) in rows {
            let span = super::span(pos);
            self.index_line(index, span, body.as_bytes());
            index.tail = span.end();
        }
    }

    pub(in crate::store) fn pg_read_record(
        &self,
        pg: &PgJournal,
        run_id: &str,
        span: Span,
    ) -> Result<Value, StoreError> {
        let pos = i64::try_from(span.offset).unwrap_or(i64::MAX);
        let body = pg.body(pos)?;
        strict::parse(body.as_bytes()).map_err(|e| StoreError::Invalid {
            run_id: run_id.into(),
            reason: e.to_string(),
        })
    }

    /// [`Store::append_line`] for the database journal: one transaction holding the chain's
    /// lock reads the rows appended since the index's tail, lets `prepare` decide on the
    /// current index, and inserts its record.
    pub(in crate::store) fn pg_append_line(
        &self,
        pg: &PgJournal,
        prepare: impl FnOnce(&Index) -> Result<Option<Value>, StoreError>,
    ) -> Result<Option<(Value, Span)>, StoreError> {
        let mut index = self.index();
        let (locked, rows) = pg.begin(tail_pos(&index))?;
        self.pg_apply_rows(&mut index, rows);
        index.link_override = None;
        let value = match prepare(&index) {
            Ok(Some(value)) => value,
            Ok(None) => {
                pg.abort(locked);
                return Ok(None);
            }
            Err(e) => {
                pg.abort(locked);
                return Err(e);
            }
        };
        let pos = pg.commit(locked, &value)?;
        let span = super::span(pos);
        let hash = if crate::store::is_chained(&value) {
            receipt::chain_hash(&value)
        } else {
            String::new()
        };
        index.apply(span, &value, hash, true);
        index.tail = span.end();
        Ok(Some((value, span)))
    }

    /// Appends a record exactly as given (signature, seq and prev_hash kept): `receipts copy`.
    pub fn append_verbatim(&self, value: Value) -> Result<(), StoreError> {
        self.append_line(|_| Ok(Some(value)))?;
        Ok(())
    }

    /// Every record in journal order (receipts, intents and steps), as stored.
    pub fn all_records(&self) -> Result<Vec<Value>, StoreError> {
        if let Some(pg) = &self.pg {
            return pg
                .rows_from(0)?
                .into_iter()
                .map(|(pos, body)| {
                    strict::parse(body.as_bytes()).map_err(|e| StoreError::Invalid {
                        run_id: format!("journal row {pos}"),
                        reason: e.to_string(),
                    })
                })
                .collect();
        }
        let mut out = Vec::new();
        let (segments, _) =
            super::super::segment::list(&self.journal).map_err(StoreError::io(&self.journal))?;
        for n in segments {
            let path = super::super::segment::segment_path(&self.journal, n);
            let mut reader = super::super::segment::Reader::open(&self.journal, n, 0)
                .map_err(StoreError::io(&path))?;
            while let Some(line) = reader.next_line().map_err(StoreError::io(&path))? {
                if let super::super::segment::Line::Record(_, bytes) = line {
                    let value = strict::parse(&bytes).map_err(|e| StoreError::Invalid {
                        run_id: format!("{}", path.display()),
                        reason: e.to_string(),
                    })?;
                    out.push(value);
                }
            }
        }
        Ok(out)
    }

    pub(in crate::store) fn pg_claim(
        &self,
        pg: &PgJournal,
        owner: &str,
        claims: &mut OwnerClaims,
    ) -> Result<bool, StoreError> {
        let dead = pg.claim(owner)?;
        if dead {
            claims.pg.push(owner.to_string());
        }
        Ok(dead)
    }

    pub(in crate::store) fn pg_lock_rollback(
        &self,
        pg: &PgJournal,
        original: &str,
    ) -> Result<RollbackLock, StoreError> {
        let session = pg.lock_rollback(original)?;
        Ok(RollbackLock {
            _lock: Box::new(session),
        })
    }
}

fn tail_pos(index: &Index) -> i64 {
    if index.tail.segment == 0 {
        0
    } else {
        i64::try_from(index.tail.offset).unwrap_or(i64::MAX)
    }
}
