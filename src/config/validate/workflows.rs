//! `[[workflows]]` (each one MCP tool: a built-in bound to a system, or declared steps over
//! typed inputs) and `[[policies]]` (built-ins with inline parameters and an optional scope of
//! workflows).

use serde_json::{Map, Value as Json};
use toml::{Table, Value};

use super::super::raw::{Problems, Section, describe, table_to_json, to_json, wrong_type};
use super::is_plain_name;
use super::systems::Known;
use crate::kernel::action::{self, SystemKind};
use crate::kernel::plan::{integer_value, placeholders_in};
use crate::kernel::policy::{POLICY_NAMES, Policy, PolicyKind};
use crate::kernel::schema::json_equal;
use crate::kernel::workflow::{
    Builtin, InputSpec, InputType, StepTemplate, Workflow, WorkflowBody,
};

const WORKFLOW_KEYS: &[&str] = &[
    "name",
    "description",
    "builtin",
    "system",
    "inputs",
    "steps",
];
const INPUT_KEYS: &[&str] = &["type", "description", "default", "enum"];
const STEP_KEYS: &[&str] = &["system", "action", "args"];
const INPUT_TYPES: &str = "string, integer, number, boolean, object, array";
/// Tool names Enact keeps for its own tools (receipts, rollback).
const RESERVED_PREFIX: &str = "enact_";

/// The names of every `[[workflows]]` entry that has one (explicit, or a built-in's default),
/// valid or not, so that a policy's scope is judged against what the operator wrote.
pub(super) fn names(top: &Section<'_>) -> Vec<String> {
    let Some(Value::Array(items)) = top.get("workflows") else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(Value::as_table)
        .filter_map(|t| match t.get("name") {
            Some(Value::String(n)) => Some(n.clone()),
            Some(_) => None,
            None => t
                .get("builtin")
                .and_then(Value::as_str)
                .and_then(Builtin::parse)
                .map(|b| b.name().to_string()),
        })
        .collect()
}

/// Validates every `[[policies]]` entry, in order.
pub(super) fn policies(
    top: &Section<'_>,
    workflows: &[String],
    p: &mut Problems,
) -> Vec<(usize, Policy)> {
    let mut out = Vec::new();
    for (i, path, table) in top.array_of_tables("policies", p) {
        let before = p.errors.len();
        let policy = policy(&Section::new(&path, table), workflows, p);
        if let Some(policy) = policy.filter(|_| p.errors.len() == before) {
            out.push((i, policy));
        }
    }
    out
}

/// Where a problem with a policy's parameters is reported: `policies[0] (max_files_per_commit)`,
/// so that every parameter error names the policy it belongs to.
pub(super) fn policy_location(entry: &str, name: &str) -> String {
    format!("{entry} ({name})")
}

fn policy(s: &Section<'_>, workflows: &[String], p: &mut Problems) -> Option<Policy> {
    let builtins = format!("built-in policies: {}", POLICY_NAMES.join(", "));
    let name = s.string("policy", p);
    if name.is_none() && !s.has("policy") {
        s.missing("policy", Some(&builtins), p);
    }
    let name = name.filter(|n| {
        let known = POLICY_NAMES.contains(n);
        if !known {
            p.push_hint(
                s.at("policy"),
                format!("unknown policy `{n}`"),
                builtins.as_str(),
            );
        }
        known
    });
    let scope = s.strings("workflows", p).map(|scope| {
        for w in scope.iter().filter(|w| !workflows.iter().any(|n| n == *w)) {
            p.push_hint(
                s.at("workflows"),
                format!("unknown workflow `{w}`"),
                names_hint("workflows", workflows),
            );
        }
        scope.iter().map(|w| w.to_string()).collect::<Vec<_>>()
    });
    let here = match name {
        Some(n) => policy_location(&s.here(), n),
        None => s.here(),
    };
    let mut params = Map::new();
    for (key, value) in s
        .table
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "policy" | "workflows"))
    {
        match to_json(value) {
            Ok(v) => {
                params.insert(key.clone(), v);
            }
            Err(e) => p.push(here.clone(), format!("parameter {key}: {e}")),
        }
    }
    let kind = match PolicyKind::from_params(name?, &params) {
        Ok(kind) => kind,
        Err(errors) => {
            for e in errors {
                p.push(here.clone(), e);
            }
            return None;
        }
    };
    Some(Policy { kind, scope })
}

