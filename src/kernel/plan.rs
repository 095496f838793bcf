//! The plan: the list of connector actions a workflow call will run, with resolved arguments.
//!
//! Policies judge the plan, connectors execute it, rollback builds an inverse of it. Building a
//! plan is pure: templating over the parsed value tree, then per-action argument checks and
//! normalisation (SPEC §2, §3.1). Any failure here is a BLOCK by the pseudo-policy
//! `input_schema`.

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use super::action::{self, ActionName, ArgType, SystemKind};
use super::schema;
use super::typed::Action;
use super::workflow::{Workflow, WorkflowBody};

/// One planned connector action, typed: built once by [`normalise_step`].
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The configured system's name (`[systems.<name>]`).
    pub system: String,
    pub action: Action,
    /// A condition checked by the engine just before this step runs.
    pub guard: Option<Guard>,
}

impl Step {
    pub fn kind(&self) -> SystemKind {
        self.action.kind()
    }
    pub fn name(&self) -> ActionName {
        self.action.name()
    }
    /// The step's arguments as JSON (receipts, step records, previews).
    pub fn args(&self) -> Map<String, Value> {
        self.action.args()
    }
    /// The step as shown to callers and recorded in receipts: `{system, action, args}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"system": self.system, "action": self.name().as_str(), "args": self.args()})
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("system", &self.system)?;
        m.serialize_entry("action", self.name().as_str())?;
        m.serialize_entry("args", &self.args())?;
        if let Some(guard) = &self.guard {
            m.serialize_entry("guard", guard)?;
        }
        m.end()
    }
}

/// A step before normalisation: a declared step after templating, or a built-in's step.
#[derive(Debug, Clone, PartialEq)]
pub struct RawStep {
    pub system: String,
    pub action: String,
    pub args: Map<String, Value>,
    pub guard: Option<Guard>,
}

/// A validated call: its arguments (defaults applied) and its typed plan.
#[derive(Debug, Clone)]
pub struct Planned {
    pub args: Map<String, Value>,
    pub steps: Vec<Step>,
}

/// Validates a call's arguments and builds its plan. `Err` is the `input_schema` reason.
/// `inexact`: numbers the transport found in the raw arguments whose value a double cannot
/// hold (their parsed form has already been rounded). `scope` names the configured systems.
pub fn build(
    workflow: &Workflow,
    raw: &Map<String, Value>,
    inexact: &[String],
    scope: &dyn Fn(&str) -> Option<SystemScope>,
) -> Result<Planned, String> {
    if let Some(n) = inexact.first() {
        return Err(format!(
            "number {n} cannot be represented exactly as a double"
        ));
    }
    let scope_of =
        |system: &str| scope(system).ok_or_else(|| format!("system `{system}` is not configured"));
    let args = schema::validate_arguments(&workflow.inputs, raw)?;
    // Both kinds of workflow produce raw steps first; every step is then normalised against
    // its system the same way, so policies always see one form.
    let raw_steps: Vec<RawStep> = match &workflow.body {
        WorkflowBody::Declared { steps } => {
            let mut out = Vec::new();
            for (i, t) in steps.iter().enumerate() {
                let value = substitute(&Value::Object(t.args.clone()), &args)
                    .map_err(|e| format!("step {}: {e}", i + 1))?;
                let Value::Object(map) = value else {
                    return Err(format!("step {}: arguments are not an object", i + 1));
                };
                scope_of(&t.system)?;
                out.push(RawStep {
                    system: t.system.clone(),
                    action: t.action.clone(),
                    args: map,
                    guard: None,
                });
            }
            out
        }
        WorkflowBody::Builtin { builtin, system } => builtin.plan(system, &args)?,
    };
    let mut steps = Vec::new();
    for step in raw_steps {
        let scope = scope_of(&step.system)?;
        let action = normalise_step(&scope, &step.action, &step.args)?;
        steps.push(Step {
            system: step.system,
            action,
            guard: step.guard,
        });
    }
    Ok(Planned { args, steps })
}

/// A run-time condition on a step, evaluated against earlier steps' outputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "guard", rename_all = "snake_case")]
pub enum Guard {
    /// Fail this step with `message` if step `step`'s `output.rows` is non-empty
    /// (`db_safe_insert`: refuse to insert a duplicate).
    NoRowsFrom { step: usize, message: String },
}

