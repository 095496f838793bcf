//! Recovery (SPEC §5.5): finishing the records of runs a crash interrupted.
//!
//! A run with an intent and no receipt whose owner process is gone is finished here: each step
//! that has a step record is asked about (the connector's `recover`: a transaction's status, a
//! file's content, a ref's sha), and the run's receipt is written with `"interrupted": true`
//! and each step's `output.recovered` = `done`, `not_done` or `unknown`. Steps recovered as
//! `done` or `unknown` keep their undo data and count as succeeded, so the run can be rolled
//! back (undo keeps its guards, so an `unknown` step is only undone if the target still holds
//! what the run would have left). A step `not_done` is a failed step that changed nothing.
//!
//! An interrupted rollback is finished as a PARTIAL rollback: undo steps that had started are
//! failed with `recovered: "unknown"`, the rest failed as not run, so a retry tries them again
//! (and an undo whose target already holds the original state succeeds).
//!
//! The store hands out only runs whose owners' locks it could take, and a receipt can be
//! appended once per run, so several processes recovering at once finish each run once.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Engine, timestamp};
use crate::connector::{ActionOutcome, Recovered};
use crate::kernel::policy::{Decision, PolicyResult};
use crate::kernel::receipt::{ActionRecord, ApprovalFields, GENESIS_HASH, Receipt};
use crate::store::{Interrupted, StoreError};

/// One finished run.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveredRun {
    pub run_id: String,
    pub workflow: String,
    pub rollback_of: Option<String>,
    /// `(action, system, recovered)` per step that had started.
    pub steps: Vec<(String, String, String)>,
}

/// What a recovery pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoveryReport {
    pub runs: Vec<RecoveredRun>,
}

impl RecoveryReport {
    /// Whether some step stays `unknown` (`enact recover` then exits 1).
    pub fn has_unknown(&self) -> bool {
        self.runs.iter().any(|r| {
            r.steps
                .iter()
                .any(|(_, _, s)| s == Recovered::Unknown.as_str())
        })
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn with_recovered(output: Value, status: Recovered) -> Value {
    let mut map = match output {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            let mut m = Map::new();
            m.insert("result".into(), other);
            m
        }
    };
    map.insert("recovered".into(), json!(status.as_str()));
    Value::Object(map)
}

impl Engine {
    /// Finishes every interrupted run whose owner is gone. Idempotent; safe to run from
    /// several processes at once.
    pub async fn recover(&self) -> Result<RecoveryReport, StoreError> {
        let (runs, claims) = self.store.interrupted()?;
        let mut report = RecoveryReport::default();
        for run in runs {
            let rollback_of = run
                .intent
                .get("rollback_of")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let (receipt, steps) = match &rollback_of {
                None => self.recover_run(&run).await,
                Some(original) => self.recover_rollback(&run, original),
            };
            match self.store.append(receipt) {
                Ok(_) => {
                    tracing::warn!(run_id = %run.run_id, "recovered a run interrupted by a crash");
                    report.runs.push(RecoveredRun {
                        run_id: run.run_id.clone(),
                        workflow: text(&run.intent, "workflow"),
                        rollback_of,
                        steps,
                    });
                }
                // Another process finished it first.
                Err(StoreError::Duplicate(_)) => {}
                Err(e) => {
                    self.store.release_claims(claims);
                    return Err(e);
                }
            }
        }
        self.store.release_claims(claims);
        self.cleanup_temp_files().await;
        Ok(report)
    }

