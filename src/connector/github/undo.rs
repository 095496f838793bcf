//! Undo of recorded GitHub actions (SPEC §6). Each step first checks that GitHub still holds
//! what the run left (the branch at the recorded sha, the pull request or issue it opened);
//! if not, it fails saying what changed and overwrites nothing.

use octocrab::models::IssueState;
use octocrab::params::{self, repos::Reference};
use serde_json::{Value, json};

use super::client::{ref_path, short};
use super::{ActionOutcome, Ctx};
use crate::kernel::plan::validate_branch;

pub(super) async fn run(cx: &Ctx<'_>, action: &str, data: &Value) -> ActionOutcome {
    let result = match action {
        "create_branch" => match (branch(data), sha(data, "sha")) {
            (Ok(b), Ok(s)) => delete_created_branch(cx, &b, &s).await,
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        "delete_branch" => match (branch(data), sha(data, "sha")) {
            (Ok(b), Ok(s)) => recreate_branch(cx, &b, &s).await,
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        "push_commit" => match (branch(data), sha(data, "sha"), sha(data, "parent_sha")) {
            (Ok(b), Ok(s), Ok(p)) => reset_branch(cx, &b, &s, &p).await,
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
        },
        "create_pr" => match number(data, "pr_number") {
            Ok(n) => close_pr(cx, n).await,
            Err(e) => Err(e),
        },
        "create_issue" => match number(data, "issue_number") {
            Ok(n) => close_issue(cx, n).await,
            Err(e) => Err(e),
        },
        other => {
            return ActionOutcome::failed(format!(
                "'{other}' is not a github action that can be undone"
            ));
        }
    };
    result.unwrap_or_else(|outcome| outcome)
}

type Step = Result<ActionOutcome, ActionOutcome>;

fn missing(field: &str) -> ActionOutcome {
    ActionOutcome::failed(format!(
        "cannot undo: the recorded rollback_data has no valid `{field}`"
    ))
}

fn branch(data: &Value) -> Result<String, ActionOutcome> {
    let b = data
        .get("branch")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("branch"))?;
    validate_branch(b).map_err(|_| missing("branch"))?;
    Ok(b.to_string())
}

/// A recorded sha: hex only, so it can go into a URL or body as-is.
fn sha(data: &Value, field: &str) -> Result<String, ActionOutcome> {
    let s = data
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(field))?;
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(missing(field));
    }
    Ok(s.to_string())
}

fn number(data: &Value, field: &str) -> Result<u64, ActionOutcome> {
    data.get(field)
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .ok_or_else(|| missing(field))
}

fn done(output: Value) -> ActionOutcome {
    ActionOutcome::ok(output, json!({}))
}

async fn head(cx: &Ctx<'_>, branch: &str) -> Result<Option<String>, ActionOutcome> {
    cx.branch_head(branch)
        .await
        .map_err(|e| cx.fail(&format!("cannot look up branch '{branch}'"), &e))
}

/// `create_branch`: delete it, only if it still points at the sha the run created it at.
async fn delete_created_branch(cx: &Ctx<'_>, branch: &str, sha: &str) -> Step {
    let now = match head(cx, branch).await? {
        None => {
            return match cx.missing_repo().await {
                Some(failure) => Err(failure),
                None => Ok(done(json!({"branch": branch, "already_done": "deleted"}))),
            };
        }
        Some(now) => now,
    };
    if now != sha {
        return Err(ActionOutcome::failed(format!(
            "branch '{branch}' on {} moved from {} to {} since the run — not deleted",
            cx.repo,
            short(sha),
            short(&now)
        )));
    }
    match cx
        .repos()
        .delete_ref(&Reference::Branch(ref_path(branch)))
        .await
    {
        Ok(()) => Ok(done(json!({"branch": branch, "deleted_sha": sha}))),
        Err(e) => Err(cx.fail_write(&format!("cannot delete branch '{branch}'"), &e)),
    }
}