/// What the plan builder needs to know about a system.
#[derive(Debug, Clone)]
pub struct SystemScope {
    pub name: String,
    pub kind: SystemKind,
    /// GitHub: the repos this system may touch (`owner/name` or `owner/*`).
    pub repos: Vec<String>,
    /// Filesystem: the absolute root, so an absolute path inside it can be made relative.
    pub root: Option<String>,
    /// HubSpot: the contact properties agents may write.
    pub properties: Vec<String>,
    /// Slack: the conversation IDs this system may post in (`*` = any).
    pub channels: Vec<String>,
}

/// Replaces `{{name}}` placeholders in a value tree (SPEC §2). Runs once; substituted text is
/// never scanned again.
pub fn substitute(template: &Value, inputs: &Map<String, Value>) -> Result<Value, String> {
    match template {
        Value::String(s) => substitute_str(s, inputs),
        Value::Array(items) => items
            .iter()
            .map(|v| substitute(v, inputs))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match substitute_str(k, inputs)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, substitute(v, inputs)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// The placeholders named in a string, in order (for load-time checks).
pub fn placeholders(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                names.push(after[..end].trim().to_string());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    names
}

/// Every placeholder in a value tree (keys included).
pub fn placeholders_in(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => placeholders(s),
        Value::Array(items) => items.iter().flat_map(placeholders_in).collect(),
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| placeholders(k).into_iter().chain(placeholders_in(v)))
            .collect(),
        _ => Vec::new(),
    }
}

