//! The engine: the one place where the pure kernel meets I/O.
//!
//! A workflow call goes validate → plan → (facts) → gate → run → receipt; a rollback goes
//! load → verify → inverse plan → guarded undos → receipt. Both the MCP server and the CLI
//! call these functions, so the rules hold the same way for agents and operators.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

mod recovery;

pub use recovery::{RecoveredRun, RecoveryReport};

use crate::connector::{ActionOutcome, Connector, Recovered, StepLog, UndoMode};
use crate::kernel::context::{Actor, Context, Facts};
use crate::kernel::plan::{self, Guard, Step};
use crate::kernel::policy::{self, Decision, PolicyKind, PolicyResult, Verdict};
use crate::kernel::receipt::{self, ActionRecord, Receipt};
use crate::kernel::rollback::{UndoKind, UndoStep, inverse_plan};
use crate::kernel::schema;
use crate::kernel::workflow::{Workflow, WorkflowBody};
use crate::registry::Registry;
use crate::store::{Store, StoreError};

/// The pseudo-policy that reports argument and plan validation failures.
pub const INPUT_SCHEMA: &str = "input_schema";

/// Why a call could not even be judged (these are protocol errors, not receipts).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("unknown tool `{0}`")]
    UnknownWorkflow(String),
    /// The journal could not record the run; the message says what ran (if anything).
    #[error("{0}")]
    Journal(String),
}

/// The result of one workflow call (SPEC §3.1).
#[derive(Debug, Clone, Serialize)]
pub struct CallResult {
    pub run_id: String,
    pub workflow: String,
    pub decision: Decision,
    pub success: bool,
    pub actions: Vec<ActionView>,
    pub policy_results: Vec<PolicyResult>,
    pub receipt: String,
}

/// An action as reported to the caller (no rollback data).
#[derive(Debug, Clone, Serialize)]
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

