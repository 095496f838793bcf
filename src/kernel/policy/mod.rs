//! The policy gate (SPEC §4): every policy in scope runs, in config order, on the plan; any
//! failure is a BLOCK; a policy that errors or panics fails closed.
//!
//! Each built-in policy is one variant of [`PolicyKind`] and one function in the file of its
//! family (`git`, `db`, `fs`, `actor`), all with the same shape:
//! `fn(&params, &Context) -> Result<Outcome, String>` where `Err` means "could not decide".

mod actor;
mod approval;
mod chat;
mod crm;
mod db;
mod fs;
mod git;
mod params;
mod plan_view;
#[cfg(test)]
mod scenarios;

use serde::Serialize;
use serde_json::{Map, Value};

use super::context::Context;
use super::hubspot::Email;
use super::plan::Step;
use super::typed::{Action, GithubAction, HubspotAction, PrNumber, Repo};

pub use params::parse_window;

/// The verdict of one policy on one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PolicyResult {
    pub policy: String,
    pub passed: bool,
    /// Set only on a failed `require_approval` (SPEC §9): the one failed result that does not
    /// make a BLOCK but holds the call for a human.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval: bool,
    pub reason: String,
}

impl PolicyResult {
    pub fn pass(policy: &str, reason: impl Into<String>) -> Self {
        PolicyResult {
            policy: policy.into(),
            passed: true,
            approval: false,
            reason: reason.into(),
        }
    }
    pub fn fail(policy: &str, reason: impl Into<String>) -> Self {
        PolicyResult {
            policy: policy.into(),
            passed: false,
            approval: false,
            reason: reason.into(),
        }
    }
}

/// A policy's decision before it is named: passed or not, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub passed: bool,
    /// A failure that holds the call for a human instead of blocking it (SPEC §9).
    pub approval: bool,
    pub reason: String,
}

impl Outcome {
    pub fn pass(reason: impl Into<String>) -> Self {
        Outcome {
            passed: true,
            approval: false,
            reason: reason.into(),
        }
    }
    pub fn block(reason: impl Into<String>) -> Self {
        Outcome {
            passed: false,
            approval: false,
            reason: reason.into(),
        }
    }
    pub fn hold(reason: impl Into<String>) -> Self {
        Outcome {
            passed: false,
            approval: true,
            reason: reason.into(),
        }
    }
}

/// The decision recorded in a receipt.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum Decision {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "BLOCK")]
    Block,
    /// Rollback receipts only: some undo steps failed.
    #[serde(rename = "PARTIAL")]
    Partial,
    /// The gate's verdict (and a call's result) when a human must approve first (SPEC §9).
    #[serde(rename = "APPROVAL_REQUIRED")]
    ApprovalRequired,
    /// The receipt of a call held for approval.
    #[serde(rename = "PENDING")]
    Pending,
    /// A human's answers and grants (SPEC §9): records, not workflow runs.
    #[serde(rename = "APPROVE")]
    Approve,
    #[serde(rename = "DENY")]
    Deny,
    #[serde(rename = "GRANT")]
    Grant,
    #[serde(rename = "REVOKE")]
    Revoke,
}

impl Decision {
    const ALL: [Decision; 9] = [
        Decision::Pass,
        Decision::Block,
        Decision::Partial,
        Decision::ApprovalRequired,
        Decision::Pending,
        Decision::Approve,
        Decision::Deny,
        Decision::Grant,
        Decision::Revoke,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Pass => "PASS",
            Decision::Block => "BLOCK",
            Decision::Partial => "PARTIAL",
            Decision::ApprovalRequired => "APPROVAL_REQUIRED",
            Decision::Pending => "PENDING",
            Decision::Approve => "APPROVE",
            Decision::Deny => "DENY",
            Decision::Grant => "GRANT",
            Decision::Revoke => "REVOKE",
        }
    }
    pub fn parse(s: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// A decision a receipt can hold (`APPROVAL_REQUIRED` is a call's answer; its receipt
    /// says `PENDING`), by name.
    pub fn parse_recorded(s: &str) -> Option<Decision> {
        Decision::parse(s).filter(|d| *d != Decision::ApprovalRequired)
    }

    /// The names [`Decision::parse_recorded`] takes, for messages.
    pub fn recorded_names() -> String {
        let names: Vec<&str> = Decision::ALL
            .into_iter()
            .filter(|d| *d != Decision::ApprovalRequired)
            .map(Decision::as_str)
            .collect();
        names.join(", ")
    }
}

