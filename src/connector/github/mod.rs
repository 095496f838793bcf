//! The GitHub connector (SPEC §7): `create_branch`, `delete_branch`, `create_pr`,
//! `create_issue`, `merge_pr` and `push_commit` over GitHub's REST API through octocrab,
//! each idempotent, each capturing what its undo (SPEC §6) needs.
//!
//! Arguments arrive normalised and validated by the plan builder; they are validated again
//! here, before any URL is built, so nothing an agent sends can change which endpoint is
//! called (repo `owner/name` pattern and scope, `git check-ref-format` branch rules, relative
//! file paths). Every write is sent exactly once (see [`client`]); a failed write is a failed
//! action carrying GitHub's own message. The token is handed to octocrab and used nowhere else.

mod actions;
mod client;
mod errors;
mod recover;
mod undo;

use octocrab::Octocrab;
use serde_json::{Map, Value, json};

use super::{ActionOutcome, Recovered, StepLog, recover_without_asking};
use crate::kernel::action::{self, ActionName, SystemKind};
use crate::kernel::plan::repo_in_scope;
use crate::kernel::receipt::ActionRecord;
use crate::kernel::typed::{Branch, GithubAction, PrNumber, RelPath, Repo};
use crate::secret::Secret;
use client::{Client, RepoName};

/// A GitHub system: one API root, one token, the repos it may touch.
pub struct GithubConnector {
    client: Client,
    repos: Vec<String>,
}

impl GithubConnector {
    /// Builds the connector. Contacts nothing (the HTTP client is built on first use).
    pub fn new(base_url: &str, token: &Secret, repos: &[String]) -> Result<Self, String> {
        let base_url = base_url.trim_end_matches('/');
        Ok(GithubConnector {
            client: Client::new(base_url, token)?,
            repos: repos.to_vec(),
        })
    }

    /// `{"type": "github", "base_url": …}`; the repo of each action is in its rollback data.
    pub fn target(&self) -> Value {
        json!({"type": "github", "base_url": self.client.base_url()})
    }

    /// Runs one action given as JSON (a direct caller, not the engine): its arguments are
    /// checked here, before any URL is built, with the catalogue's defaults filled in.
    pub async fn execute(
        &self,
        action: &str,
        args: &Map<String, Value>,
        log: &mut dyn StepLog,
    ) -> ActionOutcome {
        match parse_call(action, args) {
            Ok(call) => self.run(&call, log).await,
            Err(e) => ActionOutcome::failed(format!("{action}: {e}")),
        }
    }

    /// Runs one typed action; its step record goes through `log` just before the request that
    /// changes what others see (`push_commit`: after the new commit exists, before the branch
    /// moves to it).
    pub async fn run(&self, call: &GithubAction, log: &mut dyn StepLog) -> ActionOutcome {
        let action = call.name().as_str();
        let repo = match self.scoped(call.repo()) {
            Ok(repo) => repo,
            Err(e) => return ActionOutcome::failed(format!("{action}: {e}")),
        };
        let gh = match self.client.get() {
            Ok(gh) => gh,
            Err(e) => return ActionOutcome::failed(format!("{action} on {repo}: {e}")),
        };
        tracing::debug!(action, repo = %repo, "github action");
        let cx = Ctx {
            gh,
            repo: &repo,
            action,
            base_url: self.client.base_url(),
        };
        match call {
            GithubAction::CreateBranch { branch, from, .. } => {
                actions::create_branch(&cx, branch.as_str(), from.as_str(), log).await
            }
            GithubAction::DeleteBranch { branch, .. } => {
                actions::delete_branch(&cx, branch.as_str(), log).await
            }
            GithubAction::CreatePr {
                title,
                head,
                base,
                body,
                ..
            } => actions::create_pr(&cx, title, head.as_str(), base.as_str(), body, log).await,
            GithubAction::CreateIssue { title, body, .. } => {
                actions::create_issue(&cx, title, body, log).await
            }
            GithubAction::MergePr { number, .. } => actions::merge_pr(&cx, number.get(), log).await,
            GithubAction::PushCommit {
                branch,
                message,
                files,
                ..
            } => {
                let files: Vec<(String, String)> = files
                    .iter()
                    .map(|(p, c)| (p.as_str().to_string(), c.clone()))
                    .collect();
                actions::push_commit(&cx, branch.as_str(), message, &files, log).await
            }
        }
    }

    /// A typed repo, checked once more against this system's `repos` (the plan builder
    /// checked it against the same list; a direct caller may not have).
    fn scoped(&self, repo: &Repo) -> Result<RepoName, String> {
        self.checked_repo(Some(&Value::String(repo.as_str().to_string())))
    }

