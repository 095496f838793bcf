//! Approvals in the journal (SPEC §9): the index's view of requests (`PENDING` receipts),
//! their answers (`APPROVE` / `DENY`), the runs that used them (intents and receipts with
//! `resumes`), grants and revocations — and the appends whose checks must hold under the
//! journal's lock, so two answers, two resumes or two revocations can never both win, also
//! across processes and hosts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::index::Index;
use super::{Store, StoreError};
use crate::kernel::context::Grant;
use crate::kernel::policy::Decision;
use crate::kernel::receipt::Receipt;

/// A request for approval: a `PENDING` receipt.
#[derive(Debug, Clone)]
pub struct Request {
    pub run_id: String,
    pub workflow: String,
    pub actor_email: String,
    pub timestamp: String,
    /// `[{system, action, args}]`.
    pub plan: Value,
    pub plan_digest: String,
    pub expires_at: String,
    expires_micros: i64,
}

/// A human's answer to a request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The APPROVE / DENY record's run id.
    pub run_id: String,
    pub approved: bool,
    pub actor_email: String,
    pub via: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
struct GrantRecord {
    grant: Grant,
    grant_for: String,
    expires_micros: i64,
}

/// What the index knows of approvals.
#[derive(Debug, Default)]
pub(crate) struct Approvals {
    requests: HashMap<String, Request>,
    /// Request ids in journal order.
    order: Vec<String>,
    answers: HashMap<String, Answer>,
    /// Request id → the run that used its approval.
    used: HashMap<String, String>,
    grants: HashMap<String, GrantRecord>,
    /// Grant id → the REVOKE record's run id.
    revoked: HashMap<String, String>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn micros(t: &str) -> i64 {
    DateTime::parse_from_rfc3339(t).map_or(i64::MIN, |t| t.timestamp_micros())
}

impl Approvals {
    /// Takes in one verified record (an intent or a receipt).
    pub fn apply(&mut self, run_id: &str, v: &Value) {
        if let Some(resumed) = text(v, "resumes") {
            self.used
                .entry(resumed)
                .or_insert_with(|| run_id.to_owned());
        }
        if v.get("kind").and_then(Value::as_str) == Some("intent") {
            return;
        }
        let decision = v
            .get("decision")
            .and_then(Value::as_str)
            .and_then(Decision::parse);
        match decision {
            Some(Decision::Pending) => {
                let approval = v.get("approval").cloned().unwrap_or(Value::Null);
                let expires_at = text(&approval, "expires_at").unwrap_or_default();
                let request = Request {
                    run_id: run_id.to_owned(),
                    workflow: text(v, "workflow").unwrap_or_default(),
                    actor_email: text(v, "actor_email").unwrap_or_default(),
                    timestamp: text(v, "timestamp").unwrap_or_default(),
                    plan: approval.get("plan").cloned().unwrap_or(Value::Null),
                    plan_digest: text(&approval, "plan_digest").unwrap_or_default(),
                    expires_micros: micros(&expires_at),
                    expires_at,
                };
                self.order.push(run_id.to_owned());
                self.requests.insert(run_id.to_owned(), request);
            }
            Some(d @ (Decision::Approve | Decision::Deny)) => {
                if let Some(of) = text(v, "approval_of") {
                    self.answers.entry(of).or_insert(Answer {
                        run_id: run_id.to_owned(),
                        approved: d == Decision::Approve,
                        actor_email: text(v, "actor_email").unwrap_or_default(),
                        via: text(v, "via").unwrap_or_default(),
                        reason: text(v, "reason"),
                    });
                }
            }
            Some(Decision::Grant) => {
                let scope = v.get("scope").cloned().unwrap_or(Value::Null);
                let expires_at = text(v, "expires_at").unwrap_or_default();
                self.grants.insert(
                    run_id.to_owned(),
                    GrantRecord {
                        grant: Grant {
                            id: run_id.to_owned(),
                            granted_by: text(v, "actor_email").unwrap_or_default(),
                            workflow: text(&scope, "workflow").unwrap_or_default(),
                            action: text(&scope, "action"),
                            expires_at: expires_at.clone(),
                        },
                        grant_for: text(v, "grant_for").unwrap_or_default(),
                        expires_micros: micros(&expires_at),
                    },
                );
            }
            Some(Decision::Revoke) => {
                if let Some(of) = text(v, "revokes") {
                    self.revoked.entry(of).or_insert_with(|| run_id.to_owned());
                }
            }
            _ => {}
        }
    }

