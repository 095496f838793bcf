//! The typed plan: one enum of actions per connector type, over validated newtypes.
//!
//! A [`Action`] is built once, when the plan is normalised ([`super::plan::normalise_step`]),
//! from arguments that already have their defaults; after that no layer re-parses it. Policies
//! match on it, connectors execute it, and its JSON form ([`Action::args`]) exists only at the
//! edges (receipts, step records, previews). Adding an action is adding a variant here and an
//! entry in [`super::action::ACTIONS`]; the compiler then asks for its arms everywhere.

use serde_json::{Map, Value};

use super::action::{ActionName, SystemKind};
pub use super::hubspot::HubspotAction;
use super::plan::{
    integer_value, json_type_name, validate_branch, validate_repo, validate_repo_path,
};
pub use super::slack::{Channel, Ts};

/// A GitHub repository, `owner/name` (GitHub's character rules), as the plan wrote it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repo(String);

impl Repo {
    pub fn parse(s: &str) -> Result<Repo, String> {
        validate_repo(s)?;
        Ok(Repo(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The owner and the name (the pattern guarantees exactly one `/`).
    pub fn owner_and_name(&self) -> (&str, &str) {
        self.0.split_once('/').unwrap_or((&self.0, ""))
    }
}

/// A git branch name `git check-ref-format --branch` accepts, without `refs/heads/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Branch(String);

impl Branch {
    /// A branch name; a leading `refs/heads/` is dropped.
    pub fn parse(s: &str) -> Result<Branch, String> {
        let s = s.strip_prefix("refs/heads/").unwrap_or(s);
        validate_branch(s)?;
        Ok(Branch(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A file path inside a repository: relative, without `.`, `..` or empty components.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

impl RelPath {
    pub fn parse(s: &str) -> Result<RelPath, String> {
        validate_repo_path(s)?;
        Ok(RelPath(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A path given to a filesystem system: relative to its root when it was inside it (the jail
/// resolves it beneath the root handle and refuses anything that leaves it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FsPath(String);

impl FsPath {
    pub fn parse(s: &str) -> Result<FsPath, String> {
        if s.is_empty() || s.contains('\0') {
            return Err(format!("invalid path {s:?}"));
        }
        Ok(FsPath(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A table name as the agent wrote it (`table` or `schema.table`); the connector resolves it
/// through the catalog and never formats it into SQL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Table(String);

impl Table {
    pub fn parse(s: &str) -> Result<Table, String> {
        if s.is_empty() || s.len() > 127 || s.contains('\0') {
            return Err(format!("invalid table name '{s}'"));
        }
        Ok(Table(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A pull request number (positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrNumber(u64);

impl PrNumber {
    pub fn new(n: u64) -> Result<PrNumber, String> {
        if n == 0 {
            return Err(format!("must be a positive integer, got {n}"));
        }
        Ok(PrNumber(n))
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for PrNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
display_as_str!(Repo, Branch, RelPath, FsPath, Table);

/// A GitHub action with its checked arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum GithubAction {
    CreateBranch {
        repo: Repo,
        branch: Branch,
        from: Branch,
    },
    DeleteBranch {
        repo: Repo,
        branch: Branch,
    },
    CreatePr {
        repo: Repo,
        title: String,
        head: Branch,
        base: Branch,
        body: String,
    },
    CreateIssue {
        repo: Repo,
        title: String,
        body: String,
    },
    MergePr {
        repo: Repo,
        number: PrNumber,
    },
    PushCommit {
        repo: Repo,
        branch: Branch,
        message: String,
        /// Path → content, in the order the plan gave them.
        files: Vec<(RelPath, String)>,
    },
}

impl GithubAction {
    pub fn repo(&self) -> &Repo {
        match self {
            GithubAction::CreateBranch { repo, .. }
            | GithubAction::DeleteBranch { repo, .. }
            | GithubAction::CreatePr { repo, .. }
            | GithubAction::CreateIssue { repo, .. }
            | GithubAction::MergePr { repo, .. }
            | GithubAction::PushCommit { repo, .. } => repo,
        }
    }

    pub fn name(&self) -> ActionName {
        match self {
            GithubAction::CreateBranch { .. } => ActionName::CreateBranch,
            GithubAction::DeleteBranch { .. } => ActionName::DeleteBranch,
            GithubAction::CreatePr { .. } => ActionName::CreatePr,
            GithubAction::CreateIssue { .. } => ActionName::CreateIssue,
            GithubAction::MergePr { .. } => ActionName::MergePr,
            GithubAction::PushCommit { .. } => ActionName::PushCommit,
        }
    }

    /// The branch this action writes (creates, pushes to or deletes), if any.
    pub fn written_branch(&self) -> Option<&Branch> {
        match self {
            GithubAction::CreateBranch { branch, .. }
            | GithubAction::DeleteBranch { branch, .. }
            | GithubAction::PushCommit { branch, .. } => Some(branch),
            _ => None,
        }
    }
}

/// A Postgres action with its checked arguments. Rows and `where` objects stay JSON: they are
/// bound as one `jsonb` parameter and converted by PostgreSQL with the column types.
#[derive(Debug, Clone, PartialEq)]
pub enum PostgresAction {
    SelectRows {
        table: Table,
        filter: Map<String, Value>,
        limit: u64,
    },
    InsertRow {
        table: Table,
        data: Map<String, Value>,
    },
    UpdateRow {
        table: Table,
        data: Map<String, Value>,
        filter: Map<String, Value>,
    },
    DeleteRow {
        table: Table,
        filter: Map<String, Value>,
    },
}

impl PostgresAction {
    pub fn table(&self) -> &Table {
        match self {
            PostgresAction::SelectRows { table, .. }
            | PostgresAction::InsertRow { table, .. }
            | PostgresAction::UpdateRow { table, .. }
            | PostgresAction::DeleteRow { table, .. } => table,
        }
    }

    pub fn name(&self) -> ActionName {
        match self {
            PostgresAction::SelectRows { .. } => ActionName::SelectRows,
            PostgresAction::InsertRow { .. } => ActionName::InsertRow,
            PostgresAction::UpdateRow { .. } => ActionName::UpdateRow,
            PostgresAction::DeleteRow { .. } => ActionName::DeleteRow,
        }
    }
}

/// A filesystem action with its checked arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum FilesystemAction {
    ReadFile { path: FsPath },
    WriteFile { path: FsPath, content: String },
    DeleteFile { path: FsPath },
    ListDir { path: FsPath },
}

impl FilesystemAction {
    pub fn path(&self) -> &FsPath {
        match self {
            FilesystemAction::ReadFile { path }
            | FilesystemAction::WriteFile { path, .. }
            | FilesystemAction::DeleteFile { path }
            | FilesystemAction::ListDir { path } => path,
        }
    }

    pub fn name(&self) -> ActionName {
        match self {
            FilesystemAction::ReadFile { .. } => ActionName::ReadFile,
            FilesystemAction::WriteFile { .. } => ActionName::WriteFile,
            FilesystemAction::DeleteFile { .. } => ActionName::DeleteFile,
            FilesystemAction::ListDir { .. } => ActionName::ListDir,
        }
    }
}

/// A Slack action with its checked arguments (SPEC-hubspot-slack §7.5).
#[derive(Debug, Clone, PartialEq)]
pub enum SlackAction {
    PostMessage {
        channel: Channel,
        text: String,
        thread_ts: Option<Ts>,
    },
    UpdateMessage {
        channel: Channel,
        ts: Ts,
        text: String,
    },
}

impl SlackAction {
    pub fn channel(&self) -> &Channel {
        match self {
            SlackAction::PostMessage { channel, .. }
            | SlackAction::UpdateMessage { channel, .. } => channel,
        }
    }

    pub fn text(&self) -> &str {
        match self {
            SlackAction::PostMessage { text, .. } | SlackAction::UpdateMessage { text, .. } => text,
        }
    }

    pub fn name(&self) -> ActionName {
        match self {
            SlackAction::PostMessage { .. } => ActionName::PostMessage,
            SlackAction::UpdateMessage { .. } => ActionName::UpdateMessage,
        }
    }
}

/// One planned connector action, typed by its system's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Github(GithubAction),
    Postgres(PostgresAction),
    Filesystem(FilesystemAction),
    Hubspot(HubspotAction),
    Slack(SlackAction),
}

impl Action {
    pub fn kind(&self) -> SystemKind {
        match self {
            Action::Github(_) => SystemKind::Github,
            Action::Postgres(_) => SystemKind::Postgres,
            Action::Filesystem(_) => SystemKind::Filesystem,
            Action::Hubspot(_) => SystemKind::Hubspot,
            Action::Slack(_) => SystemKind::Slack,
        }
    }

    pub fn name(&self) -> ActionName {
        match self {
            Action::Github(a) => a.name(),
            Action::Postgres(a) => a.name(),
            Action::Filesystem(a) => a.name(),
            Action::Hubspot(a) => a.name(),
            Action::Slack(a) => a.name(),
        }
    }

    /// Builds the typed action from arguments that hold every argument of the action's spec
    /// (defaults filled in). Each newtype validates its value; unknown arguments are ignored
    /// here (the plan builder refuses them before).
    pub fn from_args(name: ActionName, args: &Map<String, Value>) -> Result<Action, String> {
        let a = Args(args);
        Ok(match name {
            ActionName::CreateBranch => Action::Github(GithubAction::CreateBranch {
                repo: a.repo()?,
                branch: a.branch("branch")?,
                from: a.branch("from_branch")?,
            }),
            ActionName::DeleteBranch => Action::Github(GithubAction::DeleteBranch {
                repo: a.repo()?,
                branch: a.branch("branch")?,
            }),
            ActionName::CreatePr => Action::Github(GithubAction::CreatePr {
                repo: a.repo()?,
                title: a.text("title")?,
                head: a.branch("head")?,
                base: a.branch("base")?,
                body: a.text("body")?,
            }),
            ActionName::CreateIssue => Action::Github(GithubAction::CreateIssue {
                repo: a.repo()?,
                title: a.text("title")?,
                body: a.text("body")?,
            }),
            ActionName::MergePr => Action::Github(GithubAction::MergePr {
                repo: a.repo()?,
                number: a.pr_number("pr_number")?,
            }),
            ActionName::PushCommit => Action::Github(GithubAction::PushCommit {
                repo: a.repo()?,
                branch: a.branch("branch")?,
                message: a.text("message")?,
                files: a.files("files")?,
            }),
            ActionName::SelectRows => Action::Postgres(PostgresAction::SelectRows {
                table: a.table()?,
                filter: a.object("where")?,
                limit: a.count("limit")?,
            }),
            ActionName::InsertRow => Action::Postgres(PostgresAction::InsertRow {
                table: a.table()?,
                data: a.object("data")?,
            }),
            ActionName::UpdateRow => Action::Postgres(PostgresAction::UpdateRow {
                table: a.table()?,
                data: a.object("data")?,
                filter: a.object("where")?,
            }),
            ActionName::DeleteRow => Action::Postgres(PostgresAction::DeleteRow {
                table: a.table()?,
                filter: a.object("where")?,
            }),
            ActionName::ReadFile => {
                Action::Filesystem(FilesystemAction::ReadFile { path: a.path()? })
            }
            ActionName::WriteFile => Action::Filesystem(FilesystemAction::WriteFile {
                path: a.path()?,
                content: a.text("content")?,
            }),
            ActionName::DeleteFile => {
                Action::Filesystem(FilesystemAction::DeleteFile { path: a.path()? })
            }
            ActionName::ListDir => {
                Action::Filesystem(FilesystemAction::ListDir { path: a.path()? })
            }
            ActionName::FindContact
            | ActionName::CreateContact
            | ActionName::UpdateContact
            | ActionName::CreateTask => Action::Hubspot(HubspotAction::from_args(name, args)?),
            ActionName::PostMessage => Action::Slack(SlackAction::PostMessage {
                channel: a.channel()?,
                text: a.text("text")?,
                thread_ts: match a.get("thread_ts")? {
                    Value::Null => None,
                    _ => Some(Ts::parse(a.str("thread_ts")?)?),
                },
            }),
            ActionName::UpdateMessage => Action::Slack(SlackAction::UpdateMessage {
                channel: a.channel()?,
                ts: Ts::parse(a.str("ts")?)?,
                text: a.text("text")?,
            }),
        })
    }

    /// The action's arguments as JSON (receipts, step records, previews): every argument of
    /// its spec, defaults included, in the spec's order.
    pub fn args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        let s = |x: &str| Value::String(x.to_string());
        match self {
            Action::Github(g) => match g {
                GithubAction::CreateBranch { repo, branch, from } => {
                    put("repo", s(repo.as_str()));
                    put("branch", s(branch.as_str()));
                    put("from_branch", s(from.as_str()));
                }
                GithubAction::DeleteBranch { repo, branch } => {
                    put("repo", s(repo.as_str()));
                    put("branch", s(branch.as_str()));
                }
                GithubAction::CreatePr {
                    repo,
                    title,
                    head,
                    base,
                    body,
                } => {
                    put("repo", s(repo.as_str()));
                    put("title", s(title));
                    put("head", s(head.as_str()));
                    put("base", s(base.as_str()));
                    put("body", s(body));
                }
                GithubAction::CreateIssue { repo, title, body } => {
                    put("repo", s(repo.as_str()));
                    put("title", s(title));
                    put("body", s(body));
                }
                GithubAction::MergePr { repo, number } => {
                    put("repo", s(repo.as_str()));
                    put("pr_number", Value::from(number.get()));
                }
                GithubAction::PushCommit {
                    repo,
                    branch,
                    message,
                    files,
                } => {
                    put("repo", s(repo.as_str()));
                    put("branch", s(branch.as_str()));
                    put("message", s(message));
                    put(
                        "files",
                        Value::Object(
                            files
                                .iter()
                                .map(|(p, c)| (p.as_str().to_string(), s(c)))
                                .collect(),
                        ),
                    );
                }
            },
            Action::Postgres(p) => match p {
                PostgresAction::SelectRows {
                    table,
                    filter,
                    limit,
                } => {
                    put("table", s(table.as_str()));
                    put("where", Value::Object(filter.clone()));
                    put("limit", Value::from(*limit));
                }
                PostgresAction::InsertRow { table, data } => {
                    put("table", s(table.as_str()));
                    put("data", Value::Object(data.clone()));
                }
                PostgresAction::UpdateRow {
                    table,
                    data,
                    filter,
                } => {
                    put("table", s(table.as_str()));
                    put("data", Value::Object(data.clone()));
                    put("where", Value::Object(filter.clone()));
                }
                PostgresAction::DeleteRow { table, filter } => {
                    put("table", s(table.as_str()));
                    put("where", Value::Object(filter.clone()));
                }
            },
            Action::Filesystem(f) => {
                put("path", s(f.path().as_str()));
                if let FilesystemAction::WriteFile { content, .. } = f {
                    put("content", s(content));
                }
            }
            Action::Hubspot(h) => return h.args(),
            Action::Slack(SlackAction::PostMessage {
                channel,
                text,
                thread_ts,
            }) => {
                put("channel", s(channel.as_str()));
                put("text", s(text));
                put(
                    "thread_ts",
                    thread_ts.as_ref().map_or(Value::Null, |t| s(t.as_str())),
                );
            }
            Action::Slack(SlackAction::UpdateMessage { channel, ts, text }) => {
                put("channel", s(channel.as_str()));
                put("ts", s(ts.as_str()));
                put("text", s(text));
            }
        }
        m
    }
}

/// Argument extraction for [`Action::from_args`]; messages name the argument.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn get(&self, name: &str) -> Result<&Value, String> {
        self.0
            .get(name)
            .ok_or_else(|| format!("missing argument `{name}`"))
    }
    fn str(&self, name: &str) -> Result<&str, String> {
        let v = self.get(name)?;
        v.as_str().ok_or_else(|| {
            format!(
                "argument `{name}` must be a string, got {}",
                json_type_name(v)
            )
        })
    }
    fn text(&self, name: &str) -> Result<String, String> {
        self.str(name).map(str::to_string)
    }
    fn repo(&self) -> Result<Repo, String> {
        Repo::parse(self.str("repo")?)
    }
    fn branch(&self, name: &str) -> Result<Branch, String> {
        Branch::parse(self.str(name)?)
    }
    fn table(&self) -> Result<Table, String> {
        Table::parse(self.str("table")?)
    }
    fn channel(&self) -> Result<Channel, String> {
        Channel::parse(self.str("channel")?)
    }
    fn path(&self) -> Result<FsPath, String> {
        FsPath::parse(self.str("path")?)
    }
    fn object(&self, name: &str) -> Result<Map<String, Value>, String> {
        match self.get(name)? {
            Value::Object(m) => Ok(m.clone()),
            other => Err(format!(
                "argument `{name}` must be an object, got {}",
                json_type_name(other)
            )),
        }
    }
    fn count(&self, name: &str) -> Result<u64, String> {
        let v = self.get(name)?;
        integer_value(v)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| format!("argument `{name}` must be a non-negative integer, got {v}"))
    }
    fn pr_number(&self, name: &str) -> Result<PrNumber, String> {
        let v = self.get(name)?;
        integer_value(v)
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(PrNumber)
            .ok_or_else(|| {
                format!(
                    "argument `{name}` must be a positive integer, got {}",
                    json_type_name(v)
                )
            })
    }
    fn files(&self, name: &str) -> Result<Vec<(RelPath, String)>, String> {
        self.object(name)?
            .iter()
            .map(|(path, content)| {
                let content = content.as_str().ok_or_else(|| {
                    format!(
                        "content of '{path}' must be a string, got {}",
                        json_type_name(content)
                    )
                })?;
                Ok((RelPath::parse(path)?, content.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::action::ACTIONS;
    use serde_json::json;

    #[test]
    fn json_args_round_trip_for_every_action() {
        let sample = |name: &str| -> Value {
            match name {
                "repo" => json!("acme/app"),
                "pr_number" => json!(7),
                "files" => json!({"a/b.txt": "x", "c": "y"}),
                "table" => json!("public.items"),
                "where" | "data" => json!({"id": 1}),
                "limit" => json!(5),
                "path" => json!("notes/a.md"),
                "channel" => json!("C0123ABCD"),
                "ts" | "thread_ts" => json!("1716900000.000100"),
                "branch" | "from_branch" | "head" | "base" => json!("agent/x"),
                "email" | "contact_email" => json!("bob@acme.com"),
                "properties" => json!({"firstname": "Bob"}),
                "due" => json!("2026-05-01"),
                _ => json!("text"),
            }
        };
        for spec in ACTIONS {
            let args: Map<String, Value> = spec
                .args
                .iter()
                .map(|a| (a.name.to_string(), sample(a.name)))
                .collect();
            let action = Action::from_args(spec.name, &args);
            assert_eq!(action.as_ref().map(Action::args), Ok(args), "{}", spec.name);
            assert_eq!(
                action.map(|a| (a.kind(), a.name())),
                Ok((spec.kind, spec.name))
            );
        }
    }

    #[test]
    fn newtypes_refuse_what_could_reshape_a_url() {
        assert!(Repo::parse("acme/app?").is_err());
        assert!(Branch::parse("main?x").is_err());
        assert_eq!(Branch::parse("refs/heads/a").map(|b| b.0), Ok("a".into()));
        assert!(RelPath::parse("../x").is_err());
        assert!(Table::parse("").is_err());
        assert!(PrNumber::new(0).is_err());
    }
}