    /// Whether an interrupted action happened, asked of GitHub (see [`recover`]).
    pub async fn recover(
        &self,
        action: &str,
        args: &Map<String, Value>,
        pre: &Value,
    ) -> (Recovered, ActionOutcome) {
        if let Some(found) = recover_without_asking(false, pre) {
            return found;
        }
        let repo = match self.checked_repo(pre.get("repo").or_else(|| args.get("repo"))) {
            Ok(repo) => repo,
            Err(e) => return recover::unknown(pre, &format!("{action}: {e}")),
        };
        let gh = match self.client.get() {
            Ok(gh) => gh,
            Err(e) => return recover::unknown(pre, &format!("{action} on {repo}: {e}")),
        };
        let cx = Ctx {
            gh,
            repo: &repo,
            action,
            base_url: self.client.base_url(),
        };
        recover::run(&cx, action, args, pre).await
    }

    /// Reverses one recorded action (SPEC §6), only if GitHub still holds what the run left.
    pub async fn undo(&self, record: &ActionRecord) -> ActionOutcome {
        let fresh =
            record.success && record.output.get("already_done") == Some(&Value::Bool(false));
        if !fresh {
            return ActionOutcome::ok(json!({"skipped": "nothing to undo"}), json!({}));
        }
        if record.action == ActionName::MergePr.as_str() {
            return ActionOutcome::failed("'merge_pr' cannot be reversed");
        }
        let label = format!("undo {}", record.action);
        let data = &record.rollback_data;
        let repo = match self.checked_repo(data.get("repo").or_else(|| record.args.get("repo"))) {
            Ok(repo) => repo,
            Err(e) => return ActionOutcome::failed(format!("{label}: {e}")),
        };
        let gh = match self.client.get() {
            Ok(gh) => gh,
            Err(e) => return ActionOutcome::failed(format!("{label} on {repo}: {e}")),
        };
        let cx = Ctx {
            gh,
            repo: &repo,
            action: &label,
            base_url: self.client.base_url(),
        };
        undo::run(&cx, &record.action, data).await
    }

    /// The base branch of a pull request (for `no_merge_to_main`).
    pub async fn pr_base(&self, repo: &str, number: u64) -> Result<String, String> {
        let repo = self
            .checked_repo(Some(&json!(repo)))
            .map_err(|e| format!("cannot look up pull request #{number}: {e}"))?;
        let gh = self.client.get()?;
        match gh.pulls(&repo.owner, &repo.name).get(number).await {
            Ok(pr) => Ok(pr.base.ref_field),
            Err(e) => Err(format!(
                "cannot look up pull request #{number} of {repo}: {}",
                errors::describe(&e, self.client.base_url())
            )),
        }
    }

    /// A repo argument: a string of the form `owner/name` inside this system's `repos`.
    fn checked_repo(&self, value: Option<&Value>) -> Result<RepoName, String> {
        let s = value
            .and_then(Value::as_str)
            .ok_or("argument `repo` is missing or not a string")?;
        let repo = RepoName::parse(s)?;
        if !repo_in_scope(&self.repos, s) {
            return Err(format!("repo '{s}' is not in this system's repos"));
        }
        Ok(repo)
    }
}

/// A JSON action (a direct caller's) as a typed one, with the catalogue's defaults filled in.
fn parse_call(action: &str, args: &Map<String, Value>) -> Result<GithubAction, String> {
    let Some(spec) = action::spec(SystemKind::Github, action) else {
        return Err(format!("`{action}` is not a github action"));
    };
    let mut full = args.clone();
    for arg in spec.args {
        if let (None, Some(default)) = (full.get(arg.name), arg.default) {
            let value = serde_json::from_str(default).map_err(|e| format!("bad default: {e}"))?;
            full.insert(arg.name.to_string(), value);
        }
    }
    let args = &full;
    let repo = Repo::parse(
        args.get("repo")
            .and_then(Value::as_str)
            .ok_or("argument `repo` is missing or not a string")?,
    )?;
    Ok(match spec.name {
        ActionName::CreateBranch => GithubAction::CreateBranch {
            repo,
            branch: branch(args, "branch")?,
            from: branch(args, "from_branch")?,
        },
        ActionName::DeleteBranch => GithubAction::DeleteBranch {
            repo,
            branch: branch(args, "branch")?,
        },
        ActionName::CreatePr => GithubAction::CreatePr {
            repo,
            title: text(args, "title")?,
            head: branch(args, "head")?,
            base: branch(args, "base")?,
            body: text(args, "body")?,
        },
        ActionName::CreateIssue => GithubAction::CreateIssue {
            repo,
            title: text(args, "title")?,
            body: text(args, "body")?,
        },
        ActionName::MergePr => GithubAction::MergePr {
            repo,
            number: positive(args, "pr_number")?,
        },
        ActionName::PushCommit => GithubAction::PushCommit {
            repo,
            branch: branch(args, "branch")?,
            message: text(args, "message")?,
            files: files(args)?,
        },
        other => return Err(format!("`{other}` is not a github action")),
    })
}

