//! Connectors: the only code that talks to GitHub, Postgres or the disk (outside the receipts
//! store). Each connector is one file with the same shape:
//!
//! - `fn target(&self) -> Value`: the identity of the system it acts on, recorded in every
//!   action so rollback can refuse to run against a different system;
//! - `async fn execute(&self, action, log) -> ActionOutcome`: run one typed planned action
//!   (built once by the plan builder), idempotently (SPEC §7), writing its
//!   write-ahead step record through [`StepLog::before`] just before it changes anything;
//! - `async fn recover(&self, action, args, pre) -> (Recovered, ActionOutcome)`: after a crash,
//!   find out from the system whether an action whose step record (`pre`) was written
//!   happened, and build the outcome the receipt records (SPEC §5.5);
//! - `async fn undo(&self, record) -> ActionOutcome`: reverse one recorded action, only if the
//!   target still holds what the run left.
//!
//! [`System`] wraps a connector with its configured name and `allowed_actions`, which it
//! enforces again at run time.

pub mod filesystem;
pub mod github;
pub mod http;
pub mod hubspot;
pub mod postgres;
pub mod slack;

use serde_json::{Map, Value, json};

use crate::kernel::action::SystemKind;
use crate::kernel::receipt::ActionRecord;
use crate::kernel::typed::Action;

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

/// How an undo treats a target that already holds its state from before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoMode {
    /// Any difference from what the run left fails the step (SPEC §6).
    Guarded,
    /// Retrying an undo that a crash interrupted (its outcome unknown): a target already in its
    /// state from before the run counts as undone, so a retried rollback does not stay PARTIAL
    /// because its first attempt succeeded. Any other difference still fails the step.
    AfterCrash,
}

/// What recovery found out about a step whose process died after its step record (SPEC §5.5).
///
/// Each connector's `recover(action, args, pre)` (`pre`: what the action gave
/// [`StepLog::before`]) returns one of these with the outcome to record:
///
/// - `Done`: the change happened; the outcome is the action's own (its output, `already_done:
///   false`, the rollback data undo needs). A `pre` holding `"already_done": "<word>"` (the
///   action found its desired state already there and meant to change nothing) recovers as
///   `Done` with that idempotent outcome.
/// - `NotDone`: nothing changed; a successful outcome with empty rollback data, its output
///   `{"not_done": "…"}` saying so.
/// - `Unknown`: the system holds neither the state before nor the state planned (or could not
///   be asked); a successful outcome whose rollback data is built from `pre`, so an undo keeps
///   its usual guards and refuses when the target does not hold what the action would have left.
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

/// Recovery that needs no look-up: a read-only action (`Done`, skipped), or a step whose `pre`
/// says the desired state already held (`Done`, the idempotent outcome it recorded).
pub(crate) fn recover_without_asking(
    read_only: bool,
    pre: &Value,
) -> Option<(Recovered, ActionOutcome)> {
    if read_only {
        return Some((
            Recovered::Done,
            ActionOutcome::ok(json!({"skipped": "read-only action"}), json!({})),
        ));
    }
    let mut output = pre.as_object()?.clone();
    let Some(Value::String(word)) = output.remove("already_done") else {
        return None;
    };
    Some((Recovered::Done, ActionOutcome::already_done(output, &word)))
}

/// A connector of one of the supported types.
pub enum Connector {
    Filesystem(filesystem::FsConnector),
    Github(github::GithubConnector),
    Postgres(postgres::PgConnector),
    Hubspot(hubspot::HubspotConnector),
    Slack(slack::SlackConnector),
}

impl Connector {
    /// Removes what a crash may have left behind in the system (temporary files of atomic
    /// writes in a filesystem root); returns what it removed. Best effort: a temp file of a
    /// write still running in another process would make that write fail (and be recorded as
    /// failed), never succeed wrongly.
    pub async fn cleanup(&self) -> Result<Vec<String>, String> {
        match self {
            Connector::Filesystem(c) => c.remove_temp_files(std::time::Duration::ZERO).await,
            Connector::Github(_)
            | Connector::Postgres(_)
            | Connector::Hubspot(_)
            | Connector::Slack(_) => Ok(Vec::new()),
        }
    }

