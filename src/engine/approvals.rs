//! Approvals (SPEC §9): a call held for a human, the human's answer, and the resumed run.
//!
//! A held call writes a `PENDING` receipt (in the gate's lock hold) carrying the digest of
//! exactly the plan it would run. An answer is an `APPROVE` / `DENY` record, appended only
//! while the request still waits (checked under the lock). A resume re-plans from the
//! recorded payload, re-judges every policy with fresh facts and runs only if the plan's
//! digest is the approved one — and its claim on the approval is checked under the same lock
//! hold as its intent, so an approval runs at most once, also across processes and hosts.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::{CallError, CallResult, Cancel, Engine, Run, timestamp};
use crate::config::{ApprovalVia, ApprovalsConfig, MAX_GRANT};
use crate::kernel::action::ActionName;
use crate::kernel::approval::{RequestState, StateError, plan_digest};
use crate::kernel::context::Actor;
use crate::kernel::plan::Step;
use crate::kernel::policy::{Decision, PolicyKind, Verdict};
use crate::kernel::receipt::{ApprovalFields, Receipt, is_valid_run_id};
use crate::store::{Answer, Claim, Refusal, Status, StoreError, Waiting};

/// How often a waiting call looks for an answer written by another process.
const POLL: Duration = Duration::from_millis(100);

/// Why an operator's grant is refused before anything is written (exit 2: bad usage).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GrantRefused(pub String);

/// The `resumes` / `approved_by` fields of a resumed run's records.
pub(super) fn resume_fields(claim: &Claim, answer: &Answer) -> ApprovalFields {
    ApprovalFields {
        resumes: Some(claim.request_id.clone()),
        approved_by: Some(json!({
            "run_id": answer.run_id,
            "actor_email": answer.actor_email,
            "via": answer.via,
        })),
        ..ApprovalFields::default()
    }
}

/// A verdict that runs nothing.
pub(super) fn blocked(v: Verdict) -> Verdict {
    Verdict {
        decision: Decision::Block,
        ..v
    }
}

/// `approval` of a resumed run's result: `{run_id, decided_by, via}` of the APPROVE record.
pub(super) fn result_approval(fields: &ApprovalFields) -> Option<Value> {
    let by = fields.approved_by.as_ref()?;
    Some(json!({
        "run_id": by.get("run_id"),
        "decided_by": by.get("actor_email"),
        "via": by.get("via"),
    }))
}

