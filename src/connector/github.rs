//! STUB: the GitHub connector.
use serde_json::{Map, Value, json};

use super::ActionOutcome;
use crate::kernel::receipt::ActionRecord;
use crate::secret::Secret;

pub struct GithubConnector {
    base_url: String,
}

impl GithubConnector {
    pub fn new(base_url: &str, _token: &Secret, _repos: &[String]) -> Result<Self, String> {
        Ok(GithubConnector {
            base_url: base_url.to_string(),
        })
    }
    pub fn target(&self) -> Value {
        json!({"type": "github", "base_url": self.base_url})
    }
    pub async fn execute(&self, action: &str, _args: &Map<String, Value>) -> ActionOutcome {
        ActionOutcome::failed(format!("`{action}` is not implemented"))
    }
    pub async fn undo(&self, record: &ActionRecord) -> ActionOutcome {
        ActionOutcome::failed(format!("undo of `{}` is not implemented", record.action))
    }
    /// The base branch of a pull request (for `no_merge_to_main`).
    pub async fn pr_base(&self, repo: &str, number: u64) -> Result<String, String> {
        Err(format!(
            "cannot look up pull request #{number} of {repo}: not implemented"
        ))
    }
}