/// The gate's answer: the decision and every policy result, in config order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub results: Vec<PolicyResult>,
}

/// A built-in policy with its validated parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyKind {
    NoPushToMain {
        branches: Vec<String>,
    },
    RequireBranchPrefix {
        prefix: String,
    },
    MaxFilesPerCommit {
        max: u64,
    },
    NoDeleteBranch,
    NoMergeToMain {
        branches: Vec<String>,
    },
    NoDeleteRow,
    NoDeleteWithoutWhere,
    NoUpdateWithoutWhere,
    ProtectTables {
        tables: Vec<String>,
    },
    NoDeleteFile,
    RestrictPaths {
        paths: Vec<String>,
    },
    BlockExtensions {
        extensions: Vec<String>,
    },
    ContractorCannotWritePii {
        fields: Vec<String>,
    },
    RequireActorRole {
        roles: Vec<String>,
    },
    /// Minutes after midnight UTC; the window is [start, end), crossing midnight if end < start.
    WithinMaintenanceWindow {
        start: u32,
        end: u32,
    },
    /// `window` in seconds; `per`: an argument name, or `None`.
    RateLimit {
        max: u64,
        window: u64,
        per: Option<String>,
    },
    /// SPEC §9. `actions`: only plans with one of these actions (`None`: every plan);
    /// `irreversible`: only plans with a step rollback cannot undo.
    RequireApproval {
        actions: Option<Vec<String>>,
        irreversible: bool,
    },
    NoDuplicateContacts,
    /// `window` in seconds; `window_text` as configured, since the reason quotes it so.
    LimitTasksPerContact {
        max: u64,
        window: u64,
        window_text: String,
    },
    /// Conversation IDs a Slack message may go to (exact match).
    RequireChannelAllowlist {
        channels: Vec<String>,
    },
    BlockDms,
    NoMassMentions,
}

/// Every built-in policy name, in the order of SPEC §4.
pub const POLICY_NAMES: &[&str] = &[
    "no_push_to_main",
    "require_branch_prefix",
    "max_files_per_commit",
    "no_delete_branch",
    "no_merge_to_main",
    "no_delete_row",
    "no_delete_without_where",
    "no_update_without_where",
    "protect_tables",
    "no_delete_file",
    "restrict_paths",
    "block_extensions",
    "contractor_cannot_write_pii",
    "require_actor_role",
    "within_maintenance_window",
    "rate_limit",
    "require_approval",
    "no_duplicate_contacts",
    "limit_tasks_per_contact",
    "require_channel_allowlist",
    "block_dms",
    "no_mass_mentions",
];

impl PolicyKind {
    /// Parses a built-in's parameters (the `[[policies]]` entry without `policy` and
    /// `workflows`). Every problem is reported, each naming the parameter.
    pub fn from_params(name: &str, params: &Map<String, Value>) -> Result<PolicyKind, Vec<String>> {
        params::parse(name, params)
    }