    /// The grants for `actor` alive at `now`.
    pub fn live_grants(&self, actor: &str, now: DateTime<Utc>) -> Vec<Grant> {
        let now = now.timestamp_micros();
        let mut live: Vec<Grant> = self
            .grants
            .values()
            .filter(|g| g.grant_for == actor && now < g.expires_micros)
            .filter(|g| !self.revoked.contains_key(&g.grant.id))
            .map(|g| g.grant.clone())
            .collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        live
    }

    fn status(&self, id: &str, now: DateTime<Utc>) -> Option<Status> {
        let request = self.requests.get(id)?.clone();
        let answer = self.answers.get(id).cloned();
        let used_by = self.used.get(id).cloned();
        let expired = now.timestamp_micros() >= request.expires_micros;
        Some(Status {
            request,
            answer,
            used_by,
            expired,
        })
    }
}

/// A request and what became of it.
#[derive(Debug, Clone)]
pub struct Status {
    pub request: Request,
    pub answer: Option<Answer>,
    pub used_by: Option<String>,
    pub expired: bool,
}

impl Status {
    /// Whether it still waits for a human.
    pub fn waiting(&self) -> bool {
        self.answer.is_none() && self.used_by.is_none() && !self.expired
    }

    /// Why its approval cannot be used, in the order a resume reports them; `None` when it
    /// is approved, unused and unexpired.
    pub fn refusal(&self) -> Option<Refusal> {
        let id = self.request.run_id.clone();
        if let Some(by) = &self.used_by {
            return Some(Refusal::Used { id, by: by.clone() });
        }
        match &self.answer {
            Some(a) if !a.approved => Some(Refusal::Denied {
                id,
                by: a.actor_email.clone(),
                reason: a.reason.clone(),
            }),
            _ if self.expired => Some(Refusal::Expired {
                id,
                at: self.request.expires_at.clone(),
            }),
            None => Some(Refusal::Waiting(id)),
            Some(_) => None,
        }
    }
}

/// `enact approvals list --json` / `enact://approvals` entries (SPEC §9).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Waiting {
    pub run_id: String,
    pub workflow: String,
    pub actor_email: String,
    pub plan: Value,
    pub expires_at: String,
}

/// Why an approval operation is refused (SPEC §9). The texts are the product's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no approval request `{0}`")]
    Unknown(String),
    #[error("approval request `{0}` was made by another actor")]
    OtherActor(String),
    #[error("approval request `{id}` expired at {at}")]
    Expired { id: String, at: String },
    #[error("approval request `{id}` was already answered: {}", answered(.approved, .by, .reason))]
    Answered {
        id: String,
        approved: bool,
        by: String,
        reason: Option<String>,
    },
    #[error("approval request `{id}` was already used by run `{by}`")]
    Used { id: String, by: String },
    #[error("approval request `{0}` is still waiting for a human — `enact approvals approve {0}`")]
    Waiting(String),
    #[error("approval request `{id}` was denied by {by}: {}", reason.as_deref().unwrap_or("no reason given"))]
    Denied {
        id: String,
        by: String,
        reason: Option<String>,
    },
    #[error(
        "the plan changed since approval request `{0}` was made (its digest differs): nothing was run; call the workflow again to ask anew"
    )]
    PlanChanged(String),
    #[error("approvals through `{0}` are not enabled: add \"{0}\" to `[approvals] via`")]
    ViaNotAllowed(String),
    #[error("no grant `{0}`")]
    UnknownGrant(String),
    #[error("grant `{id}` was already revoked by record `{by}`")]
    Revoked { id: String, by: String },
    #[error("grant `{id}` already expired at {at}")]
    GrantExpired { id: String, at: String },
}

fn answered(approved: &bool, by: &str, reason: &Option<String>) -> String {
    let verb = if *approved { "approved" } else { "denied" };
    match reason {
        Some(r) => format!("{verb} by {by} ({r})"),
        None => format!("{verb} by {by}"),
    }
}

