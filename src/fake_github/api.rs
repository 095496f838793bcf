//! The REST endpoints the GitHub connector calls, answering with GitHub's JSON shapes (enough
//! fields for octocrab's models) and GitHub's errors: 401 without credentials, 404 `Not Found`,
//! 422 `Reference already exists` / `Update is not a fast forward` / "Validation Failed" with
//! `No commits between main and X`, 405 `Pull Request is not mergeable`, 409 when a merge's
//! expected head sha is stale.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};

use super::state::{Issue, Pull, Repo, State, Tree, error_body, now};
use super::{Injected, RequestRecord};

mod shapes;
use shapes::*;

/// Characters kept as-is in branch names inside URLs (mirrors the connector's encoding).
const PATH_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
/// Characters kept as-is in query values.
const QUERY_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One parsed HTTP request.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    /// Path and query, as sent.
    pub target: &'a str,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

/// What to answer. `status == 0` means: close the connection without answering.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }
    fn error(status: u16, message: &str) -> Reply {
        Reply::json(status, error_body(message))
    }
    fn not_found() -> Reply {
        Reply::error(404, "Not Found")
    }
    /// GitHub's 422 "Validation Failed" with its list of reasons.
    fn invalid(errors: Value) -> Reply {
        Reply::json(
            422,
            json!({"message": "Validation Failed", "errors": errors, "documentation_url": "https://docs.github.com/rest"}),
        )
    }
}

impl From<Injected> for Reply {
    fn from(i: Injected) -> Reply {
        Reply {
            status: i.status,
            body: i.body,
            headers: i.headers,
        }
    }
}

/// Answers one request and logs it.
pub(crate) fn handle(state: &mut State, base: &str, req: &Request<'_>) -> Reply {
    let (path, query) = req.target.split_once('?').unwrap_or((req.target, ""));
    let reply = respond(state, base, req, path, query);
    state.requests.push(RequestRecord {
        method: req.method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        status: reply.status,
    });
    reply
}

fn respond(state: &mut State, base: &str, req: &Request<'_>, path: &str, query: &str) -> Reply {
    if let Some(denied) = check_auth(state, req.authorization) {
        return denied;
    }
    if let Some(injected) = state.take_injection(req.method, path) {
        return injected.into();
    }
    let Some(segments) = decode_segments(path) else {
        return Reply::not_found();
    };
    let body = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(_) => return Reply::error(400, "Problems parsing JSON"),
        }
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let ["repos", owner, name, rest @ ..] = segments.as_slice() else {
        return Reply::not_found();
    };
    let Some(repo) = state.repo_mut(&format!("{owner}/{name}")) else {
        return Reply::not_found();
    };
    let urls = Urls {
        base: base.to_string(),
        owner: repo.owner.clone(),
        name: repo.name.clone(),
    };
    let query = Query::parse(query);
    route(repo, &urls, req.method, rest, &query, &body)
}

fn check_auth(state: &State, header: Option<&str>) -> Option<Reply> {
    let Some(header) = header else {
        return Some(Reply::error(401, "Requires authentication"));
    };
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("token "))
        .unwrap_or_default()
        .trim();
    let wrong = token.is_empty() || state.required_token.as_deref().is_some_and(|t| t != token);
    wrong.then(|| Reply::error(401, "Bad credentials"))
}

/// Path segments, percent-decoded one by one (so an encoded `/` stays inside its segment).
fn decode_segments(path: &str) -> Option<Vec<String>> {
    path.trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        })
        .collect()
}

