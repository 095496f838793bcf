//! The inverse plan of a run (SPEC §6): which recorded actions to undo, in reverse order.

use serde::Serialize;
use serde_json::Value;

use super::action::{self, SystemKind};
use super::receipt::ActionRecord;

/// What rollback does with one recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoKind {
    /// Ask the connector to reverse it (guarded against drift).
    Undo,
    /// A read-only action: nothing to reverse; recorded as a succeeded step.
    SkipReadOnly,
}

/// One step of an inverse plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UndoStep {
    /// Index of the action in the original run's `actions_taken`.
    pub index: usize,
    pub action: String,
    pub system: String,
    pub kind: UndoKind,
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
            kind: if is_read_only(a) {
                UndoKind::SkipReadOnly
            } else {
                UndoKind::Undo
            },
        })
        .collect()
}

fn is_read_only(a: &ActionRecord) -> bool {
    let kind = a
        .target
        .get("type")
        .and_then(Value::as_str)
        .and_then(SystemKind::parse);
    kind.and_then(|k| action::spec(k, &a.action))
        .is_some_and(|s| s.read_only)
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
}
