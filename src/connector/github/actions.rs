//! The six GitHub actions. Each one reads first (to detect "already done" and to capture what
//! its undo needs), then sends its write exactly once.

use octocrab::models::IssueState;
use octocrab::models::git::CreateTreeEntry;
use octocrab::params::{self, repos::Reference};
use serde_json::{Map, Value, json};

use super::client::{ref_path, short};
use super::errors;
use super::{ActionOutcome, Ctx};

/// Pages of 100 open issues read to find one with the same title before giving up.
const MAX_ISSUE_PAGES: u32 = 100;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

pub(super) async fn create_branch(cx: &Ctx<'_>, branch: &str, from: &str) -> ActionOutcome {
    match cx.branch_head(branch).await {
        Ok(Some(sha)) => {
            return ActionOutcome::already_done(
                object(json!({"branch": branch, "sha": sha})),
                "created",
            );
        }
        Ok(None) => {}
        Err(e) => return cx.fail(&format!("cannot look up branch '{branch}'"), &e),
    }
    let sha = match cx.branch_head(from).await {
        Ok(Some(sha)) => sha,
        Ok(None) => {
            return match cx.missing_repo().await {
                Some(failure) => failure,
                None => cx.refuse(format!(
                    "cannot create branch '{branch}': base branch '{from}' does not exist"
                )),
            };
        }
        Err(e) => return cx.fail(&format!("cannot look up base branch '{from}'"), &e),
    };
    // The ref name travels in the JSON body, not the URL, so it is sent unencoded.
    match cx
        .repos()
        .create_ref(&Reference::Branch(branch.to_string()), &sha)
        .await
    {
        Ok(_) => ActionOutcome::ok(
            json!({"branch": branch, "sha": sha, "already_done": false}),
            json!({"repo": cx.repo.to_string(), "branch": branch, "sha": sha}),
        ),
        // Created by someone else since the lookup above: the desired state holds.
        Err(e) if errors::github_message(&e).as_deref() == Some("Reference already exists") => {
            match cx.branch_head(branch).await {
                Ok(Some(now)) => ActionOutcome::already_done(
                    object(json!({"branch": branch, "sha": now})),
                    "created",
                ),
                _ => cx.fail_write(
                    &format!("cannot create branch '{branch}' at {}", short(&sha)),
                    &e,
                ),
            }
        }
        Err(e) => cx.fail_write(
            &format!("cannot create branch '{branch}' at {}", short(&sha)),
            &e,
        ),
    }
}

pub(super) async fn delete_branch(cx: &Ctx<'_>, branch: &str) -> ActionOutcome {
    let sha = match cx.branch_head(branch).await {
        Ok(Some(sha)) => sha,
        Ok(None) => {
            return match cx.missing_repo().await {
                Some(failure) => failure,
                None => ActionOutcome::already_done(object(json!({"branch": branch})), "deleted"),
            };
        }
        Err(e) => return cx.fail(&format!("cannot look up branch '{branch}'"), &e),
    };
    match cx
        .repos()
        .delete_ref(&Reference::Branch(ref_path(branch)))
        .await
    {
        Ok(()) => ActionOutcome::ok(
            json!({"branch": branch, "sha": sha, "already_done": false}),
            json!({"repo": cx.repo.to_string(), "branch": branch, "sha": sha}),
        ),
        // Deleted by someone else since the lookup above: the desired state holds.
        Err(e) if errors::github_message(&e).as_deref() == Some("Reference does not exist") => {
            ActionOutcome::already_done(object(json!({"branch": branch})), "deleted")
        }
        Err(e) => cx.fail_write(&format!("cannot delete branch '{branch}'"), &e),
    }
}

pub(super) async fn create_pr(
    cx: &Ctx<'_>,
    title: &str,
    head: &str,
    base: &str,
    body: &str,
) -> ActionOutcome {
    let open = cx
        .pulls()
        .list()
        .state(params::State::Open)
        .head(format!("{}:{head}", cx.repo.owner))
        .base(base)
        .per_page(100u8)
        .send()
        .await;
    match open {
        // Filtered again here in case a GitHub-compatible API ignores the query parameters.
        Ok(page) => {
            if let Some(pr) = page
                .items
                .iter()
                .find(|p| p.head.ref_field == head && p.base.ref_field == base)
            {
                let url = pr
                    .html_url
                    .as_ref()
                    .map_or_else(|| pr.url.clone(), ToString::to_string);
                return ActionOutcome::already_done(
                    object(json!({"pr_number": pr.number, "url": url})),
                    "created",
                );
            }
        }
        Err(e) => {
            return cx.fail(
                &format!("cannot list open pull requests from '{head}' into '{base}'"),
                &e,
            );
        }
    }
    match cx.pulls().create(title, head, base).body(body).send().await {
        Ok(pr) => {
            let url = pr
                .html_url
                .as_ref()
                .map_or_else(|| pr.url.clone(), ToString::to_string);
            ActionOutcome::ok(
                json!({"pr_number": pr.number, "url": url, "already_done": false}),
                json!({"repo": cx.repo.to_string(), "pr_number": pr.number}),
            )
        }
        Err(e) => cx.fail_write("", &e),
    }
}