fn route(repo: &mut Repo, u: &Urls, method: &str, rest: &[&str], q: &Query, body: &Value) -> Reply {
    let number = |s: &str| s.parse::<u64>().ok();
    match (method, rest) {
        ("GET", []) => Reply::json(200, repo_json(repo, u)),
        ("GET", ["git", "ref" | "refs", "heads", branch @ ..]) if !branch.is_empty() => {
            get_ref(repo, u, &branch.join("/"))
        }
        ("POST", ["git", "refs"]) => create_ref(repo, u, body),
        ("PATCH", ["git", "refs", "heads", branch @ ..]) if !branch.is_empty() => {
            update_ref(repo, u, &branch.join("/"), body)
        }
        ("DELETE", ["git", "refs", "heads", branch @ ..]) if !branch.is_empty() => {
            delete_ref(repo, &branch.join("/"))
        }
        ("GET", ["git", "commits", sha]) => match repo.commits.get(*sha) {
            Some(_) => Reply::json(200, commit_json(repo, u, sha)),
            None => Reply::not_found(),
        },
        ("POST", ["git", "commits"]) => create_commit(repo, u, body),
        ("POST", ["git", "blobs"]) => create_blob(repo, u, body),
        ("GET", ["git", "trees", sha]) => match repo.trees.get(*sha) {
            Some(tree) => Reply::json(200, tree_json(repo, u, sha, tree)),
            None => Reply::not_found(),
        },
        ("POST", ["git", "trees"]) => create_tree(repo, u, body),
        ("GET", ["pulls"]) => list_pulls(repo, u, q),
        ("POST", ["pulls"]) => create_pull(repo, u, body),
        ("GET", ["pulls", n]) => match number(n).and_then(|n| repo.pulls.get(&n)) {
            Some(p) => Reply::json(200, pull_json(repo, u, p)),
            None => Reply::not_found(),
        },
        ("PATCH", ["pulls", n]) => match number(n) {
            Some(n) if repo.pulls.contains_key(&n) => update_pull(repo, u, n, body),
            _ => Reply::not_found(),
        },
        ("PUT", ["pulls", n, "merge"]) => match number(n) {
            Some(n) if repo.pulls.contains_key(&n) => merge_pull(repo, n, body),
            _ => Reply::not_found(),
        },
        ("GET", ["pulls", n, "merge"]) => match number(n).and_then(|n| repo.pulls.get(&n)) {
            Some(p) if p.merged => Reply {
                status: 204,
                body: None,
                headers: Vec::new(),
            },
            _ => Reply::not_found(),
        },
        ("GET", ["issues"]) => list_issues(repo, u, q),
        ("POST", ["issues"]) => create_issue(repo, u, body),
        ("GET", ["issues", n]) => match number(n) {
            Some(n) => get_issue(repo, u, n),
            None => Reply::not_found(),
        },
        ("PATCH", ["issues", n]) => match number(n) {
            Some(n) => update_issue(repo, u, n, body),
            None => Reply::not_found(),
        },
        _ => Reply::not_found(),
    }
}

// ---- refs ---------------------------------------------------------------------------------

fn get_ref(repo: &Repo, u: &Urls, branch: &str) -> Reply {
    match repo.branches.get(branch) {
        Some(sha) => Reply::json(200, ref_json(u, branch, sha)),
        None => Reply::not_found(),
    }
}

fn create_ref(repo: &mut Repo, u: &Urls, body: &Value) -> Reply {
    let (Some(name), Some(sha)) = (str_field(body, "ref"), str_field(body, "sha")) else {
        return Reply::error(
            422,
            "Invalid request.\n\n\"ref\" and \"sha\" weren't supplied.",
        );
    };
    let Some(branch) = name.strip_prefix("refs/heads/").filter(|b| !b.is_empty()) else {
        return Reply::error(422, "Reference name is invalid");
    };
    if repo.branches.contains_key(branch) {
        return Reply::error(422, "Reference already exists");
    }
    if !repo.commits.contains_key(sha) {
        return Reply::error(422, "Object does not exist");
    }
    repo.branches.insert(branch.to_string(), sha.to_string());
    Reply::json(201, ref_json(u, branch, sha))
}

