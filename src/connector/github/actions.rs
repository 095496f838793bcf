//! The six GitHub actions. Each one reads first (to detect "already done" and to capture what
//! its undo needs), then sends its write exactly once.

use octocrab::models::IssueState;
use octocrab::models::git::CreateTreeEntry;
use octocrab::params::{self, repos::Reference};
use serde_json::{Map, Value, json};

use super::client::{ref_path, short};
use super::errors;
use super::{ActionOutcome, Ctx};
use crate::connector::StepLog;

/// Pages of 100 open issues read to find one with the same title before giving up.
const MAX_ISSUE_PAGES: u32 = 100;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The idempotent case: the step record (`{"already_done": word, …output}`), then the outcome.
fn already_done(output: Value, word: &str, log: &mut dyn StepLog) -> ActionOutcome {
    let output = object(output);
    let mut pre = output.clone();
    pre.insert("already_done".into(), json!(word));
    if let Err(e) = log.before(Value::Object(pre)) {
        return ActionOutcome::failed(e);
    }
    ActionOutcome::already_done(output, word)
}

pub(super) async fn create_branch(
    cx: &Ctx<'_>,
    branch: &str,
    from: &str,
    log: &mut dyn StepLog,
) -> ActionOutcome {
    match cx.branch_head(branch).await {
        Ok(Some(sha)) => {
            return already_done(json!({"branch": branch, "sha": sha}), "created", log);
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
    let undo_data = json!({"repo": cx.repo.to_string(), "branch": branch, "sha": sha});
    if let Err(e) = log.before(undo_data.clone()) {
        return ActionOutcome::failed(e);
    }
    // The ref name travels in the JSON body, not the URL, so it is sent unencoded.
    match cx
        .repos()
        .create_ref(&Reference::Branch(branch.to_string()), &sha)
        .await
    {
        Ok(_) => ActionOutcome::ok(
            json!({"branch": branch, "sha": sha, "already_done": false}),
            undo_data,
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

pub(super) async fn delete_branch(
    cx: &Ctx<'_>,
    branch: &str,
    log: &mut dyn StepLog,
) -> ActionOutcome {
    let sha = match cx.branch_head(branch).await {
        Ok(Some(sha)) => sha,
        Ok(None) => {
            return match cx.missing_repo().await {
                Some(failure) => failure,
                None => already_done(json!({"branch": branch}), "deleted", log),
            };
        }
        Err(e) => return cx.fail(&format!("cannot look up branch '{branch}'"), &e),
    };
    let undo_data = json!({"repo": cx.repo.to_string(), "branch": branch, "sha": sha});
    if let Err(e) = log.before(undo_data.clone()) {
        return ActionOutcome::failed(e);
    }
    match cx
        .repos()
        .delete_ref(&Reference::Branch(ref_path(branch)))
        .await
    {
        Ok(()) => ActionOutcome::ok(
            json!({"branch": branch, "sha": sha, "already_done": false}),
            undo_data,
        ),
        // Deleted by someone else since the lookup above: the desired state holds.
        Err(e) if errors::github_message(&e).as_deref() == Some("Reference does not exist") => {
            ActionOutcome::already_done(object(json!({"branch": branch})), "deleted")
        }
        Err(e) => cx.fail_write(&format!("cannot delete branch '{branch}'"), &e),
    }
}

/// The open pull request from `head` into `base` (number and web address), if there is one.
pub(super) async fn find_open_pr(
    cx: &Ctx<'_>,
    head: &str,
    base: &str,
) -> Result<Option<(u64, String)>, ActionOutcome> {
    let page = cx
        .pulls()
        .list()
        .state(params::State::Open)
        .head(format!("{}:{head}", cx.repo.owner))
        .base(base)
        .per_page(100u8)
        .send()
        .await
        .map_err(|e| {
            cx.fail(
                &format!("cannot list open pull requests from '{head}' into '{base}'"),
                &e,
            )
        })?;
    // Filtered again here in case a GitHub-compatible API ignores the query parameters.
    Ok(page
        .items
        .iter()
        .find(|p| p.head.ref_field == head && p.base.ref_field == base)
        .map(|pr| {
            let url = pr
                .html_url
                .as_ref()
                .map_or_else(|| pr.url.clone(), ToString::to_string);
            (pr.number, url)
        }))
}

/// The open issue titled `title` (number and web address), if there is one.
pub(super) async fn find_open_issue(
    cx: &Ctx<'_>,
    title: &str,
) -> Result<Option<(u64, String)>, ActionOutcome> {
    let mut page_no = 1;
    loop {
        let page = cx
            .issues()
            .list()
            .state(params::State::Open)
            .per_page(100u8)
            .page(page_no)
            .send()
            .await
            .map_err(|e| cx.fail("cannot list open issues", &e))?;
        // The issues list also holds pull requests; only real issues count.
        if let Some(issue) = page
            .items
            .iter()
            .find(|i| i.pull_request.is_none() && i.title == title)
        {
            return Ok(Some((issue.number, issue.html_url.to_string())));
        }
        if page.next.is_none() {
            return Ok(None);
        }
        if page_no == MAX_ISSUE_PAGES {
            return Err(cx.refuse(format!(
                "more than {} open issues: cannot check for one titled {title:?}",
                MAX_ISSUE_PAGES * 100
            )));
        }
        page_no += 1;
    }
}

pub(super) async fn create_pr(
    cx: &Ctx<'_>,
    title: &str,
    head: &str,
    base: &str,
    body: &str,
    log: &mut dyn StepLog,
) -> ActionOutcome {
    match find_open_pr(cx, head, base).await {
        Ok(Some((number, url))) => {
            return already_done(json!({"pr_number": number, "url": url}), "created", log);
        }
        Ok(None) => {}
        Err(failure) => return failure,
    }
    let pre = json!({"repo": cx.repo.to_string(), "head": head, "base": base, "title": title});
    if let Err(e) = log.before(pre) {
        return ActionOutcome::failed(e);
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

pub(super) async fn create_issue(
    cx: &Ctx<'_>,
    title: &str,
    body: &str,
    log: &mut dyn StepLog,
) -> ActionOutcome {
    match find_open_issue(cx, title).await {
        Ok(Some((number, url))) => {
            return already_done(json!({"issue_number": number, "url": url}), "created", log);
        }
        Ok(None) => {}
        Err(failure) => return failure,
    }
    if let Err(e) = log.before(json!({"repo": cx.repo.to_string(), "title": title})) {
        return ActionOutcome::failed(e);
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
pub(super) async fn merge_pr(cx: &Ctx<'_>, number: u64, log: &mut dyn StepLog) -> ActionOutcome {
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
        return already_done(
            json!({"pr_number": number, "merged": true, "sha": sha, "base": base}),
            "merged",
            log,
        );
    }
    if pr.state == Some(IssueState::Closed) {
        return cx.refuse(format!(
            "pull request #{number} is closed without being merged"
        ));
    }
    let pre = json!({"repo": cx.repo.to_string(), "pr_number": number, "head_sha": pr.head.sha, "base": base});
    if let Err(e) = log.before(pre) {
        return ActionOutcome::failed(e);
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
    log: &mut dyn StepLog,
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
    let undo_data =
        json!({"repo": cx.repo.to_string(), "branch": branch, "sha": commit, "parent_sha": parent});
    if let Err(e) = log.before(undo_data.clone()) {
        return ActionOutcome::failed(e);
    }
    match cx
        .repos()
        .update_ref(&Reference::Branch(ref_path(branch)), &commit)
        .force(false)
        .send()
        .await
    {
        Ok(_) => ActionOutcome::ok(
            json!({"branch": branch, "sha": commit, "parent_sha": parent, "files": files.len(), "already_done": false}),
            undo_data,
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
