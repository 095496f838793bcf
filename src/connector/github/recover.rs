//! Recovery of an interrupted GitHub action (SPEC §5.5): GitHub is asked whether what the step
//! record planned exists — the branch at the planned sha, the ref moved to the new commit, an
//! open pull request from head into base, an open issue with the title, the pull request
//! merged (`Done`) — or whether the state before still holds (`NotDone`; for `merge_pr`: not
//! merged, since no one can unmerge). Anything else, or a question GitHub does not answer, is
//! `Unknown`, and the recorded data is kept for undo.

use octocrab::models::IssueState;
use octocrab::params;
use serde_json::{Map, Value, json};

use super::actions::{find_open_issue, find_open_pr};
use super::client::short;
use super::{ActionOutcome, Ctx};
use crate::connector::Recovered;

/// Pages of 100 closed issues searched for one with the action's title.
const CLOSED_PAGES: u32 = 10;

pub(super) async fn run(
    cx: &Ctx<'_>,
    action: &str,
    args: &Map<String, Value>,
    pre: &Value,
) -> (Recovered, ActionOutcome) {
    let text = |field: &str| pre.get(field).and_then(Value::as_str).unwrap_or_default();
    let repo = cx.repo.to_string();
    match action {
        "create_branch" => {
            let (branch, sha) = (text("branch"), text("sha"));
            match cx.branch_head(branch).await {
                Ok(Some(now)) if now == sha => (
                    Recovered::Done,
                    ActionOutcome::ok(
                        json!({"branch": branch, "sha": sha, "already_done": false}),
                        json!({"repo": repo, "branch": branch, "sha": sha}),
                    ),
                ),
                Ok(None) => not_done(format!("branch '{branch}' was not created")),
                Ok(Some(now)) => unknown(
                    pre,
                    &format!(
                        "branch '{branch}' exists at {}, not at the planned {}",
                        short(&now),
                        short(sha)
                    ),
                ),
                Err(e) => unknown(
                    pre,
                    &failed(cx, &format!("cannot look up branch '{branch}'"), &e),
                ),
            }
        }
        "delete_branch" => {
            let (branch, sha) = (text("branch"), text("sha"));
            match cx.branch_head(branch).await {
                Ok(None) => match cx.missing_repo().await {
                    None => (
                        Recovered::Done,
                        ActionOutcome::ok(
                            json!({"branch": branch, "sha": sha, "already_done": false}),
                            json!({"repo": repo, "branch": branch, "sha": sha}),
                        ),
                    ),
                    Some(failure) => {
                        unknown(pre, failure.error().unwrap_or("the repository is gone"))
                    }
                },
                Ok(Some(now)) if now == sha => {
                    not_done(format!("branch '{branch}' still points at {}", short(sha)))
                }
                Ok(Some(now)) => unknown(
                    pre,
                    &format!(
                        "branch '{branch}' exists at {}, not at the recorded {}",
                        short(&now),
                        short(sha)
                    ),
                ),
                Err(e) => unknown(
                    pre,
                    &failed(cx, &format!("cannot look up branch '{branch}'"), &e),
                ),
            }
        }
        "push_commit" => {
            let (branch, sha, parent) = (text("branch"), text("sha"), text("parent_sha"));
            let files = args
                .get("files")
                .and_then(Value::as_object)
                .map_or(0, Map::len);
            match cx.branch_head(branch).await {
                Ok(Some(now)) if now == sha => (
                    Recovered::Done,
                    ActionOutcome::ok(
                        json!({"branch": branch, "sha": sha, "parent_sha": parent, "files": files, "already_done": false}),
                        json!({"repo": repo, "branch": branch, "sha": sha, "parent_sha": parent}),
                    ),
                ),
                Ok(Some(now)) if now == parent => not_done(format!(
                    "branch '{branch}' still points at {}",
                    short(parent)
                )),
                Ok(Some(now)) => unknown(
                    pre,
                    &format!(
                        "branch '{branch}' points at {}: neither the parent {} nor the pushed {}",
                        short(&now),
                        short(parent),
                        short(sha)
                    ),
                ),
                Ok(None) => unknown(pre, &format!("branch '{branch}' no longer exists")),
                Err(e) => unknown(
                    pre,
                    &failed(cx, &format!("cannot look up branch '{branch}'"), &e),
                ),
            }
        }
        "create_pr" => {
            let (head, base) = (text("head"), text("base"));
            match find_open_pr(cx, head, base).await {
                Ok(Some((number, url))) => (
                    Recovered::Done,
                    ActionOutcome::ok(
                        json!({"pr_number": number, "url": url, "already_done": false}),
                        json!({"repo": repo, "pr_number": number}),
                    ),
                ),
                // None open: one closed since may be the one the action opened.
                Ok(None) => match closed_pr(cx, head, base, text("title")).await {
                    Ok(None) => not_done(format!(
                        "there is no open pull request from '{head}' into '{base}'"
                    )),
                    Ok(Some(number)) => unknown(
                        pre,
                        &format!(
                            "no open pull request from '{head}' into '{base}', but #{number} with that title is closed"
                        ),
                    ),
                    Err(why) => unknown(pre, &why),
                },
                Err(failure) => {
                    unknown(pre, failure.error().unwrap_or("cannot list pull requests"))
                }
            }
        }
        "create_issue" => {
            let title = text("title");
            match find_open_issue(cx, title).await {
                Ok(Some((number, url))) => (
                    Recovered::Done,
                    ActionOutcome::ok(
                        json!({"issue_number": number, "url": url, "already_done": false}),
                        json!({"repo": repo, "issue_number": number}),
                    ),
                ),
                // None open: one closed since may be the one the action opened.
                Ok(None) => match closed_issue(cx, title).await {
                    Ok(None) => not_done(format!("there is no open issue titled {title:?}")),
                    Ok(Some(number)) => unknown(
                        pre,
                        &format!(
                            "no open issue titled {title:?}, but #{number} with that title is closed"
                        ),
                    ),
                    Err(why) => unknown(pre, &why),
                },
                Err(failure) => unknown(pre, failure.error().unwrap_or("cannot list issues")),
            }
        }
        "merge_pr" => {
            let Some(number) = pre.get("pr_number").and_then(Value::as_u64) else {
                return unknown(pre, "the step record has no `pr_number`");
            };
            let pr = match cx.pulls().get(number).await {
                Ok(pr) => pr,
                Err(e) => {
                    return unknown(
                        pre,
                        &failed(cx, &format!("cannot read pull request #{number}"), &e),
                    );
                }
            };
            let base = pr.base.ref_field.clone();
            if pr.merged == Some(true) || pr.merged_at.is_some() {
                let sha = pr
                    .merge_commit_sha
                    .clone()
                    .map_or(Value::Null, Value::String);
                return (
                    Recovered::Done,
                    ActionOutcome::ok(
                        json!({"pr_number": number, "merged": true, "sha": sha, "base": base, "already_done": false}),
                        json!({"repo": repo, "pr_number": number, "sha": sha, "base": base}),
                    ),
                );
            }
            // A merge cannot be undone by anyone: a pull request that is not merged now was
            // not merged by the action, whatever happened to it since.
            let state = if pr.state == Some(IssueState::Closed) {
                "closed without being merged"
            } else {
                "still open and not merged"
            };
            not_done(format!("pull request #{number} is {state}"))
        }
        other => unknown(pre, &format!("`{other}` is not a github action")),
    }
}