pub(super) async fn create_issue(cx: &Ctx<'_>, title: &str, body: &str) -> ActionOutcome {
    let mut page_no = 1;
    loop {
        let page = match cx
            .issues()
            .list()
            .state(params::State::Open)
            .per_page(100u8)
            .page(page_no)
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) => return cx.fail("cannot list open issues", &e),
        };
        // The issues list also holds pull requests; only real issues count.
        if let Some(issue) = page
            .items
            .iter()
            .find(|i| i.pull_request.is_none() && i.title == title)
        {
            return ActionOutcome::already_done(
                object(json!({"issue_number": issue.number, "url": issue.html_url.to_string()})),
                "created",
            );
        }
        if page.next.is_none() {
            break;
        }
        if page_no == MAX_ISSUE_PAGES {
            return cx.refuse(format!(
                "more than {} open issues: cannot check for one titled {title:?}",
                MAX_ISSUE_PAGES * 100
            ));
        }
        page_no += 1;
    }
    match cx.issues().create(title).body(body).send().await {
        Ok(issue) => ActionOutcome::ok(
            json!({"issue_number": issue.number, "url": issue.html_url.to_string(), "already_done": false}),
            json!({"repo": cx.repo.to_string(), "issue_number": issue.number}),
        ),
        Err(e) => cx.fail_write("", &e),
    }
}

/// Re-reads the pull request right before merging (the policy gate judged its base earlier)
/// and merges exactly the head it saw (`sha`), so a head pushed in between is refused (409).
pub(super) async fn merge_pr(cx: &Ctx<'_>, number: u64) -> ActionOutcome {
    let pr = match cx.pulls().get(number).await {
        Ok(pr) => pr,
        Err(e) => return cx.fail(&format!("cannot read pull request #{number}"), &e),
    };
    let base = pr.base.ref_field.clone();
    if pr.merged == Some(true) || pr.merged_at.is_some() {
        let sha = pr
            .merge_commit_sha
            .clone()
            .map_or(Value::Null, Value::String);
        return ActionOutcome::already_done(
            object(json!({"pr_number": number, "merged": true, "sha": sha, "base": base})),
            "merged",
        );
    }
    if pr.state == Some(IssueState::Closed) {
        return cx.refuse(format!(
            "pull request #{number} is closed without being merged"
        ));
    }
    match cx
        .pulls()
        .merge(number)
        .sha(pr.head.sha.clone())
        .send()
        .await
    {
        Ok(merge) if merge.merged => {
            let sha = merge.sha.unwrap_or_default();
            ActionOutcome::ok(
                json!({"pr_number": number, "merged": true, "sha": sha, "base": base, "already_done": false}),
                json!({"repo": cx.repo.to_string(), "pr_number": number, "sha": sha, "base": base}),
            )
        }
        Ok(merge) => cx.refuse(format!(
            "pull request #{number} was not merged: GitHub said: {}",
            merge.message.unwrap_or_else(|| "no reason given".into())
        )),
        Err(e) => cx.fail_write(
            &format!("cannot merge pull request #{number} into '{base}'"),
            &e,
        ),
    }
}

/// One commit holding every file, through the git data API: branch head → its commit's tree →
/// a new tree on top of it (contents inline) → a commit with the head as parent → the branch
/// moved to it without force, so a branch that moved meanwhile is refused, not overwritten.
pub(super) async fn push_commit(
    cx: &Ctx<'_>,
    branch: &str,
    message: &str,
    files: &[(String, String)],
) -> ActionOutcome {
    let parent = match cx.branch_head(branch).await {
        Ok(Some(sha)) => sha,
        Ok(None) => {
            return match cx.missing_repo().await {
                Some(failure) => failure,
                None => cx.refuse(format!("branch '{branch}' does not exist")),
            };
        }
        Err(e) => return cx.fail(&format!("cannot look up branch '{branch}'"), &e),
    };
    let base_tree = match cx.repos().get_commit(&parent).await {
        Ok(commit) => commit.tree.sha,
        Err(e) => {
            return cx.fail(
                &format!("cannot read commit {} of branch '{branch}'", short(&parent)),
                &e,
            );
        }
    };
    let entries = files
        .iter()
        .map(|(path, content)| CreateTreeEntry::new(path, "100644", "blob").with_content(content))
        .collect();
    let tree = match cx
        .repos()
        .create_tree(entries)
        .base_tree(base_tree)
        .send()
        .await
    {
        Ok(tree) => tree.sha,
        Err(e) => return cx.fail(&format!("cannot create the tree for branch '{branch}'"), &e),
    };
    let commit = match cx
        .repos()
        .git()
        .create_commit(message, tree)
        .parents(vec![parent.clone()])
        .send()
        .await
    {
        Ok(commit) => commit.sha,
        Err(e) => {
            return cx.fail(
                &format!("cannot create the commit for branch '{branch}'"),
                &e,
            );
        }
    };
    match cx
        .repos()
        .update_ref(&Reference::Branch(ref_path(branch)), &commit)
        .force(false)
        .send()
        .await
    {
        Ok(_) => ActionOutcome::ok(
            json!({"branch": branch, "sha": commit, "parent_sha": parent, "files": files.len(), "already_done": false}),
            json!({"repo": cx.repo.to_string(), "branch": branch, "sha": commit, "parent_sha": parent}),
        ),
        Err(e) => cx.fail_write(
            &format!(
                "cannot move branch '{branch}' from {} to {}",
                short(&parent),
                short(&commit)
            ),
            &e,
        ),
    }
}
