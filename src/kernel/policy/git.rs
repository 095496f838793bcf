//! GitHub policies (SPEC §4): `no_push_to_main`, `require_branch_prefix`,
//! `max_files_per_commit`, `no_delete_branch`, `no_merge_to_main`.
//!
//! Reasons name branches as the plan writes them; comparisons with protected branches use
//! [`branch_key`] on both sides.

use super::Outcome;
use super::plan_view::{github, join_unique, plain_list, quoted_list, unique};
use crate::kernel::action::ActionName;
use crate::kernel::context::Context;
use crate::kernel::typed::GithubAction;

/// The actions that write a branch.
const BRANCH_WRITES: &[ActionName] = &[
    ActionName::CreateBranch,
    ActionName::PushCommit,
    ActionName::DeleteBranch,
];

/// Blocks a planned GitHub write (`create_branch`, `push_commit`, `delete_branch`) to a
/// protected branch.
pub fn no_push_to_main(branches: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let written = planned_branches(ctx, BRANCH_WRITES);
    if written.is_empty() {
        return Ok(Outcome::pass("No GitHub branch writes in this plan"));
    }
    let protected: Vec<&str> = written
        .iter()
        .copied()
        .filter(|b| is_protected(b, branches))
        .collect();
    if !protected.is_empty() {
        return Ok(Outcome::block(join_unique(
            protected
                .iter()
                .map(|b| format!("Direct push to '{b}' is blocked")),
        )));
    }
    Ok(Outcome::pass(match written.as_slice() {
        [one] => format!("Branch '{one}' is not protected ({})", plain_list(branches)),
        _ => format!(
            "Branches {} are not protected ({})",
            quoted_list(&written),
            plain_list(branches)
        ),
    }))
}

/// Blocks a branch created or pushed to that does not start with `prefix` (case-sensitive).
pub fn require_branch_prefix(prefix: &str, ctx: &Context<'_>) -> Result<Outcome, String> {
    let written = planned_branches(ctx, &[ActionName::CreateBranch, ActionName::PushCommit]);
    if written.is_empty() {
        return Ok(Outcome::pass("No branch created or pushed to in this plan"));
    }
    // The plan builder already drops `refs/heads/`; doing it here too keeps the policy right
    // on any plan.
    let bare = |b: &str| b.strip_prefix("refs/heads/").unwrap_or(b).to_string();
    let wrong: Vec<&str> = written
        .iter()
        .copied()
        .filter(|b| !bare(b).starts_with(prefix))
        .collect();
    if !wrong.is_empty() {
        return Ok(Outcome::block(join_unique(
            wrong
                .iter()
                .map(|b| format!("Branch '{b}' does not start with '{prefix}'")),
        )));
    }
    Ok(Outcome::pass(match written.as_slice() {
        [one] => format!("Branch '{one}' starts with '{prefix}'"),
        _ => format!("Branches {} start with '{prefix}'", quoted_list(&written)),
    }))
}

/// Blocks a `push_commit` that changes more than `max` files.
pub fn max_files_per_commit(max: u64, ctx: &Context<'_>) -> Result<Outcome, String> {
    let mut commits = Vec::new();
    for (_, a) in github(ctx.plan, &[ActionName::PushCommit]) {
        if let GithubAction::PushCommit { branch, files, .. } = a {
            let count = u64::try_from(files.len()).unwrap_or(u64::MAX);
            commits.push((branch.as_str(), count));
        }
    }
    let files = |n: u64| {
        if n == 1 {
            "1 file".to_string()
        } else {
            format!("{n} files")
        }
    };
    let too_big: Vec<String> = commits
        .iter()
        .filter(|(_, n)| *n > max)
        .map(|(b, n)| format!("Commit to '{b}' changes {} (max {max})", files(*n)))
        .collect();
    if !too_big.is_empty() {
        return Ok(Outcome::block(join_unique(too_big.into_iter())));
    }
    Ok(Outcome::pass(match commits.as_slice() {
        [] => "No push_commit in this plan".to_string(),
        [(b, n)] => format!("Commit to '{b}' changes {} (max {max})", files(*n)),
        many => {
            let largest = many.iter().map(|(_, n)| *n).max().unwrap_or(0);
            format!(
                "Each of {} commits changes at most {max} files (largest: {})",
                many.len(),
                files(largest)
            )
        }
    }))
}

