//! The catalogue of connector actions: which system types exist, which actions each offers,
//! which are read-only, and the argument shape each action takes.
//!
//! This is data, not behaviour: the config validator, the plan builder, the policies and the
//! connectors all read it. Action names are spelled only in [`ActionName`] and defaults only in
//! [`ACTIONS`]; adding an action means an entry here, a variant in [`super::typed`], and the
//! arms the compiler then asks for.

use serde::Serialize;

/// A connector type, as written in `[systems.X] type = "…"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemKind {
    Github,
    Postgres,
    Filesystem,
    Hubspot,
    Slack,
}

impl SystemKind {
    pub const ALL: [SystemKind; 5] = [
        SystemKind::Github,
        SystemKind::Postgres,
        SystemKind::Filesystem,
        SystemKind::Hubspot,
        SystemKind::Slack,
    ];

    pub fn parse(s: &str) -> Option<SystemKind> {
        match s {
            "github" => Some(SystemKind::Github),
            "postgres" => Some(SystemKind::Postgres),
            "filesystem" => Some(SystemKind::Filesystem),
            "hubspot" => Some(SystemKind::Hubspot),
            "slack" => Some(SystemKind::Slack),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SystemKind::Github => "github",
            SystemKind::Postgres => "postgres",
            SystemKind::Filesystem => "filesystem",
            SystemKind::Hubspot => "hubspot",
            SystemKind::Slack => "slack",
        }
    }

    /// Every action this type offers (also its default `allowed_actions`).
    pub fn actions(self) -> Vec<&'static str> {
        ACTIONS
            .iter()
            .filter(|a| a.kind == self)
            .map(|a| a.name.as_str())
            .collect()
    }
}

impl std::fmt::Display for SystemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a connector action: the one place where action names are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionName {
    CreateBranch,
    DeleteBranch,
    CreatePr,
    CreateIssue,
    MergePr,
    PushCommit,
    SelectRows,
    InsertRow,
    UpdateRow,
    DeleteRow,
    ReadFile,
    WriteFile,
    DeleteFile,
    ListDir,
    FindContact,
    CreateContact,
    UpdateContact,
    CreateTask,
    PostMessage,
    UpdateMessage,
}

impl ActionName {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionName::CreateBranch => "create_branch",
            ActionName::DeleteBranch => "delete_branch",
            ActionName::CreatePr => "create_pr",
            ActionName::CreateIssue => "create_issue",
            ActionName::MergePr => "merge_pr",
            ActionName::PushCommit => "push_commit",
            ActionName::SelectRows => "select_rows",
            ActionName::InsertRow => "insert_row",
            ActionName::UpdateRow => "update_row",
            ActionName::DeleteRow => "delete_row",
            ActionName::ReadFile => "read_file",
            ActionName::WriteFile => "write_file",
            ActionName::DeleteFile => "delete_file",
            ActionName::ListDir => "list_dir",
            ActionName::FindContact => "find_contact",
            ActionName::CreateContact => "create_contact",
            ActionName::UpdateContact => "update_contact",
            ActionName::CreateTask => "create_task",
            ActionName::PostMessage => "post_message",
            ActionName::UpdateMessage => "update_message",
        }
    }

    /// The action of this name, whatever its system type (names are unique across types).
    pub fn parse(s: &str) -> Option<ActionName> {
        ACTIONS.iter().map(|a| a.name).find(|n| n.as_str() == s)
    }
}

impl std::fmt::Display for ActionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ActionName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// How one argument of an action is checked and normalised when the plan is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    /// Any JSON string.
    Str,
    /// `owner/name`, and inside the system's `repos`.
    Repo,
    /// A git branch name (`git check-ref-format --branch`, no whitespace or `?#%\`);
    /// a leading `refs/heads/` is dropped.
    Branch,
    /// A positive integer (pull request number).
    PositiveInt,
    /// A non-negative integer.
    NonNegativeInt,
    /// A JSON object with any values (a row, a `where`).
    Object,
    /// A JSON object of relative file path → string content (`push_commit.files`).
    FileMap,
    /// A table name: `table` or `schema.table`.
    Table,
    /// A path inside a filesystem root.
    Path,
    /// An email address (`local@domain`), trimmed and lower-cased.
    Email,
    /// HubSpot contact properties: names in the system's `properties`, scalar values.
    Properties,
    /// An optional due time: RFC 3339 or `YYYY-MM-DD`; `null` means none.
    Due,
    /// A Slack conversation ID (`^[CGD][A-Z0-9]{8,}$`) inside the system's `channels`.
    Channel,
    /// A Slack message timestamp (`^\d{10}\.\d{6}$`).
    Ts,
    /// An optional Slack message timestamp: `null` (the default) means none.
    OptTs,
    /// A Slack message text: not empty, at most 40,000 characters.
    Text,
}

/// One argument of an action.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub ty: ArgType,
    /// `None`: required. `Some(json)`: optional with this default (JSON text).
    pub default: Option<&'static str>,
}

/// One connector action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    pub kind: SystemKind,
    pub name: ActionName,
    /// Read-only actions change nothing, so rollback skips them.
    pub read_only: bool,
    /// Whether rollback can reverse it (`merge_pr` cannot: no one can unmerge), decided here
    /// so that the inverse plan (and `rollback --dry-run`) is exact.
    pub reversible: bool,
    pub args: &'static [ArgSpec],
}

