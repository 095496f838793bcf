//! One line for a human per result: the MCP tool's text content and the CLI's first line.
//!
//! These are presentation, so they live beside the adapters that show them, not in the engine.

use serde_json::Value;

use crate::engine::{CallResult, Preview, RollbackResult};
use crate::kernel::policy::{Decision, PolicyResult};

/// A result's one-line summary.
pub trait Summarise {
    fn summary(&self) -> String;
}

impl Summarise for CallResult {
    /// One line for a human: the decision and, on BLOCK or failure, every reason.
    fn summary(&self) -> String {
        match (self.decision, self.success) {
            (Decision::ApprovalRequired, _) => {
                let expires = self
                    .approval
                    .as_ref()
                    .and_then(|a| a.get("expires_at"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                format!(
                    "APPROVAL_REQUIRED: `{}` waits for a human — `enact approvals approve {}` (expires {expires})",
                    self.workflow, self.run_id
                )
            }
            (Decision::Block, _) => format!(
                "BLOCK: `{}` was blocked — {}",
                self.workflow,
                failed_policies(&self.policy_results)
            ),
            (_, true) => format!(
                "PASS: `{}` ran {} action(s) successfully (receipt {}){}",
                self.workflow,
                self.actions.len(),
                self.run_id,
                approved_by(self.approval.as_ref())
            ),
            (_, false) => {
                let error = self
                    .actions
                    .iter()
                    .find(|a| !a.success)
                    .map(|a| {
                        let msg = a
                            .output
                            .get("error")
                            .and_then(Value::as_str)
                            .unwrap_or("failed");
                        format!("action `{}` on `{}` failed: {msg}", a.action, a.system)
                    })
                    .unwrap_or_else(|| "an action failed".into());
                format!(
                    "FAILED: `{}` passed the gate but {error} (receipt {})",
                    self.workflow, self.run_id
                )
            }
        }
    }
}

/// `, approved by <who> via <how>` for a resumed run's result.
fn approved_by(approval: Option<&Value>) -> String {
    let field = |k: &str| approval.and_then(|a| a.get(k)).and_then(Value::as_str);
    match (field("decided_by"), field("via")) {
        (Some(who), Some(via)) => format!(", approved by {who} via {via}"),
        _ => String::new(),
    }
}

/// Every failed policy with its reason: `policy: reason; policy: reason`.
fn failed_policies(results: &[PolicyResult]) -> String {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}", r.policy, r.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Summarise for Preview {
    /// One line for a human: what the call would do, and on BLOCK every reason.
    fn summary(&self) -> String {
        match self.decision {
            Decision::Block => format!(
                "PREVIEW: `{}` would be BLOCKED — {}",
                self.workflow,
                failed_policies(&self.policy_results)
            ),
            _ => format!(
                "PREVIEW: `{}` would PASS and run {} action(s); nothing was run",
                self.workflow,
                self.plan.len()
            ),
        }
    }
}

impl Summarise for RollbackResult {
    fn summary(&self) -> String {
        let failed: Vec<String> = self
            .actions
            .iter()
            .filter(|a| !a.success)
            .map(|a| {
                format!(
                    "{}: {}",
                    a.action,
                    a.output
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("failed")
                )
            })
            .collect();
        if self.success {
            format!(
                "ROLLBACK PASS: run {} undone, {} step(s) (receipt {})",
                self.rollback_of,
                self.actions.len(),
                self.run_id
            )
        } else {
            format!(
                "ROLLBACK PARTIAL: run {} — failed: {} (receipt {})",
                self.rollback_of,
                failed.join("; "),
                self.run_id
            )
        }
    }
}