fn update_ref(repo: &mut Repo, u: &Urls, branch: &str, body: &Value) -> Reply {
    let Some(sha) = str_field(body, "sha") else {
        return Reply::error(422, "Invalid request.\n\n\"sha\" wasn't supplied.");
    };
    let force = body.get("force").and_then(Value::as_bool).unwrap_or(false);
    let Some(current) = repo.branches.get(branch).cloned() else {
        return Reply::error(422, "Reference does not exist");
    };
    if !repo.commits.contains_key(sha) {
        return Reply::error(422, "Object does not exist");
    }
    if !force && !repo.is_ancestor(&current, sha) {
        return Reply::error(422, "Update is not a fast forward");
    }
    repo.branches.insert(branch.to_string(), sha.to_string());
    Reply::json(200, ref_json(u, branch, sha))
}

fn delete_ref(repo: &mut Repo, branch: &str) -> Reply {
    match repo.branches.remove(branch) {
        Some(_) => Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
        },
        None => Reply::error(422, "Reference does not exist"),
    }
}

// ---- git objects --------------------------------------------------------------------------

fn create_blob(repo: &mut Repo, u: &Urls, body: &Value) -> Reply {
    let Some(content) = str_field(body, "content") else {
        return Reply::error(422, "Invalid request.\n\n\"content\" wasn't supplied.");
    };
    if !matches!(str_field(body, "encoding"), None | Some("utf-8")) {
        return Reply::error(422, "the fake GitHub accepts only utf-8 blobs");
    }
    let sha = repo.put_blob(content);
    Reply::json(
        201,
        json!({"sha": sha, "url": u.api(&format!("/git/blobs/{sha}"))}),
    )
}

fn valid_tree_path(p: &str) -> bool {
    !p.is_empty()
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && c != ".git")
}

fn create_tree(repo: &mut Repo, u: &Urls, body: &Value) -> Reply {
    let mut tree: Tree = match body.get("base_tree") {
        None | Some(Value::Null) => Tree::new(),
        Some(Value::String(sha)) => match repo.trees.get(sha) {
            Some(t) => t.clone(),
            None => return Reply::error(422, "base_tree is not a valid tree oid"),
        },
        Some(_) => return Reply::error(422, "base_tree is not a valid tree oid"),
    };
    let Some(entries) = body.get("tree").and_then(Value::as_array) else {
        return Reply::error(422, "Invalid request.\n\n\"tree\" wasn't supplied.");
    };
    for entry in entries {
        let Some(path) = str_field(entry, "path").filter(|p| valid_tree_path(p)) else {
            return Reply::error(422, "tree.path contains a malformed path component");
        };
        if !matches!(str_field(entry, "mode"), Some("100644" | "100755"))
            || str_field(entry, "type") != Some("blob")
        {
            return Reply::error(
                422,
                "the fake GitHub accepts only blob entries with mode 100644 or 100755",
            );
        }
        match (entry.get("content"), entry.get("sha")) {
            (Some(Value::String(content)), _) => {
                let blob = repo.put_blob(content);
                tree.insert(path.to_string(), blob);
            }
            (_, Some(Value::Null)) => {
                tree.remove(path);
            }
            (_, Some(Value::String(sha))) if repo.blobs.contains_key(sha) => {
                tree.insert(path.to_string(), sha.clone());
            }
            (_, Some(Value::String(sha))) => {
                return Reply::error(422, &format!("tree.sha {sha} is not a valid blob"));
            }
            _ => return Reply::error(422, "Must supply tree.sha or tree.content"),
        }
    }
    let sha = repo.put_tree(tree.clone());
    Reply::json(201, tree_json(repo, u, &sha, &tree))
}

