//! The plan as the policies read it: the steps of one system type and action, and their
//! arguments with the type a policy expects.
//!
//! The plan builder has already checked and normalised every argument, so a surprise here
//! (a missing argument, a wrong type) means a policy cannot decide: it is an `Err`, which the
//! gate turns into a failing `policy error: …` (fail closed), never a silent pass.

use serde_json::{Map, Value};

use crate::kernel::action::SystemKind;
use crate::kernel::plan::{Step, json_type_name};

/// One planned step, with its 1-based position for messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planned<'a> {
    pub number: usize,
    pub step: &'a Step,
}

/// The steps of `kind` whose action is one of `actions`, in plan order.
pub(super) fn steps<'a>(
    plan: &'a [Step],
    kind: SystemKind,
    actions: &[&str],
) -> impl Iterator<Item = Planned<'a>> {
    plan.iter()
        .enumerate()
        .filter(move |(_, s)| s.kind == kind && actions.contains(&s.action.as_str()))
        .map(|(i, step)| Planned {
            number: i + 1,
            step,
        })
}

impl<'a> Planned<'a> {
    /// A string argument; missing or of another type is an error.
    pub fn str_arg(&self, name: &str) -> Result<&'a str, String> {
        match self.step.args.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
            None => Err(self.missing(name)),
        }
    }

    /// An object argument that may be absent (`None`); present with another type is an error.
    pub fn optional_object_arg(
        &self,
        name: &str,
    ) -> Result<Option<&'a Map<String, Value>>, String> {
        match self.step.args.get(name) {
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.wrong_type(name, "an object", other)),
            None => Ok(None),
        }
    }

    /// An object argument; missing or of another type is an error.
    pub fn object_arg(&self, name: &str) -> Result<&'a Map<String, Value>, String> {
        self.optional_object_arg(name)?
            .ok_or_else(|| self.missing(name))
    }

    /// A positive integer argument (JSON Schema semantics: `5.0` is an integer).
    pub fn positive_int_arg(&self, name: &str) -> Result<u64, String> {
        let value = self.step.args.get(name).ok_or_else(|| self.missing(name))?;
        crate::kernel::plan::integer_value(value)
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| self.wrong_type(name, "a positive integer", value))
    }

    /// `step 2 (gh.create_branch)`: where a problem is, for messages.
    pub fn label(&self) -> String {
        format!(
            "step {} ({}.{})",
            self.number, self.step.system, self.step.action
        )
    }

    fn missing(&self, name: &str) -> String {
        format!("{}: argument `{name}` is missing", self.label())
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> String {
        format!(
            "{}: argument `{name}` must be {expected}, got {}",
            self.label(),
            json_type_name(got)
        )
    }
}

/// Values in first-seen order, each once (a plan may name one branch or path many times).
pub(super) fn unique<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// `'a', 'b'`: values named in a reason, each quoted, duplicates dropped (first kept).
pub(super) fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    unique(items.iter().map(AsRef::as_ref))
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Several findings as one reason: each once, in plan order, joined by `; `.
pub(super) fn join_unique(items: impl Iterator<Item = String>) -> String {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out.join("; ")
}

/// `main, master` (or `(none)`): a policy's configured list, as shown in a reason.
pub(super) fn plain_list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(kind: SystemKind, action: &str, args: Value) -> Step {
        let args = match args {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Step {
            system: "s".into(),
            kind,
            action: action.into(),
            args,
            guard: None,
        }
    }

    #[test]
    fn steps_filter_by_kind_and_action_and_number_from_one() {
        let plan = vec![
            step(SystemKind::Filesystem, "create_branch", json!({})),
            step(SystemKind::Github, "create_pr", json!({})),
            step(SystemKind::Github, "create_branch", json!({})),
        ];
        let found: Vec<usize> = steps(&plan, SystemKind::Github, &["create_branch"])
            .map(|p| p.number)
            .collect();
        assert_eq!(found, vec![3]);
    }

    #[test]
    fn argument_errors_name_the_step_and_argument() {
        let plan = [step(
            SystemKind::Github,
            "merge_pr",
            json!({"repo": 5, "pr_number": "7"}),
        )];
        let p = Planned {
            number: 1,
            step: &plan[0],
        };
        assert_eq!(
            p.str_arg("repo"),
            Err("step 1 (s.merge_pr): argument `repo` must be a string, got an integer".into())
        );
        assert_eq!(
            p.str_arg("branch"),
            Err("step 1 (s.merge_pr): argument `branch` is missing".into())
        );
        assert_eq!(
            p.positive_int_arg("pr_number"),
            Err("step 1 (s.merge_pr): argument `pr_number` must be a positive integer, got a string".into())
        );
        assert_eq!(
            p.object_arg("repo"),
            Err("step 1 (s.merge_pr): argument `repo` must be an object, got an integer".into())
        );
    }

    #[test]
    fn lists_quote_and_dedupe() {
        assert_eq!(unique(["b", "a", "b"]), vec!["b", "a"]);
        assert_eq!(quoted_list(&["a", "b", "a"]), "'a', 'b'");
        assert_eq!(plain_list(&[]), "(none)");
        assert_eq!(
            plain_list(&["main".to_string(), "master".to_string()]),
            "main, master"
        );
    }
}