/// A string argument (defaults are already filled in).
fn text(args: &Map<String, Value>, name: &str) -> Result<String, String> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("argument `{name}` must be a string")),
        None => Err(format!("missing argument `{name}`")),
    }
}

fn branch(args: &Map<String, Value>, name: &str) -> Result<Branch, String> {
    Branch::parse(&text(args, name)?)
}

fn positive(args: &Map<String, Value>, name: &str) -> Result<PrNumber, String> {
    match args.get(name).and_then(Value::as_u64) {
        Some(n) if n > 0 => PrNumber::new(n),
        _ => Err(format!("argument `{name}` must be a positive integer")),
    }
}

fn files(args: &Map<String, Value>) -> Result<Vec<(RelPath, String)>, String> {
    let Some(Value::Object(map)) = args.get("files") else {
        return Err("argument `files` must be an object of path → content".into());
    };
    if map.is_empty() {
        return Err("argument `files` is empty: there is nothing to commit".into());
    }
    map.iter()
        .map(|(path, content)| {
            let path = RelPath::parse(path)?;
            let content = content
                .as_str()
                .ok_or_else(|| format!("content of '{path}' must be a string"))?;
            Ok((path, content.to_string()))
        })
        .collect()
}

/// What every action and undo step needs: the client, the repo, and how to word a failure.
pub(super) struct Ctx<'a> {
    gh: &'a Octocrab,
    repo: &'a RepoName,
    /// `create_pr`, or `undo create_pr`: the start of every error message.
    action: &'a str,
    base_url: &'a str,
}

impl Ctx<'_> {
    fn repos(&self) -> octocrab::repos::RepoHandler<'_> {
        self.gh.repos(&self.repo.owner, &self.repo.name)
    }

    fn pulls(&self) -> octocrab::pulls::PullRequestHandler<'_> {
        self.gh.pulls(&self.repo.owner, &self.repo.name)
    }

    fn issues(&self) -> octocrab::issues::IssueHandler<'_> {
        self.gh.issues(&self.repo.owner, &self.repo.name)
    }

    /// `<action> on <repo>: <what>` as a failed outcome.
    fn refuse(&self, what: impl std::fmt::Display) -> ActionOutcome {
        ActionOutcome::failed(format!("{} on {}: {what}", self.action, self.repo))
    }

    /// `<action> on <repo>: [<context>: ]GitHub said: <message> (<status>)`.
    fn fail(&self, context: &str, err: &octocrab::Error) -> ActionOutcome {
        let why = errors::describe(err, self.base_url);
        if context.is_empty() {
            self.refuse(why)
        } else {
            self.refuse(format!("{context}: {why}"))
        }
    }

    /// Like [`Ctx::fail`], for a request that changes what others see: when no answer came
    /// back, say that the change may have happened (it is never re-sent to find out).
    fn fail_write(&self, context: &str, err: &octocrab::Error) -> ActionOutcome {
        let mut outcome = self.fail(context, err);
        if errors::status(err).is_none()
            && let Some(Value::String(message)) = outcome.output.get_mut("error")
        {
            message.push_str(" — the change may or may not have been made");
        }
        outcome
    }

    /// GitHub answers 404 for a branch of a repo that does not exist (or that the token cannot
    /// see) just as for a missing branch; before concluding "no such branch", make sure the
    /// repo is there. `Some(failure)` if it is not (or cannot be checked).
    async fn missing_repo(&self) -> Option<ActionOutcome> {
        match self.repos().get().await {
            Ok(_) => None,
            Err(e) if errors::status(&e) == Some(404) => Some(self.refuse(format!(
                "repository not found: {} — it does not exist or the token cannot see it",
                errors::describe(&e, self.base_url)
            ))),
            Err(e) => Some(self.fail("cannot read the repository", &e)),
        }
    }

    /// The sha a branch points at, `None` if it does not exist.
    async fn branch_head(&self, branch: &str) -> Result<Option<String>, octocrab::Error> {
        use octocrab::models::repos::Object;
        use octocrab::params::repos::Reference;
        match self
            .repos()
            .get_ref(&Reference::Branch(client::ref_path(branch)))
            .await
        {
            Ok(r) => Ok(Some(match r.object {
                Object::Commit { sha, .. }
                | Object::Tag { sha, .. }
                | Object::Tree { sha, .. }
                | Object::Blob { sha, .. } => sha,
                // `Object` is non-exhaustive; a future kind still names a sha we cannot read here.
                _ => String::new(),
            })),
            Err(e) if errors::status(&e) == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