/// Blocks any planned `delete_branch`.
pub fn no_delete_branch(ctx: &Context<'_>) -> Result<Outcome, String> {
    let deleted = planned_branches(ctx, &[ActionName::DeleteBranch]);
    if deleted.is_empty() {
        return Ok(Outcome::pass("No delete_branch in this plan"));
    }
    Ok(Outcome::block(join_unique(
        deleted
            .iter()
            .map(|b| format!("Deleting branch '{b}' is blocked")),
    )))
}

/// Blocks a `merge_pr` whose pull request's base branch — looked up by the engine before the
/// gate, in `ctx.facts.pr_bases` — is protected. A missing or failed lookup cannot be
/// judged: that is an error, so the gate fails closed.
pub fn no_merge_to_main(branches: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let mut merges = Vec::new();
    for (_, a) in github(ctx.plan, &[ActionName::MergePr]) {
        let GithubAction::MergePr { repo, number } = a else {
            continue;
        };
        let (repo, number) = (repo.as_str(), number.get());
        let base = match ctx.facts.pr_bases.get(&(repo.to_string(), number)) {
            Some(Ok(base)) => base.as_str(),
            Some(Err(e)) => {
                return Err(format!(
                    "could not look up the base branch of PR #{number} in '{repo}': {e}"
                ));
            }
            None => {
                return Err(format!(
                    "the base branch of PR #{number} in '{repo}' was not looked up"
                ));
            }
        };
        merges.push((repo, number, base));
    }
    let blocked: Vec<String> = merges
        .iter()
        .filter(|(_, _, base)| is_protected(base, branches))
        .map(|(repo, n, base)| format!("Merging PR #{n} in '{repo}' into '{base}' is blocked"))
        .collect();
    if !blocked.is_empty() {
        return Ok(Outcome::block(join_unique(blocked.into_iter())));
    }
    Ok(Outcome::pass(match merges.as_slice() {
        [] => "No merge_pr in this plan".to_string(),
        [(repo, n, base)] => {
            format!("PR #{n} in '{repo}' merges into '{base}', which is not protected")
        }
        _ => format!(
            "No planned merge targets a protected branch ({})",
            plain_list(branches)
        ),
    }))
}

/// The `branch` argument of each planned GitHub step among `actions`, as written and
/// each once.
fn planned_branches<'a>(ctx: &Context<'a>, actions: &'a [ActionName]) -> Vec<&'a str> {
    unique(
        github(ctx.plan, actions)
            .filter_map(|(_, a)| a.written_branch())
            .map(|b| b.as_str()),
    )
}

/// Whether `branch` names one of `protected`, compared by [`branch_key`].
fn is_protected(branch: &str, protected: &[String]) -> bool {
    let key = branch_key(branch);
    protected.iter().any(|p| branch_key(p) == key)
}