    /// Removes temporary files a crash left in filesystem roots.
    async fn cleanup_temp_files(&self) {
        for system in self.registry.systems.values() {
            match system.connector.cleanup().await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::warn!(system = %system.name, files = ?removed, "removed temporary files a crash left behind");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(system = %system.name, error = %e, "could not remove temporary files a crash left behind")
                }
            }
        }
    }

    fn base_receipt(&self, run: &Interrupted) -> Receipt {
        let intent = &run.intent;
        Receipt {
            kind: "receipt".into(),
            run_id: run.run_id.clone(),
            workflow: text(intent, "workflow"),
            actor_email: text(intent, "actor_email"),
            actor_role: text(intent, "actor_role"),
            payload: intent.get("payload").cloned().unwrap_or(Value::Null),
            inputs: intent.get("inputs").cloned(),
            policy_results: intent
                .get("policy_results")
                .cloned()
                .and_then(|v| serde_json::from_value::<Vec<PolicyResult>>(v).ok())
                .unwrap_or_default(),
            decision: Decision::Pass,
            actions_taken: Vec::new(),
            timestamp: text(intent, "timestamp"),
            rollback_of: None,
            plan: intent.get("plan").cloned().unwrap_or(Value::Array(vec![])),
            policy_set_hash: text(intent, "policy_set_hash"),
            interrupted: true,
            // A resumed run keeps what it resumed, so its approval stays used.
            approvals: ApprovalFields {
                resumes: intent
                    .get("resumes")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                approved_by: intent.get("approved_by").cloned(),
                ..ApprovalFields::default()
            },
            seq: 0,
            prev_hash: GENESIS_HASH.into(),
            signature: String::new(),
        }
    }

    /// The last step record per step index, in index order.
    fn started_steps(run: &Interrupted) -> Vec<&Value> {
        let mut by_index = std::collections::BTreeMap::new();
        for step in &run.steps {
            let index = step.get("index").and_then(Value::as_u64).unwrap_or(0);
            by_index.insert(index, step);
        }
        by_index.into_values().collect()
    }

    async fn recover_run(&self, run: &Interrupted) -> (Receipt, Vec<(String, String, String)>) {
        let mut receipt = self.base_receipt(run);
        let mut summary = Vec::new();
        for step in Self::started_steps(run) {
            let action = text(step, "action");
            let system_name = text(step, "system");
            let args = step
                .get("args")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let pre = step.get("pre").cloned().unwrap_or(json!({}));
            let target = step.get("target").cloned().unwrap_or(Value::Null);
            let (status, outcome) = match self.registry.systems.get(&system_name) {
                Some(system) if system.connector.target() == target => {
                    system.recover(&action, &args, &pre).await
                }
                _ => (
                    Recovered::Unknown,
                    ActionOutcome::ok(
                        json!({"note": format!("system `{system_name}` is not the one the run acted on (or is no longer configured): what happened is unknown")}),
                        pre.clone(),
                    ),
                ),
            };
            let record = match status {
                Recovered::NotDone => ActionRecord {
                    action: action.clone(),
                    system: system_name.clone(),
                    success: false,
                    output: json!({"error": "interrupted by a crash before it took effect", "recovered": "not_done"}),
                    rollback_data: json!({}),
                    target,
                    args,
                },
                _ => {
                    let mut output = with_recovered(outcome.output, status);
                    if let Value::Object(m) = &mut output {
                        m.entry("already_done").or_insert(json!(false));
                    }
                    ActionRecord {
                        action: action.clone(),
                        system: system_name.clone(),
                        success: true,
                        output,
                        rollback_data: outcome.rollback_data,
                        target,
                        args,
                    }
                }
            };
            summary.push((action, system_name, status.as_str().to_owned()));
            let stop = !record.success;
            receipt.actions_taken.push(record);
            if stop {
                break;
            }
        }
        (receipt, summary)
    }

    fn recover_rollback(
        &self,
        run: &Interrupted,
        original: &str,
    ) -> (Receipt, Vec<(String, String, String)>) {
        let mut receipt = self.base_receipt(run);
        receipt.rollback_of = Some(original.into());
        receipt.inputs = None;
        let started: Vec<u64> = run
            .steps
            .iter()
            .filter_map(|s| s.get("undo_of").and_then(Value::as_u64))
            .collect();
        let plan = receipt.plan.as_array().cloned().unwrap_or_default();
        let mut summary = Vec::new();
        for step in &plan {
            let Some(undo_of) = step.get("index").and_then(Value::as_u64) else {
                continue;
            };
            let action = text(step, "action");
            let system = text(step, "system");
            let (status, error) = if started.contains(&undo_of) {
                (
                    Recovered::Unknown,
                    "interrupted by a crash while undoing: retry the rollback (an undo whose target already holds the original state succeeds)",
                )
            } else {
                (
                    Recovered::NotDone,
                    "not run: the rollback was interrupted by a crash before this step",
                )
            };
            let mut args = Map::new();
            args.insert("undo_of".into(), json!(undo_of));
            receipt.actions_taken.push(ActionRecord {
                action: action.clone(),
                system: system.clone(),
                success: false,
                output: json!({"error": error, "recovered": status.as_str()}),
                rollback_data: json!({}),
                target: Value::Null,
                args,
            });
            if status == Recovered::Unknown {
                summary.push((action, system, status.as_str().to_owned()));
            }
        }
        receipt.decision = if receipt.actions_taken.is_empty() {
            Decision::Pass
        } else {
            Decision::Partial
        };
        if receipt.timestamp.is_empty() {
            receipt.timestamp = timestamp(self.clock.now());
        }
        (receipt, summary)
    }
}