/// What a resumed run claims: checked under the journal's lock together with its intent.
#[derive(Debug, Clone)]
pub struct Claim {
    pub request_id: String,
    pub actor_email: String,
    pub plan_digest: String,
}

impl Claim {
    /// The approval this claim may use, or why not. `Ok` holds the APPROVE answer.
    pub(crate) fn check(&self, index: &Index, now: DateTime<Utc>) -> Result<Answer, Refusal> {
        let id = self.request_id.clone();
        let s = index
            .approvals
            .status(&id, now)
            .ok_or_else(|| Refusal::Unknown(id.clone()))?;
        if s.request.actor_email != self.actor_email {
            return Err(Refusal::OtherActor(id));
        }
        if let Some(refusal) = s.refusal() {
            return Err(refusal);
        }
        match s.answer {
            Some(a) if s.request.plan_digest == self.plan_digest => Ok(a),
            _ => Err(Refusal::PlanChanged(id)),
        }
    }
}

impl Store {
    /// A request and what became of it.
    pub fn approval_status(&self, id: &str, now: DateTime<Utc>) -> Result<Status, StoreError> {
        self.refresh()?;
        self.index()
            .approvals
            .status(id, now)
            .ok_or_else(|| StoreError::Approval(Refusal::Unknown(id.into())))
    }

    /// Requests still waiting (unanswered, unused, unexpired), newest first; only `actor`'s
    /// when given.
    pub fn waiting_approvals(
        &self,
        actor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Waiting>, StoreError> {
        self.refresh()?;
        let index = self.index();
        let a = &index.approvals;
        Ok(a.order
            .iter()
            .rev()
            .filter_map(|id| a.status(id, now))
            .filter(|s| s.waiting())
            .filter(|s| actor.is_none_or(|e| s.request.actor_email == e))
            .map(|s| Waiting {
                run_id: s.request.run_id,
                workflow: s.request.workflow,
                actor_email: s.request.actor_email,
                plan: s.request.plan,
                expires_at: s.request.expires_at,
            })
            .collect())
    }

    /// The grants alive for `actor` at `now`.
    pub fn live_grants(&self, actor: &str, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError> {
        self.refresh()?;
        Ok(self.index().approvals.live_grants(actor, now))
    }

    /// Appends an APPROVE or DENY record (its `approval_of` names the request) if, under the
    /// lock, the request still waits: known, unanswered, unused and unexpired at `now`.
    pub fn append_answer(
        &self,
        answer: Receipt,
        now: DateTime<Utc>,
    ) -> Result<Receipt, StoreError> {
        let id = answer.approvals.approval_of.clone().unwrap_or_default();
        self.append_checked(answer, |index| {
            let s = index
                .approvals
                .status(&id, now)
                .ok_or_else(|| Refusal::Unknown(id.clone()))?;
            if let Some(by) = s.used_by {
                return Err(Refusal::Used { id: id.clone(), by });
            }
            if let Some(a) = s.answer {
                return Err(Refusal::Answered {
                    id: id.clone(),
                    approved: a.approved,
                    by: a.actor_email,
                    reason: a.reason,
                });
            }
            if s.expired {
                return Err(Refusal::Expired {
                    id: id.clone(),
                    at: s.request.expires_at,
                });
            }
            Ok(())
        })
    }

    /// Appends a REVOKE record if, under the lock, its grant is known, unrevoked and alive.
    pub fn append_revoke(
        &self,
        revoke: Receipt,
        now: DateTime<Utc>,
    ) -> Result<Receipt, StoreError> {
        let id = revoke.approvals.revokes.clone().unwrap_or_default();
        self.append_checked(revoke, |index| {
            let a = &index.approvals;
            let g = a
                .grants
                .get(&id)
                .ok_or_else(|| Refusal::UnknownGrant(id.clone()))?;
            if let Some(by) = a.revoked.get(&id) {
                return Err(Refusal::Revoked {
                    id: id.clone(),
                    by: by.clone(),
                });
            }
            if now.timestamp_micros() >= g.expires_micros {
                return Err(Refusal::GrantExpired {
                    id: id.clone(),
                    at: g.grant.expires_at.clone(),
                });
            }
            Ok(())
        })
    }
}
