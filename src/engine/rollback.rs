//! Rollback (SPEC §6): load → verify → inverse plan → guarded undos → a signed rollback
//! receipt, written ahead like a run.

use crate::kernel::context::Actor;
use serde_json::{Map, Value, json};

use super::{ActionView, Engine, Requester, RollbackRefused, RollbackResult, blocking};
use crate::connector::{ActionOutcome, Recovered, UndoMode};
use crate::kernel::policy::Decision;
use crate::kernel::receipt::{self, ActionRecord, Receipt, timestamp};
use crate::kernel::rollback::{UndoKind, UndoStep, inverse_plan};

impl Engine {
    /// Checks everything a rollback requires and returns the original receipt and the steps
    /// to run (SPEC §6 rules 1–4).
    fn prepare_rollback(
        &self,
        run_id: &str,
        requester: Requester,
        actor: &Actor,
    ) -> Result<(Receipt, Vec<UndoStep>, Vec<usize>), RollbackRefused> {
        if !self.registry.config.rollback_enabled {
            return Err(RollbackRefused(
                "Rollback is disabled: set `[rollback] enabled = true` in the config".into(),
            ));
        }
        let loaded = self
            .store
            .load(run_id)
            .map_err(|e| RollbackRefused(e.to_string()))?;
        if !loaded.signature_valid {
            return Err(RollbackRefused(format!(
                "Receipt signature verification failed for run_id: {run_id}"
            )));
        }
        let original: Receipt = serde_json::from_value(loaded.value).map_err(|e| {
            RollbackRefused(format!("receipt `{run_id}` is not a run receipt: {e}"))
        })?;
        if original.rollback_of.is_some() {
            return Err(RollbackRefused(format!(
                "Cannot rollback a rollback receipt — `{run_id}` is itself a rollback"
            )));
        }
        if !matches!(original.decision, Decision::Pass | Decision::Block) {
            return Err(RollbackRefused(format!(
                "Cannot rollback `{run_id}`: it is a {} record, not a workflow run — nothing was done by it",
                original.decision.as_str()
            )));
        }
        if original.decision == Decision::Block {
            return Err(RollbackRefused(
                "Cannot rollback a blocked run — no actions were taken".into(),
            ));
        }
        if requester == Requester::Agent && original.actor_email != actor.email {
            return Err(RollbackRefused(format!(
                "Run {run_id} belongs to another actor and cannot be rolled back here"
            )));
        }
        let earlier = self
            .store
            .rollbacks_of(run_id)
            .map_err(|e| RollbackRefused(e.to_string()))?;
        if let Some((rb, _, _)) = earlier.iter().find(|(_, d, _)| *d == Decision::Pass) {
            return Err(RollbackRefused(format!(
                "Run {run_id} was already rolled back by {rb}"
            )));
        }
        // After a PARTIAL rollback, only the undo steps that failed last time are retried.
        // Undo steps a crash interrupted (recovered as `unknown`) are retried in
        // `UndoMode::AfterCrash`: their first attempt may have succeeded.
        let mut after_crash = Vec::new();
        let only: Option<Vec<usize>> = match earlier.last() {
            Some((rb_id, _, value)) => {
                if !receipt::verify(value, &self.registry.config.mac_key) {
                    return Err(RollbackRefused(format!(
                        "Receipt signature verification failed for run_id: {rb_id}"
                    )));
                }
                let failed = value
                    .get("actions_taken")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter(|x| x.get("success") == Some(&Value::Bool(false)))
                            .filter_map(|x| {
                                x.get("args")
                                    .and_then(|g| g.get("undo_of"))
                                    .and_then(Value::as_u64)
                            })
                            .map(|i| i as usize)
                            .collect()
                    })
                    .unwrap_or_default();
                after_crash = value
                    .get("actions_taken")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter(|x| {
                                x.get("output").and_then(|o| o.get("recovered"))
                                    == Some(&json!(Recovered::Unknown.as_str()))
                            })
                            .filter_map(|x| x.get("args")?.get("undo_of")?.as_u64())
                            .map(|i| i as usize)
                            .collect()
                    })
                    .unwrap_or_default();
                Some(failed)
            }
            None => None,
        };
        let steps = inverse_plan(&original.actions_taken, only.as_deref());
        Ok((original, steps, after_crash))
    }

    /// The inverse steps a rollback would run, without running them (`--dry-run`).
    pub fn rollback_plan(
        &self,
        run_id: &str,
        requester: Requester,
    ) -> Result<Vec<UndoStep>, RollbackRefused> {
        let _lock = self
            .store
            .lock_rollback(run_id)
            .map_err(|e| RollbackRefused(e.to_string()))?;
        self.prepare_rollback(run_id, requester, &self.registry.config.actor)
            .map(|(_, steps, _)| steps)
    }

    /// Rolls a run back (SPEC §6): guarded undos in reverse order, best effort, and a signed
    /// rollback receipt with decision PASS or PARTIAL. Written ahead like a run: an intent,
    /// a step record before each undo, then the receipt.
    pub async fn rollback(
        &self,
        run_id: &str,
        requester: Requester,
    ) -> Result<RollbackResult, RollbackRefused> {
        self.rollback_as(run_id, requester, &self.registry.config.actor)
            .await
    }

    /// [`Engine::rollback`] asked for by `actor`: over MCP an agent may roll back only its
    /// own actor's runs.
    pub async fn rollback_as(
        &self,
        run_id: &str,
        requester: Requester,
        actor: &Actor,
    ) -> Result<RollbackResult, RollbackRefused> {
        if !receipt::is_valid_run_id(run_id) {
            return Err(RollbackRefused(format!("Invalid run_id: '{run_id}'")));
        }
        // Held across the undo so two rollbacks of one run (in any process) cannot interleave.
        let _lock = blocking(|| self.store.lock_rollback(run_id))
            .map_err(|e| RollbackRefused(e.to_string()))?;
        let (original, steps, after_crash) = self.prepare_rollback(run_id, requester, actor)?;
        let now = self.clock.now();
        let rb_id = self.ids.run_id();
        let plan = serde_json::to_value(&steps)
            .map_err(|e| RollbackRefused(format!("the rollback plan cannot be recorded: {e}")))?;
        let mut intent = Map::new();
        intent.insert("run_id".into(), json!(rb_id));
        intent.insert(
            "workflow".into(),
            json!(format!("rollback:{}", original.workflow)),
        );
        intent.insert("actor_email".into(), json!(original.actor_email));
        intent.insert("actor_role".into(), json!(original.actor_role));
        intent.insert("payload".into(), json!({"original_run_id": run_id}));
        intent.insert("rollback_of".into(), json!(run_id));
        intent.insert("plan".into(), plan.clone());
        intent.insert("timestamp".into(), json!(timestamp(now)));
        intent.insert(
            "policy_set_hash".into(),
            json!(self.registry.policy_set_hash),
        );
        self.store.append_intent(intent).map_err(|e| {
            RollbackRefused(format!(
                "the receipts journal cannot be written: {e} — nothing was done"
            ))
        })?;
        let mut records = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let Some(orig) = original.actions_taken.get(step.index) else {
                continue;
            };
            let outcome = match (&step.kind, self.registry.systems.get(&step.system)) {
                (UndoKind::SkipReadOnly, _) => {
                    ActionOutcome::ok(json!("skipped: read-only action"), json!({}))
                }
                (UndoKind::Irreversible, _) => {
                    ActionOutcome::failed(format!("'{}' cannot be reversed", step.action))
                }
                (UndoKind::Undo, None) => ActionOutcome::failed(format!(
                    "system `{}` is no longer configured",
                    step.system
                )),
                (UndoKind::Undo, Some(system)) => {
                    let mut fields = Map::new();
                    fields.insert("run_id".into(), json!(rb_id));
                    fields.insert("index".into(), json!(i));
                    fields.insert("undo_of".into(), json!(step.index));
                    fields.insert("system".into(), json!(step.system));
                    fields.insert("action".into(), json!(step.action));
                    fields.insert("target".into(), orig.target.clone());
                    if let Err(e) = self.store.append_step(fields) {
                        let done: Vec<String> = records
                            .iter()
                            .map(|r: &ActionRecord| r.action.clone())
                            .collect();
                        return Err(RollbackRefused(format!(
                            "the receipts journal cannot be written: {e} — {} undo step(s) ran and their records are safe ({}); nothing more was done; retry the rollback",
                            done.len(),
                            done.join(", ")
                        )));
                    }
                    let mode = if after_crash.contains(&step.index) {
                        UndoMode::AfterCrash
                    } else {
                        UndoMode::Guarded
                    };
                    crate::faults::crash_point("undo_step");
                    let outcome = system.undo(orig, mode).await;
                    crate::faults::crash_point("undo");
                    outcome
                }
            };
            let mut args = Map::new();
            args.insert("undo_of".into(), json!(step.index));
            records.push(ActionRecord {
                action: step.action.clone(),
                system: step.system.clone(),
                success: outcome.success,
                output: outcome.output,
                rollback_data: outcome.rollback_data,
                target: orig.target.clone(),
                args,
            });
        }
        let decision = if records.iter().all(|r| r.success) {
            Decision::Pass
        } else {
            Decision::Partial
        };
        let receipt = Receipt::for_rollback(
            &rb_id,
            &original,
            plan,
            decision,
            records,
            now,
            &self.registry.policy_set_hash,
        );
        let written = self.store.append(receipt).map_err(|e| {
            RollbackRefused(format!(
                "the rollback ran but its receipt could not be appended yet ({e}); its records are safe and recovery will finish it"
            ))
        })?;
        Ok(RollbackResult {
            run_id: rb_id.clone(),
            rollback_of: run_id.into(),
            decision,
            success: decision == Decision::Pass,
            actions: written.actions_taken.iter().map(ActionView::from).collect(),
            receipt: format!("enact://receipts/{rb_id}"),
        })
    }
}
