//! The engine: the one place where the pure kernel meets I/O.
//!
//! A workflow call goes validate → plan → (facts) → gate → run → receipt; a rollback goes
//! load → verify → inverse plan → guarded undos → receipt. Both the MCP server and the CLI
//! call these functions, so the rules hold the same way for agents and operators.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

mod approvals;
mod journal_log;
mod recovery;
mod results;
mod rollback;

use journal_log::JournalLog;
pub use results::{ActionView, CallResult, Preview, Requester, RollbackRefused, RollbackResult};

pub use approvals::{GrantError, GrantRefused};
pub use recovery::{RecoveredRun, RecoveryReport};

use crate::connector::{ActionOutcome, Connector};
use crate::kernel::context::{Actor, Context, Facts};
use crate::kernel::plan::{self, Guard, Planned, Step};
use crate::kernel::policy::{self, Decision, FactRequests, PolicyResult, Verdict};
pub use crate::kernel::receipt::timestamp;
use crate::kernel::receipt::{self, ActionRecord, ApprovalFields, Receipt};
use crate::kernel::workflow::Workflow;
use crate::registry::Registry;
use crate::store::{Claim, Decided, ListFilter, Loaded, Recorded, Store, StoreError, Summary};

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
    /// A resume refused (SPEC §9): nothing ran and no receipt was written.
    #[error("{0}")]
    Refused(String),
}

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
    /// Who the run acts for: `[actor]`, or an HTTP client (SPEC §10).
    actor: &'a Actor,
    run_id: &'a str,
    workflow: &'a str,
    payload: &'a Value,
    inputs: Option<&'a Map<String, Value>>,
    steps: &'a [Step],
    now: DateTime<Utc>,
    /// A resumed run's `resumes` and `approved_by` (SPEC §9); empty otherwise.
    approvals: ApprovalFields,
}

