//! The inverse plan of a run (SPEC §6): which recorded actions to undo, in reverse order.

use serde::Serialize;
use serde_json::Value;

use super::action::{self, ActionName, ActionSpec, SystemKind};
use super::receipt::ActionRecord;

/// What rollback does with one recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoKind {
    /// Ask the connector to reverse it (guarded against drift).
    Undo,
    /// A read-only action: nothing to reverse; recorded as a succeeded step.
    SkipReadOnly,
    /// An action no one can reverse (`merge_pr`): recorded as a failed step, so the rollback
    /// is PARTIAL; the connector is not asked.
    Irreversible,
}

/// One step of an inverse plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UndoStep {
    /// Index of the action in the original run's `actions_taken`.
    pub index: usize,
    pub action: String,
    pub system: String,
    pub kind: UndoKind,
    /// What the step touches, for people: the file, the repo and branch or pull request /
    /// issue number, the table and the rows' primary keys. Derived from the recorded action.
    pub target: String,
}

/// The inverse plan: every successful action that changed something, newest first.
/// Failed actions changed nothing; idempotent no-ops (`already_done` is a word) have nothing
/// to undo. With `only`, just those indexes (retrying the failed steps of a PARTIAL rollback).
pub fn inverse_plan(actions: &[ActionRecord], only: Option<&[usize]>) -> Vec<UndoStep> {
    actions
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| only.is_none_or(|o| o.contains(i)))
        .filter(|(_, a)| a.success)
        .filter(|(_, a)| !matches!(a.output.get("already_done"), Some(Value::String(_))))
        .map(|(index, a)| UndoStep {
            index,
            action: a.action.clone(),
            system: a.system.clone(),
            target: describe_target(a),
            kind: match spec_of(a) {
                Some(s) if s.read_only => UndoKind::SkipReadOnly,
                // A change that happened and cannot be reversed; an irreversible action that
                // changed nothing (recovered as not done) is left to the connector to skip.
                Some(s)
                    if !s.reversible
                        && a.output.get("already_done") == Some(&Value::Bool(false)) =>
                {
                    UndoKind::Irreversible
                }
                _ => UndoKind::Undo,
            },
        })
        .collect()
}

/// Rows named in a target description, at most; the rest are counted.
const ROWS_SHOWN: usize = 10;

/// What a recorded action touched, from its arguments, output and rollback data:
/// `file notes/a.md`, `branch agent/x in acme/app`, `pull request #7 in acme/app`,
/// `issue #3 in acme/app`, `rows (id=1), (id=2) of public.items`, `table items`.
pub fn describe_target(a: &ActionRecord) -> String {
    let kind = a
        .target
        .get("type")
        .and_then(Value::as_str)
        .and_then(SystemKind::parse);
    let described = match kind {
        Some(SystemKind::Filesystem) => file_target(a),
        Some(SystemKind::Github) => github_target(a),
        Some(SystemKind::Postgres) => postgres_target(a),
        Some(SystemKind::Hubspot) => hubspot_target(a),
        Some(SystemKind::Slack) => recorded(a, "channel").map(|channel| match recorded(a, "ts") {
            Some(ts) => format!("message {ts} in {channel}"),
            None => format!("a message in {channel}"),
        }),
        None => None,
    };
    described.unwrap_or_else(|| "target not recorded".into())
}

/// A string field of the rollback data, else of the arguments, else of the output.
fn recorded<'a>(a: &'a ActionRecord, key: &str) -> Option<&'a str> {
    a.rollback_data
        .get(key)
        .or_else(|| a.args.get(key))
        .or_else(|| a.output.get(key))
        .and_then(Value::as_str)
}

/// A number field of the rollback data, else of the output, else of the arguments.
fn recorded_number(a: &ActionRecord, key: &str) -> Option<u64> {
    a.rollback_data
        .get(key)
        .or_else(|| a.output.get(key))
        .or_else(|| a.args.get(key))
        .and_then(Value::as_u64)
}

