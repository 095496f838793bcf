//! Policy scenarios as data: every case in `tests/fixtures/policies/*.json` runs through the
//! real [`gate`] and must give exactly the expected decision and results (reasons included).
//!
//! A case is `{name, policies: [{policy, params?, workflows?}], workflow, actor: {email,
//! role}, payload?, plan: [{system, kind, action, args}], now, facts?, expect: {decision,
//! results: [{policy, passed, reason}]}}`, with `facts` as `{pr_bases: [{repo, pr_number,
//! base | error}], rate_counts: [{index, count | error}], grants: [{granted_by, workflow,
//! action?, expires_at}], approved_by?, contacts: [{system, email, id? | error}],
//! task_counts: [{index, counts: {email: n} | error}], dm_channels: [{system, channel, is_dm |
//! error}]}`. The files are compiled in
//! (`include_str!`) so the kernel's sources stay free of file I/O; a new file is added to
//! [`FILES`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{POLICY_NAMES, Policy, PolicyKind, PolicyResult, gate};
use crate::kernel::action::SystemKind;
use crate::kernel::context::{Actor, Context, Facts};
use crate::kernel::plan::Step;

const FILES: &[(&str, &str)] = &[
    (
        "git.json",
        include_str!("../../../tests/fixtures/policies/git.json"),
    ),
    (
        "db.json",
        include_str!("../../../tests/fixtures/policies/db.json"),
    ),
    (
        "fs.json",
        include_str!("../../../tests/fixtures/policies/fs.json"),
    ),
    (
        "actor.json",
        include_str!("../../../tests/fixtures/policies/actor.json"),
    ),
    (
        "gate.json",
        include_str!("../../../tests/fixtures/policies/gate.json"),
    ),
    (
        "approval.json",
        include_str!("../../../tests/fixtures/policies/approval.json"),
    ),
    (
        "crm.json",
        include_str!("../../../tests/fixtures/policies/crm.json"),
    ),
    (
        "chat.json",
        include_str!("../../../tests/fixtures/policies/chat.json"),
    ),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    policies: Vec<PolicyEntry>,
    workflow: String,
    actor: ActorIn,
    #[serde(default)]
    payload: Map<String, Value>,
    plan: Vec<StepIn>,
    now: String,
    #[serde(default)]
    facts: FactsIn,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    policy: String,
    #[serde(default)]
    params: Map<String, Value>,
    workflows: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorIn {
    email: String,
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepIn {
    system: String,
    kind: String,
    action: String,
    args: Map<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FactsIn {
    #[serde(default)]
    pr_bases: Vec<PrBase>,
    #[serde(default)]
    rate_counts: Vec<RateCount>,
    #[serde(default)]
    grants: Vec<GrantIn>,
    approved_by: Option<String>,
    #[serde(default)]
    contacts: Vec<ContactIn>,
    #[serde(default)]
    task_counts: Vec<TaskCountIn>,
    #[serde(default)]
    dm_channels: Vec<DmChannel>,
}

/// A `no_duplicate_contacts` lookup: the id found (`null`: none), or why it failed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactIn {
    system: String,
    email: String,
    #[serde(default)]
    id: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskCountIn {
    index: usize,
    counts: Option<std::collections::BTreeMap<String, u64>>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DmChannel {
    system: String,
    channel: String,
    is_dm: Option<bool>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantIn {
    granted_by: String,
    workflow: String,
    action: Option<String>,
    expires_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrBase {
    repo: String,
    pr_number: u64,
    base: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateCount {
    index: usize,
    count: Option<u64>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    decision: String,
    results: Vec<PolicyResult>,
}

fn either<T>(ok: Option<T>, err: Option<String>, what: &str) -> Result<T, String> {
    match (ok, err) {
        (Some(v), None) => Ok(v),
        (None, Some(e)) => Err(e),
        _ => panic!("{what}: give exactly one of the value and `error`"),
    }
}

/// Runs one case; `Err` describes how it differs from the expectation.
fn run(case: Case) -> Result<(), String> {
    let policies: Vec<Policy> = case
        .policies
        .into_iter()
        .map(|p| {
            let kind = PolicyKind::from_params(&p.policy, &p.params)
                .map_err(|e| format!("bad policy {}: {e:?}", p.policy))?;
            Ok(Policy {
                kind,
                scope: p.workflows,
            })
        })
        .collect::<Result<_, String>>()?;
    let plan: Vec<Step> = case
        .plan
        .into_iter()
        .map(|s| {
            let kind = SystemKind::parse(&s.kind)
                .ok_or_else(|| format!("unknown system kind {:?}", s.kind))?;
            crate::kernel::plan::test_steps::unscoped_step(&s.system, kind, &s.action, &s.args)
        })
        .collect::<Result<_, String>>()?;
    let mut facts = Facts::default();
    for b in case.facts.pr_bases {
        facts
            .pr_bases
            .insert((b.repo, b.pr_number), either(b.base, b.error, "pr_bases"));
    }
    for r in case.facts.rate_counts {
        facts
            .rate_counts
            .insert(r.index, either(r.count, r.error, "rate_counts"));
    }
    facts.grants = case
        .facts
        .grants
        .into_iter()
        .enumerate()
        .map(|(i, g)| crate::kernel::context::Grant {
            id: format!("grant-{i}"),
            granted_by: g.granted_by,
            workflow: g.workflow,
            action: g.action,
            expires_at: g.expires_at,
        })
        .collect();
    facts.approved_by = case.facts.approved_by;
    for c in case.facts.contacts {
        let found = match c.error {
            Some(e) => Err(e),
            None => Ok(c.id),
        };
        facts.contacts.insert((c.system, c.email), found);
    }
    for t in case.facts.task_counts {
        facts
            .task_counts
            .insert(t.index, either(t.counts, t.error, "task_counts"));
    }
    for d in case.facts.dm_channels {
        facts.dm_channels.insert(
            (d.system, d.channel),
            either(d.is_dm, d.error, "dm_channels"),
        );
    }
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339(&case.now)
        .map_err(|e| format!("bad now: {e}"))?
        .with_timezone(&Utc);
    let actor = Actor {
        email: case.actor.email,
        role: case.actor.role,
    };
    let ctx = Context {
        workflow: &case.workflow,
        actor: &actor,
        payload: &case.payload,
        plan: &plan,
        now,
        facts: &facts,
    };

    let verdict = gate(&policies, &ctx);
    let got =
        serde_json::json!({"decision": verdict.decision.as_str(), "results": verdict.results});
    let want =
        serde_json::json!({"decision": case.expect.decision, "results": case.expect.results});
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{}: expected:\n{}\ngot:\n{}",
            case.name,
            serde_json::to_string_pretty(&want).unwrap_or_default(),
            serde_json::to_string_pretty(&got).unwrap_or_default()
        ))
    }
}

fn all_cases() -> Vec<(String, Value)> {
    let mut cases = Vec::new();
    for (file, text) in FILES {
        let list: Vec<Value> = serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        for case in list {
            let name = case
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            cases.push((format!("{file}: {name}"), case));
        }
    }
    cases
}

#[test]
fn policy_scenarios() {
    let mut failures = Vec::new();
    let cases = all_cases();
    for (name, value) in &cases {
        let outcome = serde_json::from_value::<Case>(value.clone())
            .map_err(|e| format!("malformed case: {e}"))
            .and_then(run);
        if let Err(why) = outcome {
            failures.push(format!("--- {name}\n{why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn scenarios_cover_every_policy_and_have_unique_names() {
    let cases = all_cases();
    let mut names = BTreeSet::new();
    let mut used = BTreeSet::new();
    for (name, value) in &cases {
        assert!(names.insert(name.clone()), "duplicate scenario name {name}");
        for p in value["policies"].as_array().into_iter().flatten() {
            used.insert(p["policy"].as_str().unwrap_or_default().to_string());
        }
    }
    let missing: Vec<&&str> = POLICY_NAMES
        .iter()
        .filter(|n| !used.contains(**n))
        .collect();
    assert!(
        missing.is_empty(),
        "policies without a scenario: {missing:?}"
    );
}
