//! The gate's one step under the journal's lock (SPEC §4, §5.5, §9): the rate counts, the
//! actor's live grants and a resumed run's claim on its approval are read from the index as it
//! is under the lock, and the record the decision asks for (an intent, or a PENDING / BLOCK
//! receipt) is appended in the same hold — so concurrent calls, in any number of processes,
//! cannot overshoot a rate limit or use one approval twice.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::approvals::{Answer, Claim};
use std::collections::BTreeMap;

use chrono::TimeDelta;

use super::index::{self, Index};
use super::{RateCounts, Store, StoreError};
use crate::kernel::context::TaskCounts;
use crate::kernel::policy::{RateQuery, TaskQuery};
use crate::kernel::receipt::Receipt;

/// What the gate takes from the journal under its lock ([`Store::gate_and_record`]).
#[derive(Debug, Clone)]
pub struct GateFacts {
    pub counts: RateCounts,
    /// `limit_tasks_per_contact`: earlier tasks per contact email, by policy index.
    pub task_counts: TaskCounts,
    /// The actor's live grants.
    pub grants: Vec<crate::kernel::context::Grant>,
    /// A resumed run: the APPROVE answer its claim uses.
    pub approval: Option<Answer>,
}

/// What the gate's decision asks the store to append.
#[derive(Debug)]
pub enum Decided {
    Nothing,
    /// The run passes: its intent record's fields.
    Intent(Map<String, Value>),
    /// A receipt to chain and append in the same lock hold.
    Receipt(Box<Receipt>),
}

/// What [`Store::gate_and_record`] appended.
#[derive(Debug)]
pub enum Recorded {
    Nothing,
    Intent,
    /// The receipt as written.
    Receipt(Box<Receipt>),
}

impl Store {
    /// Rate limiting and the intent in one step under the folder lock (also across processes):
    /// counts, for each query, the PASS runs of `actor_email` in the window ending at `now`
    /// (receipts and open intents, so runs in flight count); hands the counts to `decide`,
    /// which returns the intent record's fields when the call passes. Returns whether an
    /// intent was appended. `decide` runs under the folder lock: it must not call back into
    /// this store.
    pub fn gate_and_intend(
        &self,
        queries: &[RateQuery],
        actor_email: &str,
        now: DateTime<Utc>,
        decide: &mut dyn FnMut(&RateCounts) -> Option<Map<String, Value>>,
    ) -> Result<bool, StoreError> {
        let recorded =
            self.gate_and_record(queries, &[], actor_email, now, None, &mut |facts| {
                decide(&facts.counts).map_or(Decided::Nothing, Decided::Intent)
            })?;
        Ok(matches!(recorded, Recorded::Intent))
    }

    /// [`Store::gate_and_intend`] with everything the gate takes from the journal: the rate
    /// counts, the task counts of `limit_tasks_per_contact` (per contact email: tasks of PASS
    /// receipts and the planned tasks of open intents, so the intent appended here reserves
    /// this plan's tasks), the actor's live grants and — for a resumed run, whose `claim` must hold under
    /// the lock or nothing is written — the approval it uses (SPEC §9). `decide` may also
    /// return a receipt to append in the same lock hold (a resumed run that is now blocked
    /// uses its approval up, so no second resume can slip in between).
    pub fn gate_and_record(
        &self,
        queries: &[RateQuery],
        tasks: &[TaskQuery],
        actor_email: &str,
        now: DateTime<Utc>,
        claim: Option<&Claim>,
        decide: &mut dyn FnMut(&GateFacts) -> Decided,
    ) -> Result<Recorded, StoreError> {
        let owner = self.owner()?.to_owned();
        let mut recorded = Recorded::Nothing;
        self.append_line(|index| {
            let approval = claim.map(|c| c.check(index, now)).transpose()?;
            let facts = GateFacts {
                counts: queries
                    .iter()
                    .map(|q| (q.index, count(index, q, actor_email, now)))
                    .collect(),
                task_counts: tasks
                    .iter()
                    .map(|q| (q.index, count_tasks(index, q, actor_email, now)))
                    .collect(),
                grants: index.approvals.live_grants(actor_email, now),
                approval,
            };
            match decide(&facts) {
                Decided::Nothing => Ok(None),
                Decided::Intent(fields) => {
                    recorded = Recorded::Intent;
                    self.intent_record(index, fields, &owner).map(Some)
                }
                Decided::Receipt(mut receipt) => {
                    let value = self.chain_receipt(index, &mut receipt)?;
                    recorded = Recorded::Receipt(receipt);
                    Ok(Some(value))
                }
            }
        })?;
        Ok(recorded)
    }

    /// The count `gate_and_intend` would hand to `decide` for one query (for `enact_preview`).
    pub fn count_runs(
        &self,
        query: &RateQuery,
        actor_email: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.refresh()?;
        count(&self.index(), query, actor_email, now).map_err(StoreError::Uncountable)
    }

    /// The task counts `gate_and_record` would hand to the gate for one query (for
    /// `enact_preview`).
    pub fn count_tasks(
        &self,
        query: &TaskQuery,
        actor_email: &str,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        self.refresh()?;
        count_tasks(&self.index(), query, actor_email, now).map_err(StoreError::Uncountable)
    }
}

/// The count of one rate query from the index.
/// `Err` when the journal holds a receipt whose signature does not verify: it cannot be told
/// whether that run counts, so the policy fails closed (an edit must not lower a count).
pub(super) fn count(
    index: &Index,
    q: &RateQuery,
    actor_email: &str,
    now: DateTime<Utc>,
) -> Result<u64, String> {
    let from = window_start(index, "runs", q.window_secs, now)?;
    let per = q
        .per
        .as_ref()
        .map(|(arg, value)| (arg.as_str(), index::value_digest(value)));
    Ok(index.count(actor_email, q.workflows.as_deref(), per, from))
}

/// Earlier tasks per contact email for one `limit_tasks_per_contact` query; fails closed like
/// [`count`].
pub(super) fn count_tasks(
    index: &Index,
    q: &TaskQuery,
    actor_email: &str,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, u64>, String> {
    let from = window_start(index, "tasks", q.window_secs, now)?;
    Ok(q.emails
        .iter()
        .map(|e| {
            let n = index.count_tasks(actor_email, q.workflows.as_deref(), e, from);
            (e.clone(), n)
        })
        .collect())
}

/// Where a rolling window of `window_secs` ending `now` starts, in the index's microseconds.
/// `Err` (the count fails closed) while the journal holds a receipt whose signature does not
/// verify: whether that one counts cannot be told, and an edit must not lower a count.
fn window_start(
    index: &Index,
    counted: &str,
    window_secs: u64,
    now: DateTime<Utc>,
) -> Result<i64, String> {
    if index.unverified_receipts > 0 {
        return Err(format!(
            "the receipts journal holds {} receipt(s) whose signature does not verify, so earlier {counted} cannot be counted — run `enact receipts verify`",
            index.unverified_receipts
        ));
    }
    Ok(i64::try_from(window_secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|w| now.checked_sub_signed(w))
        .map_or(i64::MIN, |t| t.timestamp_micros()))
}