/// A closed pull request from `head` into `base` titled `title` (its number), if any.
async fn closed_pr(
    cx: &Ctx<'_>,
    head: &str,
    base: &str,
    title: &str,
) -> Result<Option<u64>, String> {
    let page = cx
        .pulls()
        .list()
        .state(params::State::Closed)
        .head(format!("{}:{head}", cx.repo.owner))
        .base(base)
        .per_page(100u8)
        .send()
        .await
        .map_err(|e| {
            failed(
                cx,
                &format!("cannot list closed pull requests from '{head}' into '{base}'"),
                &e,
            )
        })?;
    Ok(page
        .items
        .iter()
        .find(|p| {
            p.head.ref_field == head
                && p.base.ref_field == base
                && p.title.as_deref() == Some(title)
        })
        .map(|p| p.number))
}

/// A closed issue titled `title` (its number), if any among the newest [`CLOSED_PAGES`] pages.
async fn closed_issue(cx: &Ctx<'_>, title: &str) -> Result<Option<u64>, String> {
    for page_no in 1..=CLOSED_PAGES {
        let page = cx
            .issues()
            .list()
            .state(params::State::Closed)
            .per_page(100u8)
            .page(page_no)
            .send()
            .await
            .map_err(|e| failed(cx, "cannot list closed issues", &e))?;
        if let Some(issue) = page
            .items
            .iter()
            .find(|i| i.pull_request.is_none() && i.title == title)
        {
            return Ok(Some(issue.number));
        }
        if page.next.is_none() {
            return Ok(None);
        }
    }
    Err(format!(
        "more than {} closed issues: cannot tell whether one titled {title:?} is the action's",
        CLOSED_PAGES * 100
    ))
}

fn failed(cx: &Ctx<'_>, context: &str, e: &octocrab::Error) -> String {
    cx.fail(context, e).error().unwrap_or(context).to_string()
}

fn not_done(why: String) -> (Recovered, ActionOutcome) {
    (
        Recovered::NotDone,
        ActionOutcome::ok(json!({"not_done": why}), json!({})),
    )
}

/// Neither state found (or GitHub could not say): the recorded undo data is kept, so an undo
/// runs with its usual guard (branch at the recorded sha, …) and refuses otherwise.
pub(super) fn unknown(pre: &Value, why: &str) -> (Recovered, ActionOutcome) {
    (
        Recovered::Unknown,
        ActionOutcome::ok(
            json!({"already_done": false, "unknown": why}),
            Value::Object(pre.as_object().cloned().unwrap_or_default()),
        ),
    )
}
