//! The catalogue of connector actions: which system types exist, which actions each offers,
//! which are read-only, and the argument shape each action takes.
//!
//! This is data, not behaviour: the config validator, the plan builder, the policies and the
//! connectors all read it, so adding an action means adding one entry here and one arm in its
//! connector.

use serde::Serialize;

/// A connector type, as written in `[systems.X] type = "…"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemKind {
    Github,
    Postgres,
    Filesystem,
}

impl SystemKind {
    pub const ALL: [SystemKind; 3] = [
        SystemKind::Github,
        SystemKind::Postgres,
        SystemKind::Filesystem,
    ];

    pub fn parse(s: &str) -> Option<SystemKind> {
        match s {
            "github" => Some(SystemKind::Github),
            "postgres" => Some(SystemKind::Postgres),
            "filesystem" => Some(SystemKind::Filesystem),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SystemKind::Github => "github",
            SystemKind::Postgres => "postgres",
            SystemKind::Filesystem => "filesystem",
        }
    }

    /// Every action this type offers (also its default `allowed_actions`).
    pub fn actions(self) -> Vec<&'static str> {
        ACTIONS
            .iter()
            .filter(|a| a.kind == self)
            .map(|a| a.name)
            .collect()
    }
}

impl std::fmt::Display for SystemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    pub name: &'static str,
    /// Read-only actions change nothing, so rollback skips them.
    pub read_only: bool,
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
        name: "create_branch",
        read_only: false,
        args: &[
            req("repo", Repo),
            req("branch", Branch),
            opt("from_branch", Branch, "\"main\""),
        ],
    },
    ActionSpec {
        kind: Github,
        name: "delete_branch",
        read_only: false,
        args: &[req("repo", Repo), req("branch", Branch)],
    },
    ActionSpec {
        kind: Github,
        name: "create_pr",
        read_only: false,
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
        name: "create_issue",
        read_only: false,
        args: &[
            req("repo", Repo),
            req("title", Str),
            opt("body", Str, "\"\""),
        ],
    },
    ActionSpec {
        kind: Github,
        name: "merge_pr",
        read_only: false,
        args: &[req("repo", Repo), req("pr_number", PositiveInt)],
    },
    ActionSpec {
        kind: Github,
        name: "push_commit",
        read_only: false,
        args: &[
            req("repo", Repo),
            req("branch", Branch),
            req("message", Str),
            req("files", FileMap),
        ],
    },
    ActionSpec {
        kind: Postgres,
        name: "select_rows",
        read_only: true,
        args: &[
            req("table", Table),
            opt("where", Object, "{}"),
            opt("limit", NonNegativeInt, "100"),
        ],
    },
    ActionSpec {
        kind: Postgres,
        name: "insert_row",
        read_only: false,
        args: &[req("table", Table), req("data", Object)],
    },
    ActionSpec {
        kind: Postgres,
        name: "update_row",
        read_only: false,
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
        name: "delete_row",
        read_only: false,
        args: &[req("table", Table), opt("where", Object, "{}")],
    },
    ActionSpec {
        kind: Filesystem,
        name: "read_file",
        read_only: true,
        args: &[req("path", Path)],
    },
    ActionSpec {
        kind: Filesystem,
        name: "write_file",
        read_only: false,
        args: &[req("path", Path), req("content", Str)],
    },
    ActionSpec {
        kind: Filesystem,
        name: "delete_file",
        read_only: false,
        args: &[req("path", Path)],
    },
    ActionSpec {
        kind: Filesystem,
        name: "list_dir",
        read_only: true,
        args: &[opt("path", Path, "\".\"")],
    },
];

/// Looks up an action of a system type.
pub fn spec(kind: SystemKind, action: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.kind == kind && a.name == action)
}
