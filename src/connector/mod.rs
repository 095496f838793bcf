//! Connectors: the only code that talks to GitHub, Postgres or the disk (outside the receipts
//! store). Each connector is one file with the same shape:
//!
//! - `fn target(&self) -> Value`: the identity of the system it acts on, recorded in every
//!   action so rollback can refuse to run against a different system;
//! - `async fn execute(&self, action, args) -> ActionOutcome`: run one planned action
//!   (arguments already normalised by the plan builder), idempotently (SPEC §7);
//! - `async fn undo(&self, record) -> ActionOutcome`: reverse one recorded action, only if the
//!   target still holds what the run left.
//!
//! [`System`] wraps a connector with its configured name and `allowed_actions`, which it
//! enforces again at run time.

pub mod filesystem;
pub mod github;
pub mod postgres;

use serde_json::{Map, Value, json};

use crate::config::{Config, SystemConfig, SystemSettings};
use crate::kernel::action::SystemKind;
use crate::kernel::receipt::ActionRecord;

/// What one action (or undo) did.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    pub success: bool,
    /// On failure: `{"error": "…"}`.
    pub output: Value,
    /// Everything the undo needs, captured at execution time; `{}` when there is nothing to undo.
    pub rollback_data: Value,
}

impl ActionOutcome {
    pub fn ok(output: Value, rollback_data: Value) -> Self {
        ActionOutcome {
            success: true,
            output,
            rollback_data,
        }
    }
    /// Idempotent success: the desired state already held (`word`: "created", "deleted", …).
    pub fn already_done(mut output: Map<String, Value>, word: &str) -> Self {
        output.insert("already_done".into(), json!(word));
        ActionOutcome {
            success: true,
            output: Value::Object(output),
            rollback_data: json!({}),
        }
    }
    pub fn failed(error: impl Into<String>) -> Self {
        ActionOutcome {
            success: false,
            output: json!({"error": error.into()}),
            rollback_data: json!({}),
        }
    }
    /// The error message of a failed outcome.
    pub fn error(&self) -> Option<&str> {
        self.output.get("error").and_then(Value::as_str)
    }
}

/// Where a connector writes an action's write-ahead `step` record (SPEC §5.5).
///
/// Every action calls [`StepLog::before`] exactly once, after it has captured what its undo
/// needs and just before it changes anything (Postgres: inside the action's transaction, before
/// `COMMIT`; GitHub: before the request that changes state; filesystem: before the write).
/// Read-only actions call it first, with `{}`. `pre` holds the undo data as known then, plus
/// what recovery needs to find out whether the change happened (a transaction id, the sha a
/// ref will be moved to, the hash of the content being written).
///
/// An `Err` means the journal cannot be written: the connector must then change nothing (roll
/// back its transaction, send nothing) and return `ActionOutcome::failed` with that text.
pub trait StepLog: Send {
    fn before(&mut self, pre: Value) -> Result<(), String>;
}

/// What recovery found out about a step whose process died after its step record (SPEC §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    Done,
    NotDone,
    Unknown,
}

impl Recovered {
    pub fn as_str(self) -> &'static str {
        match self {
            Recovered::Done => "done",
            Recovered::NotDone => "not_done",
            Recovered::Unknown => "unknown",
        }
    }
}

/// A connector of one of the supported types.
pub enum Connector {
    Filesystem(filesystem::FsConnector),
    Github(github::GithubConnector),
    Postgres(postgres::PgConnector),
}

impl Connector {
    /// Builds the connector for a validated system config. Contacts nothing.
    pub fn build(system: &SystemConfig, config: &Config) -> Result<Connector, String> {
        Ok(match &system.settings {
            SystemSettings::Filesystem { root } => {
                Connector::Filesystem(filesystem::FsConnector::new(root, config)?)
            }
            SystemSettings::Github {
                token,
                base_url,
                repos,
                ..
            } => Connector::Github(github::GithubConnector::new(base_url, token, repos)?),
            SystemSettings::Postgres {
                dsn,
                max_rows,
                statement_timeout,
                ..
            } => Connector::Postgres(postgres::PgConnector::new(
                dsn,
                *max_rows,
                *statement_timeout,
            )?),
        })
    }

    /// Removes what a crash may have left behind in the system (temporary files of atomic
    /// writes in a filesystem root). Best effort.
    pub fn cleanup(&self) {}

    pub fn target(&self) -> Value {
        match self {
            Connector::Filesystem(c) => c.target(),
            Connector::Github(c) => c.target(),
            Connector::Postgres(c) => c.target(),
        }
    }

    pub async fn execute(&self, action: &str, args: &Map<String, Value>) -> ActionOutcome {
        match self {
            Connector::Filesystem(c) => c.execute(action, args).await,
            Connector::Github(c) => c.execute(action, args).await,
            Connector::Postgres(c) => c.execute(action, args).await,
        }
    }

    pub async fn undo(&self, record: &ActionRecord) -> ActionOutcome {
        match self {
            Connector::Filesystem(c) => c.undo(record).await,
            Connector::Github(c) => c.undo(record).await,
            Connector::Postgres(c) => c.undo(record).await,
        }
    }
}

/// A configured system: its name, type, allowlist and connector.
pub struct System {
    pub name: String,
    pub kind: SystemKind,
    pub allowed_actions: Vec<String>,
    pub connector: Connector,
}

impl System {
    /// Runs one action, refusing (as a failed action) anything outside `allowed_actions`.
    pub async fn execute(
        &self,
        action: &str,
        args: &Map<String, Value>,
        log: &mut dyn StepLog,
    ) -> ActionOutcome {
        if !self.allowed_actions.iter().any(|a| a == action) {
            return ActionOutcome::failed(format!(
                "action `{action}` is not in the allowed_actions of system `{}`",
                self.name
            ));
        }
        if let Err(e) = log.before(json!({})) {
            return ActionOutcome::failed(e);
        }
        self.connector.execute(action, args).await
    }

    /// Asks the system whether an interrupted action happened (SPEC §5.5).
    pub async fn recover(
        &self,
        _action: &str,
        _args: &Map<String, Value>,
        pre: &Value,
    ) -> (Recovered, ActionOutcome) {
        (
            Recovered::Unknown,
            ActionOutcome::ok(json!({}), pre.clone()),
        )
    }

    /// Undoes one recorded action. Runs even for actions no longer allowed (it can only
    /// reverse what the run recorded), but refuses when the system is not the recorded one.
    pub async fn undo(&self, record: &ActionRecord) -> ActionOutcome {
        let here = self.connector.target();
        if record.target != here {
            return ActionOutcome::failed(format!(
                "system `{}` is not the one the run acted on: recorded {}, now {}",
                self.name, record.target, here
            ));
        }
        self.connector.undo(record).await
    }
}
