//! An in-process fake GitHub REST API (feature `fake-github`) for the tests and `enact demo`:
//! a stateful server on `127.0.0.1` (random port) that answers the endpoints the GitHub
//! connector calls, through the real octocrab code path, with GitHub's JSON shapes and errors.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use enact::fake_github::{FakeGithub, Injected};
//! let fake = FakeGithub::start().await?;          // serves until dropped
//! let main_sha = fake.add_repo("acme/app");       // branch `main`, one commit (README.md)
//! // point a `type = "github"` system at fake.base_url(), any non-empty token
//! fake.inject("POST", "/repos/acme/app/pulls", Injected::error(500, "Server Error"));
//! assert_eq!(fake.branch_sha("acme/app", "main"), Some(main_sha));
//! for line in fake.request_lines() { println!("{line}"); }  // "GET /repos/acme/app/git/ref/heads/main 200"
//! # Ok(()) }
//! ```
//!
//! What it models: repositories with real ancestry (commits, flat trees, blobs), branches,
//! pull requests and issues sharing one number sequence, fast-forward checks on ref updates,
//! "No commits between" on pull requests whose head is already in the base, merges. Every
//! request needs an `Authorization` header (401 otherwise; [`FakeGithub::require_token`]
//! pins the token). Unknown repos and routes are 404 `Not Found`.
//!
//! Endpoints (under `/repos/{owner}/{repo}`): `GET ""`, `GET git/ref/heads/{b}`,
//! `POST git/refs`, `PATCH|DELETE git/refs/heads/{b}`, `GET|POST git/commits`, `POST git/blobs`
//! (utf-8), `GET|POST git/trees`, `GET|POST pulls`, `GET|PATCH pulls/{n}`,
//! `GET|PUT pulls/{n}/merge`, `GET|POST issues`, `GET|PATCH issues/{n}`; lists paginate with
//! `per_page`/`page` and GitHub's `Link` header.

mod api;
mod server;
mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::MutexGuard;

use serde_json::{Value, json};

use state::{Injection, State};

/// A running fake GitHub. Dropping it stops the server and closes its connections.
pub struct FakeGithub {
    server: crate::fake_http::Running<State>,
}

/// One request the fake answered: method, path (without query, as sent), query, status
/// (0 for an injected disconnect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
}

impl fmt::Display for RequestRecord {
    /// `POST /repos/acme/app/git/refs 201`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.status)
    }
}