fn file_target(a: &ActionRecord) -> Option<String> {
    let path = recorded(a, "path")?;
    Some(match ActionName::parse(&a.action) {
        Some(ActionName::ListDir) => format!("folder {path}"),
        _ => format!("file {path}"),
    })
}

fn github_target(a: &ActionRecord) -> Option<String> {
    let repo = recorded(a, "repo")?;
    match ActionName::parse(&a.action) {
        Some(ActionName::CreatePr | ActionName::MergePr) => {
            let n = recorded_number(a, "pr_number")?;
            Some(format!("pull request #{n} in {repo}"))
        }
        Some(ActionName::CreateIssue) => {
            let n = recorded_number(a, "issue_number")?;
            Some(format!("issue #{n} in {repo}"))
        }
        _ => {
            let branch = recorded(a, "branch")?;
            Some(format!("branch {branch} in {repo}"))
        }
    }
}

fn hubspot_target(a: &ActionRecord) -> Option<String> {
    match ActionName::parse(&a.action) {
        Some(ActionName::CreateTask) => {
            let id = recorded(a, "task_id")?;
            let email = recorded(a, "contact_email")?;
            Some(format!("task {id} of contact {email}"))
        }
        _ => {
            let email = recorded(a, "email")?;
            Some(match recorded(a, "id") {
                Some(id) => format!("contact {id} ({email})"),
                None => format!("contact {email}"),
            })
        }
    }
}

fn postgres_target(a: &ActionRecord) -> Option<String> {
    let data = &a.rollback_data;
    let table = match (
        data.get("schema").and_then(Value::as_str),
        data.get("table").and_then(Value::as_str),
    ) {
        (Some(schema), Some(table)) => format!("{schema}.{table}"),
        _ => a.args.get("table").and_then(Value::as_str)?.to_string(),
    };
    let rows: Vec<&Value> = match ActionName::parse(&a.action) {
        Some(ActionName::InsertRow) => data.get("row").into_iter().collect(),
        Some(ActionName::UpdateRow) => data
            .get("new_rows")
            .or_else(|| data.get("old_rows"))
            .and_then(Value::as_array)
            .map(|r| r.iter().collect())
            .unwrap_or_default(),
        Some(ActionName::DeleteRow) => data
            .get("rows")
            .and_then(Value::as_array)
            .map(|r| r.iter().collect())
            .unwrap_or_default(),
        _ => return Some(format!("table {table}")),
    };
    let key: Vec<&str> = data
        .get("primary_key")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if rows.is_empty() || key.is_empty() {
        return Some(format!("table {table}"));
    }
    let mut labels: Vec<String> = rows
        .iter()
        .take(ROWS_SHOWN)
        .map(|row| format!("({})", key_label(&key, row)))
        .collect();
    if rows.len() > ROWS_SHOWN {
        labels.push(format!("and {} more", rows.len() - ROWS_SHOWN));
    }
    let noun = if rows.len() == 1 { "row" } else { "rows" };
    Some(format!("{noun} {} of {table}", labels.join(", ")))
}