/// `delete_branch`: recreate it at the sha it had; already there is fine, elsewhere is not.
async fn recreate_branch(cx: &Ctx<'_>, branch: &str, sha: &str) -> Step {
    if let Some(now) = head(cx, branch).await? {
        if now == sha {
            return Ok(done(
                json!({"branch": branch, "sha": sha, "already_done": "created"}),
            ));
        }
        return Err(ActionOutcome::failed(format!(
            "branch '{branch}' on {} exists again at {}, not at the recorded {} — not recreated",
            cx.repo,
            short(&now),
            short(sha)
        )));
    }
    match cx
        .repos()
        .create_ref(&Reference::Branch(branch.to_string()), sha)
        .await
    {
        Ok(_) => Ok(done(json!({"branch": branch, "sha": sha}))),
        Err(e) => Err(cx.fail_write(
            &format!("cannot recreate branch '{branch}' at {}", short(sha)),
            &e,
        )),
    }
}

/// `push_commit`: move the branch back to the parent, only if its head is still the pushed
/// commit. (GitHub has no compare-and-swap for refs: a push landing between the check and the
/// reset would be undone too; the window is one request long.)
async fn reset_branch(cx: &Ctx<'_>, branch: &str, pushed: &str, parent: &str) -> Step {
    let now = match head(cx, branch).await? {
        None => {
            return Err(ActionOutcome::failed(format!(
                "branch '{branch}' on {} no longer exists — not reset to {}",
                cx.repo,
                short(parent)
            )));
        }
        Some(now) => now,
    };
    if now == parent {
        return Ok(done(
            json!({"branch": branch, "sha": parent, "already_done": "reset"}),
        ));
    }
    if now != pushed {
        return Err(ActionOutcome::failed(format!(
            "branch '{branch}' on {} moved from {} to {} since the run — not reset",
            cx.repo,
            short(pushed),
            short(&now)
        )));
    }
    match cx
        .repos()
        .update_ref(&Reference::Branch(ref_path(branch)), parent)
        .force(true)
        .send()
        .await
    {
        Ok(_) => Ok(done(
            json!({"branch": branch, "sha": parent, "removed_sha": pushed}),
        )),
        Err(e) => Err(cx.fail_write(
            &format!("cannot move branch '{branch}' back to {}", short(parent)),
            &e,
        )),
    }
}

/// `create_pr`: close it. Already closed is fine; merged since the run cannot be closed.
async fn close_pr(cx: &Ctx<'_>, number: u64) -> Step {
    let pr = cx
        .pulls()
        .get(number)
        .await
        .map_err(|e| cx.fail(&format!("cannot read pull request #{number}"), &e))?;
    if pr.merged == Some(true) || pr.merged_at.is_some() {
        return Err(ActionOutcome::failed(format!(
            "pull request #{number} on {} was merged since the run — it cannot be closed",
            cx.repo
        )));
    }
    if pr.state == Some(IssueState::Closed) {
        return Ok(done(
            json!({"pr_number": number, "state": "closed", "already_done": "closed"}),
        ));
    }
    match cx
        .pulls()
        .update(number)
        .state(params::pulls::State::Closed)
        .send()
        .await
    {
        Ok(_) => Ok(done(json!({"pr_number": number, "state": "closed"}))),
        Err(e) => Err(cx.fail_write(&format!("cannot close pull request #{number}"), &e)),
    }
}

/// `create_issue`: close it. Already closed is fine.
async fn close_issue(cx: &Ctx<'_>, number: u64) -> Step {
    let issue = cx
        .issues()
        .get(number)
        .await
        .map_err(|e| cx.fail(&format!("cannot read issue #{number}"), &e))?;
    if issue.state == IssueState::Closed {
        return Ok(done(
            json!({"issue_number": number, "state": "closed", "already_done": "closed"}),
        ));
    }
    match cx
        .issues()
        .update(number)
        .state(IssueState::Closed)
        .send()
        .await
    {
        Ok(_) => Ok(done(json!({"issue_number": number, "state": "closed"}))),
        Err(e) => Err(cx.fail_write(&format!("cannot close issue #{number}"), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_shas_must_be_hex() {
        assert!(sha(&json!({"sha": "abc123"}), "sha").is_ok());
        for bad in [
            json!({}),
            json!({"sha": ""}),
            json!({"sha": "../x"}),
            json!({"sha": 5}),
        ] {
            let err = sha(&bad, "sha").err().map(|o| o.output);
            assert_eq!(
                err,
                Some(
                    json!({"error": "cannot undo: the recorded rollback_data has no valid `sha`"})
                )
            );
        }
    }
}
