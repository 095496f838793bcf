//! The journal in PostgreSQL (SPEC §10): the same signed records as the folder journal, one
//! row each in `<schema>.records`, so every process and host using the database appends to
//! one chain.
//!
//! The store keeps its in-memory index exactly as for the folder journal; only where records
//! come from and go to differs. A row's `pos` (its place in journal order, from 0) plays the
//! part of a line's offset: the index's tail is the next `pos` to read, and `Span { segment:
//! 1, offset: pos, len: 0 }` names a row.
//!
//! - **Appends** run in one transaction that first takes the chain's lock
//!   (`pg_advisory_xact_lock`), reads the rows appended since the index's tail (other
//!   processes' and hosts'), lets the store decide on the up-to-date index (the next `seq` and
//!   `prev_hash`, the rate counts of the gate), inserts the row at the next `pos`, and commits.
//!   So the chain has no forks and no gaps, and a rate limit's `max` holds across hosts.
//!   Unique indexes make the rules hold even against a writer that skipped the lock: one
//!   receipt per run, one `seq` per receipt, one PASS rollback per run.
//! - **Owners**: each process holds a session-level advisory lock for its owner id on a
//!   connection of its own for its whole life; recovery finishes only the runs of owners whose
//!   lock it can take (`pg_try_advisory_lock`).
//! - **Rollbacks** of one run are serialised by a session-level advisory lock on a connection
//!   held for the rollback.
//! - **Least privilege**: `USAGE` on the schema and `SELECT, INSERT` on `records` are all a
//!   running Enact needs (no `UPDATE`, `DELETE`, sequence or `CREATE`); the tables are created
//!   on first use when they do not exist yet (under an advisory lock, so several processes
//!   starting at once are safe), or by `enact receipts init-db` run by an owner.
//! - **Fail closed**: when the database cannot be reached, appends fail, so a call whose intent
//!   cannot be recorded runs nothing. Error messages never hold the DSN or its password.
//!
//! The store's API is synchronous; tokio-postgres is not. Each operation runs on a small
//! runtime of the journal's own, and the calling thread waits for it (as it waits for a file
//! lock or an `fsync` with the folder journal).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_postgres::Client;

use super::StoreError;
use super::segment::Span;
use crate::connector::postgres::tls::MakeRustls;
use crate::secret::Secret;

mod audit;
mod store;

/// How long connecting may take before the journal counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds every statement (waiting for the chain's lock included).
const STATEMENT_TIMEOUT: &str = "30s";

/// A row's span.
pub(crate) fn span(pos: i64) -> Span {
    Span {
        segment: 1,
        offset: u64::try_from(pos).unwrap_or_default(),
        len: 0,
    }
}

/// The database journal.
pub(crate) struct PgJournal {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
    /// This process's owner id, once its lock was first taken.
    id: std::sync::OnceLock<String>,
}

struct Shared {
    config: tokio_postgres::Config,
    tls: MakeRustls,
    password: Option<String>,
    schema: String,
    /// `"<schema>".records`, quoted.
    table: String,
    /// The connection appends and reads use.
    conn: Arc<Mutex<Option<Client>>>,
    /// This process's owner id and the session holding its lock (and recovery's claims).
    owner: Mutex<Option<(String, Client)>>,
}

/// A transaction holding the chain's lock: the connection, kept until commit or rollback.
pub(crate) struct Locked {
    conn: OwnedMutexGuard<Option<Client>>,
    /// The `pos` the next row gets.
    next: i64,
}

/// A rollback's lock: the session that holds it.
pub(crate) struct RollbackSession {
    _client: Client,
}

/// Rows read past the index's tail: (pos, body).
pub(crate) type Rows = Vec<(i64, String)>;

impl PgJournal {
    /// Opens the journal, creating its tables when they do not exist (and the role may).
    pub fn open(dsn: &Secret, schema: &str) -> Result<PgJournal, StoreError> {
        let journal = PgJournal::connect_only(dsn, schema)?;
        journal.block(|s| async move { s.ensure_tables().await })?;
        Ok(journal)
    }