/// `hint` for a name that is not among `names`: lists what there is.
fn names_hint(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("this config has no {what}")
    } else {
        format!("{what} in this config: {}", names.join(", "))
    }
}

/// Validates every `[[workflows]]` entry, in order.
pub(super) fn validate(top: &Section<'_>, systems: &[Known], p: &mut Problems) -> Vec<Workflow> {
    let mut out = Vec::new();
    // (name, location) of every name seen so far, for the duplicate check.
    let mut seen: Vec<(String, String)> = Vec::new();
    for (_, path, table) in top.array_of_tables("workflows", p) {
        let before = p.errors.len();
        let workflow = workflow(&Section::new(&path, table), systems, &mut seen, p);
        if let Some(workflow) = workflow.filter(|_| p.errors.len() == before) {
            out.push(workflow);
        }
    }
    out
}

fn workflow(
    s: &Section<'_>,
    systems: &[Known],
    seen: &mut Vec<(String, String)>,
    p: &mut Problems,
) -> Option<Workflow> {
    s.check_keys(WORKFLOW_KEYS, p);
    let builtins = Builtin::ALL.map(Builtin::name).join(", ");
    let builtin = s.string("builtin", p).and_then(|b| {
        let parsed = Builtin::parse(b);
        if parsed.is_none() {
            p.push_hint(
                s.at("builtin"),
                format!("unknown built-in workflow `{b}`"),
                format!("built-in workflows: {builtins}"),
            );
        }
        parsed
    });
    let name = workflow_name(s, builtin, seen, p);
    let description = s.string("description", p).map(str::to_string);
    let (inputs, body) = match (s.has("builtin"), s.has("steps")) {
        (true, true) => {
            p.push(
                s.here(),
                "a workflow has either `builtin` or `steps`, not both",
            );
            return None;
        }
        (false, false) => {
            p.push_hint(
                s.here(),
                "a workflow needs either `builtin` or `steps`",
                format!(
                    "set builtin = one of {builtins} with `system`, or add [[workflows.steps]]"
                ),
            );
            return None;
        }
        (true, false) => {
            let body = builtin_body(s, builtin, systems, p);
            (builtin?.inputs(), body?)
        }
        (false, true) => {
            let (inputs, names) = inputs(s, p);
            let steps = steps(s, &names, systems, p);
            (inputs, WorkflowBody::Declared { steps: steps? })
        }
    };
    let description = description.unwrap_or_else(|| default_description(&body));
    Some(Workflow {
        name: name?,
        description,
        inputs,
        body,
    })
}

/// The tool's name: `name`, else the built-in's name. Unique, `[A-Za-z0-9_.-]{1,64}`, and not
/// starting with the reserved `enact_`.
fn workflow_name(
    s: &Section<'_>,
    builtin: Option<Builtin>,
    seen: &mut Vec<(String, String)>,
    p: &mut Problems,
) -> Option<String> {
    let name = match s.string("name", p) {
        Some(n) => n.to_string(),
        None if s.has("name") => return None,
        None => match builtin {
            Some(b) => b.name().to_string(),
            None => {
                // Without `builtin` there is no default; a bad `builtin` is already reported.
                if !s.has("builtin") {
                    s.missing("name", None, p);
                }
                return None;
            }
        },
    };
    let at = s.at("name");
    if !is_plain_name(&name) {
        p.push_hint(
            &at,
            format!("invalid workflow name `{name}`"),
            "use 1 to 64 letters, digits, `_`, `.` or `-`",
        );
    } else if name.starts_with(RESERVED_PREFIX) {
        p.push_hint(
            &at,
            format!("workflow name `{name}` uses the reserved prefix `{RESERVED_PREFIX}`"),
            "Enact's own tools use that prefix; choose another name",
        );
    }
    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
        p.push_hint(
            &at,
            format!("duplicate workflow name `{name}`"),
            format!("{first} already uses it"),
        );
    } else {
        seen.push((name.clone(), s.here()));
    }
    Some(name)
}

