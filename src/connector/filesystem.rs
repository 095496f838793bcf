//! STUB: the filesystem connector.
use std::path::Path;

use serde_json::{Map, Value, json};

use super::ActionOutcome;
use crate::config::Config;
use crate::kernel::receipt::ActionRecord;

pub struct FsConnector {
    root: std::path::PathBuf,
}

impl FsConnector {
    pub fn new(root: &Path, _config: &Config) -> Result<Self, String> {
        Ok(FsConnector {
            root: root.to_path_buf(),
        })
    }
    pub fn target(&self) -> Value {
        json!({"type": "filesystem", "root": self.root.display().to_string()})
    }
    pub async fn execute(&self, action: &str, _args: &Map<String, Value>) -> ActionOutcome {
        ActionOutcome::failed(format!("`{action}` is not implemented"))
    }
    pub async fn undo(&self, record: &ActionRecord) -> ActionOutcome {
        ActionOutcome::failed(format!("undo of `{}` is not implemented", record.action))
    }
}