impl<'a> Run<'a> {
    fn new(
        actor: &'a Actor,
        run_id: &'a str,
        workflow: &'a str,
        payload: &'a Value,
        inputs: Option<&'a Map<String, Value>>,
        steps: &'a [Step],
        now: DateTime<Utc>,
    ) -> Self {
        Run {
            actor,
            run_id,
            workflow,
            payload,
            inputs,
            steps,
            now,
            approvals: ApprovalFields::default(),
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

    /// The registry, for tests and benches that inspect a system; `mcp` and `cli` go through
    /// the engine's own methods (workflows, policies, receipts) instead.
    #[doc(hidden)]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The receipts store, for tests that inspect it (see [`Engine::registry`]).
    #[doc(hidden)]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configured workflows (the MCP tools), in config order.
    pub fn workflows(&self) -> &[Workflow] {
        &self.registry.config.workflows
    }

    /// A configured workflow by name.
    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.registry.workflow(name)
    }

    /// The configured policies as `enact://policies` shows them.
    pub fn policies_json(&self) -> Value {
        crate::registry::policies_json(&self.registry.config)
    }

    /// Whether `[rollback] enabled` (the rollback tool exists only then).
    pub fn rollback_enabled(&self) -> bool {
        self.registry.config.rollback_enabled
    }

    /// Receipt summaries, newest first.
    pub fn receipts(&self, filter: &ListFilter) -> Result<Vec<Summary>, StoreError> {
        self.store.list(filter)
    }

    /// One stored receipt and whether its signature verifies.
    pub fn load_receipt(&self, run_id: &str) -> Result<Loaded, StoreError> {
        self.store.load(run_id)
    }

    /// Checks that the receipts journal can be written (`serve` refuses to start otherwise).
    pub fn check_journal(&self) -> Result<(), StoreError> {
        self.store.check_writable()
    }

    /// Validates arguments and builds the typed plan (in the kernel). `Err` is the
    /// `input_schema` reason.
    fn plan(
        &self,
        workflow: &Workflow,
        raw: &Map<String, Value>,
        inexact: &[String],
    ) -> Result<Planned, String> {
        plan::build(workflow, raw, inexact, &|system| {
            self.registry.scope(system)
        })
    }

    /// Facts the policies need from live systems, looked up before the gate: what
    /// [`policy::fact_requests`] asks for, except the rate counts, which are taken under the
    /// journal's lock together with the gate (see [`Engine::call_cancellable`]).
    async fn facts(&self, requests: &FactRequests) -> Facts {
        let mut facts = Facts::default();
        for r in &requests.pr_bases {
            let base = match self.registry.systems.get(&r.system).map(|s| &s.connector) {
                Some(Connector::Github(gh)) => gh.pr_base(r.repo.as_str(), r.number.get()).await,
                _ => Err(format!("system `{}` is not a GitHub system", r.system)),
            };
            facts
                .pr_bases
                .insert((r.repo.as_str().to_string(), r.number.get()), base);
        }
        for r in &requests.contacts {
            let id = match self.registry.systems.get(&r.system).map(|s| &s.connector) {
                Some(Connector::Hubspot(crm)) => crm.contact_id(&r.email).await,
                _ => Err(format!("system `{}` is not a HubSpot system", r.system)),
            };
            facts
                .contacts
                .insert((r.system.clone(), r.email.as_str().to_string()), id);
        }
        for r in &requests.dm_channels {
            let kind = match self.registry.systems.get(&r.system).map(|s| &s.connector) {
                Some(Connector::Slack(slack)) => slack
                    .is_dm(&r.channel)
                    .await
                    .map_err(|e| format!("cannot look up channel '{}' in Slack: {e}", r.channel)),
                _ => Err(format!("system `{}` is not a Slack system", r.system)),
            };
            facts
                .dm_channels
                .insert((r.system.clone(), r.channel.clone()), kind);
        }
        facts
    }

    /// The fact requests of the policies in scope of a call.
    fn fact_requests(&self, workflow: &str, planned: &Planned) -> FactRequests {
        policy::fact_requests(
            &self.registry.config.policies,
            workflow,
            &planned.args,
            &planned.steps,
        )
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
        let requests = self.fact_requests(workflow, &planned);
        let mut facts = self.facts(&requests).await;
        for q in &requests.rate_counts {
            let count = self
                .store
                .count_runs(q, &actor.email, now)
                .map_err(|e| e.to_string());
            facts.rate_counts.insert(q.index, count);
        }
        for q in &requests.task_counts {
            let count = self
                .store
                .count_tasks(q, &actor.email, now)
                .map_err(|e| e.to_string());
            facts.task_counts.insert(q.index, count);
        }
        let verdict = self.judge(actor, workflow, &planned, now, &facts);
        Ok(Preview {
            workflow: workflow.into(),
            decision: verdict.decision,
            plan: planned.steps.iter().map(Step::to_json).collect(),
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
                let run = Run::new(actor, &run_id, workflow, &payload, None, &[], now);
                return self.finish(&run, verdict, vec![]);
            }
        };
        let run = Run::new(
            actor,
            &run_id,
            workflow,
            &payload,
            Some(&planned.args),
            &planned.steps,
            now,
        );
        self.gate_and_run(run, &planned, None, cancel).await
    }

    /// The gate (its rate counts, grants and — for a resumed run — the approval it claims are
    /// taken under the journal's lock with the intent), then the steps, then the receipt.
    /// A call held for approval writes its PENDING receipt in that same lock hold; a resumed
    /// run that is now blocked writes its BLOCK receipt there, using its approval up.
    async fn gate_and_run(
        &self,
        mut run: Run<'_>,
        planned: &Planned,
        claim: Option<&Claim>,
        cancel: &Cancel,
    ) -> Result<CallResult, CallError> {
        let actor = run.actor;
        let requests = self.fact_requests(run.workflow, planned);
        let mut facts = self.facts(&requests).await;
        let queries = requests.rate_counts;
        let mut verdict = None;
        let mut unsignable = None;
        let recorded = self.store.gate_and_record(
            &queries,
            &requests.task_counts,
            &actor.email,
            run.now,
            claim,
            &mut |gate| {
                facts.rate_counts = gate.counts.clone();
                facts.task_counts = gate.task_counts.clone();
                facts.grants = gate.grants.clone();
                facts.approved_by = gate.approval.as_ref().map(|a| a.actor_email.clone());
                if let (Some(claim), Some(answer)) = (claim, &gate.approval) {
                    run.approvals = approvals::resume_fields(claim, answer);
                }
                let v = self.judge(actor, run.workflow, planned, run.now, &facts);
                let mut signed = |r: Result<Decided, receipt::SigningError>| match r {
                    Ok(d) => d,
                    Err(e) => {
                        unsignable = Some(e);
                        Decided::Nothing
                    }
                };
                let decided = match v.decision {
                    Decision::Pass if !cancel.is_cancelled() => {
                        signed(self.intent_fields(&run, &v).map(Decided::Intent))
                    }
                    Decision::Pass => Decided::Nothing,
                    Decision::ApprovalRequired if claim.is_none() => {
                        Decided::Receipt(Box::new(self.pending_receipt(&run, &v)))
                    }
                    _ if claim.is_some() => {
                        let blocked = approvals::blocked(v.clone());
                        Decided::Receipt(Box::new(self.receipt(&run, blocked, vec![])))
                    }
                    _ => Decided::Nothing,
                };
                verdict = Some(v);
                decided
            },
        );
        if let Some(e) = unsignable {
            return Err(CallError::Journal(format!(
                "the receipts journal cannot be written: {e} — nothing was done"
            )));
        }
        let (recorded, verdict) = match (recorded, verdict) {
            (Ok(r), Some(v)) => (r, v),
            (Err(StoreError::Approval(refusal)), _) => {
                return Err(CallError::Refused(refusal.to_string()));
            }
            (Ok(_), None) => {
                return Err(CallError::Journal(
                    "the receipts journal cannot be written: the gate did not run — nothing was done".into(),
                ));
            }
            (Err(e), _) => {
                tracing::error!(run_id = run.run_id, error = %e, "intent could not be recorded; nothing runs");
                return Err(CallError::Journal(format!(
                    "the receipts journal cannot be written: {e} — nothing was done"
                )));
            }
        };
        if let Recorded::Receipt(written) = recorded {
            return Ok(self.recorded_result(&run, *written));
        }
        if verdict.decision == Decision::Pass {
            crate::faults::crash_point("intent");
        }
        if verdict.decision != Decision::Pass || cancel.is_cancelled() {
            let verdict = if verdict.decision == Decision::Pass {
                // Abandoned before it started: the approval (if any) stays unused.
                run.approvals = ApprovalFields::default();
                cancelled_verdict()
            } else {
                verdict
            };
            return self.finish(&run, verdict, vec![]);
        }

        let run_id = run.run_id;
        let mut records: Vec<ActionRecord> = Vec::new();
        for (index, step) in planned.steps.iter().enumerate() {
            if index == 0 && cancel.is_cancelled() {
                // The intent claimed the approval; the cancelled receipt keeps the claim, so
                // an abandoned resumed run is not run twice by a retry racing it.
                return self.finish(&run, cancelled_verdict(), vec![]);
            }
            let mut log = JournalLog::new(&self.store, run_id, index, step, run.now);
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
    fn intent_fields(
        &self,
        run: &Run<'_>,
        verdict: &Verdict,
    ) -> Result<Map<String, Value>, receipt::SigningError> {
        let receipt = self.receipt(run, verdict.clone(), vec![]).to_value()?;
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
            "resumes",
            "approved_by",
        ] {
            if let Some(v) = receipt.get(key) {
                fields.insert(key.into(), v.clone());
            }
        }
        Ok(fields)
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
        let outcome = system.execute(&step.action, log).await;
        if !outcome.success {
            tracing::warn!(system = %step.system, action = %step.name(), error = ?outcome.error(), "action failed");
        }
        record(step, target, outcome)
    }

    /// A receipt for a run (not yet chained or signed).
    fn receipt(&self, run: &Run<'_>, verdict: Verdict, records: Vec<ActionRecord>) -> Receipt {
        let plan = Value::Array(run.steps.iter().map(Step::to_json).collect());
        let header = receipt::RunHeader {
            run_id: run.run_id,
            workflow: run.workflow,
            actor: run.actor,
            payload: run.payload,
            inputs: run.inputs,
            plan: &plan,
            now: run.now,
            policy_set_hash: &self.registry.policy_set_hash,
        };
        let mut receipt = Receipt::for_run(&header, verdict, records);
        receipt.approvals = run.approvals.clone();
        receipt
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
            approval: approvals::result_approval(&run.approvals),
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
}

fn record(step: &Step, target: Value, outcome: ActionOutcome) -> ActionRecord {
    ActionRecord {
        action: step.name().as_str().to_string(),
        system: step.system.clone(),
        success: outcome.success,
        output: outcome.output,
        rollback_data: outcome.rollback_data,
        target,
        args: step.args(),
    }
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
