//! What the engine answers: the results of calls, previews and rollbacks (SPEC §3.1), as
//! the MCP tools and the CLI return them.

use serde::Serialize;
use serde_json::Value;

use crate::kernel::policy::{Decision, PolicyResult};
use crate::kernel::receipt::ActionRecord;

/// The result of one workflow call (SPEC §3.1).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CallResult {
    pub run_id: String,
    pub workflow: String,
    pub decision: Decision,
    pub success: bool,
    pub actions: Vec<ActionView>,
    pub policy_results: Vec<PolicyResult>,
    pub receipt: String,
    /// SPEC §9. On APPROVAL_REQUIRED: `{run_id, expires_at, plan}` of the request. On a
    /// resumed run (`enact_resume`): `{run_id, decided_by, via}` of the APPROVE record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Value>,
}

/// An action as reported to the caller (no rollback data).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ActionView {
    pub action: String,
    pub system: String,
    pub success: bool,
    pub output: Value,
}

impl From<&ActionRecord> for ActionView {
    fn from(r: &ActionRecord) -> Self {
        ActionView {
            action: r.action.clone(),
            system: r.system.clone(),
            success: r.success,
            output: r.output.clone(),
        }
    }
}

/// The result of `enact_preview`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Preview {
    pub workflow: String,
    pub decision: Decision,
    pub plan: Vec<Value>,
    pub policy_results: Vec<PolicyResult>,
}

/// Who asks for a rollback: over MCP only the server's own actor's runs may be rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    Agent,
    Operator,
}

/// The result of a rollback (SPEC §3.1 `enact_rollback`).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RollbackResult {
    pub run_id: String,
    pub rollback_of: String,
    pub decision: Decision,
    pub success: bool,
    pub actions: Vec<ActionView>,
    pub receipt: String,
}

/// A refused rollback: the message is the SPEC's exact text where it fixes one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RollbackRefused(pub String);