    /// The journal, without touching the database yet.
    pub fn connect_only(dsn: &Secret, schema: &str) -> Result<PgJournal, StoreError> {
        let mut config: tokio_postgres::Config = dsn
            .expose()
            .parse()
            .map_err(|e| failure(format!("invalid DSN in [receipts] dsn_env: {e}"), None))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        let tls = MakeRustls::new().map_err(|e| failure(e, password.as_deref()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("enact-journal-pg")
            .enable_all()
            .build()
            .map_err(|e| failure(format!("cannot start the journal's runtime: {e}"), None))?;
        let journal = PgJournal {
            runtime: Some(runtime),
            shared: Arc::new(Shared {
                config,
                tls,
                password,
                schema: schema.to_string(),
                table: format!("{}.records", quote(schema)),
                conn: Arc::new(Mutex::new(None)),
                owner: Mutex::new(None),
            }),
            id: std::sync::OnceLock::new(),
        };
        Ok(journal)
    }

    /// Runs `f` on the journal's runtime and waits for it.
    fn block<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(runtime) = &self.runtime else {
            return Err(failure("the journal is closed".into(), None));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = f(self.shared.clone());
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| failure("the journal's runtime stopped".into(), None))?
    }

    /// `enact receipts init-db`: creates the schema and tables (an owner's job).
    pub fn init_db(&self) -> Result<bool, StoreError> {
        self.block(|s| async move { s.ensure_tables().await })
    }

    /// Rows with `pos >= from`, in order.
    pub fn rows_from(&self, from: i64) -> Result<Rows, StoreError> {
        self.block(move |s| async move {
            let mut conn = s.conn.clone().lock_owned().await;
            let result = s.read_rows(&mut conn, from).await;
            s.release_if_broken(&mut conn, result.is_err());
            result
        })
    }

    /// One row's body.
    pub fn body(&self, pos: i64) -> Result<String, StoreError> {
        self.block(move |s| async move {
            let mut conn = s.conn.clone().lock_owned().await;
            let result = async {
                let client = s.client(&mut conn).await?;
                let sql = format!("SELECT body FROM {} WHERE pos = $1", s.table);
                let row = client
                    .query_opt(&sql, &[&pos])
                    .await
                    .map_err(|e| s.error("cannot read the journal", &e))?;
                row.map(|r| r.get::<_, String>(0))
                    .ok_or_else(|| failure(format!("journal row {pos} is missing"), None))
            }
            .await;
            s.release_if_broken(&mut conn, result.is_err());
            result
        })
    }

    /// Begins an append: a transaction holding the chain's lock, and the rows appended since
    /// `from` (the index's tail).
    pub fn begin(&self, from: i64) -> Result<(Locked, Rows), StoreError> {
        self.block(move |s| async move {
            let mut conn = s.conn.clone().lock_owned().await;
            let result = async {
                let key = s.key("chain", "");
                let client = s.client(&mut conn).await?;
                client
                    .batch_execute("BEGIN")
                    .await
                    .map_err(|e| s.error("cannot begin a journal transaction", &e))?;
                client
                    .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
                    .await
                    .map_err(|e| s.error("cannot take the journal's chain lock", &e))?;
                let rows = s.read_rows(&mut conn, from).await?;
                let next = rows.last().map_or(from, |(pos, _)| pos + 1);
                Ok((next, rows))
            }
            .await;
            match result {
                Ok((next, rows)) => Ok((Locked { conn, next }, rows)),
                Err(e) => {
                    s.abort(&mut conn).await;
                    Err(e)
                }
            }
        })
    }

    /// Inserts one record at the next `pos` and commits; returns its `pos`.
    pub fn commit(&self, locked: Locked, value: &Value) -> Result<i64, StoreError> {
        let body = serde_json::to_string(value)
            .map_err(|e| failure(format!("cannot encode a record: {e}"), None))?;
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        let kind = text("kind").unwrap_or_else(|| "receipt".into());
        let run_id = text("run_id").unwrap_or_default();
        let seq = (kind == "receipt")
            .then(|| value.get("seq").and_then(Value::as_i64))
            .flatten();
        let rollback_of = text("rollback_of");
        let decision = text("decision");
        self.block(move |s| async move {
            let Locked { mut conn, next } = locked;
            let result = async {
                let client = s.client(&mut conn).await?;
                let sql = format!(
                    "INSERT INTO {} (pos, kind, run_id, seq, rollback_of, decision, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    s.table
                );
                client
                    .execute(
                        &sql,
                        &[&next, &kind, &run_id, &seq, &rollback_of, &decision, &body],
                    )
                    .await
                    .map_err(|e| {
                        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                            StoreError::Duplicate(run_id.clone())
                        } else {
                            s.error("cannot append to the journal", &e)
                        }
                    })?;
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| s.error("cannot commit to the journal", &e))?;
                Ok(next)
            }
            .await;
            if result.is_err() {
                s.abort(&mut conn).await;
            }
            result
        })
    }

    /// Ends an append that wrote nothing.
    pub fn abort(&self, locked: Locked) {
        let _ = self.block(move |s| async move {
            let mut conn = locked.conn;
            s.abort(&mut conn).await;
            Ok(())
        });
    }

    /// This process's owner id, its lock taken (again, after a lost connection) as needed.
    pub fn owner_id(&self) -> Result<&str, StoreError> {
        let id = self.owner()?;
        Ok(self.id.get_or_init(|| id))
    }

    /// This process's owner id, if it has one yet.
    pub fn mine(&self) -> Option<String> {
        self.id.get().cloned()
    }

    fn owner(&self) -> Result<String, StoreError> {
        self.block(|s| async move {
            let mut owner = s.owner.lock().await;
            if let Some((id, client)) = owner.as_ref()
                && !client.is_closed()
            {
                return Ok(id.clone());
            }
            let id = match owner.as_ref() {
                Some((id, _)) => id.clone(),
                None => uuid::Uuid::new_v4().to_string(),
            };
            let client = s.connect().await?;
            let key = s.key("owner", &id);
            client
                .execute("SELECT pg_advisory_lock($1)", &[&key])
                .await
                .map_err(|e| s.error("cannot take this process's owner lock", &e))?;
            *owner = Some((id.clone(), client));
            Ok(id)
        })
    }

    /// Tries to take a (dead) owner's lock; `true`: the owner is gone, and its lock is now
    /// held (until [`PgJournal::release`]).
    pub fn claim(&self, owner: &str) -> Result<bool, StoreError> {
        // Claims are held by this process's owner session (`enact recover` has none yet).
        self.owner_id()?;
        let owner = owner.to_string();
        self.block(move |s| async move {
            let key = s.key("owner", &owner);
            let slot = s.owner.lock().await;
            let Some((_, client)) = slot.as_ref() else {
                return Err(failure("no owner session".into(), None));
            };
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(|e| s.error("cannot check an owner's lock", &e))?;
            Ok(row.get::<_, bool>(0))
        })
    }

    /// Releases owner locks taken by [`PgJournal::claim`].
    pub fn release(&self, owners: Vec<String>) {
        let _ = self.block(move |s| async move {
            let slot = s.owner.lock().await;
            if let Some((_, client)) = slot.as_ref() {
                for owner in owners {
                    let key = s.key("owner", &owner);
                    let _ = client
                        .execute("SELECT pg_advisory_unlock($1)", &[&key])
                        .await;
                }
            }
            Ok(())
        });
    }

    /// Holds the lock for rolling back `run_id` (on a session of its own) until dropped.
    pub fn lock_rollback(&self, run_id: &str) -> Result<RollbackSession, StoreError> {
        let run_id = run_id.to_string();
        self.block(move |s| async move {
            let client = s.connect().await?;
            let key = s.key("rollback", &run_id);
            client
                .execute("SELECT pg_advisory_lock($1)", &[&key])
                .await
                .map_err(|e| s.error("cannot take the rollback lock", &e))?;
            Ok(RollbackSession { _client: client })
        })
    }

    /// Checks that the journal can be written: reachable, the tables there, `INSERT` allowed.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.owner()?;
        self.block(|s| async move {
            let mut conn = s.conn.clone().lock_owned().await;
            let result = async {
                let client = s.client(&mut conn).await?;
                let row = client
                    .query_one(
                        "SELECT has_table_privilege($1::text::regclass, 'INSERT')",
                        &[&s.table],
                    )
                    .await
                    .map_err(|e| s.error("cannot check the journal table", &e))?;
                if row.get::<_, bool>(0) {
                    Ok(())
                } else {
                    Err(failure(
                        format!("the database role may not INSERT into {}", s.table),
                        None,
                    ))
                }
            }
            .await;
            s.release_if_broken(&mut conn, result.is_err());
            result
        })
    }

    /// Where the journal is, for messages: host, port, database and schema (no credentials).
    pub fn describe(&self) -> String {
        let c = &self.shared.config;
        let host = match c.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{host}:{port}/{} schema {}",
            c.get_dbname().or(c.get_user()).unwrap_or_default(),
            self.shared.schema
        )
    }
}