/// A canned answer for the next matching request (see [`FakeGithub::inject`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Injected {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Injected {
    /// GitHub's error shape: `{"message": …, "documentation_url": …}`.
    pub fn error(status: u16, message: &str) -> Injected {
        Injected {
            status,
            body: Some(state::error_body(message)),
            headers: Vec::new(),
        }
    }

    /// Any JSON answer.
    pub fn json(status: u16, body: Value) -> Injected {
        Injected {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    /// GitHub's primary rate limit: 403, `x-ratelimit-remaining: 0`, reset at `reset_epoch`.
    pub fn rate_limited(reset_epoch: u64) -> Injected {
        Injected::error(403, "API rate limit exceeded for user ID 1.")
            .with_header("x-ratelimit-limit", "5000")
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-reset", &reset_epoch.to_string())
    }

    /// Reads the request, then closes the connection without answering (a network failure
    /// after the request was sent: the client cannot know whether it took effect).
    pub fn disconnect() -> Injected {
        Injected {
            status: 0,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Injected {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A pull request as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePull {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    /// `"open"` or `"closed"`.
    pub state: String,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
}

/// An issue as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIssue {
    pub number: u64,
    pub title: String,
    pub body: String,
    /// `"open"` or `"closed"`.
    pub state: String,
}

/// A commit and the full file set of its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCommit {
    pub sha: String,
    pub message: String,
    pub parents: Vec<String>,
    pub files: BTreeMap<String, String>,
}

impl FakeGithub {
    /// Starts the server on `127.0.0.1`, a free port, in the current Tokio runtime.
    pub async fn start() -> std::io::Result<FakeGithub> {
        let server = crate::fake_http::Running::start("", State::default(), |state, base_url| {
            server::Github {
                state,
                base_url: base_url.to_string(),
            }
        })
        .await?;
        Ok(FakeGithub { server })
    }

    /// `http://127.0.0.1:<port>`: the `base_url` for a GitHub system.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.server.lock()
    }

    /// From now on only `Authorization: Bearer <token>` (or `token <token>`) is accepted;
    /// anything else is 401 `Bad credentials`.
    pub fn require_token(&self, token: &str) {
        self.lock().required_token = Some(token.to_string());
    }

    /// Adds `owner/name` with default branch `main` holding one commit (`README.md`) and
    /// returns that commit's sha (an existing repo is kept; its `main` sha is returned).
    pub fn add_repo(&self, full_name: &str) -> String {
        self.lock().add_repo(full_name)
    }

    /// The sha a branch points at.
    pub fn branch_sha(&self, repo: &str, branch: &str) -> Option<String> {
        self.lock().repo(repo)?.branches.get(branch).cloned()
    }

    /// Every branch of a repo and its sha.
    pub fn branches(&self, repo: &str) -> BTreeMap<String, String> {
        self.lock()
            .repo(repo)
            .map(|r| r.branches.clone())
            .unwrap_or_default()
    }

    /// Points a branch at a sha (creating it), or deletes it with `None` — as another client
    /// would. Returns false if the repo or commit is unknown.
    pub fn set_branch(&self, repo: &str, branch: &str, sha: Option<&str>) -> bool {
        let mut state = self.lock();
        let Some(repo) = state.repo_mut(repo) else {
            return false;
        };
        match sha {
            Some(sha) if repo.commits.contains_key(sha) => {
                repo.branches.insert(branch.to_string(), sha.to_string());
                true
            }
            Some(_) => false,
            None => repo.branches.remove(branch).is_some(),
        }
    }

    /// Commits `files` (path, content) on top of `branch`, as another client pushing would;
    /// returns the new sha (`None` if the repo or branch is unknown).
    pub fn push_files(
        &self,
        repo: &str,
        branch: &str,
        message: &str,
        files: &[(&str, &str)],
    ) -> Option<String> {
        self.lock()
            .repo_mut(repo)?
            .commit_files(branch, message, files)
    }

    /// A commit with its message, parents and files.
    pub fn commit(&self, repo: &str, sha: &str) -> Option<FakeCommit> {
        let state = self.lock();
        let repo = state.repo(repo)?;
        let c = repo.commits.get(sha)?;
        Some(FakeCommit {
            sha: sha.to_string(),
            message: c.message.clone(),
            parents: c.parents.clone(),
            files: repo.files_at(sha)?,
        })
    }

    /// A file's content at the head of a branch.
    pub fn file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let state = self.lock();
        let repo = state.repo(repo)?;
        repo.files_at(repo.branches.get(branch)?)?.remove(path)
    }

    /// Every commit in the repo (reachable or not).
    pub fn commit_count(&self, repo: &str) -> usize {
        self.lock().repo(repo).map_or(0, |r| r.commits.len())
    }

    pub fn pull(&self, repo: &str, number: u64) -> Option<FakePull> {
        self.pulls(repo).into_iter().find(|p| p.number == number)
    }

    /// Every pull request, by number.
    pub fn pulls(&self, repo: &str) -> Vec<FakePull> {
        let state = self.lock();
        let Some(repo) = state.repo(repo) else {
            return Vec::new();
        };
        repo.pulls
            .values()
            .map(|p| FakePull {
                number: p.number,
                title: p.title.clone(),
                body: p.body.clone().unwrap_or_default(),
                head: p.head.clone(),
                base: p.base.clone(),
                state: if p.open { "open" } else { "closed" }.into(),
                merged: p.merged,
                merge_commit_sha: p.merge_commit_sha.clone(),
            })
            .collect()
    }

    /// Marks a pull request (un)mergeable: merging an unmergeable one is 405.
    pub fn set_mergeable(&self, repo: &str, number: u64, mergeable: bool) -> bool {
        let mut state = self.lock();
        match state.repo_mut(repo).and_then(|r| r.pulls.get_mut(&number)) {
            Some(p) => {
                p.mergeable = mergeable;
                true
            }
            None => false,
        }
    }

    pub fn issue(&self, repo: &str, number: u64) -> Option<FakeIssue> {
        self.issues(repo).into_iter().find(|i| i.number == number)
    }

    /// Every issue (pull requests excluded), by number.
    pub fn issues(&self, repo: &str) -> Vec<FakeIssue> {
        let state = self.lock();
        let Some(repo) = state.repo(repo) else {
            return Vec::new();
        };
        repo.issues
            .values()
            .map(|i| FakeIssue {
                number: i.number,
                title: i.title.clone(),
                body: i.body.clone().unwrap_or_default(),
                state: if i.open { "open" } else { "closed" }.into(),
            })
            .collect()
    }

    /// The observable state of a repo, for before/after comparisons:
    /// `{"branches": {name: sha}, "pulls": [{number, state, merged, head, base}],
    ///   "issues": [{number, state, title}]}`.
    pub fn snapshot(&self, repo: &str) -> Value {
        let pulls: Vec<Value> = self
            .pulls(repo)
            .into_iter()
            .map(|p| json!({"number": p.number, "state": p.state, "merged": p.merged, "head": p.head, "base": p.base}))
            .collect();
        let issues: Vec<Value> = self
            .issues(repo)
            .into_iter()
            .map(|i| json!({"number": i.number, "state": i.state, "title": i.title}))
            .collect();
        json!({"branches": self.branches(repo), "pulls": pulls, "issues": issues})
    }

    /// Answers the next request with this method and path (without query, e.g.
    /// `/repos/acme/app/git/refs`) with `response` instead of the normal handling, once.
    /// Authentication is still checked first.
    pub fn inject(&self, method: &str, path: &str, response: Injected) {
        self.lock().injections.push_back(Injection {
            method: method.to_string(),
            path: path.to_string(),
            response,
        });
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// The request log as lines: `POST /repos/acme/app/git/refs 201`.
    pub fn request_lines(&self) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }
}
