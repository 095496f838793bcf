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

use serde_json::{Map, Value, json};

use super::ActionOutcome;
use crate::config::Config;
use crate::kernel::receipt::ActionRecord;
use jail::Jail;

/// The largest file content read, written or captured for rollback (10 MiB).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// A filesystem system: one root folder.
pub struct FsConnector {
    jail: Arc<Jail>,
}

impl FsConnector {
    /// `root` must be absolute (the config makes it so). Contacts nothing: the root is opened
    /// on each call, so it may be created after the server starts.
    pub fn new(root: &Path, config: &Config) -> Result<Self, String> {
        let jail = Jail::new(
            root,
            &config.receipts_dir,
            config.secret_file.as_deref(),
            &config.path,
        )?;
        Ok(FsConnector {
            jail: Arc::new(jail),
        })
    }

    pub fn target(&self) -> Value {
        json!({"type": "filesystem", "root": self.jail.root().display().to_string()})
    }

    pub async fn execute(&self, action: &str, args: &Map<String, Value>) -> ActionOutcome {
        let (jail, action, args) = (Arc::clone(&self.jail), action.to_string(), args.clone());
        blocking(move || actions::execute(&jail, &action, &args)).await
    }

    pub async fn undo(&self, record: &ActionRecord) -> ActionOutcome {
        let (jail, record) = (Arc::clone(&self.jail), record.clone());
        blocking(move || actions::undo(&jail, &record)).await
    }
}

async fn blocking(f: impl FnOnce() -> ActionOutcome + Send + 'static) -> ActionOutcome {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        ActionOutcome::failed(format!("filesystem action did not complete: {e}"))
    })
}