/// A built-in bound to a system of its kind whose `allowed_actions` cover every action its
/// plan may use.
fn builtin_body(
    s: &Section<'_>,
    builtin: Option<Builtin>,
    systems: &[Known],
    p: &mut Problems,
) -> Option<WorkflowBody> {
    if s.has("inputs") {
        p.push_hint(
            s.at("inputs"),
            "a built-in workflow's inputs are fixed",
            "remove `inputs`",
        );
    }
    let system = s.string("system", p);
    if system.is_none() && !s.has("system") {
        let hint = match builtin {
            Some(b) => format!("the {} system this built-in runs on", b.kind()),
            None => "the system this built-in runs on".to_string(),
        };
        s.missing("system", Some(&hint), p);
    }
    let (builtin, system) = (builtin?, system?);
    let known = lookup(&s.at("system"), system, systems, p)?;
    let at = s.at("system");
    match known.kind {
        Some(kind) if kind != builtin.kind() => {
            p.push(
                &at,
                format!(
                    "system `{system}` is a {kind} system, but `{}` needs a {} system",
                    builtin.name(),
                    builtin.kind()
                ),
            );
        }
        Some(_) => {
            for action in builtin
                .actions()
                .iter()
                .filter(|a| !known.allowed.iter().any(|x| x == *a))
            {
                p.push_hint(
                    &at,
                    format!(
                        "`{}` needs action `{action}`, which is not in the allowed_actions of system `{system}`",
                        builtin.name()
                    ),
                    format!("add `{action}` to [systems.{system}] allowed_actions"),
                );
            }
        }
        None => {}
    }
    Some(WorkflowBody::Builtin {
        builtin,
        system: system.to_string(),
    })
}

/// A system named by a workflow or step; an unknown name is reported.
fn lookup<'k>(at: &str, name: &str, systems: &'k [Known], p: &mut Problems) -> Option<&'k Known> {
    let found = systems.iter().find(|k| k.name == name);
    if found.is_none() {
        let names: Vec<String> = systems.iter().map(|k| k.name.clone()).collect();
        p.push_hint(
            at,
            format!("unknown system `{name}`"),
            names_hint("systems", &names),
        );
    }
    found
}

/// `[workflows.inputs.<name>]`. Returns the valid inputs and the names of all declared ones
/// (placeholders naming an input with errors are not reported again).
fn inputs(s: &Section<'_>, p: &mut Problems) -> (Vec<InputSpec>, Vec<String>) {
    let Some(table) = s.table("inputs", p) else {
        return (Vec::new(), Vec::new());
    };
    let names = table.keys().cloned().collect();
    let specs = table
        .iter()
        .filter_map(|(name, value)| {
            let path = format!("{}.{name}", s.at("inputs"));
            input(&path, name, value, p)
        })
        .collect();
    (specs, names)
}

fn input(path: &str, name: &str, value: &Value, p: &mut Problems) -> Option<InputSpec> {
    let before = p.errors.len();
    if !is_input_name(name) {
        p.push_hint(
            path,
            format!("invalid input name `{name}`"),
            "start with a letter or `_`, then up to 63 letters, digits or `_`",
        );
    }
    let Value::Table(t) = value else {
        wrong_type(path, "a table", value, p);
        return None;
    };
    let s = Section::new(path, t);
    s.check_keys(INPUT_KEYS, p);
    let ty = match s.string("type", p) {
        None => {
            if !s.has("type") {
                s.missing("type", Some(&format!("type is one of: {INPUT_TYPES}")), p);
            }
            None
        }
        Some(t) => {
            let ty = InputType::parse(t);
            if ty.is_none() {
                p.push_hint(
                    s.at("type"),
                    format!("unknown input type `{t}`"),
                    format!("valid types: {INPUT_TYPES}"),
                );
            }
            ty
        }
    };
    let description = s.string("description", p).map(str::to_string);
    let default = s
        .get("default")
        .and_then(|v| typed_value(&s.at("default"), "`default`", v, ty, p));
    let enum_values = enum_values(&s, ty, p);
    if let (Some(d), Some(values)) = (&default, &enum_values)
        && !values.iter().any(|v| json_equal(v, d))
    {
        p.push(
            s.at("default"),
            format!("`default` {d} is not one of the `enum` values"),
        );
    }
    if p.errors.len() != before {
        return None;
    }
    Some(InputSpec {
        name: name.to_string(),
        ty: ty?,
        description,
        default,
        optional: false,
        enum_values,
        values: None,
    })
}