fn create_commit(repo: &mut Repo, u: &Urls, body: &Value) -> Reply {
    let (Some(message), Some(tree)) = (str_field(body, "message"), str_field(body, "tree")) else {
        return Reply::error(
            422,
            "Invalid request.\n\n\"message\" and \"tree\" weren't supplied.",
        );
    };
    if !repo.trees.contains_key(tree) {
        return Reply::error(422, "Tree SHA does not exist");
    }
    let parents: Vec<String> = body
        .get("parents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(String::from))
        .collect();
    if parents.iter().any(|p| !repo.commits.contains_key(p)) {
        return Reply::error(422, "Parent SHA does not exist or is not a commit object");
    }
    let sha = repo.put_commit(message, tree, parents);
    Reply::json(201, commit_json(repo, u, &sha))
}

// ---- pull requests ------------------------------------------------------------------------

fn list_pulls(repo: &Repo, u: &Urls, q: &Query) -> Reply {
    let state = q.get("state").unwrap_or("open");
    let head = q.get("head").map(|h| match h.split_once(':') {
        Some((owner, branch)) if owner.eq_ignore_ascii_case(&repo.owner) => branch.to_string(),
        Some(_) => String::from("\u{0}"), // another owner's fork: nothing here matches
        None => h.to_string(),
    });
    let items = repo
        .pulls
        .values()
        .rev()
        .filter(|p| state_matches(state, p.open))
        .filter(|p| head.as_deref().is_none_or(|h| p.head == h))
        .filter(|p| q.get("base").is_none_or(|b| p.base == b))
        .map(|p| pull_json(repo, u, p))
        .collect();
    paginate(items, q, &u.api("/pulls"))
}

fn create_pull(repo: &mut Repo, u: &Urls, body: &Value) -> Reply {
    let title = str_field(body, "title")
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let (Some(title), Some(head), Some(base)) =
        (title, str_field(body, "head"), str_field(body, "base"))
    else {
        let missing: Vec<Value> = ["title", "head", "base"]
            .iter()
            .filter(|f| str_field(body, f).is_none_or(|v| v.trim().is_empty()))
            .map(|f| json!({"resource": "PullRequest", "field": f, "code": "missing_field"}))
            .collect();
        return Reply::invalid(Value::Array(missing));
    };
    let head = match head.split_once(':') {
        Some((owner, branch)) if owner.eq_ignore_ascii_case(&repo.owner) => branch,
        Some(_) => {
            return Reply::invalid(
                json!([{"resource": "PullRequest", "field": "head", "code": "invalid"}]),
            );
        }
        None => head,
    };
    let Some(base_sha) = repo.branches.get(base).cloned() else {
        return Reply::invalid(
            json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}]),
        );
    };
    let Some(head_sha) = repo.branches.get(head).cloned() else {
        return Reply::invalid(
            json!([{"resource": "PullRequest", "field": "head", "code": "invalid"}]),
        );
    };
    if repo
        .pulls
        .values()
        .any(|p| p.open && p.head == head && p.base == base)
    {
        let message = format!("A pull request already exists for {}:{head}.", repo.owner);
        return Reply::invalid(
            json!([{"resource": "PullRequest", "code": "custom", "message": message}]),
        );
    }
    if repo.is_ancestor(&head_sha, &base_sha) {
        let message = format!("No commits between {base} and {head}");
        return Reply::invalid(
            json!([{"resource": "PullRequest", "code": "custom", "message": message}]),
        );
    }
    let number = repo.next_number();
    let at = now();
    let pull = Pull {
        number,
        title: title.to_string(),
        body: str_field(body, "body").map(String::from),
        head: head.to_string(),
        base: base.to_string(),
        head_sha,
        open: true,
        merged: false,
        merge_commit_sha: None,
        mergeable: true,
        created_at: at.clone(),
        updated_at: at,
        closed_at: None,
        merged_at: None,
    };
    let reply = Reply::json(201, pull_json(repo, u, &pull));
    repo.pulls.insert(number, pull);
    reply
}

/// Opens or closes a pull request (shared by the pulls and issues endpoints).
fn set_pull_state(repo: &mut Repo, number: u64, state: &str) -> Result<(), Reply> {
    let head_sha = repo
        .pulls
        .get(&number)
        .map(|p| repo.pull_head_sha(p))
        .unwrap_or_default();
    let Some(pull) = repo.pulls.get_mut(&number) else {
        return Err(Reply::not_found());
    };
    match state {
        "closed" if pull.open => {
            let at = now();
            pull.open = false;
            pull.head_sha = head_sha;
            pull.closed_at = Some(at.clone());
            pull.updated_at = at;
        }
        "open" if pull.merged => {
            return Err(Reply::invalid(
                json!([{"resource": "PullRequest", "code": "custom", "field": "state", "message": "state cannot be changed. The pull request has been merged."}]),
            ));
        }
        "open" if !pull.open => {
            pull.open = true;
            pull.closed_at = None;
            pull.updated_at = now();
        }
        "open" | "closed" => {}
        _ => {
            return Err(Reply::invalid(
                json!([{"resource": "PullRequest", "field": "state", "code": "invalid"}]),
            ));
        }
    }
    Ok(())
}