fn substitute_str(s: &str, inputs: &Map<String, Value>) -> Result<Value, String> {
    let trimmed = s.trim();
    // A string that is exactly one placeholder takes the input's JSON value, whatever its type.
    if trimmed == s && s.starts_with("{{") && s.ends_with("}}") && s.matches("{{").count() == 1 {
        let name = s[2..s.len() - 2].trim();
        return lookup(inputs, name).cloned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        let name = after[..end].trim();
        match lookup(inputs, name)? {
            Value::String(v) => out.push_str(v),
            v @ (Value::Number(_) | Value::Bool(_)) => out.push_str(&v.to_string()),
            other => {
                return Err(format!(
                    "input `{name}` is {} and cannot be inserted into the text {s:?}",
                    json_type_name(other)
                ));
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn lookup<'a>(inputs: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    inputs
        .get(name)
        .ok_or_else(|| format!("input `{name}` has no value"))
}

/// The JSON type of a value, as JSON Schema names it.
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks and normalises one step's arguments against its action's spec and its system:
/// defaults filled in, unknown arguments refused, branch names validated and stripped of
/// `refs/heads/`, repos checked against the system's `repos`; then builds the typed action.
pub fn normalise_step(
    system: &SystemScope,
    action_name: &str,
    args: &Map<String, Value>,
) -> Result<Action, String> {
    let Some(spec) = action::spec(system.kind, action_name) else {
        return Err(format!("`{action_name}` is not a {} action", system.kind));
    };
    let ctx = format!("{}.{}", system.name, action_name);
    for key in args.keys() {
        if !spec.args.iter().any(|a| a.name == key) {
            return Err(format!("{ctx}: unknown argument `{key}`"));
        }
    }
    let mut out = Map::new();
    for arg in spec.args {
        let value = match (args.get(arg.name), arg.default) {
            (Some(v), _) => v.clone(),
            (None, Some(default)) => {
                serde_json::from_str(default).map_err(|e| format!("{ctx}: bad default: {e}"))?
            }
            (None, None) => return Err(format!("{ctx}: missing argument `{}`", arg.name)),
        };
        let value = check_arg(system, arg.ty, value)
            .map_err(|e| format!("{ctx}: argument `{}`: {e}", arg.name))?;
        out.insert(arg.name.to_string(), value);
    }
    Action::from_args(spec.name, &out).map_err(|e| format!("{ctx}: {e}"))
}

fn check_arg(system: &SystemScope, ty: ArgType, value: Value) -> Result<Value, String> {
    match ty {
        ArgType::Str => match value {
            Value::String(_) => Ok(value),
            other => Err(format!("must be a string, got {}", json_type_name(&other))),
        },
        ArgType::Repo => {
            let s = as_str(&value)?;
            validate_repo(s)?;
            if !repo_in_scope(&system.repos, s) {
                return Err(format!(
                    "repo '{s}' is not in the repos of system `{}`",
                    system.name
                ));
            }
            Ok(value)
        }
        ArgType::Branch => {
            let s = as_str(&value)?;
            let s = s.strip_prefix("refs/heads/").unwrap_or(s);
            validate_branch(s)?;
            Ok(Value::String(s.to_string()))
        }
        ArgType::PositiveInt | ArgType::NonNegativeInt => {
            let n =
                integer_value(&value).ok_or_else(|| format!("must be an integer, got {value}"))?;
            if n < 0 || (ty == ArgType::PositiveInt && n == 0) {
                return Err(format!("must be a positive integer, got {n}"));
            }
            Ok(Value::from(n))
        }
        ArgType::Object => match value {
            Value::Object(_) => Ok(value),
            other => Err(format!("must be an object, got {}", json_type_name(&other))),
        },
        ArgType::FileMap => {
            let Value::Object(map) = &value else {
                return Err(format!(
                    "must be an object of path → content, got {}",
                    json_type_name(&value)
                ));
            };
            for (path, content) in map {
                validate_repo_path(path)?;
                if !content.is_string() {
                    return Err(format!(
                        "content of '{path}' must be a string, got {}",
                        json_type_name(content)
                    ));
                }
            }
            Ok(value)
        }
        ArgType::Table => {
            let s = as_str(&value)?;
            if s.is_empty() || s.len() > 127 || s.contains('\0') {
                return Err(format!("invalid table name '{s}'"));
            }
            Ok(value)
        }
        ArgType::Channel => {
            let s = as_str(&value)?;
            super::slack::Channel::parse(s)?;
            if !super::slack::channel_in_scope(&system.channels, s) {
                return Err(format!(
                    "channel '{s}' is not in the channels of system `{}`",
                    system.name
                ));
            }
            Ok(value)
        }
        ArgType::Ts => {
            super::slack::Ts::parse(as_str(&value)?)?;
            Ok(value)
        }
        ArgType::OptTs => {
            if !value.is_null() {
                super::slack::Ts::parse(as_str(&value)?)?;
            }
            Ok(value)
        }
        ArgType::Text => {
            super::slack::check_text(as_str(&value)?)?;
            Ok(value)
        }
        ArgType::Path => {
            let s = as_str(&value)?;
            if s.is_empty() || s.contains('\0') {
                return Err(format!("invalid path {s:?}"));
            }
            // An absolute path inside the root is accepted (SPEC §7): make it root-relative so
            // that policies and the connector see one form.
            if let Some(root) = &system.root {
                let root = root.trim_end_matches('/');
                if s == root {
                    return Ok(Value::String(".".into()));
                }
                if let Some(rel) = s.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
                    return Ok(Value::String(rel.to_string()));
                }
            }
            Ok(value)
        }
        ArgType::Email => Ok(Value::String(
            super::hubspot::Email::parse(as_str(&value)?)?
                .as_str()
                .to_string(),
        )),
        ArgType::Properties => {
            super::hubspot::check_properties(&system.name, &system.properties, &value)
                .map(Value::Object)
        }
        ArgType::Due => match &value {
            Value::Null => Ok(value),
            other => super::hubspot::Due::parse(as_str(other)?).map(|_| value),
        },
    }
}

fn as_str(value: &Value) -> Result<&str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("must be a string, got {}", json_type_name(value)))
}

/// An integer value with JSON Schema semantics (`5.0` is an integer).
pub fn integer_value(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        Some(f as i64)
    } else {
        None
    }
}

/// `owner/name` as GitHub allows them, so a repo can never reshape an API URL.
pub fn validate_repo(s: &str) -> Result<(), String> {
    let bad = || format!("repo '{s}' is not of the form owner/name");
    let (owner, name) = s.split_once('/').ok_or_else(bad)?;
    let owner_ok = !owner.is_empty()
        && owner.len() <= 39
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !owner.starts_with('-');
    let name_ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if owner_ok && name_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Whether a repo matches one of a system's `repos` entries (`owner/name` or `owner/*`);
/// GitHub names are case-insensitive.
pub fn repo_in_scope(repos: &[String], repo: &str) -> bool {
    let repo = repo.to_ascii_lowercase();
    repos.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        match entry.strip_suffix("/*") {
            Some(owner) => repo.split_once('/').is_some_and(|(o, _)| o == owner),
            None => entry == repo,
        }
    })
}