/// A branch name as SPEC §4 compares it: trimmed, lowercased, without leading `refs/heads/`.
/// The prefix is dropped repeatedly and case-insensitively: erring towards "protected" can
/// only block a strangely named branch, never let a write to `main` through.
fn branch_key(branch: &str) -> String {
    let mut key = branch.trim().to_lowercase();
    while let Some(rest) = key.strip_prefix("refs/heads/") {
        key = rest.trim().to_string();
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::context::{Actor, Facts};
    use crate::kernel::plan::Step;
    use chrono::{TimeZone, Utc};
    use serde_json::{Map, Value, json};

    fn gh(action: &str, args: Value) -> Step {
        let Value::Object(args) = args else {
            panic!("args must be an object")
        };
        crate::kernel::plan::test_steps::sample_step(
            "gh",
            crate::kernel::action::SystemKind::Github,
            action,
            &args,
        )
        .unwrap()
    }

    fn run_with(
        plan: &[Step],
        facts: &Facts,
        f: impl Fn(&Context<'_>) -> Result<Outcome, String>,
    ) -> Result<Outcome, String> {
        let actor = Actor {
            email: "a@b.c".into(),
            role: "engineer".into(),
        };
        let payload = Map::new();
        let now = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).single().unwrap();
        f(&Context {
            workflow: "w",
            actor: &actor,
            payload: &payload,
            plan,
            now,
            facts,
        })
    }

    fn run(
        plan: &[Step],
        f: impl Fn(&Context<'_>) -> Result<Outcome, String>,
    ) -> Result<Outcome, String> {
        run_with(plan, &Facts::default(), f)
    }

    fn main_master() -> Vec<String> {
        vec!["main".into(), "master".into()]
    }

    #[test]
    fn no_push_to_main_normalises_branch_names() {
        for (action, branch) in [
            ("push_commit", "main"),
            ("create_branch", "MAIN"),
            ("push_commit", "refs/heads/main"),
            ("push_commit", "REFS/HEADS/Master"),
            ("push_commit", "refs/heads/refs/heads/main"),
        ] {
            let plan = vec![gh(action, json!({"repo": "acme/app", "branch": branch}))];
            assert_eq!(
                run(&plan, |c| no_push_to_main(&main_master(), c)),
                Ok(Outcome::block(format!(
                    "Direct push to '{}' is blocked",
                    branch.strip_prefix("refs/heads/").unwrap_or(branch)
                ))),
                "{action} {branch}"
            );
        }
    }

    #[test]
    fn no_push_to_main_passes_other_branches_and_other_actions() {
        let plan = vec![
            gh(
                "create_branch",
                json!({"repo": "acme/app", "branch": "agent/x", "from_branch": "main"}),
            ),
            gh(
                "create_pr",
                json!({"repo": "acme/app", "head": "agent/x", "base": "main", "title": "t"}),
            ),
        ];
        assert_eq!(
            run(&plan, |c| no_push_to_main(&main_master(), c)),
            Ok(Outcome::pass(
                "Branch 'agent/x' is not protected (main, master)"
            ))
        );
        let two = vec![
            gh(
                "create_branch",
                json!({"repo": "acme/app", "branch": "agent/x"}),
            ),
            gh(
                "push_commit",
                json!({"repo": "acme/app", "branch": "mainline", "files": {}}),
            ),
        ];
        assert_eq!(
            run(&two, |c| no_push_to_main(&main_master(), c)),
            Ok(Outcome::pass(
                "Branches 'agent/x', 'mainline' are not protected (main, master)"
            ))
        );
        assert_eq!(
            run(&plan[1..], |c| no_push_to_main(&main_master(), c)),
            Ok(Outcome::pass("No GitHub branch writes in this plan"))
        );
        // Configured names are normalised too.
        let custom = vec![" Refs/Heads/Release ".to_string()];
        let rel = vec![gh(
            "push_commit",
            json!({"repo": "acme/app", "branch": "release"}),
        )];
        assert_eq!(
            run(&rel, |c| no_push_to_main(&custom, c)),
            Ok(Outcome::block("Direct push to 'release' is blocked"))
        );
    }

    #[test]
    fn no_push_to_main_reports_each_protected_branch_once() {
        let plan = vec![
            gh(
                "create_branch",
                json!({"repo": "acme/app", "branch": "main"}),
            ),
            gh("push_commit", json!({"repo": "acme/app", "branch": "main"})),
            gh(
                "delete_branch",
                json!({"repo": "acme/app", "branch": "master"}),
            ),
        ];
        assert_eq!(
            run(&plan, |c| no_push_to_main(&main_master(), c)),
            Ok(Outcome::block(
                "Direct push to 'main' is blocked; Direct push to 'master' is blocked"
            ))
        );
    }

    #[test]
    fn require_branch_prefix_is_case_sensitive() {
        let check = |action: &str, branch: &str| {
            let plan = vec![gh(action, json!({"repo": "acme/app", "branch": branch}))];
            run(&plan, |c| require_branch_prefix("agent/", c))
        };
        assert_eq!(
            check("create_branch", "agent/fix"),
            Ok(Outcome::pass("Branch 'agent/fix' starts with 'agent/'"))
        );
        assert_eq!(
            check("push_commit", "refs/heads/agent/fix"),
            Ok(Outcome::pass("Branch 'agent/fix' starts with 'agent/'"))
        );
        assert_eq!(
            check("push_commit", "Agent/fix"),
            Ok(Outcome::block(
                "Branch 'Agent/fix' does not start with 'agent/'"
            ))
        );
        assert_eq!(
            check("create_branch", "feature/x"),
            Ok(Outcome::block(
                "Branch 'feature/x' does not start with 'agent/'"
            ))
        );
        assert_eq!(
            check("delete_branch", "feature/x"),
            Ok(Outcome::pass("No branch created or pushed to in this plan"))
        );
    }

    #[test]
    fn max_files_per_commit_limit_is_inclusive() {
        let commit = |n: usize| {
            let files: Map<String, Value> =
                (0..n).map(|i| (format!("f{i}.txt"), json!("x"))).collect();
            gh(
                "push_commit",
                json!({"repo": "acme/app", "branch": "agent/x", "message": "m", "files": files}),
            )
        };
        assert_eq!(
            run(&[commit(2)], |c| max_files_per_commit(2, c)),
            Ok(Outcome::pass("Commit to 'agent/x' changes 2 files (max 2)"))
        );
        assert_eq!(
            run(&[commit(3)], |c| max_files_per_commit(2, c)),
            Ok(Outcome::block(
                "Commit to 'agent/x' changes 3 files (max 2)"
            ))
        );
        assert_eq!(
            run(&[commit(1)], |c| max_files_per_commit(0, c)),
            Ok(Outcome::block("Commit to 'agent/x' changes 1 file (max 0)"))
        );
        assert_eq!(
            run(&[commit(1), commit(2)], |c| max_files_per_commit(5, c)),
            Ok(Outcome::pass(
                "Each of 2 commits changes at most 5 files (largest: 2 files)"
            ))
        );
        assert_eq!(
            run(&[], |c| max_files_per_commit(5, c)),
            Ok(Outcome::pass("No push_commit in this plan"))
        );
    }

    #[test]
    fn no_delete_branch_blocks_any_delete() {
        let plan = vec![gh(
            "delete_branch",
            json!({"repo": "acme/app", "branch": "agent/old"}),
        )];
        assert_eq!(
            run(&plan, no_delete_branch),
            Ok(Outcome::block("Deleting branch 'agent/old' is blocked"))
        );
        assert_eq!(
            run(&[], no_delete_branch),
            Ok(Outcome::pass("No delete_branch in this plan"))
        );
    }

    #[test]
    fn no_merge_to_main_uses_looked_up_bases_and_fails_closed() {
        let plan = vec![gh("merge_pr", json!({"repo": "acme/app", "pr_number": 7}))];
        let facts_with = |base: Result<&str, &str>| {
            let mut f = Facts::default();
            f.pr_bases.insert(
                ("acme/app".into(), 7),
                base.map(str::to_string).map_err(str::to_string),
            );
            f
        };
        let judge = |facts: &Facts| run_with(&plan, facts, |c| no_merge_to_main(&main_master(), c));
        assert_eq!(
            judge(&facts_with(Ok("main"))),
            Ok(Outcome::block(
                "Merging PR #7 in 'acme/app' into 'main' is blocked"
            ))
        );
        assert_eq!(
            judge(&facts_with(Ok("Master"))),
            Ok(Outcome::block(
                "Merging PR #7 in 'acme/app' into 'Master' is blocked"
            ))
        );
        assert_eq!(
            judge(&facts_with(Ok("develop"))),
            Ok(Outcome::pass(
                "PR #7 in 'acme/app' merges into 'develop', which is not protected"
            ))
        );
        assert_eq!(
            judge(&facts_with(Err("404 Not Found"))),
            Err("could not look up the base branch of PR #7 in 'acme/app': 404 Not Found".into())
        );
        assert_eq!(
            judge(&Facts::default()),
            Err("the base branch of PR #7 in 'acme/app' was not looked up".into())
        );
        assert_eq!(
            run(&[], |c| no_merge_to_main(&main_master(), c)),
            Ok(Outcome::pass("No merge_pr in this plan"))
        );
        let float_number = vec![gh(
            "merge_pr",
            json!({"repo": "acme/app", "pr_number": 7.0}),
        )];
        assert_eq!(
            run_with(
                &float_number,
                &facts_with(Ok("main")),
                |c| no_merge_to_main(&main_master(), c)
            ),
            Ok(Outcome::block(
                "Merging PR #7 in 'acme/app' into 'main' is blocked"
            ))
        );
    }
}