    pub fn name(&self) -> &'static str {
        match self {
            PolicyKind::NoPushToMain { .. } => "no_push_to_main",
            PolicyKind::RequireBranchPrefix { .. } => "require_branch_prefix",
            PolicyKind::MaxFilesPerCommit { .. } => "max_files_per_commit",
            PolicyKind::NoDeleteBranch => "no_delete_branch",
            PolicyKind::NoMergeToMain { .. } => "no_merge_to_main",
            PolicyKind::NoDeleteRow => "no_delete_row",
            PolicyKind::NoDeleteWithoutWhere => "no_delete_without_where",
            PolicyKind::NoUpdateWithoutWhere => "no_update_without_where",
            PolicyKind::ProtectTables { .. } => "protect_tables",
            PolicyKind::NoDeleteFile => "no_delete_file",
            PolicyKind::RestrictPaths { .. } => "restrict_paths",
            PolicyKind::BlockExtensions { .. } => "block_extensions",
            PolicyKind::ContractorCannotWritePii { .. } => "contractor_cannot_write_pii",
            PolicyKind::RequireActorRole { .. } => "require_actor_role",
            PolicyKind::WithinMaintenanceWindow { .. } => "within_maintenance_window",
            PolicyKind::RateLimit { .. } => "rate_limit",
            PolicyKind::RequireApproval { .. } => "require_approval",
            PolicyKind::NoDuplicateContacts => "no_duplicate_contacts",
            PolicyKind::LimitTasksPerContact { .. } => "limit_tasks_per_contact",
            PolicyKind::RequireChannelAllowlist { .. } => "require_channel_allowlist",
            PolicyKind::BlockDms => "block_dms",
            PolicyKind::NoMassMentions => "no_mass_mentions",
        }
    }

    /// The parameters with defaults applied, as shown by `enact check` and `enact://policies`.
    pub fn params_json(&self) -> Value {
        params::to_json(self)
    }
}

/// A configured policy: a built-in, its parameters, and an optional workflow scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub kind: PolicyKind,
    /// `None`: every workflow.
    pub scope: Option<Vec<String>>,
}

impl Policy {
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    pub fn applies_to(&self, workflow: &str) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| s.iter().any(|w| w == workflow))
    }
}

/// Runs every policy in scope of `ctx.workflow`, in order. `index` in [`Facts::rate_counts`]
/// is the policy's position in `policies`.
///
/// [`Facts::rate_counts`]: super::context::Facts::rate_counts
pub fn gate(policies: &[Policy], ctx: &Context<'_>) -> Verdict {
    let results: Vec<PolicyResult> = policies
        .iter()
        .enumerate()
        .filter(|(_, p)| p.applies_to(ctx.workflow))
        .map(|(index, p)| evaluate_guarded(p, index, ctx))
        .collect();
    // An approval never overrides a BLOCK (SPEC §9).
    let decision = if results.iter().any(|r| !r.passed && !r.approval) {
        Decision::Block
    } else if results.iter().any(|r| r.approval) {
        Decision::ApprovalRequired
    } else {
        Decision::Pass
    };
    Verdict { decision, results }
}

/// One policy, failing closed on error or panic.
fn evaluate_guarded(policy: &Policy, index: usize, ctx: &Context<'_>) -> PolicyResult {
    let name = policy.name();
    let run = std::panic::AssertUnwindSafe(|| evaluate(&policy.kind, index, ctx));
    match std::panic::catch_unwind(run) {
        Ok(Ok(outcome)) => PolicyResult {
            policy: name.into(),
            passed: outcome.passed,
            approval: outcome.approval && !outcome.passed,
            reason: outcome.reason,
        },
        Ok(Err(e)) => PolicyResult::fail(name, format!("policy error: {e}")),
        Err(_) => PolicyResult::fail(name, "policy error: the policy panicked"),
    }
}