fn update_pull(repo: &mut Repo, u: &Urls, number: u64, body: &Value) -> Reply {
    if let Some(base) = str_field(body, "base")
        && !repo.branches.contains_key(base)
    {
        return Reply::invalid(
            json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}]),
        );
    }
    if let Some(state) = str_field(body, "state")
        && let Err(reply) = set_pull_state(repo, number, state)
    {
        return reply;
    }
    let Some(pull) = repo.pulls.get_mut(&number) else {
        return Reply::not_found();
    };
    if let Some(title) = str_field(body, "title") {
        pull.title = title.to_string();
    }
    if let Some(text) = str_field(body, "body") {
        pull.body = Some(text.to_string());
    }
    if let Some(base) = str_field(body, "base") {
        pull.base = base.to_string();
    }
    match repo.pulls.get(&number) {
        Some(p) => Reply::json(200, pull_json(repo, u, p)),
        None => Reply::not_found(),
    }
}

fn merge_pull(repo: &mut Repo, number: u64, body: &Value) -> Reply {
    let Some(pull) = repo.pulls.get(&number) else {
        return Reply::not_found();
    };
    if !pull.open || !pull.mergeable || !repo.branches.contains_key(&pull.base) {
        return Reply::error(405, "Pull Request is not mergeable");
    }
    if let Some(expected) = str_field(body, "sha")
        && expected != repo.pull_head_sha(pull)
    {
        return Reply::error(
            409,
            "Head branch was modified. Review and try the merge again.",
        );
    }
    let squash = matches!(str_field(body, "merge_method"), Some("squash" | "rebase"));
    match repo.merge(number, squash, str_field(body, "commit_title")) {
        Some(sha) => Reply::json(
            200,
            json!({"sha": sha, "merged": true, "message": "Pull Request successfully merged"}),
        ),
        None => Reply::error(405, "Pull Request is not mergeable"),
    }
}

// ---- issues -------------------------------------------------------------------------------

fn list_issues(repo: &Repo, u: &Urls, q: &Query) -> Reply {
    let state = q.get("state").unwrap_or("open");
    let mut items: Vec<(u64, Value)> = repo
        .issues
        .values()
        .filter(|i| state_matches(state, i.open))
        .map(|i| (i.number, issue_json(u, i)))
        .chain(
            repo.pulls
                .values()
                .filter(|p| state_matches(state, p.open))
                .map(|p| (p.number, pull_issue_json(u, p))),
        )
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    paginate(
        items.into_iter().map(|(_, v)| v).collect(),
        q,
        &u.api("/issues"),
    )
}

fn create_issue(repo: &mut Repo, u: &Urls, body: &Value) -> Reply {
    let Some(title) = str_field(body, "title").filter(|t| !t.trim().is_empty()) else {
        return Reply::invalid(
            json!([{"resource": "Issue", "field": "title", "code": "missing_field"}]),
        );
    };
    let number = repo.next_number();
    let at = now();
    let issue = Issue {
        number,
        title: title.to_string(),
        body: str_field(body, "body").map(String::from),
        open: true,
        state_reason: None,
        created_at: at.clone(),
        updated_at: at,
        closed_at: None,
    };
    let reply = Reply::json(201, issue_json(u, &issue));
    repo.issues.insert(number, issue);
    reply
}

fn get_issue(repo: &Repo, u: &Urls, number: u64) -> Reply {
    if let Some(issue) = repo.issues.get(&number) {
        return Reply::json(200, issue_json(u, issue));
    }
    match repo.pulls.get(&number) {
        Some(p) => Reply::json(200, pull_issue_json(u, p)),
        None => Reply::not_found(),
    }
}