/// A branch name `git check-ref-format --branch` accepts, with no whitespace and none of
/// `?#%\` (they would reshape a URL).
pub fn validate_branch(s: &str) -> Result<(), String> {
    let reason = branch_problem(s);
    match reason {
        None => Ok(()),
        Some(why) => Err(format!("invalid branch name '{s}': {why}")),
    }
}

fn branch_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("it is empty");
    }
    if s.len() > 255 {
        return Some("it is longer than 255 bytes");
    }
    if s.starts_with('-') {
        return Some("it starts with '-'");
    }
    if s == "HEAD" || s == "@" {
        return Some("it is a reserved name");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("it contains whitespace or a control character");
    }
    if s.chars()
        .any(|c| matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\' | '#' | '%'))
    {
        return Some("it contains one of ~ ^ : ? * [ \\ # %");
    }
    if s.contains("..") {
        return Some("it contains '..'");
    }
    if s.contains("@{") {
        return Some("it contains '@{'");
    }
    if s.starts_with('/') || s.ends_with('/') || s.contains("//") {
        return Some("it has an empty path component");
    }
    if s.ends_with('.') {
        return Some("it ends with '.'");
    }
    for component in s.split('/') {
        if component.starts_with('.') {
            return Some("a component starts with '.'");
        }
        if component.ends_with(".lock") {
            return Some("a component ends with '.lock'");
        }
    }
    None
}