fn evaluate(kind: &PolicyKind, index: usize, ctx: &Context<'_>) -> Result<Outcome, String> {
    match kind {
        PolicyKind::NoPushToMain { branches } => git::no_push_to_main(branches, ctx),
        PolicyKind::RequireBranchPrefix { prefix } => git::require_branch_prefix(prefix, ctx),
        PolicyKind::MaxFilesPerCommit { max } => git::max_files_per_commit(*max, ctx),
        PolicyKind::NoDeleteBranch => git::no_delete_branch(ctx),
        PolicyKind::NoMergeToMain { branches } => git::no_merge_to_main(branches, ctx),
        PolicyKind::NoDeleteRow => db::no_delete_row(ctx),
        PolicyKind::NoDeleteWithoutWhere => db::no_delete_without_where(ctx),
        PolicyKind::NoUpdateWithoutWhere => db::no_update_without_where(ctx),
        PolicyKind::ProtectTables { tables } => db::protect_tables(tables, ctx),
        PolicyKind::ContractorCannotWritePii { fields } => {
            db::contractor_cannot_write_pii(fields, ctx)
        }
        PolicyKind::NoDeleteFile => fs::no_delete_file(ctx),
        PolicyKind::RestrictPaths { paths } => fs::restrict_paths(paths, ctx),
        PolicyKind::BlockExtensions { extensions } => fs::block_extensions(extensions, ctx),
        PolicyKind::RequireActorRole { roles } => actor::require_actor_role(roles, ctx),
        PolicyKind::WithinMaintenanceWindow { start, end } => {
            actor::within_maintenance_window(*start, *end, ctx)
        }
        PolicyKind::RateLimit { max, window, per } => {
            actor::rate_limit(*max, *window, per.as_deref(), index, ctx)
        }
        PolicyKind::RequireApproval {
            actions,
            irreversible,
        } => approval::require_approval(actions.as_deref(), *irreversible, ctx),
        PolicyKind::NoDuplicateContacts => crm::no_duplicate_contacts(ctx),
        PolicyKind::LimitTasksPerContact {
            max, window_text, ..
        } => crm::limit_tasks_per_contact(*max, window_text, index, ctx),
        PolicyKind::RequireChannelAllowlist { channels } => {
            chat::require_channel_allowlist(channels, ctx)
        }
        PolicyKind::BlockDms => chat::block_dms(ctx),
        PolicyKind::NoMassMentions => chat::no_mass_mentions(ctx),
    }
}

/// What the engine must count for one `rate_limit` policy before the gate runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RateQuery {
    /// The policy's index in the config (the key in `Facts::rate_counts`).
    pub index: usize,
    pub max: u64,
    pub window_secs: u64,
    /// `None`: all workflows count together; else only these.
    pub workflows: Option<Vec<String>>,
    /// Only runs whose argument `.0` equals `.1` count.
    pub per: Option<(String, Value)>,
}

/// `no_merge_to_main`: the base branch of a planned pull request merge, asked of a GitHub
/// system.
#[derive(Debug, Clone, PartialEq)]
pub struct PrBaseRequest {
    pub system: String,
    pub repo: Repo,
    pub number: PrNumber,
}

/// `no_duplicate_contacts`: whether a contact with this email exists, asked of a HubSpot
/// system (keyed in `Facts::contacts` by (system, email)).
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRequest {
    pub system: String,
    pub email: Email,
}

/// What the store must count for one `limit_tasks_per_contact` policy under the journal's
/// lock: the tasks the actor created for each of `emails` inside the window.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskQuery {
    /// The policy's index in the config (the key in `Facts::task_counts`).
    pub index: usize,
    pub window_secs: u64,
    /// `None`: all workflows count together; else only these.
    pub workflows: Option<Vec<String>>,
    /// The normalised contact emails of the plan's `create_task` steps.
    pub emails: Vec<String>,
}

/// Every fact the policies in scope of a call need from live systems. The engine looks them
/// up before the gate and hands the answers in through [`Facts`](crate::kernel::context::Facts);
/// a lookup that fails blocks (the policy then fails closed).
#[derive(Debug, Clone, Default)]
pub struct FactRequests {
    /// Keyed in `Facts::pr_bases` by (repo, number).
    pub pr_bases: Vec<PrBaseRequest>,
    /// Counted under the journal's lock with the gate; keyed in `Facts::rate_counts` by index.
    pub rate_counts: Vec<RateQuery>,
    /// Keyed in `Facts::contacts` by (system, email).
    pub contacts: Vec<ContactRequest>,
    /// Counted under the journal's lock with the gate; keyed in `Facts::task_counts`.
    pub task_counts: Vec<TaskQuery>,
    /// `block_dms`: conversations (not `D…`) whose kind must be asked of a Slack system;
    /// keyed in `Facts::dm_channels` by (system, channel ID).
    pub dm_channels: Vec<ChannelRequest>,
}