    pub fn target(&self) -> Value {
        match self {
            Connector::Filesystem(c) => c.target(),
            Connector::Github(c) => c.target(),
            Connector::Postgres(c) => c.target(),
            Connector::Hubspot(c) => c.target(),
            Connector::Slack(c) => c.target(),
        }
    }

    /// Runs one typed action of this connector's type. GitHub runs the typed action itself;
    /// Postgres and the filesystem still take the action's JSON arguments inside (their row
    /// objects and paths are JSON or text all the way down).
    pub async fn execute(&self, action: &Action, log: &mut dyn StepLog) -> ActionOutcome {
        let name = action.name().as_str();
        match (self, action) {
            (Connector::Github(c), Action::Github(a)) => c.run(a, log).await,
            (Connector::Filesystem(c), Action::Filesystem(a)) => c.run(a, log).await,
            (Connector::Hubspot(c), Action::Hubspot(a)) => c.run(a, log).await,
            (Connector::Slack(c), Action::Slack(a)) => c.run(a, log).await,
            (Connector::Postgres(c), Action::Postgres(_)) => {
                c.execute(name, &action.args(), log).await
            }
            _ => ActionOutcome::failed(format!("`{name}` is not a {} action", self.kind())),
        }
    }

    pub fn kind(&self) -> SystemKind {
        match self {
            Connector::Filesystem(_) => SystemKind::Filesystem,
            Connector::Github(_) => SystemKind::Github,
            Connector::Postgres(_) => SystemKind::Postgres,
            Connector::Hubspot(_) => SystemKind::Hubspot,
            Connector::Slack(_) => SystemKind::Slack,
        }
    }

    /// Finds out whether an interrupted action happened (see [`Recovered`]).
    pub async fn recover(
        &self,
        action: &str,
        args: &Map<String, Value>,
        pre: &Value,
    ) -> (Recovered, ActionOutcome) {
        match self {
            Connector::Filesystem(c) => c.recover(action, args, pre).await,
            Connector::Github(c) => c.recover(action, args, pre).await,
            Connector::Postgres(c) => c.recover(action, args, pre).await,
            Connector::Hubspot(c) => c.recover(action, args, pre).await,
            Connector::Slack(c) => c.recover(action, args, pre).await,
        }
    }

    pub async fn undo(&self, record: &ActionRecord, mode: UndoMode) -> ActionOutcome {
        match self {
            Connector::Filesystem(c) => c.undo(record, mode).await,
            // GitHub's undos are idempotent already (a deleted branch, a closed PR, a ref at
            // its parent count as done), so both modes are the same there.
            Connector::Github(c) => c.undo(record).await,
            Connector::Postgres(c) => c.undo(record, mode).await,
            Connector::Hubspot(c) => c.undo(record, mode).await,
            // Slack's undos count an already-deleted message or restored text as done in both
            // modes.
            Connector::Slack(c) => c.undo(record).await,
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
    /// Nothing is changed for a refused action, so no step record is written for it.
    pub async fn execute(&self, action: &Action, log: &mut dyn StepLog) -> ActionOutcome {
        let name = action.name();
        if !self.allowed_actions.iter().any(|a| name == a.as_str()) {
            return ActionOutcome::failed(format!(
                "action `{name}` is not in the allowed_actions of system `{}`",
                self.name
            ));
        }
        self.connector.execute(action, log).await
    }

    /// Finds out whether an interrupted action happened (SPEC §5.5). Checks nothing else: the
    /// step record says the action was allowed and ran against this system.
    pub async fn recover(
        &self,
        action: &str,
        args: &Map<String, Value>,
        pre: &Value,
    ) -> (Recovered, ActionOutcome) {
        self.connector.recover(action, args, pre).await
    }

    /// Undoes one recorded action. Runs even for actions no longer allowed (it can only
    /// reverse what the run recorded), but refuses when the system is not the recorded one.
    pub async fn undo(&self, record: &ActionRecord, mode: UndoMode) -> ActionOutcome {
        let here = self.connector.target();
        if record.target != here {
            return ActionOutcome::failed(format!(
                "system `{}` is not the one the run acted on: recorded {}, now {}",
                self.name, record.target, here
            ));
        }
        self.connector.undo(record, mode).await
    }
}
