//! The filesystem connector (SPEC §7): `read_file`, `write_file`, `delete_file` and `list_dir`
//! on UTF-8 text files beneath one root folder, and the guarded undo of the two writes (§6).
//!
//! - **Confinement** ([`jail`]): every path is opened beneath the root one component at a
//!   time, symlinks refused in every component, so the check cannot be raced. A path that
//!   escapes (`..` above the root, an absolute path elsewhere, a symlink anywhere) fails with
//!   `Path '<p>' resolves outside the root — operation blocked` and touches nothing.
//!   Files with more than one hard link (another name could lie outside the root) and anything
//!   but regular files and folders (fifos, devices, sockets) are refused.
//! - **Enact's own files**: config validation keeps the receipts folder, the secret file and
//!   the config file out of the root; in case one is put there anyway (by hand, by a bind
//!   mount, by a hard link), the connector also refuses any path that passes through the
//!   receipts folder or whose file *is* one of them — compared by (device, inode), looked up
//!   again on every call since the receipts folder appears only with the first receipt.
//! - **Text only**: content is UTF-8; reading a file that is not (or deleting / overwriting
//!   one, whose old content must be kept for rollback) is a failed action.
//! - **Size**: files read, written, or captured for rollback are limited to
//!   [`MAX_FILE_BYTES`] (10 MiB): the content travels in JSON and in the signed receipt.
//! - **Atomic writes**: a temporary file in the same folder is written, synced and renamed over
//!   the name, then the folder is synced. A replaced file keeps its permission bits.
//!
//! System calls block, so each action runs on tokio's blocking pool.

mod actions;
mod jail;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use serde_json::{Map, Value, json};

use super::{ActionOutcome, Recovered, StepLog, recover_without_asking};
use crate::kernel::receipt::ActionRecord;
use crate::kernel::typed::FilesystemAction;
use jail::Jail;

/// The largest file content read, written or captured for rollback (10 MiB).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Enact's own files, which a filesystem root must never expose (the jail refuses them).
#[derive(Debug, Clone, Copy)]
pub struct OwnFiles<'a> {
    pub receipts_dir: &'a Path,
    pub secret_file: Option<&'a Path>,
    pub config_file: &'a Path,
}

/// A filesystem system: one root folder.
pub struct FsConnector {
    jail: Arc<Jail>,
}

impl FsConnector {
    /// `root` must be absolute (the config makes it so). Contacts nothing: the root is opened
    /// on each call, so it may be created after the server starts.
    pub fn new<'a>(root: &Path, own: impl Into<OwnFiles<'a>>) -> Result<Self, String> {
        let own = own.into();
        let jail = Jail::new(root, own.receipts_dir, own.secret_file, own.config_file)?;
        Ok(FsConnector {
            jail: Arc::new(jail),
        })
    }

    pub fn target(&self) -> Value {
        json!({"type": "filesystem", "root": self.jail.root().display().to_string()})
    }

    /// Runs the action on tokio's blocking pool; its step record is handed back here and
    /// written through `log` while the blocking thread waits, so nothing is written before
    /// `log.before` has returned `Ok`.
    pub async fn execute(
        &self,
        action: &str,
        args: &Map<String, Value>,
        log: &mut dyn StepLog,
    ) -> ActionOutcome {
        let (action, args) = (action.to_string(), args.clone());
        self.on_blocking_pool(log, move |jail, relay| {
            actions::execute(jail, &action, &args, relay)
        })
        .await
    }

    /// Runs one typed action (the engine's path: no argument is parsed again).
    pub async fn run(&self, action: &FilesystemAction, log: &mut dyn StepLog) -> ActionOutcome {
        let action = action.clone();
        self.on_blocking_pool(log, move |jail, relay| actions::run(jail, &action, relay))
            .await
    }

    /// Runs `work` on tokio's blocking pool, relaying its step record to `log`.
    async fn on_blocking_pool(
        &self,
        log: &mut dyn StepLog,
        work: impl FnOnce(&Jail, &mut Relay) -> ActionOutcome + Send + 'static,
    ) -> ActionOutcome {
        let jail = Arc::clone(&self.jail);
        let (pre_tx, pre_rx) = oneshot::channel();
        let (ack_tx, ack_rx) = oneshot::channel();
        let mut relay = Relay {
            pre: Some(pre_tx),
            ack: Some(ack_rx),
        };
        let task = tokio::task::spawn_blocking(move || work(&jail, &mut relay));
        // No step record comes when the action ends before changing anything (the sender is
        // dropped with the task's closure).
        if let Ok(pre) = pre_rx.await {
            let _ = ack_tx.send(log.before(pre));
        }
        task.await.unwrap_or_else(|e| {
            ActionOutcome::failed(format!("filesystem action did not complete: {e}"))
        })
    }

    /// Whether an interrupted `write_file` / `delete_file` happened: the file now holds the
    /// content written (`Done`), still the content before (`NotDone`), or something else
    /// (`Unknown`). See [`Recovered`].
    pub async fn recover(
        &self,
        action: &str,
        _args: &Map<String, Value>,
        pre: &Value,
    ) -> (Recovered, ActionOutcome) {
        let read_only = matches!(action, "read_file" | "list_dir");
        if let Some(found) = recover_without_asking(read_only, pre) {
            return found;
        }
        let (jail, action) = (Arc::clone(&self.jail), action.to_string());
        let pre = pre.as_object().cloned().unwrap_or_default();
        let kept = Value::Object(pre.clone());
        tokio::task::spawn_blocking(move || actions::recover(&jail, &action, &pre))
            .await
            .unwrap_or_else(|e| {
                (
                    Recovered::Unknown,
                    ActionOutcome::ok(
                        json!({"already_done": false, "unknown": format!("the file could not be looked at: {e}")}),
                        kept,
                    ),
                )
            })
    }

    /// Removes the temporary files of atomic writes that a crash left beneath the root, if
    /// unchanged for at least `min_age` (`Duration::ZERO`: all of them); returns their
    /// root-relative paths. Recovery calls it; `list_dir` never shows such files anyway.
    pub async fn remove_temp_files(&self, min_age: Duration) -> Result<Vec<String>, String> {
        let jail = Arc::clone(&self.jail);
        tokio::task::spawn_blocking(move || jail.remove_temp_files(min_age))
            .await
            .map_err(|e| format!("the temporary-file sweep did not complete: {e}"))?
    }

    pub async fn undo(
        &self,
        record: &ActionRecord,
        mode: crate::connector::UndoMode,
    ) -> ActionOutcome {
        let (jail, record) = (Arc::clone(&self.jail), record.clone());
        blocking(move || actions::undo(&jail, &record, mode)).await
    }
}

/// The step log an action on the blocking pool sees: it sends `pre` to the async side, which
/// writes it through the real log, and waits for the answer. Only one record per action.
struct Relay {
    pre: Option<oneshot::Sender<Value>>,
    ack: Option<oneshot::Receiver<Result<(), String>>>,
}

impl StepLog for Relay {
    fn before(&mut self, pre: Value) -> Result<(), String> {
        let (Some(tx), Some(rx)) = (self.pre.take(), self.ack.take()) else {
            return Err("a second step record for one filesystem action — refused".into());
        };
        tx.send(pre).map_err(|_| {
            "the step record could not be handed over: the call was dropped".to_string()
        })?;
        rx.blocking_recv()
            .map_err(|_| "the step record was not confirmed: the call was dropped".to_string())?
    }
}

async fn blocking(f: impl FnOnce() -> ActionOutcome + Send + 'static) -> ActionOutcome {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        ActionOutcome::failed(format!("filesystem action did not complete: {e}"))
    })
}