fn update_issue(repo: &mut Repo, u: &Urls, number: u64, body: &Value) -> Reply {
    if repo.pulls.contains_key(&number) {
        if let Some(state) = str_field(body, "state")
            && let Err(reply) = set_pull_state(repo, number, state)
        {
            return reply;
        }
        return get_issue(repo, u, number);
    }
    let Some(issue) = repo.issues.get_mut(&number) else {
        return Reply::not_found();
    };
    match str_field(body, "state") {
        Some("closed") if issue.open => {
            let at = now();
            issue.open = false;
            issue.state_reason = Some(
                str_field(body, "state_reason")
                    .unwrap_or("completed")
                    .to_string(),
            );
            issue.closed_at = Some(at.clone());
            issue.updated_at = at;
        }
        Some("open") if !issue.open => {
            issue.open = true;
            issue.state_reason = Some("reopened".into());
            issue.closed_at = None;
            issue.updated_at = now();
        }
        None | Some("open" | "closed") => {}
        Some(_) => {
            return Reply::invalid(
                json!([{"resource": "Issue", "field": "state", "code": "invalid"}]),
            );
        }
    }
    if let Some(title) = str_field(body, "title") {
        issue.title = title.to_string();
    }
    if let Some(text) = str_field(body, "body") {
        issue.body = Some(text.to_string());
    }
    get_issue(repo, u, number)
}

// ---- helpers ------------------------------------------------------------------------------

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn state_matches(filter: &str, open: bool) -> bool {
    match filter {
        "all" => true,
        "closed" => !open,
        _ => open,
    }
}

/// Query parameters, decoded.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Query {
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A page of `items` with GitHub's `Link` header (`next`, `last`, `first`, `prev`).
fn paginate(items: Vec<Value>, q: &Query, url: &str) -> Reply {
    let per_page = q
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(30, |n| n.clamp(1, 100));
    let page = q
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let link = |p: usize, rel: &str| {
        let mut params: Vec<String> =
            q.0.iter()
                .filter(|(k, _)| k != "page")
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        utf8_percent_encode(k, QUERY_KEEP),
                        utf8_percent_encode(v, QUERY_KEEP)
                    )
                })
                .collect();
        params.push(format!("page={p}"));
        format!("<{url}?{}>; rel=\"{rel}\"", params.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    let mut reply = Reply::json(200, Value::Array(slice));
    if !links.is_empty() {
        reply.headers.push(("link".into(), links.join(", ")));
    }
    reply
}

// ---- JSON shapes --------------------------------------------------------------------------

struct Urls {
    base: String,
    owner: String,
    name: String,
}

impl Urls {
    fn api(&self, tail: &str) -> String {
        format!("{}/repos/{}/{}{tail}", self.base, self.owner, self.name)
    }
    fn html(&self, tail: &str) -> String {
        format!("{}/{}/{}{tail}", self.base, self.owner, self.name)
    }
    fn user(&self) -> Value {
        let b = &self.base;
        let login = "enact-fake";
        json!({
            "login": login, "id": 1, "node_id": "U_fake", "type": "User", "site_admin": false,
            "avatar_url": format!("{b}/avatars/{login}"), "gravatar_id": "",
            "url": format!("{b}/users/{login}"), "html_url": format!("{b}/{login}"),
            "followers_url": format!("{b}/users/{login}/followers"),
            "following_url": format!("{b}/users/{login}/following"),
            "gists_url": format!("{b}/users/{login}/gists"),
            "starred_url": format!("{b}/users/{login}/starred"),
            "subscriptions_url": format!("{b}/users/{login}/subscriptions"),
            "organizations_url": format!("{b}/users/{login}/orgs"),
            "repos_url": format!("{b}/users/{login}/repos"),
            "events_url": format!("{b}/users/{login}/events"),
            "received_events_url": format!("{b}/users/{login}/received_events"),
        })
    }
}
