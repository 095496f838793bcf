//! `require_approval` (SPEC §9): holds a call for a human when its plan has a step the
//! policy names, unless a live grant covers it or a human approved exactly this plan.
//!
//! The policy is pure: the grants and the approval of a resumed run are facts the engine
//! looks up (under the journal's lock, with the rate counts) and hands in.

use super::Outcome;
use super::plan_view::plain_list;
use crate::kernel::action;
use crate::kernel::context::Context;
use crate::kernel::plan::Step;

/// Holds the call when a planned step is one of `actions` (every step when `None`) and, with
/// `irreversible`, cannot be undone.
pub fn require_approval(
    actions: Option<&[String]>,
    irreversible: bool,
    ctx: &Context<'_>,
) -> Result<Outcome, String> {
    let held: Vec<(usize, &Step)> = ctx
        .plan
        .iter()
        .enumerate()
        .filter(|(_, s)| actions.is_none_or(|a| a.iter().any(|x| s.name() == x.as_str())))
        .filter(|(_, s)| !irreversible || !reversible(s))
        .collect();
    if held.is_empty() {
        let why = match (actions, irreversible) {
            (Some(a), false) => format!("no planned step is {}", one_of(a)),
            (Some(a), true) => format!("no planned step is {} that cannot be undone", one_of(a)),
            (None, true) => "every planned step can be undone".to_string(),
            (None, false) => "the plan has no step".to_string(),
        };
        return Ok(Outcome::pass(format!("no approval needed: {why}")));
    }
    if let Some(who) = &ctx.facts.approved_by {
        return Ok(Outcome::pass(format!("approved by {who}")));
    }
    let grant = ctx.facts.grants.iter().find(|g| {
        g.workflow == ctx.workflow
            && g.action
                .as_ref()
                .is_none_or(|a| held.iter().all(|(_, s)| s.name() == a.as_str()))
    });
    if let Some(g) = grant {
        return Ok(Outcome::pass(format!(
            "granted by {} until {}",
            g.granted_by, g.expires_at
        )));
    }
    let steps: Vec<String> = held
        .iter()
        .map(|(i, s)| format!("step {} ({} on {})", i + 1, s.name(), s.system))
        .collect();
    let tail = if irreversible {
        ", which cannot be undone"
    } else {
        ""
    };
    Ok(Outcome::hold(format!(
        "approval required: {}{tail}",
        plain_list(&steps)
    )))
}

fn reversible(step: &Step) -> bool {
    action::spec(step.kind(), step.name().as_str()).is_none_or(|s| s.reversible)
}

fn one_of(actions: &[String]) -> String {
    match actions {
        [one] => one.clone(),
        _ => format!("one of {}", plain_list(actions)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::action::SystemKind;
    use crate::kernel::context::{Actor, Facts, Grant};
    use crate::kernel::plan::test_steps::sample_step;
    use chrono::{TimeZone, Utc};
    use serde_json::{Map, Value, json};

    fn step(system: &str, kind: SystemKind, action: &str, args: Value) -> Step {
        let Value::Object(args) = args else {
            panic!("args must be an object")
        };
        sample_step(system, kind, action, &args).unwrap()
    }

    fn plan() -> Vec<Step> {
        vec![
            step(
                "gh",
                SystemKind::Github,
                "create_branch",
                json!({"repo": "acme/app", "branch": "agent/x"}),
            ),
            step(
                "gh",
                SystemKind::Github,
                "merge_pr",
                json!({"repo": "acme/app", "pr_number": 7}),
            ),
        ]
    }

    fn judge(
        actions: Option<&[&str]>,
        irreversible: bool,
        plan: &[Step],
        facts: &Facts,
    ) -> Outcome {
        let actor = Actor {
            email: "agent@acme.dev".into(),
            role: "engineer".into(),
        };
        let payload = Map::new();
        let actions: Option<Vec<String>> =
            actions.map(|a| a.iter().map(|s| s.to_string()).collect());
        require_approval(
            actions.as_deref(),
            irreversible,
            &Context {
                workflow: "ship",
                actor: &actor,
                payload: &payload,
                plan,
                now: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).single().unwrap(),
                facts,
            },
        )
        .unwrap()
    }

    #[test]
    fn holds_plans_with_a_named_action() {
        let facts = Facts::default();
        assert_eq!(
            judge(Some(&["merge_pr", "delete_row"]), false, &plan(), &facts),
            Outcome::hold("approval required: step 2 (merge_pr on gh)")
        );
        assert_eq!(
            judge(Some(&["delete_row"]), false, &plan(), &facts),
            Outcome::pass("no approval needed: no planned step is delete_row")
        );
        assert_eq!(
            judge(Some(&["delete_row", "delete_file"]), false, &plan(), &facts),
            Outcome::pass("no approval needed: no planned step is one of delete_row, delete_file")
        );
        assert_eq!(
            judge(None, false, &plan(), &facts),
            Outcome::hold(
                "approval required: step 1 (create_branch on gh), step 2 (merge_pr on gh)"
            )
        );
    }

    #[test]
    fn irreversible_holds_only_steps_rollback_cannot_undo() {
        let facts = Facts::default();
        assert_eq!(
            judge(None, true, &plan(), &facts),
            Outcome::hold("approval required: step 2 (merge_pr on gh), which cannot be undone")
        );
        assert_eq!(
            judge(None, true, &plan()[..1], &facts),
            Outcome::pass("no approval needed: every planned step can be undone")
        );
        assert_eq!(
            judge(Some(&["create_branch"]), true, &plan(), &facts),
            Outcome::pass(
                "no approval needed: no planned step is create_branch that cannot be undone"
            )
        );
    }

    #[test]
    fn a_grant_for_the_workflow_and_action_passes() {
        let grant = |workflow: &str, action: Option<&str>| Grant {
            id: "g".into(),
            granted_by: "lead@acme.dev".into(),
            workflow: workflow.into(),
            action: action.map(str::to_string),
            expires_at: "2026-01-01T13:00:00.000000Z".into(),
        };
        let mut facts = Facts {
            grants: vec![grant("other", None), grant("ship", Some("delete_row"))],
            ..Facts::default()
        };
        assert!(!judge(Some(&["merge_pr"]), false, &plan(), &facts).passed);
        facts.grants.push(grant("ship", Some("merge_pr")));
        assert_eq!(
            judge(Some(&["merge_pr"]), false, &plan(), &facts),
            Outcome::pass("granted by lead@acme.dev until 2026-01-01T13:00:00.000000Z")
        );
        // A grant for one action does not cover a plan held for another as well.
        assert!(!judge(None, false, &plan(), &facts).passed);
        facts.grants = vec![grant("ship", None)];
        assert!(judge(None, false, &plan(), &facts).passed);
    }

    #[test]
    fn a_resumed_run_passes_as_approved() {
        let facts = Facts {
            approved_by: Some("lead@acme.dev".into()),
            ..Facts::default()
        };
        assert_eq!(
            judge(Some(&["merge_pr"]), false, &plan(), &facts),
            Outcome::pass("approved by lead@acme.dev")
        );
    }
}