/// `enum = [...]`: a non-empty array of values of the input's type.
fn enum_values(s: &Section<'_>, ty: Option<InputType>, p: &mut Problems) -> Option<Vec<Json>> {
    let items = match s.get("enum")? {
        Value::Array(items) => items,
        other => {
            wrong_type(&s.at("enum"), "an array", other, p);
            return None;
        }
    };
    if items.is_empty() {
        p.push(s.at("enum"), "`enum` must not be empty");
        return None;
    }
    let values: Vec<Option<Json>> = items
        .iter()
        .map(|v| typed_value(&s.at("enum"), "`enum` value", v, ty, p))
        .collect();
    values.into_iter().collect()
}

/// A TOML value as JSON, checked against the input's type (when that is known).
fn typed_value(
    at: &str,
    what: &str,
    v: &Value,
    ty: Option<InputType>,
    p: &mut Problems,
) -> Option<Json> {
    let json = match to_json(v) {
        Ok(j) => j,
        Err(e) => {
            p.push(at, e);
            return None;
        }
    };
    match ty {
        Some(ty) if !has_type(&json, ty) => {
            p.push(
                at,
                format!("{what} must be {}, got {}", article(ty), describe(v)),
            );
            None
        }
        _ => Some(json),
    }
}

/// JSON Schema type membership (`5.0` is an integer).
fn has_type(v: &Json, ty: InputType) -> bool {
    match ty {
        InputType::String => v.is_string(),
        InputType::Integer => integer_value(v).is_some(),
        InputType::Number => v.is_number(),
        InputType::Boolean => v.is_boolean(),
        InputType::Object => v.is_object(),
        InputType::Array => v.is_array(),
    }
}

fn article(ty: InputType) -> &'static str {
    match ty {
        InputType::String => "a string",
        InputType::Integer => "an integer",
        InputType::Number => "a number",
        InputType::Boolean => "a boolean",
        InputType::Object => "an object",
        InputType::Array => "an array",
    }
}

/// `^[A-Za-z_][A-Za-z0-9_]{0,63}$`
fn is_input_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `[[workflows.steps]]`: non-empty; each on an existing system, with an action of its type
/// that the system allows, and arguments whose placeholders name declared inputs.
fn steps(
    s: &Section<'_>,
    inputs: &[String],
    systems: &[Known],
    p: &mut Problems,
) -> Option<Vec<StepTemplate>> {
    if let Some(Value::Array(items)) = s.get("steps")
        && items.is_empty()
    {
        p.push(s.at("steps"), "`steps` must not be empty");
        return None;
    }
    if s.has("system") {
        p.push_hint(
            s.at("system"),
            "`system` is only for built-in workflows",
            "each step names its own system",
        );
    }
    let before = p.errors.len();
    let steps: Vec<Option<StepTemplate>> = s
        .array_of_tables("steps", p)
        .into_iter()
        .map(|(_, path, table)| step(&Section::new(&path, table), inputs, systems, p))
        .collect();
    if p.errors.len() != before {
        return None;
    }
    steps.into_iter().collect()
}

