//! What the policy gate sees: who is acting, what was asked, what will run, and when.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::plan::Step;

/// Who this server acts for. Comes from the config (and its env overrides), never the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub email: String,
    pub role: String,
}

/// Per `rate_limit` policy (by config index): how many earlier runs count against it, or why
/// they could not be counted.
pub type RateCounts = BTreeMap<usize, Result<u64, String>>;

/// Per `limit_tasks_per_contact` policy (by config index): earlier tasks per contact email.
pub type TaskCounts = BTreeMap<usize, Result<BTreeMap<String, u64>, String>>;

/// Facts looked up by the engine before the gate runs, so that policies stay pure.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `no_merge_to_main`: the base branch of each planned `merge_pr`, keyed by
    /// (repo, pr_number); `Err` holds why the lookup failed (the policy then fails closed).
    pub pr_bases: BTreeMap<(String, u64), Result<String, String>>,
    /// `rate_limit`: for the policy at this index in the config, how many earlier runs count
    /// against it (`Err`: the count could not be taken).
    pub rate_counts: RateCounts,
    /// `no_duplicate_contacts`: the id of the contact holding each planned `create_contact`'s
    /// email (`None`: no such contact), keyed by (system, email); `Err`: why the lookup failed.
    pub contacts: BTreeMap<(String, String), Result<Option<String>, String>>,
    /// `limit_tasks_per_contact`: for the policy at this index, the tasks the actor already
    /// created per contact email inside the window (`Err`: the count could not be taken).
    pub task_counts: TaskCounts,
    /// `require_approval`: the actor's live grants (SPEC §9).
    pub grants: Vec<Grant>,
    /// `require_approval` on a resumed run: who approved exactly this plan.
    pub approved_by: Option<String>,
    /// `block_dms`: whether each looked-up conversation is a DM or group DM, keyed by
    /// (system, channel ID) — a channel ID names a conversation only within one workspace
    /// (`Err`: the lookup failed; the policy then fails closed).
    pub dm_channels: BTreeMap<(String, String), Result<bool, String>>,
}

/// A live grant (SPEC §9): while it lives, `require_approval` passes for its actor's calls of
/// `workflow` (only those whose held steps are all `action`, when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The GRANT record's run id.
    pub id: String,
    pub granted_by: String,
    pub workflow: String,
    pub action: Option<String>,
    /// RFC 3339, as recorded.
    pub expires_at: String,
}

/// The input of the gate.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub workflow: &'a str,
    pub actor: &'a Actor,
    /// The call's arguments after defaults were applied.
    pub payload: &'a Map<String, Value>,
    pub plan: &'a [Step],
    pub now: DateTime<Utc>,
    pub facts: &'a Facts,
}