/// `block_dms`: whether a conversation is a DM or group DM, asked of a Slack system.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRequest {
    pub system: String,
    pub channel: String,
}

/// What the policies in scope of `workflow` need looked up for this plan.
pub fn fact_requests(
    policies: &[Policy],
    workflow: &str,
    payload: &Map<String, Value>,
    plan: &[Step],
) -> FactRequests {
    let needs_bases = policies
        .iter()
        .any(|p| p.applies_to(workflow) && matches!(p.kind, PolicyKind::NoMergeToMain { .. }));
    let pr_bases = if needs_bases {
        plan.iter()
            .filter_map(|s| match &s.action {
                Action::Github(GithubAction::MergePr { repo, number }) => Some(PrBaseRequest {
                    system: s.system.clone(),
                    repo: repo.clone(),
                    number: *number,
                }),
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    let in_scope = |f: fn(&PolicyKind) -> bool| {
        policies
            .iter()
            .any(|p| p.applies_to(workflow) && f(&p.kind))
    };
    let mut contacts: Vec<ContactRequest> = Vec::new();
    if in_scope(|k| matches!(k, PolicyKind::NoDuplicateContacts)) {
        for s in plan {
            if let Action::Hubspot(HubspotAction::CreateContact { email, .. }) = &s.action {
                let request = ContactRequest {
                    system: s.system.clone(),
                    email: email.clone(),
                };
                if !contacts.contains(&request) {
                    contacts.push(request);
                }
            }
        }
    }
    let mut emails: Vec<String> = Vec::new();
    for s in plan {
        if let Action::Hubspot(HubspotAction::CreateTask { contact_email, .. }) = &s.action
            && !emails.iter().any(|e| e == contact_email.as_str())
        {
            emails.push(contact_email.as_str().to_string());
        }
    }
    let task_counts = if emails.is_empty() {
        Vec::new()
    } else {
        policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.applies_to(workflow))
            .filter_map(|(index, p)| match &p.kind {
                PolicyKind::LimitTasksPerContact { window, .. } => Some(TaskQuery {
                    index,
                    window_secs: *window,
                    workflows: p.scope.clone(),
                    emails: emails.clone(),
                }),
                _ => None,
            })
            .collect()
    };
    let needs_kinds = policies
        .iter()
        .any(|p| p.applies_to(workflow) && matches!(p.kind, PolicyKind::BlockDms));
    let mut dm_channels: Vec<ChannelRequest> = Vec::new();
    if needs_kinds {
        for s in plan {
            if let Action::Slack(a) = &s.action
                && !a.channel().is_dm_id()
                && !dm_channels
                    .iter()
                    .any(|r| r.system == s.system && r.channel == a.channel().as_str())
            {
                dm_channels.push(ChannelRequest {
                    system: s.system.clone(),
                    channel: a.channel().as_str().to_string(),
                });
            }
        }
    }
    FactRequests {
        pr_bases,
        rate_counts: rate_queries(policies, workflow, payload),
        contacts,
        task_counts,
        dm_channels,
    }
}

/// The rate queries of the `rate_limit` policies in scope of this workflow.
pub fn rate_queries(
    policies: &[Policy],
    workflow: &str,
    payload: &Map<String, Value>,
) -> Vec<RateQuery> {
    policies
        .iter()
        .enumerate()
        .filter(|(_, p)| p.applies_to(workflow))
        .filter_map(|(index, p)| match &p.kind {
            PolicyKind::RateLimit { max, window, per } => Some(RateQuery {
                index,
                max: *max,
                window_secs: *window,
                workflows: p.scope.clone(),
                per: per.as_ref().map(|name| {
                    (
                        name.clone(),
                        payload.get(name).cloned().unwrap_or(Value::Null),
                    )
                }),
            }),
            _ => None,
        })
        .collect()
}