fn step(
    s: &Section<'_>,
    inputs: &[String],
    systems: &[Known],
    p: &mut Problems,
) -> Option<StepTemplate> {
    s.check_keys(STEP_KEYS, p);
    let system = s.string("system", p);
    if system.is_none() && !s.has("system") {
        s.missing("system", None, p);
    }
    let action = s.string("action", p);
    if action.is_none() && !s.has("action") {
        s.missing("action", None, p);
    }
    let args = args(s.table("args", p), &s.at("args"), p);
    let known = system.and_then(|name| lookup(&s.at("system"), name, systems, p));
    if let (Some(known), Some(kind), Some(action)) = (known, known.and_then(|k| k.kind), action) {
        check_action(s, known, kind, action, args.as_ref(), p);
    }
    if let Some(args) = &args {
        check_placeholders(&s.at("args"), args, inputs, p);
    }
    Some(StepTemplate {
        system: system?.to_string(),
        action: action?.to_string(),
        args: args?,
    })
}

/// A step's `args` as JSON (default `{}`).
fn args(table: Option<&Table>, at: &str, p: &mut Problems) -> Option<Map<String, Json>> {
    let Some(table) = table else {
        return Some(Map::new());
    };
    match table_to_json(table) {
        Ok(m) => Some(m),
        Err(e) => {
            p.push(at, e);
            None
        }
    }
}

/// The action is one of the type's, allowed by the system, and its literal argument names fit
/// the action (a typo is caught at load, not on the first call).
fn check_action(
    s: &Section<'_>,
    known: &Known,
    kind: SystemKind,
    action: &str,
    args: Option<&Map<String, Json>>,
    p: &mut Problems,
) {
    let at = s.at("action");
    let Some(spec) = action::spec(kind, action) else {
        p.push_hint(
            at,
            format!("`{action}` is not a {kind} action"),
            format!("{kind} actions: {}", kind.actions().join(", ")),
        );
        return;
    };
    if !known.allowed.iter().any(|a| a == action) {
        p.push_hint(
            at,
            format!(
                "action `{action}` is not in the allowed_actions of system `{}`",
                known.name
            ),
            format!("add it to [systems.{}] allowed_actions", known.name),
        );
    }
    let Some(args) = args else { return };
    let takes = spec
        .args
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ");
    for key in args
        .keys()
        .filter(|k| placeholders_in(&Json::String((*k).clone())).is_empty())
    {
        if !spec.args.iter().any(|a| a.name == key) {
            p.push_hint(
                s.at("args"),
                format!("unknown argument `{key}` for {action}"),
                format!("{action} takes: {takes}"),
            );
        }
    }
    // A placeholder key could supply any argument; only judge missing ones when there is none.
    if args
        .keys()
        .all(|k| placeholders_in(&Json::String(k.clone())).is_empty())
    {
        for arg in spec
            .args
            .iter()
            .filter(|a| a.default.is_none() && !args.contains_key(a.name))
        {
            p.push_hint(
                s.at("args"),
                format!("missing argument `{}` for {action}", arg.name),
                format!("{action} takes: {takes}"),
            );
        }
    }
}

/// Every `{{name}}` in the arguments (keys included) names a declared input.
fn check_placeholders(at: &str, args: &Map<String, Json>, inputs: &[String], p: &mut Problems) {
    let mut reported: Vec<String> = Vec::new();
    for name in placeholders_in(&Json::Object(args.clone())) {
        if inputs.contains(&name) || reported.contains(&name) {
            continue;
        }
        let hint = if inputs.is_empty() {
            "this workflow declares no inputs".to_string()
        } else {
            format!("declared inputs: {}", inputs.join(", "))
        };
        p.push_hint(
            at,
            format!("`{{{{{name}}}}}` does not name an input of this workflow"),
            hint,
        );
        reported.push(name);
    }
}

/// A description for a workflow that has none: what it runs.
fn default_description(body: &WorkflowBody) -> String {
    match body {
        WorkflowBody::Builtin { builtin, .. } => builtin.description().to_string(),
        WorkflowBody::Declared { steps } => {
            let actions: Vec<String> = steps
                .iter()
                .map(|s| format!("{}.{}", s.system, s.action))
                .collect();
            format!("Runs {}.", actions.join(", then "))
        }
    }
}