fn later(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Engine {
    /// `[approvals]`.
    pub fn approvals_config(&self) -> &ApprovalsConfig {
        &self.registry.config.approvals
    }

    /// Whether any `require_approval` policy is configured (`enact_resume` exists only then).
    pub fn approvals_enabled(&self) -> bool {
        self.registry
            .config
            .policies
            .iter()
            .any(|p| matches!(p.kind, PolicyKind::RequireApproval { .. }))
    }

    /// The PENDING receipt of a call held for approval (SPEC §9).
    pub(super) fn pending_receipt(&self, run: &Run<'_>, verdict: &Verdict) -> Receipt {
        let plan = Value::Array(run.steps.iter().map(Step::to_json).collect());
        let expires_at = timestamp(later(run.now, self.approvals_config().expires));
        let held = Verdict {
            decision: Decision::Pending,
            results: verdict.results.clone(),
        };
        let mut receipt = self.receipt(run, held, vec![]);
        receipt.approvals.approval = Some(json!({
            "plan_digest": plan_digest(run.workflow, &run.actor.email, &plan),
            "expires_at": expires_at,
            "plan": plan,
        }));
        receipt
    }

    /// The result of a call whose gate wrote its receipt itself: a PENDING request, or the
    /// BLOCK of a resumed run.
    pub(super) fn recorded_result(&self, run: &Run<'_>, written: Receipt) -> CallResult {
        let pending = written.decision == Decision::Pending;
        let approval = match &written.approvals.approval {
            Some(a) if pending => Some(json!({
                "run_id": written.run_id,
                "expires_at": a.get("expires_at"),
                "plan": a.get("plan"),
            })),
            _ => result_approval(&written.approvals),
        };
        tracing::info!(
            run_id = run.run_id,
            workflow = run.workflow,
            decision = written.decision.as_str(),
            "run recorded"
        );
        CallResult {
            run_id: written.run_id.clone(),
            workflow: written.workflow.clone(),
            decision: if pending {
                Decision::ApprovalRequired
            } else {
                written.decision
            },
            success: false,
            actions: vec![],
            policy_results: written.policy_results,
            receipt: format!("enact://receipts/{}", written.run_id),
            approval,
        }
    }

    /// Requests still waiting for a human, newest first (only `actor`'s when given).
    pub fn waiting_approvals(&self, actor: Option<&str>) -> Result<Vec<Waiting>, StoreError> {
        self.store.waiting_approvals(actor, self.clock.now())
    }

    /// One request and what became of it.
    pub fn approval_status(&self, id: &str) -> Result<Status, StoreError> {
        if !is_valid_run_id(id) {
            return Err(StoreError::InvalidRunId(id.into()));
        }
        self.store.approval_status(id, self.clock.now())
    }

    /// Records a human's answer to request `id`: an APPROVE or DENY record whose
    /// `actor_email` is the approver. Refused when `via` is not allowed by `[approvals] via`,
    /// or the request is unknown, expired, already answered or already used.
    pub fn answer_approval(
        &self,
        id: &str,
        approve: bool,
        approver: &str,
        via: ApprovalVia,
        reason: Option<String>,
    ) -> Result<Receipt, StoreError> {
        if !self.approvals_config().allows(via) {
            return Err(StoreError::Approval(Refusal::ViaNotAllowed(
                via.as_str().into(),
            )));
        }
        let status = self.approval_status(id)?;
        let now = self.clock.now();
        let mut record = self.record(
            &format!("approval:{}", status.request.workflow),
            approver,
            if approve {
                Decision::Approve
            } else {
                Decision::Deny
            },
            json!({"approval_of": id}),
            now,
        );
        record.approvals = ApprovalFields {
            approval_of: Some(id.into()),
            reason,
            via: Some(via.as_str().into()),
            ..ApprovalFields::default()
        };
        let written = self.store.append_answer(record, now)?;
        tracing::info!(
            run_id = id,
            decision = written.decision.as_str(),
            via = via.as_str(),
            "approval answered"
        );
        Ok(written)
    }

    /// `enact approvals grant`: a GRANT record for `grant_for` (the server's actor unless
    /// given) covering `workflow` (and only `action`, when given) for `duration`.
    pub fn grant(
        &self,
        workflow: &str,
        action: Option<&str>,
        duration: Duration,
        granted_by: &str,
        grant_for: Option<&str>,
        reason: Option<String>,
    ) -> Result<Receipt, GrantError> {
        if self.registry.workflow(workflow).is_none() {
            let known: Vec<&str> = self.workflows().iter().map(|w| w.name.as_str()).collect();
            return Err(GrantError::Refused(GrantRefused(format!(
                "unknown workflow `{workflow}` (configured: {})",
                known.join(", ")
            ))));
        }
        if let Some(a) = action
            && ActionName::parse(a).is_none()
        {
            return Err(GrantError::Refused(GrantRefused(format!(
                "unknown action `{a}`"
            ))));
        }
        if duration > MAX_GRANT {
            return Err(GrantError::Refused(GrantRefused(
                "a grant lasts at most 24h".into(),
            )));
        }
        let now = self.clock.now();
        let grant_for = grant_for.unwrap_or(&self.registry.config.actor.email);
        let mut record = self.record(
            &format!("grant:{workflow}"),
            granted_by,
            Decision::Grant,
            json!({"workflow": workflow, "action": action}),
            now,
        );
        record.approvals = ApprovalFields {
            grant_for: Some(grant_for.into()),
            scope: Some(json!({"workflow": workflow, "action": action})),
            expires_at: Some(timestamp(later(now, duration))),
            reason,
            ..ApprovalFields::default()
        };
        Ok(self.store.append(record)?)
    }

    /// `enact approvals revoke`: a REVOKE record ending grant `id` now.
    pub fn revoke(
        &self,
        id: &str,
        revoked_by: &str,
        reason: Option<String>,
    ) -> Result<Receipt, StoreError> {
        if !is_valid_run_id(id) {
            return Err(StoreError::InvalidRunId(id.into()));
        }
        let now = self.clock.now();
        let mut record = self.record(
            "revoke",
            revoked_by,
            Decision::Revoke,
            json!({"revokes": id}),
            now,
        );
        record.approvals = ApprovalFields {
            revokes: Some(id.into()),
            reason,
            ..ApprovalFields::default()
        };
        self.store.append_revoke(record, now)
    }

    /// An approval record (not a workflow run): no plan, no policies, no actions.
    fn record(
        &self,
        workflow: &str,
        actor_email: &str,
        decision: Decision,
        payload: Value,
        now: DateTime<Utc>,
    ) -> Receipt {
        let actor = Actor {
            email: actor_email.into(),
            role: "operator".into(),
        };
        let run_id = self.ids.run_id();
        let header = crate::kernel::receipt::RunHeader {
            run_id: &run_id,
            workflow,
            actor: &actor,
            payload: &payload,
            inputs: None,
            plan: &Value::Array(vec![]),
            now,
            policy_set_hash: &self.registry.policy_set_hash,
        };
        Receipt::for_run(
            &header,
            Verdict {
                decision,
                results: vec![],
            },
            vec![],
        )
    }

    /// `enact_resume`: runs approved request `id` once, as a new run (SPEC §9). Refusals
    /// ([`CallError::Refused`]) run nothing and write no receipt.
    pub async fn resume_as(
        &self,
        actor: &Actor,
        id: &str,
        cancel: &Cancel,
    ) -> Result<CallResult, CallError> {
        self.retry_unrecorded();
        let refused = |e: StoreError| match e {
            StoreError::Approval(r) => CallError::Refused(r.to_string()),
            other => CallError::Refused(other.to_string()),
        };
        let status = self.approval_status(id).map_err(refused)?;
        if status.request.actor_email != actor.email {
            return Err(CallError::Refused(
                Refusal::OtherActor(id.into()).to_string(),
            ));
        }
        let loaded = self.store.load(id).map_err(refused)?;
        if !loaded.signature_valid {
            return Err(CallError::Refused(format!(
                "Receipt signature verification failed for run_id: {id}"
            )));
        }
        let workflow = status.request.workflow.clone();
        let wf = self.registry.workflow(&workflow).ok_or_else(|| {
            CallError::Refused(format!(
                "approval request `{id}` is for workflow `{workflow}`, which is no longer configured"
            ))
        })?;
        let Some(Value::Object(raw)) = loaded.value.get("payload").cloned() else {
            return Err(CallError::Refused(format!(
                "approval request `{id}` kept only a digest of its arguments (over 64 KiB), so it cannot be planned again"
            )));
        };
        // A plan that no longer builds is a changed plan; the claim below reports which
        // refusal comes first (still waiting, denied, expired, used) exactly as with a plan.
        let planned = self.plan(wf, &raw, &[]);
        let digest = match &planned {
            Ok(p) => plan_digest(
                &workflow,
                &actor.email,
                &Value::Array(p.steps.iter().map(Step::to_json).collect()),
            ),
            Err(_) => String::new(),
        };
        let claim = Claim {
            request_id: id.into(),
            actor_email: actor.email.clone(),
            plan_digest: digest,
        };
        let planned = match planned {
            Ok(p) => p,
            Err(_) => {
                let err = status.refusal().unwrap_or(Refusal::PlanChanged(id.into()));
                return Err(CallError::Refused(err.to_string()));
            }
        };
        let now = self.clock.now();
        let run_id = self.ids.run_id();
        let payload = Value::Object(raw.clone());
        let run = Run::new(
            actor,
            &run_id,
            &workflow,
            &payload,
            Some(&planned.args),
            &planned.steps,
            now,
        );
        self.gate_and_run(run, &planned, Some(&claim), cancel).await
    }

    /// Waits up to `wait` for an answer to request `id` (written by any process), calling
    /// `tick` about every `every`. `None`: no answer in time, the request expired, or the
    /// client cancelled the call (the request stays, for `enact_resume`).
    pub async fn wait_for_answer(
        &self,
        id: &str,
        wait: Duration,
        every: Duration,
        cancel: &Cancel,
        tick: &mut (dyn FnMut(Duration) + Send),
    ) -> Option<Answer> {
        let start = tokio::time::Instant::now();
        let mut last_tick = start;
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            match self.approval_status(id) {
                Ok(s) if s.answer.is_some() => return s.answer,
                Ok(s) if s.expired || s.used_by.is_some() => return None,
                Ok(_) => {}
                Err(_) => return None,
            }
            let now = tokio::time::Instant::now();
            if now.duration_since(start) >= wait {
                return None;
            }
            if now.duration_since(last_tick) >= every {
                last_tick = now;
                tick(now.duration_since(start));
            }
            tokio::time::sleep(POLL.min(wait.saturating_sub(now.duration_since(start)))).await;
        }
    }

    /// The plan digest a call of `workflow` with `args` by `actor` would be held with (`Err`:
    /// the arguments do not plan).
    pub fn plan_digest_for(
        &self,
        actor: &Actor,
        workflow: &str,
        args: &serde_json::Map<String, Value>,
        inexact: &[String],
    ) -> Result<String, String> {
        let wf = self
            .registry
            .workflow(workflow)
            .ok_or_else(|| format!("unknown workflow `{workflow}`"))?;
        let planned = self.plan(wf, args, inexact)?;
        let plan = Value::Array(planned.steps.iter().map(Step::to_json).collect());
        Ok(plan_digest(workflow, &actor.email, &plan))
    }

    /// A `requestState` for request `id` (2026-07-28 `input_required`, SPEC §9).
    pub fn request_state(&self, id: &str, digest: &str, expires_at: &str) -> String {
        RequestState {
            run_id: id.into(),
            plan_digest: digest.into(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            expires_at: expires_at.into(),
        }
        .seal(&self.registry.config.mac_key)
    }

    /// Opens a `requestState` a client echoed back: authentic and unexpired, or why not.
    pub fn open_request_state(&self, sealed: &str) -> Result<RequestState, StateError> {
        RequestState::open(sealed, &self.registry.config.mac_key, self.clock.now())
    }
}

/// Why a grant was not written.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Bad usage: nothing written (exit 2).
    #[error(transparent)]
    Refused(#[from] GrantRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
}
