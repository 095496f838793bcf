//! The JSON shapes of the fake GitHub's objects (repos, refs, commits, trees, pulls, issues).

use super::*;

pub(super) fn repo_json(repo: &Repo, u: &Urls) -> Value {
    json!({
        "id": repo.id, "node_id": format!("R_{}", repo.id), "name": repo.name,
        "full_name": repo.full_name(), "private": false, "default_branch": repo.default_branch,
        "url": u.api(""), "html_url": u.html(""),
    })
}

pub(super) fn ref_json(u: &Urls, branch: &str, sha: &str) -> Value {
    let encoded = utf8_percent_encode(branch, PATH_KEEP).to_string();
    json!({
        "ref": format!("refs/heads/{branch}"),
        "node_id": format!("REF_{}", hex::encode(branch)),
        "url": u.api(&format!("/git/refs/heads/{encoded}")),
        "object": {"type": "commit", "sha": sha, "url": u.api(&format!("/git/commits/{sha}"))},
    })
}

pub(super) fn commit_json(repo: &Repo, u: &Urls, sha: &str) -> Value {
    let Some(c) = repo.commits.get(sha) else {
        return Value::Null;
    };
    let person = json!({"name": "Enact Fake", "email": "fake@enact.invalid", "date": c.date});
    let parents: Vec<Value> = c
        .parents
        .iter()
        .map(|p| json!({"sha": p, "url": u.api(&format!("/git/commits/{p}")), "html_url": u.html(&format!("/commit/{p}"))}))
        .collect();
    json!({
        "sha": sha, "node_id": format!("C_{sha}"),
        "url": u.api(&format!("/git/commits/{sha}")), "html_url": u.html(&format!("/commit/{sha}")),
        "author": person, "committer": person, "message": c.message,
        "tree": {"sha": c.tree, "url": u.api(&format!("/git/trees/{}", c.tree))},
        "parents": parents,
        "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null},
    })
}

pub(super) fn tree_json(repo: &Repo, u: &Urls, sha: &str, tree: &Tree) -> Value {
    let entries: Vec<Value> = tree
        .iter()
        .map(|(path, blob)| {
            let size = repo.blobs.get(blob).map_or(0, String::len);
            json!({"path": path, "mode": "100644", "type": "blob", "sha": blob, "size": size, "url": u.api(&format!("/git/blobs/{blob}"))})
        })
        .collect();
    json!({"sha": sha, "url": u.api(&format!("/git/trees/{sha}")), "tree": entries, "truncated": false})
}

pub(super) fn branch_end(repo: &Repo, u: &Urls, branch: &str, sha: &str) -> Value {
    json!({"label": format!("{}:{branch}", repo.owner), "ref": branch, "sha": sha, "user": u.user()})
}

pub(super) fn pull_json(repo: &Repo, u: &Urls, p: &Pull) -> Value {
    let n = p.number;
    let base_sha = repo.branches.get(&p.base).cloned().unwrap_or_default();
    json!({
        "id": 1_000_000 * repo.id + n, "node_id": format!("PR_{}_{n}", repo.id), "number": n,
        "url": u.api(&format!("/pulls/{n}")), "html_url": u.html(&format!("/pull/{n}")),
        "diff_url": u.html(&format!("/pull/{n}.diff")), "patch_url": u.html(&format!("/pull/{n}.patch")),
        "issue_url": u.api(&format!("/issues/{n}")), "commits_url": u.api(&format!("/pulls/{n}/commits")),
        "review_comments_url": u.api(&format!("/pulls/{n}/comments")),
        "comments_url": u.api(&format!("/issues/{n}/comments")),
        "statuses_url": u.api(&format!("/statuses/{}", repo.pull_head_sha(p))),
        "state": if p.open { "open" } else { "closed" }, "locked": false, "draft": false,
        "title": p.title, "body": p.body, "user": u.user(), "labels": [],
        "created_at": p.created_at, "updated_at": p.updated_at, "closed_at": p.closed_at, "merged_at": p.merged_at,
        "merge_commit_sha": p.merge_commit_sha, "merged": p.merged,
        "mergeable": if p.open { Value::Bool(p.mergeable) } else { Value::Null },
        "mergeable_state": if p.mergeable { "clean" } else { "dirty" },
        "head": branch_end(repo, u, &p.head, &repo.pull_head_sha(p)),
        "base": branch_end(repo, u, &p.base, &base_sha),
        "author_association": "OWNER", "comments": 0, "review_comments": 0, "commits": 1,
        "additions": 0, "deletions": 0, "changed_files": 0,
    })
}

pub(super) fn issue_shape(
    u: &Urls,
    number: u64,
    title: &str,
    body: Option<&str>,
    open: bool,
    times: [Option<&str>; 3],
) -> Value {
    let [created, updated, closed] = times;
    json!({
        "id": 2_000_000 + number, "node_id": format!("I_{number}"), "number": number,
        "url": u.api(&format!("/issues/{number}")), "repository_url": u.api(""),
        "labels_url": u.api(&format!("/issues/{number}/labels")),
        "comments_url": u.api(&format!("/issues/{number}/comments")),
        "events_url": u.api(&format!("/issues/{number}/events")),
        "html_url": u.html(&format!("/issues/{number}")),
        "state": if open { "open" } else { "closed" }, "title": title, "body": body,
        "user": u.user(), "labels": [], "assignee": null, "assignees": [], "locked": false,
        "comments": 0, "author_association": "OWNER",
        "created_at": created, "updated_at": updated, "closed_at": closed,
    })
}

pub(super) fn issue_json(u: &Urls, i: &Issue) -> Value {
    let mut v = issue_shape(
        u,
        i.number,
        &i.title,
        i.body.as_deref(),
        i.open,
        [
            Some(&i.created_at),
            Some(&i.updated_at),
            i.closed_at.as_deref(),
        ],
    );
    v["state_reason"] = i.state_reason.clone().map_or(Value::Null, Value::String);
    v
}

/// A pull request as the issues endpoints show it (with its `pull_request` links).
pub(super) fn pull_issue_json(u: &Urls, p: &Pull) -> Value {
    let n = p.number;
    let mut v = issue_shape(
        u,
        n,
        &p.title,
        p.body.as_deref(),
        p.open,
        [
            Some(&p.created_at),
            Some(&p.updated_at),
            p.closed_at.as_deref(),
        ],
    );
    v["html_url"] = json!(u.html(&format!("/pull/{n}")));
    v["state_reason"] = Value::Null;
    v["pull_request"] = json!({
        "url": u.api(&format!("/pulls/{n}")), "html_url": u.html(&format!("/pull/{n}")),
        "diff_url": u.html(&format!("/pull/{n}.diff")), "patch_url": u.html(&format!("/pull/{n}.patch")),
    });
    v
}
