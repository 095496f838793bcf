//! The Postgres connector (SPEC §7): `select_rows`, `insert_row`, `update_row` and
//! `delete_row` through tokio-postgres, each mutating action one transaction that captures
//! what its undo (SPEC §6) needs.
//!
//! - **Identifiers** are checked against the catalog and quoted ([`catalog`]); **values** are
//!   always bound as parameters, never spliced into SQL ([`rows`]).
//! - **Refused up front**: an empty `where` on update/delete, mutating a table without a
//!   primary key, deleting from a table others reference with `ON DELETE CASCADE` /
//!   `SET NULL` / `SET DEFAULT`, and touching more than `max_rows` rows (checked under lock,
//!   in the same transaction, which then rolls back).
//! - **Exact rows**: rows travel as JSON with inexact numbers as strings; rollback data keeps
//!   every value in PostgreSQL's text form so undo can compare and restore it exactly.
//! - **Connection**: made on first use, not when the connector is built; after a broken
//!   connection the next call connects again. The DSN's password is scrubbed from every
//!   error message; the target names only host, port and database.

mod actions;
mod catalog;
mod recover;
mod rows;
pub(crate) mod tls;
mod undo;

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::Client;
use tokio_postgres::config::Host;

use super::{ActionOutcome, Recovered, StepLog, recover_without_asking};
use crate::kernel::receipt::ActionRecord;
use crate::secret::Secret;

/// How long connecting may take when the DSN does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Session settings that shape how values print as text: pinned, so the text form of a row
/// captured at run time compares equal to the same row read at undo time.
const SESSION_SETTINGS: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; \
     SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'";

/// The session's `statement_timeout` (the system's config key): it bounds every statement,
/// waiting for a row lock another session holds included, so such a lock fails the action
/// (its transaction rolls back, nothing changes) instead of hanging the tool call — and, since
/// one connection serves the system, every call after it.
fn timeout_setting(timeout: Duration) -> String {
    format!("SET statement_timeout = '{}ms'", timeout.as_millis())
}

/// A Postgres system: one database.
pub struct PgConnector {
    /// Boxed: it is large, and `Connector` holds one connector of any type by value.
    config: Box<tokio_postgres::Config>,
    tls: tls::MakeRustls,
    /// Scrubbed from every message (tokio-postgres never prints it, but a server message or a
    /// parse error could echo it).
    password: Option<String>,
    max_rows: u64,
    statement_timeout: Duration,
    target: Value,
    /// One connection, used by one action at a time (each action holds it for its
    /// transaction); `None` until first use and after a failure.
    client: Mutex<Option<Client>>,
}

/// Why an action failed: one message (the action name is added by the connector), and
/// whether the connection is no longer usable.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    broken: bool,
    /// PostgreSQL cancelled the statement (SQLSTATE 57014): `statement_timeout` expired.
    cancelled: bool,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            broken: false,
            cancelled: false,
        }
    }
}

/// `<context>: <what PostgreSQL said>` (message, detail and hint of a server error; the
/// cause of a client error).
fn db_error(context: &str, e: &tokio_postgres::Error) -> Failure {
    // Anything but an ordinary server error (I/O, a closed connection, a FATAL such as an
    // administrator's termination) leaves the connection unusable: connect again next time.
    let broken = e.is_closed()
        || e.as_db_error()
            .is_none_or(|db| matches!(db.severity(), "FATAL" | "PANIC"));
    let cancelled = e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED);
    Failure {
        broken,
        cancelled,
        ..describe(context, e)
    }
}

fn describe(context: &str, e: &tokio_postgres::Error) -> Failure {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{context}: {}", db.message());
        if let Some(detail) = db.detail() {
            m.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            m.push_str(&format!(" — hint: {hint}"));
        }
        return Failure::new(m);
    }
    match std::error::Error::source(e) {
        Some(cause) => Failure::new(format!("{context}: {e}: {cause}")),
        None => Failure::new(format!("{context}: {e}")),
    }
}