/// `id=5` or `a=1, b=x`: a row named by its primary key columns.
fn key_label(key: &[&str], row: &Value) -> String {
    key.iter()
        .map(|k| {
            let v = match row.get(*k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => "?".into(),
                Some(other) => other.to_string(),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The spec of a recorded action, if its system type and name are known.
fn spec_of(a: &ActionRecord) -> Option<&'static ActionSpec> {
    let kind = a
        .target
        .get("type")
        .and_then(Value::as_str)
        .and_then(SystemKind::parse)?;
    action::spec(kind, &a.action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn rec(action: &str, success: bool, already: Value) -> ActionRecord {
        ActionRecord {
            action: action.into(),
            system: "files".into(),
            success,
            output: json!({"already_done": already}),
            rollback_data: json!({}),
            target: json!({"type": "filesystem", "root": "/w"}),
            args: Map::new(),
        }
    }

    #[test]
    fn reverse_order_skipping_failures_and_no_ops() {
        let actions = vec![
            rec("write_file", true, json!(false)),
            rec("read_file", true, Value::Null),
            rec("write_file", true, json!("written")),
            rec("delete_file", true, json!(false)),
            rec("write_file", false, Value::Null),
        ];
        let plan = inverse_plan(&actions, None);
        let got: Vec<(usize, UndoKind)> = plan.iter().map(|s| (s.index, s.kind.clone())).collect();
        assert_eq!(
            got,
            vec![
                (3, UndoKind::Undo),
                (1, UndoKind::SkipReadOnly),
                (0, UndoKind::Undo)
            ]
        );
        let retry = inverse_plan(&actions, Some(&[0]));
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0].index, 0);
    }

    fn with(target: Value, action: &str, args: Value, output: Value, data: Value) -> ActionRecord {
        ActionRecord {
            action: action.into(),
            system: "s".into(),
            success: true,
            output,
            rollback_data: data,
            target,
            args: args.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn targets_name_the_file_branch_number_or_rows() {
        let fs = json!({"type": "filesystem", "root": "/w"});
        let gh = json!({"type": "github", "base_url": "http://x", "repo": "acme/app"});
        let pg = json!({"type": "postgres", "host": "h", "port": 5432, "dbname": "d"});
        let cases = [
            (
                with(
                    fs.clone(),
                    "write_file",
                    json!({"path": "notes/a.md", "content": "x"}),
                    json!({}),
                    json!({}),
                ),
                "file notes/a.md",
            ),
            (
                with(fs, "list_dir", json!({"path": "."}), json!({}), json!({})),
                "folder .",
            ),
            (
                with(
                    gh.clone(),
                    "create_branch",
                    json!({"repo": "acme/app", "branch": "agent/x"}),
                    json!({}),
                    json!({}),
                ),
                "branch agent/x in acme/app",
            ),
            (
                with(
                    gh.clone(),
                    "create_pr",
                    json!({"repo": "acme/app", "head": "agent/x"}),
                    json!({"pr_number": 7}),
                    json!({"repo": "acme/app", "pr_number": 7}),
                ),
                "pull request #7 in acme/app",
            ),
            (
                with(
                    gh.clone(),
                    "merge_pr",
                    json!({"repo": "acme/app", "pr_number": 8}),
                    json!({"merged": true}),
                    json!({}),
                ),
                "pull request #8 in acme/app",
            ),
            (
                with(
                    gh,
                    "create_issue",
                    json!({"repo": "acme/app", "title": "t"}),
                    json!({"issue_number": 3}),
                    json!({}),
                ),
                "issue #3 in acme/app",
            ),
            (
                with(
                    pg.clone(),
                    "insert_row",
                    json!({"table": "items"}),
                    json!({}),
                    json!({"schema": "public", "table": "items", "primary_key": ["id"], "row": {"id": "5", "n": "x"}}),
                ),
                "row (id=5) of public.items",
            ),
            (
                with(
                    pg.clone(),
                    "update_row",
                    json!({"table": "items"}),
                    json!({}),
                    json!({"schema": "s", "table": "t", "primary_key": ["a", "b"],
                           "old_rows": [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}],
                           "new_rows": [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}]}),
                ),
                "rows (a=1, b=x), (a=2, b=y) of s.t",
            ),
            (
                with(
                    pg.clone(),
                    "select_rows",
                    json!({"table": "items"}),
                    json!({"rows": []}),
                    json!({}),
                ),
                "table items",
            ),
            (
                with(json!({}), "write_file", json!({}), json!({}), json!({})),
                "target not recorded",
            ),
        ];
        for (record, want) in cases {
            assert_eq!(describe_target(&record), want, "{}", record.action);
        }
        let rows: Vec<Value> = (0..12).map(|i| json!({"id": i.to_string()})).collect();
        let many = with(
            pg,
            "delete_row",
            json!({"table": "items"}),
            json!({}),
            json!({"schema": "public", "table": "items", "primary_key": ["id"], "rows": rows}),
        );
        assert_eq!(
            describe_target(&many),
            "rows (id=0), (id=1), (id=2), (id=3), (id=4), (id=5), (id=6), (id=7), (id=8), (id=9), and 2 more of public.items"
        );
    }
}
