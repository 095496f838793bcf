//! The plan as the policies read it: the steps of one system type and action, and their
//! arguments with the type a policy expects.
//!
//! The plan is typed (built once by the plan builder), so a policy reads its arguments from
//! the action's variant; there is no missing argument or wrong type left to handle.

use crate::kernel::action::ActionName;
use crate::kernel::plan::Step;
use crate::kernel::typed::{Action, FilesystemAction, GithubAction, HubspotAction, PostgresAction};

/// One planned step, with its 1-based position for messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planned<'a> {
    pub number: usize,
    pub step: &'a Step,
}

impl Planned<'_> {
    /// `step 2 (gh.create_branch)`: where a problem is, for messages.
    pub fn label(&self) -> String {
        format!(
            "step {} ({}.{})",
            self.number,
            self.step.system,
            self.step.name()
        )
    }
}

/// The steps whose action is one of `actions`, in plan order.
fn steps<'a>(plan: &'a [Step], actions: &'a [ActionName]) -> impl Iterator<Item = Planned<'a>> {
    plan.iter()
        .enumerate()
        .filter(move |(_, s)| actions.contains(&s.name()))
        .map(|(i, step)| Planned {
            number: i + 1,
            step,
        })
}

/// The GitHub steps among `actions`, with their typed action.
pub(super) fn github<'a>(
    plan: &'a [Step],
    actions: &'a [ActionName],
) -> impl Iterator<Item = (Planned<'a>, &'a GithubAction)> {
    steps(plan, actions).filter_map(|p| match &p.step.action {
        Action::Github(a) => Some((p, a)),
        _ => None,
    })
}

/// The Postgres steps among `actions`, with their typed action.
pub(super) fn postgres<'a>(
    plan: &'a [Step],
    actions: &'a [ActionName],
) -> impl Iterator<Item = (Planned<'a>, &'a PostgresAction)> {
    steps(plan, actions).filter_map(|p| match &p.step.action {
        Action::Postgres(a) => Some((p, a)),
        _ => None,
    })
}

/// The filesystem steps among `actions`, with their typed action.
pub(super) fn filesystem<'a>(
    plan: &'a [Step],
    actions: &'a [ActionName],
) -> impl Iterator<Item = (Planned<'a>, &'a FilesystemAction)> {
    steps(plan, actions).filter_map(|p| match &p.step.action {
        Action::Filesystem(a) => Some((p, a)),
        _ => None,
    })
}

/// The HubSpot steps among `actions`, with their typed action.
pub(super) fn hubspot<'a>(
    plan: &'a [Step],
    actions: &'a [ActionName],
) -> impl Iterator<Item = (Planned<'a>, &'a HubspotAction)> {
    steps(plan, actions).filter_map(|p| match &p.step.action {
        Action::Hubspot(a) => Some((p, a)),
        _ => None,
    })
}

/// Values in first-seen order, each once (a plan may name one branch or path many times).
pub(super) fn unique<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// `'a', 'b'`: values named in a reason, each quoted, duplicates dropped (first kept).
pub(super) fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    unique(items.iter().map(AsRef::as_ref))
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Several findings as one reason: each once, in plan order, joined by `; `.
pub(super) fn join_unique(items: impl Iterator<Item = String>) -> String {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out.join("; ")
}

/// `main, master` (or `(none)`): a policy's configured list, as shown in a reason.
pub(super) fn plain_list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::action::SystemKind;
    use crate::kernel::plan::test_steps::unscoped_step;
    use serde_json::{Value, json};

    fn step(kind: SystemKind, action: &str, args: Value) -> Step {
        let args = args.as_object().cloned().unwrap_or_default();
        unscoped_step("s", kind, action, &args).unwrap()
    }

    #[test]
    fn steps_filter_by_action_and_number_from_one() {
        let plan = vec![
            step(SystemKind::Filesystem, "read_file", json!({"path": "a"})),
            step(
                SystemKind::Github,
                "create_pr",
                json!({"repo": "a/b", "title": "t", "head": "x"}),
            ),
            step(
                SystemKind::Github,
                "create_branch",
                json!({"repo": "a/b", "branch": "x"}),
            ),
        ];
        let found: Vec<usize> = github(&plan, &[ActionName::CreateBranch])
            .map(|(p, _)| p.number)
            .collect();
        assert_eq!(found, vec![3]);
        assert_eq!(
            github(&plan, &[ActionName::CreatePr])
                .map(|(p, _)| p.label())
                .collect::<Vec<_>>(),
            vec!["step 2 (s.create_pr)".to_string()]
        );
    }

    #[test]
    fn lists_quote_and_dedupe() {
        assert_eq!(unique(["b", "a", "b"]), vec!["b", "a"]);
        assert_eq!(quoted_list(&["a", "b", "a"]), "'a', 'b'");
        assert_eq!(plain_list(&[]), "(none)");
        assert_eq!(
            plain_list(&["main".to_string(), "master".to_string()]),
            "main, master"
        );
    }
}