impl Drop for PgJournal {
    fn drop(&mut self) {
        // May run inside another runtime: never block here.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Shared {
    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.error("cannot connect to the receipts database", &e))?;
        let password = self.password.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                let message = scrub(password.as_deref(), e.to_string());
                tracing::warn!(error = %message, "receipts database connection closed");
            }
        });
        client
            .batch_execute(&format!(
                "SET statement_timeout = '{STATEMENT_TIMEOUT}'; SET lock_timeout = '{STATEMENT_TIMEOUT}'"
            ))
            .await
            .map_err(|e| self.error("cannot set up the receipts database session", &e))?;
        Ok(client)
    }

    async fn client<'a>(
        &self,
        slot: &'a mut OwnedMutexGuard<Option<Client>>,
    ) -> Result<&'a Client, StoreError> {
        if slot.as_ref().is_none_or(Client::is_closed) {
            **slot = None;
            **slot = Some(self.connect().await?);
        }
        slot.as_ref()
            .ok_or_else(|| failure("no connection".into(), None))
    }

    fn release_if_broken(&self, slot: &mut OwnedMutexGuard<Option<Client>>, failed: bool) {
        if failed && slot.as_ref().is_some_and(Client::is_closed) {
            **slot = None;
        }
    }

    /// Rolls back an open transaction (or drops a broken connection).
    async fn abort(&self, slot: &mut OwnedMutexGuard<Option<Client>>) {
        let ok = match slot.as_ref() {
            Some(c) if !c.is_closed() => c.batch_execute("ROLLBACK").await.is_ok(),
            _ => false,
        };
        if !ok {
            **slot = None;
        }
    }

    async fn read_rows(
        &self,
        slot: &mut OwnedMutexGuard<Option<Client>>,
        from: i64,
    ) -> Result<Rows, StoreError> {
        let client = self.client(slot).await?;
        let sql = format!(
            "SELECT pos, body FROM {} WHERE pos >= $1 ORDER BY pos",
            self.table
        );
        let rows = client
            .query(&sql, &[&from])
            .await
            .map_err(|e| self.error("cannot read the journal", &e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
            .collect())
    }

    /// Creates the schema and tables if they do not exist (under an advisory lock, so
    /// processes starting at once do not race). Returns whether anything was created. A role
    /// without `CREATE` works once an owner has run `enact receipts init-db`.
    async fn ensure_tables(&self) -> Result<bool, StoreError> {
        let client = self.connect().await?;
        if table_exists(&client, &self.table)
            .await
            .map_err(|e| self.error("cannot look for the journal table", &e))?
        {
            return Ok(false);
        }
        let key = self.key("init", "");
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| self.error("cannot create the journal tables", &e))?;
        let created = async {
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
                .await?;
            if table_exists(&client, &self.table).await? {
                return Ok(false);
            }
            let s = quote(&self.schema);
            // `CREATE SCHEMA IF NOT EXISTS` needs CREATE on the database even when the schema
            // exists, which the schema's owner (a superuser made it for them) usually lacks.
            let schema_exists: bool = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                    &[&self.schema],
                )
                .await?
                .get(0);
            if !schema_exists {
                client.batch_execute(&format!("CREATE SCHEMA {s}")).await?;
            }
            client
                .batch_execute(&format!(
                    "CREATE TABLE {s}.records (
                         pos bigint PRIMARY KEY CHECK (pos >= 0),
                         kind text NOT NULL,
                         run_id text NOT NULL,
                         seq bigint,
                         rollback_of text,
                         decision text,
                         body text NOT NULL
                     );
                     CREATE UNIQUE INDEX records_receipt_run ON {s}.records (run_id) WHERE kind = 'receipt';
                     CREATE UNIQUE INDEX records_intent_run ON {s}.records (run_id) WHERE kind = 'intent';
                     CREATE UNIQUE INDEX records_receipt_seq ON {s}.records (seq) WHERE kind = 'receipt';
                     CREATE UNIQUE INDEX records_pass_rollback ON {s}.records (rollback_of)
                         WHERE kind = 'receipt' AND decision = 'PASS' AND rollback_of IS NOT NULL;
                     CREATE INDEX records_run ON {s}.records (run_id);
                     COMMENT ON TABLE {s}.records IS 'Enact receipts journal: signed intent, step and receipt records; append-only';"
                ))
                .await?;
            Ok(true)
        }
        .await;
        match created {
            Ok(created) => {
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| self.error("cannot create the journal tables", &e))?;
                Ok(created)
            }
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(self.error(
                    "the journal tables do not exist and cannot be created (run `enact receipts init-db` as the schema's owner)",
                    &e,
                ))
            }
        }
    }

    /// An advisory lock key for (purpose, name) in this schema.
    fn key(&self, purpose: &str, name: &str) -> i64 {
        let digest = Sha256::digest(format!("enact:{}:{purpose}:{name}", self.schema));
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
        i64::from_be_bytes(bytes)
    }

    fn error(&self, context: &str, e: &tokio_postgres::Error) -> StoreError {
        let message = match e.as_db_error() {
            Some(db) => format!("{context}: {}", db.message()),
            None => match std::error::Error::source(e) {
                Some(cause) => format!("{context}: {e}: {cause}"),
                None => format!("{context}: {e}"),
            },
        };
        failure(message, self.password.as_deref())
    }
}

async fn table_exists(client: &Client, table: &str) -> Result<bool, tokio_postgres::Error> {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map(|r| r.get::<_, bool>(0))
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn failure(message: String, password: Option<&str>) -> StoreError {
    StoreError::Io {
        path: "postgres journal".into(),
        source: std::io::Error::other(scrub(password, message)),
    }
}

/// Replaces the password (and its percent-encoded form) in a message.
fn scrub(password: Option<&str>, message: String) -> String {
    let Some(secret) = password.filter(|p| !p.is_empty()) else {
        return message;
    };
    let encoded = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    message
        .replace(secret, "[redacted]")
        .replace(&encoded, "[redacted]")
}