const fn req(name: &'static str, ty: ArgType) -> ArgSpec {
    ArgSpec {
        name,
        ty,
        default: None,
    }
}
const fn opt(name: &'static str, ty: ArgType, default: &'static str) -> ArgSpec {
    ArgSpec {
        name,
        ty,
        default: Some(default),
    }
}

use ArgType::*;
use SystemKind::*;

pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        kind: Github,
        name: ActionName::CreateBranch,
        read_only: false,
        reversible: true,
        args: &[
            req("repo", Repo),
            req("branch", Branch),
            opt("from_branch", Branch, "\"main\""),
        ],
    },
    ActionSpec {
        kind: Github,
        name: ActionName::DeleteBranch,
        read_only: false,
        reversible: true,
        args: &[req("repo", Repo), req("branch", Branch)],
    },
    ActionSpec {
        kind: Github,
        name: ActionName::CreatePr,
        read_only: false,
        reversible: true,
        args: &[
            req("repo", Repo),
            req("title", Str),
            req("head", Branch),
            opt("base", Branch, "\"main\""),
            opt("body", Str, "\"\""),
        ],
    },
    ActionSpec {
        kind: Github,
        name: ActionName::CreateIssue,
        read_only: false,
        reversible: true,
        args: &[
            req("repo", Repo),
            req("title", Str),
            opt("body", Str, "\"\""),
        ],
    },
    ActionSpec {
        kind: Github,
        name: ActionName::MergePr,
        read_only: false,
        reversible: false,
        args: &[req("repo", Repo), req("pr_number", PositiveInt)],
    },
    ActionSpec {
        kind: Github,
        name: ActionName::PushCommit,
        read_only: false,
        reversible: true,
        args: &[
            req("repo", Repo),
            req("branch", Branch),
            req("message", Str),
            req("files", FileMap),
        ],
    },
    ActionSpec {
        kind: Postgres,
        name: ActionName::SelectRows,
        read_only: true,
        reversible: true,
        args: &[
            req("table", Table),
            opt("where", Object, "{}"),
            opt("limit", NonNegativeInt, "100"),
        ],
    },
    ActionSpec {
        kind: Postgres,
        name: ActionName::InsertRow,
        read_only: false,
        reversible: true,
        args: &[req("table", Table), req("data", Object)],
    },
    ActionSpec {
        kind: Postgres,
        name: ActionName::UpdateRow,
        read_only: false,
        reversible: true,
        // `where` defaults to {} so that policies (and the connector) can name the empty-where
        // case instead of a generic "missing argument".
        args: &[
            req("table", Table),
            req("data", Object),
            opt("where", Object, "{}"),
        ],
    },
    ActionSpec {
        kind: Postgres,
        name: ActionName::DeleteRow,
        read_only: false,
        reversible: true,
        args: &[req("table", Table), opt("where", Object, "{}")],
    },
    ActionSpec {
        kind: Filesystem,
        name: ActionName::ReadFile,
        read_only: true,
        reversible: true,
        args: &[req("path", Path)],
    },
    ActionSpec {
        kind: Filesystem,
        name: ActionName::WriteFile,
        read_only: false,
        reversible: true,
        args: &[req("path", Path), req("content", Str)],
    },
    ActionSpec {
        kind: Filesystem,
        name: ActionName::DeleteFile,
        read_only: false,
        reversible: true,
        args: &[req("path", Path)],
    },
    ActionSpec {
        kind: Filesystem,
        name: ActionName::ListDir,
        read_only: true,
        reversible: true,
        args: &[opt("path", Path, "\".\"")],
    },
    ActionSpec {
        kind: Hubspot,
        name: ActionName::FindContact,
        read_only: true,
        reversible: true,
        args: &[req("email", Email)],
    },
    ActionSpec {
        kind: Hubspot,
        name: ActionName::CreateContact,
        read_only: false,
        reversible: true,
        args: &[req("email", Email), opt("properties", Properties, "{}")],
    },
    ActionSpec {
        kind: Hubspot,
        name: ActionName::UpdateContact,
        read_only: false,
        reversible: true,
        args: &[req("email", Email), req("properties", Properties)],
    },
    ActionSpec {
        kind: Hubspot,
        name: ActionName::CreateTask,
        read_only: false,
        reversible: true,
        args: &[
            req("contact_email", Email),
            req("subject", Str),
            opt("body", Str, "\"\""),
            opt("due", Due, "null"),
        ],
    },
    ActionSpec {
        kind: Slack,
        name: ActionName::PostMessage,
        read_only: false,
        reversible: true,
        args: &[
            req("channel", Channel),
            req("text", Text),
            opt("thread_ts", OptTs, "null"),
        ],
    },
    ActionSpec {
        kind: Slack,
        name: ActionName::UpdateMessage,
        read_only: false,
        reversible: true,
        args: &[req("channel", Channel), req("ts", Ts), req("text", Text)],
    },
];

/// Looks up an action of a system type.
pub fn spec(kind: SystemKind, action: &str) -> Option<&'static ActionSpec> {
    ACTIONS
        .iter()
        .find(|a| a.kind == kind && a.name.as_str() == action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_one_spec() {
        for a in ACTIONS {
            assert_eq!(ACTIONS.iter().filter(|b| b.name == a.name).count(), 1);
            assert_eq!(ActionName::parse(a.name.as_str()), Some(a.name));
        }
    }
}