impl PgConnector {
    /// Parses the DSN (key=value or `postgresql://` URL). Contacts nothing.
    pub fn new(dsn: &Secret, max_rows: u64, statement_timeout: Duration) -> Result<Self, String> {
        let mut config: tokio_postgres::Config = dsn.expose().parse().map_err(|e| {
            // The parser's messages name keys and byte offsets, never values; scrub anyway.
            let message = format!("invalid DSN: {e}: {}", source_of(&e));
            scrub_with(dsn.expose(), message)
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => match config.get_hostaddrs().first() {
                Some(addr) => addr.to_string(),
                None => "localhost".into(),
            },
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        // libpq's default database is the user's name.
        let dbname = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or_default()
            .to_string();
        Ok(PgConnector {
            tls: tls::MakeRustls::new()?,
            password,
            max_rows,
            statement_timeout,
            target: json!({"type": "postgres", "host": host, "port": port, "dbname": dbname}),
            config: Box::new(config),
            client: Mutex::new(None),
        })
    }

    /// `{"type": "postgres", "host", "port", "dbname"}` — never the user or password.
    pub fn target(&self) -> Value {
        self.target.clone()
    }

    /// Runs one action. A mutating action writes its step record through `log` inside its
    /// transaction, after the change and before `COMMIT` (see [`actions`]).
    pub async fn execute(
        &self,
        action: &str,
        args: &Map<String, Value>,
        log: &mut dyn StepLog,
    ) -> ActionOutcome {
        let table = args.get("table").and_then(Value::as_str).unwrap_or("?");
        let label = format!("{action} on `{table}`");
        match self.perform(Work::Action(action, args, log)).await {
            Ok(outcome) => outcome,
            Err(failure) => ActionOutcome::failed(self.failure_message(&label, failure)),
        }
    }

    /// Reverses one recorded action (SPEC §6), only if the rows still hold what the run left.
    pub async fn undo(
        &self,
        record: &ActionRecord,
        mode: crate::connector::UndoMode,
    ) -> ActionOutcome {
        if record.action == "select_rows" {
            return ActionOutcome::ok(json!("skipped: read-only action"), json!({}));
        }
        let fresh =
            record.success && record.output.get("already_done") == Some(&Value::Bool(false));
        let data = record.rollback_data.as_object().filter(|d| !d.is_empty());
        let (true, Some(data)) = (fresh, data) else {
            return ActionOutcome::ok(json!({"skipped": "nothing to undo"}), json!({}));
        };
        let table = match (data.get("schema"), data.get("table")) {
            (Some(Value::String(s)), Some(Value::String(t))) => format!("{s}.{t}"),
            _ => "?".into(),
        };
        let label = format!("undo {} on `{table}`", record.action);
        let action = record.action.as_str();
        let tolerate = mode == crate::connector::UndoMode::AfterCrash;
        match self.perform(Work::Undo(action, data, tolerate)).await {
            Ok(outcome) => outcome,
            Err(failure) => ActionOutcome::failed(self.failure_message(&label, failure)),
        }
    }

    /// `<label>: <why>`, scrubbed; a cancelled statement names the timeout that cancelled it.
    /// Every action and undo is one transaction, rolled back on failure: nothing changed.
    fn failure_message(&self, label: &str, failure: Failure) -> String {
        let mut message = format!("{label}: {}", failure.message);
        if failure.cancelled {
            message.push_str(&format!(
                " — statement_timeout ({}) reached, nothing was changed",
                crate::kernel::schema::format_duration(self.statement_timeout)
            ));
        }
        self.scrub(message)
    }

    /// Whether an interrupted mutating action committed: `pg_xact_status` of the transaction id
    /// its step record holds (`committed` → `Done`, `aborted` → `NotDone`, unknown to the
    /// server → `Unknown`). A transaction still in progress belongs to a session whose client
    /// is gone (recovery only looks at steps of dead processes): it is waited for briefly, and
    /// if its session sits idle in the transaction, that session is terminated, which aborts it.
    pub async fn recover(
        &self,
        action: &str,
        args: &Map<String, Value>,
        pre: &Value,
    ) -> (Recovered, ActionOutcome) {
        if let Some(found) = recover_without_asking(action == "select_rows", pre) {
            return found;
        }
        let table = args.get("table").and_then(Value::as_str).unwrap_or("?");
        let Some(txid) = pre
            .get("txid")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        else {
            return recover::unknown(pre, "the step record holds no valid transaction id");
        };
        match self.perform(Work::Recover(txid)).await {
            Ok(outcome) => recover::judge(action, pre, txid, outcome),
            Err(Failure { message: why, .. }) => recover::unknown(
                pre,
                &self.scrub(format!(
                    "cannot ask the database whether transaction {txid} of {action} on `{table}` committed: {why}"
                )),
            ),
        }
    }

    /// Runs one action or undo on the connection (holding it throughout).
    async fn perform(&self, work: Work<'_>) -> Result<ActionOutcome, Failure> {
        let mut slot = self.connection().await?;
        let result = match (slot.as_mut(), work) {
            (None, _) => Err(Failure::new("no database connection")),
            (Some(db), Work::Action(action, args, log)) => {
                dispatch(db, action, args, self.max_rows, log).await
            }
            (Some(db), Work::Recover(txid)) => recover::status(db, txid).await,
            (Some(db), Work::Undo(action, data, tolerate)) => {
                undo::run(db, action, data, tolerate).await
            }
        };
        Self::release(&mut slot, &result);
        result
    }

    /// The connection, connecting first if there is none (or it broke). The caller holds
    /// the guard for its whole action and calls [`PgConnector::release`] after it.
    async fn connection(&self) -> Result<MutexGuard<'_, Option<Client>>, Failure> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = None;
            *slot = Some(self.connect().await?);
        }
        Ok(slot)
    }