/// A file path inside a repository: relative, no `.`/`..`/empty components.
pub fn validate_repo_path(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control())
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid file path '{p}': it must be relative, without '.', '..' or empty components"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn exact_placeholder_takes_the_value_of_any_type() {
        let i = inputs(json!({"n": 5, "o": {"a": [1]}}));
        assert_eq!(substitute(&json!("{{n}}"), &i), Ok(json!(5)));
        assert_eq!(
            substitute(&json!({"x": "{{ o }}"}), &i),
            Ok(json!({"x": {"a": [1]}}))
        );
    }

    #[test]
    fn embedded_placeholders_insert_text_once() {
        let i = inputs(json!({"a": "{{b}}", "b": "no", "n": 1.5, "t": true}));
        assert_eq!(
            substitute(&json!("x-{{a}}-{{n}}-{{t}}"), &i),
            Ok(json!("x-{{b}}-1.5-true"))
        );
    }

    #[test]
    fn embedded_null_object_or_array_is_refused() {
        let i = inputs(json!({"z": null, "o": {}, "a": []}));
        for name in ["z", "o", "a"] {
            let err = substitute(&json!(format!("p/{{{{{name}}}}}")), &i)
                .err()
                .unwrap_or_default();
            assert!(err.contains(&format!("input `{name}`")), "{err}");
        }
    }

    #[test]
    fn branch_rules_follow_check_ref_format() {
        for good in ["agent/x", "feature/a-b_c.d", "a"] {
            assert!(validate_branch(good).is_ok(), "{good}");
        }
        for bad in [
            "", "-x", "a..b", "a b", "main?x", "a#b", "a%2e", "a\\b", "a/", "/a", "a//b", ".a",
            "a/.b", "x.lock", "a.", "a@{b", "HEAD", "a~1", "a:b", "a\tb",
        ] {
            assert!(validate_branch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repos_must_be_owner_name_and_in_scope() {
        for bad in [
            "acme",
            "acme/app?",
            "../x",
            "acme/..",
            "a/b/c",
            "acme/%2e%2e",
            "/app",
        ] {
            assert!(validate_repo(bad).is_err(), "{bad}");
        }
        let repos = vec!["acme/app".to_string(), "labs/*".to_string()];
        assert!(repo_in_scope(&repos, "ACME/app"));
        assert!(repo_in_scope(&repos, "labs/anything"));
        assert!(!repo_in_scope(&repos, "acme/other"));
        assert!(!repo_in_scope(&repos, "labsx/a"));
    }

    #[test]
    fn steps_are_normalised() {
        let sys = SystemScope {
            name: "gh".into(),
            kind: SystemKind::Github,
            repos: vec!["acme/app".into()],
            root: None,
            properties: vec![],
            channels: vec![],
        };
        let args = inputs(json!({"repo": "acme/app", "branch": "refs/heads/agent/x"}));
        let out = normalise_step(&sys, "create_branch", &args).map(|a| a.args());
        assert_eq!(
            out,
            Ok(inputs(
                json!({"repo": "acme/app", "branch": "agent/x", "from_branch": "main"})
            ))
        );
        let err = normalise_step(
            &sys,
            "create_branch",
            &inputs(json!({"repo": "acme/app", "branch": "main?x"})),
        );
        assert!(
            err.err()
                .unwrap_or_default()
                .contains("invalid branch name 'main?x'")
        );
        let err = normalise_step(
            &sys,
            "create_branch",
            &inputs(json!({"repo": "other/app", "branch": "x"})),
        );
        assert!(
            err.err()
                .unwrap_or_default()
                .contains("repo 'other/app' is not in the repos of system `gh`")
        );
    }

    #[test]
    fn absolute_paths_inside_the_root_become_relative() {
        let sys = SystemScope {
            name: "f".into(),
            kind: SystemKind::Filesystem,
            repos: vec![],
            root: Some("/srv/ws".into()),
            properties: vec![],
            channels: vec![],
        };
        let out = normalise_step(
            &sys,
            "read_file",
            &inputs(json!({"path": "/srv/ws/a/b.txt"})),
        )
        .map(|a| a.args());
        assert_eq!(out, Ok(inputs(json!({"path": "a/b.txt"}))));
        let out = normalise_step(&sys, "read_file", &inputs(json!({"path": "/srv/wsx/a"})))
            .map(|a| a.args());
        assert_eq!(out, Ok(inputs(json!({"path": "/srv/wsx/a"}))));
    }
}

/// Typed steps for the policy tests and scenarios, which judge plans without a configured
/// system.
#[cfg(test)]
pub(crate) mod test_steps {
    use super::*;

    /// A typed step from JSON with defaults filled in and no system scope (policy tests and
    /// scenarios, which judge plans without a configured system).
    pub fn unscoped_step(
        system: &str,
        kind: SystemKind,
        action_name: &str,
        args: &Map<String, Value>,
    ) -> Result<Step, String> {
        let spec = action::spec(kind, action_name)
            .ok_or_else(|| format!("`{action_name}` is not a {kind} action"))?;
        let mut full = args.clone();
        for arg in spec.args {
            if let (None, Some(default)) = (full.get(arg.name), arg.default) {
                let v = serde_json::from_str(default).map_err(|e| e.to_string())?;
                full.insert(arg.name.to_string(), v);
            }
        }
        Ok(Step {
            system: system.to_string(),
            action: Action::from_args(spec.name, &full)?,
            guard: None,
        })
    }

    /// [`unscoped_step`] with every missing required argument given a plain sample value (policy
    /// unit tests name only the arguments their policy reads).
    pub fn sample_step(
        system: &str,
        kind: SystemKind,
        action_name: &str,
        args: &Map<String, Value>,
    ) -> Result<Step, String> {
        let spec = action::spec(kind, action_name)
            .ok_or_else(|| format!("`{action_name}` is not a {kind} action"))?;
        let mut full = args.clone();
        for arg in spec.args.iter().filter(|a| a.default.is_none()) {
            let sample = match arg.ty {
                ArgType::Repo => Value::from("acme/app"),
                ArgType::Branch => Value::from("agent/x"),
                ArgType::PositiveInt | ArgType::NonNegativeInt => Value::from(1),
                ArgType::Object | ArgType::FileMap => Value::Object(Map::new()),
                ArgType::Table => Value::from("t"),
                ArgType::Path => Value::from("."),
                ArgType::Str => Value::from(""),
                ArgType::Email => Value::from("bob@acme.com"),
                ArgType::Properties => Value::Object(Map::new()),
                ArgType::Due => Value::Null,
                ArgType::Channel => Value::from("C0123ABCD"),
                ArgType::Ts => Value::from("1716900000.000100"),
                ArgType::OptTs => Value::Null,
                ArgType::Text => Value::from("hello"),
            };
            full.entry(arg.name.to_string()).or_insert(sample);
        }
        unscoped_step(system, kind, action_name, &full)
    }
}