impl CallResult {
    /// One line for a human: the decision and, on BLOCK or failure, every reason.
    pub fn summary(&self) -> String {
        match (self.decision, self.success) {
            (Decision::Block, _) => format!(
                "BLOCK: `{}` was blocked — {}",
                self.workflow,
                failed_policies(&self.policy_results)
            ),
            (_, true) => format!(
                "PASS: `{}` ran {} action(s) successfully (receipt {})",
                self.workflow,
                self.actions.len(),
                self.run_id
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

/// Every failed policy with its reason: `policy: reason; policy: reason`.
fn failed_policies(results: &[PolicyResult]) -> String {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}", r.policy, r.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The result of `enact_preview`.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub workflow: String,
    pub decision: Decision,
    pub plan: Vec<Value>,
    pub policy_results: Vec<PolicyResult>,
}

impl Preview {
    /// One line for a human: what the call would do, and on BLOCK every reason.
    pub fn summary(&self) -> String {
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

/// Who asks for a rollback: over MCP only the server's own actor's runs may be rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    Agent,
    Operator,
}

/// The result of a rollback (SPEC §3.1 `enact_rollback`).
#[derive(Debug, Clone, Serialize)]
pub struct RollbackResult {
    pub run_id: String,
    pub rollback_of: String,
    pub decision: Decision,
    pub success: bool,
    pub actions: Vec<ActionView>,
    pub receipt: String,
}

impl RollbackResult {
    pub fn summary(&self) -> String {
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

/// A refused rollback: the message is the SPEC's exact text where it fixes one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RollbackRefused(pub String);

/// The pseudo-policy of a call the client cancelled before any action started (SPEC §3).
pub const CANCELLED: &str = "cancelled";

/// A cancellation flag the transport sets when the client sends `notifications/cancelled`.
/// The engine looks at it only before the run's first action: a run that has started an
/// action always finishes and is recorded.
#[derive(Debug, Clone, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Where the engine reads the time (a test can pin it).
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Where run ids come from (a test can pin them).
pub trait Ids: Send + Sync {
    fn run_id(&self) -> String;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Random (v4) UUIDs.
pub struct RandomIds;

impl Ids for RandomIds {
    fn run_id(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

/// The engine owns the registry and the receipts store.
pub struct Engine {
    registry: Registry,
    store: Store,
    clock: Box<dyn Clock>,
    ids: Box<dyn Ids>,
    /// Receipts of runs that acted but whose receipt append failed, retried on later calls.
    unrecorded: std::sync::Mutex<Vec<Receipt>>,
}

/// What a run's records share.
struct Run<'a> {
    run_id: &'a str,
    actor: &'a Actor,
    workflow: &'a str,
    payload: &'a Value,
    inputs: Option<&'a Map<String, Value>>,
    steps: &'a [Step],
    now: DateTime<Utc>,
}

impl<'a> Run<'a> {
    fn new(
        run_id: &'a str,
        actor: &'a Actor,
        workflow: &'a str,
        payload: &'a Value,
        inputs: Option<&'a Map<String, Value>>,
        steps: &'a [Step],
        now: DateTime<Utc>,
    ) -> Self {
        Run {
            run_id,
            actor,
            workflow,
            payload,
            inputs,
            steps,
            now,
        }
    }
}

/// The verdict of a call cancelled before its first action.
fn cancelled_verdict() -> Verdict {
    Verdict {
        decision: Decision::Block,
        results: vec![PolicyResult::fail(
            CANCELLED,
            "the client cancelled the call before any action started",
        )],
    }
}

/// `step 1 (write_file on files), step 2 (…)` for the actions that succeeded, if any.
fn ran_summary(records: &[ActionRecord]) -> Option<String> {
    let ran: Vec<String> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.success)
        .map(|(i, r)| format!("step {} ({} on {})", i + 1, r.action, r.system))
        .collect();
    (!ran.is_empty()).then(|| ran.join(", "))
}

/// The [`StepLog`] the engine hands a connector: writes the step's record to the journal.
struct JournalLog<'a> {
    store: &'a Store,
    run_id: &'a str,
    index: usize,
    step: &'a Step,
    now: DateTime<Utc>,
    target: Value,
    /// Why the record could not be written (the run then stops).
    failure: Option<String>,
}

impl<'a> JournalLog<'a> {
    fn new(
        store: &'a Store,
        run_id: &'a str,
        index: usize,
        step: &'a Step,
        now: DateTime<Utc>,
    ) -> Self {
        JournalLog {
            store,
            run_id,
            index,
            step,
            now,
            target: Value::Null,
            failure: None,
        }
    }
}

impl StepLog for JournalLog<'_> {
    fn before(&mut self, pre: Value) -> Result<(), String> {
        let mut fields = Map::new();
        fields.insert("run_id".into(), json!(self.run_id));
        fields.insert("index".into(), json!(self.index));
        fields.insert("system".into(), json!(self.step.system));
        fields.insert("action".into(), json!(self.step.action));
        fields.insert("args".into(), Value::Object(self.step.args.clone()));
        fields.insert("target".into(), self.target.clone());
        fields.insert("pre".into(), pre);
        fields.insert("timestamp".into(), json!(timestamp(self.now)));
        self.store.append_step(fields).map_err(|e| {
            let message = format!("the receipts journal cannot be written: {e}");
            self.failure = Some(e.to_string());
            message
        })?;
        crate::faults::crash_point("step");
        Ok(())
    }
}

/// A validated, planned call, before the gate.
struct Planned {
    args: Map<String, Value>,
    steps: Vec<Step>,
}

impl Engine {
    pub fn new(registry: Registry, store: Store) -> Engine {
        Engine::with_seams(registry, store, Box::new(SystemClock), Box::new(RandomIds))
    }

    /// An engine with its clock and id source given (tests pin them).
    pub fn with_seams(
        registry: Registry,
        store: Store,
        clock: Box<dyn Clock>,
        ids: Box<dyn Ids>,
    ) -> Engine {
        Engine {
            registry,
            store,
            clock,
            ids,
            unrecorded: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Checks that the receipts journal can be written (`serve` refuses to start otherwise).
    pub fn check_journal(&self) -> Result<(), StoreError> {
        self.store.check_writable()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Validates arguments and builds the plan. `Err` is the `input_schema` reason.
    /// `inexact`: numbers the transport found in the raw arguments whose value a double
    /// cannot hold (their parsed form has already been rounded).
    fn plan(
        &self,
        workflow: &Workflow,
        raw: &Map<String, Value>,
        inexact: &[String],
    ) -> Result<Planned, String> {
        if let Some(n) = inexact.first() {
            return Err(format!(
                "number {n} cannot be represented exactly as a double"
            ));
        }
        let args = schema::validate_arguments(&workflow.inputs, raw)?;
        // Both kinds of workflow produce raw steps first; every step is then normalised
        // against its system the same way, so policies always see one form.
        let raw_steps: Vec<Step> = match &workflow.body {
            WorkflowBody::Declared { steps } => {
                let mut out = Vec::new();
                for (i, t) in steps.iter().enumerate() {
                    let value = plan::substitute(&Value::Object(t.args.clone()), &args)
                        .map_err(|e| format!("step {}: {e}", i + 1))?;
                    let Value::Object(map) = value else {
                        return Err(format!("step {}: arguments are not an object", i + 1));
                    };
                    let kind = self.scope(&t.system)?.kind;
                    out.push(Step {
                        system: t.system.clone(),
                        kind,
                        action: t.action.clone(),
                        args: map,
                        guard: None,
                    });
                }
                out
            }
            WorkflowBody::Builtin { builtin, system } => builtin.plan(system, &args)?,
        };
        let mut steps = Vec::new();
        for step in raw_steps {
            let scope = self.scope(&step.system)?;
            let normalised = plan::normalise_step(&scope, &step.action, &step.args)?;
            steps.push(Step {
                kind: scope.kind,
                args: normalised,
                ..step
            });
        }
        Ok(Planned { args, steps })
    }

    fn scope(&self, system: &str) -> Result<plan::SystemScope, String> {
        self.registry
            .scope(system)
            .ok_or_else(|| format!("system `{system}` is not configured"))
    }

    /// Facts the policies need from live systems, looked up before the gate.
    async fn facts(&self, workflow: &str, steps: &[Step]) -> Facts {
        let mut facts = Facts::default();
        let needs_bases =
            self.registry.config.policies.iter().any(|p| {
                p.applies_to(workflow) && matches!(p.kind, PolicyKind::NoMergeToMain { .. })
            });
        if !needs_bases {
            return facts;
        }
        for step in steps.iter().filter(|s| s.action == "merge_pr") {
            let repo = step
                .args
                .get("repo")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(number) = step.args.get("pr_number").and_then(Value::as_u64) else {
                continue;
            };
            let base = match self
                .registry
                .systems
                .get(&step.system)
                .map(|s| &s.connector)
            {
                Some(Connector::Github(gh)) => gh.pr_base(&repo, number).await,
                _ => Err(format!("system `{}` is not a GitHub system", step.system)),
            };
            facts.pr_bases.insert((repo, number), base);
        }
        facts
    }

    /// Evaluates the gate for a call without running anything or writing a receipt.
    pub async fn preview(
        &self,
        workflow: &str,
        raw: &Map<String, Value>,
        inexact: &[String],
    ) -> Result<Preview, CallError> {
        self.preview_as(&self.registry.config.actor, workflow, raw, inexact)
            .await
    }

    /// [`Engine::preview`] for a call made by `actor` (an HTTP client, SPEC §10).
    pub async fn preview_as(
        &self,
        actor: &Actor,
        workflow: &str,
        raw: &Map<String, Value>,
        inexact: &[String],
    ) -> Result<Preview, CallError> {
        let wf = self
            .registry
            .workflow(workflow)
            .ok_or_else(|| CallError::UnknownWorkflow(workflow.into()))?;
        let now = self.clock.now();
        let planned = match self.plan(wf, raw, inexact) {
            Ok(p) => p,
            Err(reason) => {
                return Ok(Preview {
                    workflow: workflow.into(),
                    decision: Decision::Block,
                    plan: vec![],
                    policy_results: vec![PolicyResult::fail(INPUT_SCHEMA, reason)],
                });
            }
        };
        let mut facts = self.facts(workflow, &planned.steps).await;
        let policies = &self.registry.config.policies;
        for q in policy::rate_queries(policies, workflow, &planned.args) {
            let count = self
                .store
                .count_runs(&q, &actor.email, now)
                .map_err(|e| e.to_string());
            facts.rate_counts.insert(q.index, count);
        }
        let verdict = self.judge(actor, workflow, &planned, now, &facts);
        Ok(Preview {
            workflow: workflow.into(),
            decision: verdict.decision,
            plan: planned.steps.iter().map(step_json).collect(),
            policy_results: verdict.results,
        })
    }

    fn judge(
        &self,
        actor: &Actor,
        workflow: &str,
        planned: &Planned,
        now: DateTime<Utc>,
        facts: &Facts,
    ) -> Verdict {
        let ctx = Context {
            workflow,
            actor,
            payload: &planned.args,
            plan: &planned.steps,
            now,
            facts,
        };
        policy::gate(&self.registry.config.policies, &ctx)
    }

    /// Runs one workflow call end to end. Every call that names a known workflow writes
    /// exactly one receipt, PASS or BLOCK.
    pub async fn call(
        &self,
        workflow: &str,
        raw: Map<String, Value>,
        inexact: &[String],
    ) -> Result<CallResult, CallError> {
        self.call_cancellable(workflow, raw, inexact, &Cancel::default())
            .await
    }

    /// [`Engine::call`], abandoned with a BLOCK receipt by the pseudo-policy `cancelled` when
    /// `cancel` is set before the run's first action starts.
    ///
    /// Write order (SPEC §5.5): the gate, its rate counts and the run's `intent` record are one
    /// step under the journal lock; each action is preceded by its `step` record (written by
    /// the connector through [`JournalLog`] once it knows the undo data); the receipt closes
    /// the run. When the intent or a step record cannot be written nothing more runs.
    pub async fn call_cancellable(
        &self,
        workflow: &str,
        raw: Map<String, Value>,
        inexact: &[String],
        cancel: &Cancel,
    ) -> Result<CallResult, CallError> {
        self.call_as(&self.registry.config.actor, workflow, raw, inexact, cancel)
            .await
    }

    /// [`Engine::call_cancellable`] for a call made by `actor` rather than `[actor]`: an HTTP
    /// client acts as its own actor (SPEC §10) — in the gate (roles, rate counts), in the
    /// intent and receipt, and for its own-actor rollbacks.
    pub async fn call_as(
        &self,
        actor: &Actor,
        workflow: &str,
        raw: Map<String, Value>,
        inexact: &[String],
        cancel: &Cancel,
    ) -> Result<CallResult, CallError> {
        let wf = self
            .registry
            .workflow(workflow)
            .ok_or_else(|| CallError::UnknownWorkflow(workflow.into()))?;
        self.retry_unrecorded();
        let now = self.clock.now();
        let run_id = self.ids.run_id();
        let payload = Value::Object(raw.clone());

        let planned = match self.plan(wf, &raw, inexact) {
            Ok(p) => p,
            Err(reason) => {
                let verdict = Verdict {
                    decision: Decision::Block,
                    results: vec![PolicyResult::fail(INPUT_SCHEMA, reason)],
                };
                let run = Run::new(&run_id, actor, workflow, &payload, None, &[], now);
                return self.finish(&run, verdict, vec![]);
            }
        };
        let run = Run::new(
            &run_id,
            actor,
            workflow,
            &payload,
            Some(&planned.args),
            &planned.steps,
            now,
        );

        let mut facts = self.facts(workflow, &planned.steps).await;
        let policies = &self.registry.config.policies;
        let queries = policy::rate_queries(policies, workflow, &planned.args);
        let mut verdict = None;
        let intended = self
            .store
            .gate_and_intend(&queries, &actor.email, now, &mut |counts| {
                facts.rate_counts = counts.clone();
                let v = self.judge(actor, workflow, &planned, now, &facts);
                let pass = v.decision == Decision::Pass && !cancel.is_cancelled();
                let intent = pass.then(|| self.intent_fields(&run, &v));
                verdict = Some(v);
                intent
            });
        let verdict = match (intended, verdict) {
            (Ok(_), Some(v)) => v,
            (Ok(_), None) => {
                return Err(CallError::Journal(
                    "the receipts journal cannot be written: the gate did not run — nothing was done".into(),
                ));
            }
            (Err(e), _) => {
                tracing::error!(run_id, error = %e, "intent could not be recorded; nothing runs");
                return Err(CallError::Journal(format!(
                    "the receipts journal cannot be written: {e} — nothing was done"
                )));
            }
        };
        if verdict.decision == Decision::Pass {
            crate::faults::crash_point("intent");
        }
        if verdict.decision != Decision::Pass || cancel.is_cancelled() {
            let verdict = if verdict.decision == Decision::Pass {
                cancelled_verdict()
            } else {
                verdict
            };
            return self.finish(&run, verdict, vec![]);
        }

        let mut records: Vec<ActionRecord> = Vec::new();
        for (index, step) in planned.steps.iter().enumerate() {
            if index == 0 && cancel.is_cancelled() {
                return self.finish(&run, cancelled_verdict(), vec![]);
            }
            let mut log = JournalLog::new(&self.store, &run_id, index, step, now);
            let record = self.run_step(step, &records, &mut log).await;
            crate::faults::crash_point("action");
            if let Some(e) = log.failure {
                tracing::error!(run_id, step = index, error = %e, "step record could not be written; the run stops");
                let ran = ran_summary(&records);
                // Close the run if the journal takes it; either way nothing more runs.
                let mut closed = records.clone();
                closed.push(record);
                let _ = self.finish(&run, verdict, closed);
                return Err(CallError::Journal(match ran {
                    None => {
                        format!("the receipts journal cannot be written: {e} — nothing was done")
                    }
                    Some(ran) => format!(
                        "the receipts journal cannot be written: {e} — {ran} ran and their records are safe; nothing more was done"
                    ),
                }));
            }
            let ok = record.success;
            records.push(record);
            if !ok {
                break;
            }
        }
        self.finish(&run, verdict, records)
    }

    /// The intent record's fields (SPEC §5.5 step 1); the store adds kind, owner, signature.
    fn intent_fields(&self, run: &Run<'_>, verdict: &Verdict) -> Map<String, Value> {
        let receipt = self.receipt(run, verdict.clone(), vec![]);
        let mut fields = Map::new();
        for key in [
            "run_id",
            "workflow",
            "actor_email",
            "actor_role",
            "payload",
            "inputs",
            "policy_results",
            "timestamp",
            "plan",
            "policy_set_hash",
        ] {
            if let Some(v) = receipt.to_value().get(key) {
                fields.insert(key.into(), v.clone());
            }
        }
        fields
    }

    async fn run_step(
        &self,
        step: &Step,
        earlier: &[ActionRecord],
        log: &mut JournalLog<'_>,
    ) -> ActionRecord {
        let Some(system) = self.registry.systems.get(&step.system) else {
            return record(
                step,
                Value::Null,
                ActionOutcome::failed(format!("system `{}` is not configured", step.system)),
            );
        };
        let target = system.connector.target();
        if let Some(Guard::NoRowsFrom { step: i, message }) = &step.guard {
            let found = earlier
                .get(*i)
                .and_then(|r| r.output.get("rows"))
                .and_then(Value::as_array)
                .is_none_or(|rows| !rows.is_empty());
            if found {
                return record(step, target, ActionOutcome::failed(message.clone()));
            }
        }
        log.target = target.clone();
        let outcome = system.execute(&step.action, &step.args, log).await;
        if !outcome.success {
            tracing::warn!(system = %step.system, action = %step.action, error = ?outcome.error(), "action failed");
        }
        record(step, target, outcome)
    }

    /// A receipt for a run (not yet chained or signed).
    fn receipt(&self, run: &Run<'_>, verdict: Verdict, records: Vec<ActionRecord>) -> Receipt {
        Receipt {
            kind: "receipt".into(),
            run_id: run.run_id.into(),
            workflow: run.workflow.into(),
            actor_email: run.actor.email.clone(),
            actor_role: run.actor.role.clone(),
            payload: receipt::stored_payload(run.payload),
            inputs: run
                .inputs
                .map(|i| receipt::stored_payload(&Value::Object(i.clone()))),
            policy_results: verdict.results,
            decision: verdict.decision,
            actions_taken: records,
            timestamp: timestamp(run.now),
            rollback_of: None,
            plan: Value::Array(run.steps.iter().map(step_json).collect()),
            policy_set_hash: self.registry.policy_set_hash.clone(),
            interrupted: false,
            seq: 0,
            prev_hash: receipt::GENESIS_HASH.into(),
            signature: String::new(),
        }
    }

    /// Appends the run's receipt and builds the call's result. When the receipt cannot be
    /// appended after actions ran, the answer says which ran; the receipt is kept and retried
    /// (and recovery finishes the run if this process dies first).
    fn finish(
        &self,
        run: &Run<'_>,
        verdict: Verdict,
        records: Vec<ActionRecord>,
    ) -> Result<CallResult, CallError> {
        let success = verdict.decision == Decision::Pass && records.iter().all(|r| r.success);
        let receipt = self.receipt(run, verdict.clone(), records);
        let ran = ran_summary(&receipt.actions_taken);
        let written = match self.store.append(receipt.clone()) {
            Ok(r) => r,
            Err(source) => {
                tracing::error!(run_id = run.run_id, error = %source, "receipt could not be appended");
                return Err(CallError::Journal(match ran {
                    None => format!(
                        "the receipts journal cannot be written: {source} — nothing was done"
                    ),
                    Some(ran) => {
                        self.unrecorded
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(receipt);
                        format!(
                            "{ran} ran, but the run's receipt could not be appended yet ({source}); its intent and step records are safe and the run will be finished by recovery"
                        )
                    }
                }));
            }
        };
        tracing::info!(
            run_id = run.run_id,
            workflow = run.workflow,
            decision = written.decision.as_str(),
            success,
            "run recorded"
        );
        Ok(CallResult {
            run_id: run.run_id.into(),
            workflow: run.workflow.into(),
            decision: verdict.decision,
            success,
            actions: written.actions_taken.iter().map(ActionView::from).collect(),
            policy_results: verdict.results,
            receipt: format!("enact://receipts/{}", run.run_id),
        })
    }

    /// Appends receipts an earlier call could not append (a full disk that has room again).
    fn retry_unrecorded(&self) {
        let pending: Vec<Receipt> = std::mem::take(
            &mut *self
                .unrecorded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for receipt in pending {
            match self.store.append(receipt.clone()) {
                Ok(_) | Err(StoreError::Duplicate(_)) => {}
                Err(_) => self
                    .unrecorded
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(receipt),
            }
        }
    }

    /// Retries unrecorded receipts once more (at shutdown); returns how many are still left.
    pub fn flush(&self) -> usize {
        self.retry_unrecorded();
        self.unrecorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

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
        if let Some((rb, _, _)) = earlier.iter().find(|(_, d, _)| d == "PASS") {
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
                if !receipt::verify(value, self.registry.config.secret.expose().as_bytes()) {
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
        let receipt = Receipt {
            kind: "receipt".into(),
            run_id: rb_id.clone(),
            workflow: format!("rollback:{}", original.workflow),
            actor_email: original.actor_email.clone(),
            actor_role: original.actor_role.clone(),
            payload: json!({"original_run_id": run_id}),
            inputs: None,
            policy_results: vec![],
            decision,
            actions_taken: records,
            timestamp: timestamp(now),
            rollback_of: Some(run_id.into()),
            plan,
            policy_set_hash: self.registry.policy_set_hash.clone(),
            interrupted: false,
            seq: 0,
            prev_hash: receipt::GENESIS_HASH.into(),
            signature: String::new(),
        };
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

fn record(step: &Step, target: Value, outcome: ActionOutcome) -> ActionRecord {
    ActionRecord {
        action: step.action.clone(),
        system: step.system.clone(),
        success: outcome.success,
        output: outcome.output,
        rollback_data: outcome.rollback_data,
        target,
        args: step.args.clone(),
    }
}

/// A plan step as shown to callers and recorded in receipts.
pub fn step_json(step: &Step) -> Value {
    json!({"system": step.system, "action": step.action, "args": step.args})
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-26T01:02:03.456789Z`.
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Runs work that may wait for a long time (another process's rollback lock) without stalling
/// the runtime's other tasks when it can; on a current-thread runtime it simply runs inline.
///
/// Appends and rate-limit counts do not go through here but run inline: they hold the folder
/// lock only for a few small writes (and one file and folder fsync), and `block_in_place`
/// hands the worker's core to a fresh thread each time, which made a pipelined `serve` three
/// times slower (18.5 s → 6.4 s for 2,000 calls) and lost responses still in flight when
/// stdin closed.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