    /// Drops a connection that broke during an action, so the next call connects again.
    fn release(slot: &mut MutexGuard<'_, Option<Client>>, result: &Result<ActionOutcome, Failure>) {
        let failed = matches!(result, Err(Failure { broken: true, .. }));
        if failed || slot.as_ref().is_some_and(Client::is_closed) {
            **slot = None;
        }
    }

    async fn connect(&self) -> Result<Client, Failure> {
        let (client, connection) = self.config.connect(self.tls.clone()).await.map_err(|e| {
            let at = format!(
                "cannot connect to the database at {}:{}/{}",
                self.target["host"].as_str().unwrap_or_default(),
                self.target["port"],
                self.target["dbname"].as_str().unwrap_or_default()
            );
            db_error(&at, &e)
        })?;
        let password = self.password.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                let message = match &password {
                    Some(p) => scrub_with(p, e.to_string()),
                    None => e.to_string(),
                };
                tracing::warn!(error = %message, "postgres connection closed");
            }
        });
        let settings = format!(
            "{SESSION_SETTINGS}; {}",
            timeout_setting(self.statement_timeout)
        );
        client
            .batch_execute(&settings)
            .await
            .map_err(|e| db_error("cannot set up the database session", &e))?;
        Ok(client)
    }

    fn scrub(&self, message: String) -> String {
        match &self.password {
            Some(p) => scrub_with(p, message),
            None => message,
        }
    }
}

/// What [`PgConnector::perform`] runs: an action with its arguments, or the undo of a recorded
/// action with its rollback data.
enum Work<'a> {
    Action(&'a str, &'a Map<String, Value>, &'a mut dyn StepLog),
    /// An undo; `true`: a retry after a crash, where rows already back in their state from
    /// before the run count as undone.
    Undo(&'a str, &'a Map<String, Value>, bool),
    /// The status of a recorded transaction, as an outcome whose output is `{"status": …}`.
    Recover(&'a str),
}

async fn dispatch(
    db: &mut Client,
    action: &str,
    args: &Map<String, Value>,
    max_rows: u64,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, Failure> {
    let table = args
        .get("table")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::new("argument `table` is missing or not a string"))?;
    let empty = Map::new();
    let object = |name: &str| match args.get(name) {
        None => Ok(&empty),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(Failure::new(format!("argument `{name}` must be an object"))),
    };
    match action {
        "select_rows" => {
            let limit = match args.get("limit") {
                None => 100,
                Some(v) => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                    Failure::new("argument `limit` must be a non-negative integer")
                })?,
            };
            if let Err(e) = log.before(json!({})) {
                return Ok(ActionOutcome::failed(e));
            }
            actions::select_rows(db, table, object("where")?, limit).await
        }
        "insert_row" => actions::insert_row(db, table, object("data")?, log).await,
        "update_row" => {
            actions::update_row(db, table, object("data")?, object("where")?, max_rows, log).await
        }
        "delete_row" => actions::delete_row(db, table, object("where")?, max_rows, log).await,
        other => Err(Failure::new(format!("`{other}` is not a postgres action"))),
    }
}

fn source_of(e: &tokio_postgres::Error) -> String {
    std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Replaces every occurrence of a secret (and its percent-encoded form, as in a URL).
fn scrub_with(secret: &str, message: String) -> String {
    if secret.is_empty() {
        return message;
    }
    let encoded = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    message
        .replace(secret, "[redacted]")
        .replace(&encoded, "[redacted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(dsn: &str) -> Result<PgConnector, String> {
        PgConnector::new(&Secret::new(dsn), 100, Duration::from_secs(30))
    }

    #[test]
    fn target_names_host_port_and_database_only() {
        let c = connector("host=db.example port=6543 user=app password=hunter2 dbname=shop");
        assert_eq!(
            c.map(|c| c.target()).ok(),
            Some(json!({"type": "postgres", "host": "db.example", "port": 6543, "dbname": "shop"}))
        );
        let c = connector("postgresql://app:hunter2@10.0.0.5/orders?sslmode=require");
        assert_eq!(
            c.map(|c| c.target()).ok(),
            Some(json!({"type": "postgres", "host": "10.0.0.5", "port": 5432, "dbname": "orders"}))
        );
    }

    #[test]
    fn a_bad_dsn_is_refused_without_echoing_it() {
        let err = connector("host=x password=hunter2 sslmode=sometimes")
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with("invalid DSN: invalid connection string"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn secrets_are_scrubbed_raw_and_percent_encoded() {
        assert_eq!(
            scrub_with("p@ss w", "a p@ss w b p%40ss%20w c".into()),
            "a [redacted] b [redacted] c"
        );
    }
}
