//! The tools (SPEC §3.1): one per workflow plus `enact_preview`, `enact_list_receipts`,
//! `enact_get_receipt` and (when enabled) `enact_rollback`. Each returns `structuredContent`,
//! a one-line human summary and the same JSON as text.

use serde_json::{Map, Value, json};

use super::rounds::{Outcome, ToolCall};
use crate::engine::{CallError, Cancel, Engine, Requester};
use crate::kernel::context::Actor;
use crate::kernel::policy::Decision;
use crate::kernel::receipt;
use crate::kernel::schema;
use crate::store::{ListFilter, StoreError};

pub const PREVIEW: &str = "enact_preview";
pub const LIST_RECEIPTS: &str = "enact_list_receipts";
pub const GET_RECEIPT: &str = "enact_get_receipt";
pub const ROLLBACK: &str = "enact_rollback";

/// The largest `limit` of `enact_list_receipts`.
pub const MAX_LIST_LIMIT: u64 = 500;
const DEFAULT_LIST_LIMIT: u64 = 20;

/// What a tool answers: shown to the agent as `structuredContent` plus two text blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub summary: String,
    /// `None` for a plain refusal (its message is the only content).
    pub structured: Option<Value>,
    pub is_error: bool,
}

impl Answer {
    fn ok(summary: String, structured: Value) -> Answer {
        Answer {
            summary,
            structured: Some(structured),
            is_error: false,
        }
    }
    /// A refusal: the message is the only content. No `structuredContent`, since clients
    /// validate it against the tool's output schema, which describes a result.
    pub fn refused(message: impl Into<String>) -> Answer {
        Answer {
            summary: message.into(),
            structured: None,
            is_error: true,
        }
    }
}

/// One entry of `tools/list`: name, description, input schema, output schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Map<String, Value>,
    pub output_schema: Map<String, Value>,
}

/// Every tool this engine serves, workflows first in config order.
pub fn tool_specs(engine: &Engine) -> Vec<ToolSpec> {
    let config = &engine.registry().config;
    let mut out: Vec<ToolSpec> = config
        .workflows
        .iter()
        .map(|w| ToolSpec {
            name: w.name.clone(),
            description: if w.description.is_empty() {
                format!("Run the `{}` workflow (policy-gated, receipted)", w.name)
            } else {
                w.description.clone()
            },
            input_schema: schema::input_schema(&w.inputs),
            output_schema: object_schema(call_result_properties(), CALL_RESULT_REQUIRED),
        })
        .collect();
    let names: Vec<Value> = config.workflows.iter().map(|w| json!(w.name)).collect();
    let mut workflow_prop = json!({"type": "string", "description": "The workflow (tool) name"});
    if !names.is_empty() {
        workflow_prop["enum"] = Value::Array(names);
    }
    out.push(ToolSpec {
        name: PREVIEW.into(),
        description: "Evaluate the policy gate for a workflow call without running anything or writing a receipt: returns the plan and every policy result.".into(),
        input_schema: object_schema(
            json!({
                "workflow": workflow_prop,
                "arguments": {"type": "object", "description": "The arguments the workflow would be called with"}
            }),
            &["workflow"],
        ),
        output_schema: object_schema(
            json!({
                "workflow": {"type": "string"},
                "decision": {"type": "string", "enum": ["PASS", "BLOCK"]},
                "plan": {"type": "array", "items": {"type": "object"}},
                "policy_results": policy_results_schema(),
            }),
            &["workflow", "decision", "plan", "policy_results"],
        ),
    });
    out.push(ToolSpec {
        name: LIST_RECEIPTS.into(),
        description: "List receipts newest first (summaries), optionally filtered by workflow or decision.".into(),
        input_schema: object_schema(
            json!({
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT, "default": DEFAULT_LIST_LIMIT},
                "workflow": {"type": "string"},
                "decision": {"type": "string", "enum": ["PASS", "BLOCK", "PARTIAL"]}
            }),
            &[],
        ),
        output_schema: object_schema(
            json!({"receipts": {"type": "array", "items": summary_schema()}}),
            &["receipts"],
        ),
    });
    out.push(ToolSpec {
        name: GET_RECEIPT.into(),
        description: "Get one receipt (rollback data shown only as a digest) and whether its signature verifies.".into(),
        input_schema: object_schema(json!({"run_id": {"type": "string"}}), &["run_id"]),
        output_schema: object_schema(
            json!({"receipt": {"type": "object"}, "signature_valid": {"type": "boolean"}}),
            &["receipt", "signature_valid"],
        ),
    });
    if config.rollback_enabled {
        out.push(ToolSpec {
            name: ROLLBACK.into(),
            description: "Roll back one of this server's runs from its receipt: undo its actions in reverse order, each only if the target still holds what the run left.".into(),
            input_schema: object_schema(json!({"run_id": {"type": "string"}}), &["run_id"]),
            output_schema: object_schema(
                json!({
                    "run_id": {"type": "string"},
                    "rollback_of": {"type": "string"},
                    "decision": {"type": "string", "enum": ["PASS", "PARTIAL"]},
                    "success": {"type": "boolean"},
                    "actions": {"type": "array", "items": {"type": "object"}},
                    "receipt": {"type": "string"}
                }),
                &["run_id", "rollback_of", "decision", "success", "actions", "receipt"],
            ),
        });
    }
    out
}

const CALL_RESULT_REQUIRED: &[&str] = &[
    "run_id",
    "workflow",
    "decision",
    "success",
    "actions",
    "policy_results",
    "receipt",
];

fn call_result_properties() -> Value {
    json!({
        "run_id": {"type": "string"},
        "workflow": {"type": "string"},
        "decision": {"type": "string", "enum": ["PASS", "BLOCK"]},
        "success": {"type": "boolean"},
        "actions": {"type": "array", "items": {"type": "object", "properties": {
            "action": {"type": "string"}, "system": {"type": "string"},
            "success": {"type": "boolean"}, "output": {}
        }}},
        "policy_results": policy_results_schema(),
        "receipt": {"type": "string"}
    })
}

fn policy_results_schema() -> Value {
    json!({"type": "array", "items": {"type": "object", "properties": {
        "policy": {"type": "string"}, "passed": {"type": "boolean"}, "reason": {"type": "string"}
    }}})
}

fn summary_schema() -> Value {
    json!({"type": "object", "properties": {
        "run_id": {"type": "string"}, "workflow": {"type": "string"},
        "actor_email": {"type": "string"}, "decision": {"type": "string"},
        "timestamp": {"type": "string"}, "rollback_of": {"type": ["string", "null"]}
    }})
}

/// `{"type": "object", "properties": …, "required": …, "additionalProperties": false}`.
fn object_schema(properties: Value, required: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!("object"));
    m.insert("properties".into(), properties);
    if !required.is_empty() {
        m.insert("required".into(), json!(required));
    }
    m.insert("additionalProperties".into(), json!(false));
    m
}

/// Why a call could not be routed: a JSON-RPC error, not a tool result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unroutable {
    UnknownTool(String),
}

/// Runs one `tools/call`. A workflow call is abandoned (a `cancelled` BLOCK) if `call.cancel`
/// is set before its first action; none of these tools asks for input yet, so every outcome
/// is `Complete`.
pub async fn call(engine: &Engine, call: ToolCall) -> Result<Outcome, Unroutable> {
    let rollback_enabled = engine.registry().config.rollback_enabled;
    let ToolCall {
        name,
        arguments: args,
        inexact,
        cancel,
        round: _,
        actor,
    } = call;
    let actor = actor.as_ref().unwrap_or(&engine.registry().config.actor);
    let answer = match name.as_str() {
        PREVIEW => preview(engine, actor, &args, &inexact).await,
        LIST_RECEIPTS => list_receipts(engine, &args),
        GET_RECEIPT => get_receipt(engine, &args),
        ROLLBACK if rollback_enabled => rollback(engine, actor, &args).await,
        _ if engine.registry().workflow(&name).is_some() => {
            workflow_call(engine, actor, &name, args, &inexact, &cancel).await
        }
        _ => return Err(Unroutable::UnknownTool(name)),
    };
    Ok(Outcome::Complete(answer))
}

async fn workflow_call(
    engine: &Engine,
    actor: &Actor,
    name: &str,
    args: Map<String, Value>,
    inexact: &[String],
    cancel: &Cancel,
) -> Answer {
    match engine.call_as(actor, name, args, inexact, cancel).await {
        Ok(result) => {
            let structured = serde_json::to_value(&result).unwrap_or(Value::Null);
            Answer {
                summary: result.summary(),
                structured: Some(structured),
                is_error: result.decision == Decision::Block || !result.success,
            }
        }
        Err(CallError::Journal(message)) => Answer::refused(message),
        Err(CallError::UnknownWorkflow(w)) => Answer::refused(format!("unknown workflow `{w}`")),
    }
}

/// Refuses any argument not in `allowed` (tool schemas say `additionalProperties: false`).
fn check_keys(tool: &str, args: &Map<String, Value>, allowed: &[&str]) -> Result<(), Answer> {
    match args.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Answer::refused(format!(
            "{tool}: unknown argument `{k}` (expected {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn string_arg<'a>(tool: &str, args: &'a Map<String, Value>, key: &str) -> Result<&'a str, Answer> {
    match args.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Answer::refused(format!(
            "{tool}: `{key}` must be a string, got {}",
            schema::short(other)
        ))),
        None => Err(Answer::refused(format!("{tool}: `{key}` is required"))),
    }
}

fn optional_string(
    tool: &str,
    args: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, Answer> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string_arg(tool, args, key).map(|s| Some(s.to_string())),
    }
}

/// `enact_preview`'s arguments: the workflow name and the arguments to judge.
fn preview_args(args: &Map<String, Value>) -> Result<(&str, Map<String, Value>), Answer> {
    check_keys(PREVIEW, args, &["workflow", "arguments"])?;
    let workflow = string_arg(PREVIEW, args, "workflow")?;
    let arguments = match args.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(Answer::refused(format!(
                "{PREVIEW}: `arguments` must be an object, got {}",
                schema::short(other)
            )));
        }
    };
    Ok((workflow, arguments))
}

async fn preview(
    engine: &Engine,
    actor: &Actor,
    args: &Map<String, Value>,
    inexact: &[String],
) -> Answer {
    let (workflow, arguments) = match preview_args(args) {
        Ok(p) => p,
        Err(a) => return a,
    };
    match engine
        .preview_as(actor, workflow, &arguments, inexact)
        .await
    {
        Ok(p) => Answer::ok(p.summary(), serde_json::to_value(&p).unwrap_or(Value::Null)),
        Err(CallError::UnknownWorkflow(w)) => {
            Answer::refused(format!("{PREVIEW}: unknown workflow `{w}`"))
        }
        Err(e) => Answer::refused(e.to_string()),
    }
}

/// `enact_list_receipts`'s arguments as a listing filter.
fn list_filter(args: &Map<String, Value>) -> Result<ListFilter, Answer> {
    check_keys(LIST_RECEIPTS, args, &["limit", "workflow", "decision"])?;
    let limit = match args.get("limit") {
        None | Some(Value::Null) => DEFAULT_LIST_LIMIT,
        Some(v) => match crate::kernel::plan::integer_value(v) {
            Some(n) if (1..=MAX_LIST_LIMIT as i64).contains(&n) => n as u64,
            _ => {
                return Err(Answer::refused(format!(
                    "{LIST_RECEIPTS}: `limit` must be an integer from 1 to {MAX_LIST_LIMIT}, got {}",
                    schema::short(v)
                )));
            }
        },
    };
    let workflow = optional_string(LIST_RECEIPTS, args, "workflow")?;
    let decision = optional_string(LIST_RECEIPTS, args, "decision")?;
    if let Some(d) = &decision
        && Decision::parse(d).is_none()
    {
        return Err(Answer::refused(format!(
            "{LIST_RECEIPTS}: `decision` must be PASS, BLOCK or PARTIAL, got \"{d}\""
        )));
    }
    Ok(ListFilter {
        limit: limit as usize,
        workflow,
        decision,
    })
}

fn list_receipts(engine: &Engine, args: &Map<String, Value>) -> Answer {
    let filter = match list_filter(args) {
        Ok(f) => f,
        Err(a) => return a,
    };
    match receipts_json(engine, &filter) {
        Ok(value) => {
            let n = value["receipts"].as_array().map_or(0, Vec::len);
            Answer::ok(format!("{n} receipt(s), newest first"), value)
        }
        Err(e) => Answer::refused(e),
    }
}

/// `{"receipts": [summaries]}`, as `enact_list_receipts` and `enact://receipts` show them.
pub fn receipts_json(engine: &Engine, filter: &ListFilter) -> Result<Value, String> {
    let receipts = engine.store().list(filter).map_err(|e| e.to_string())?;
    Ok(json!({ "receipts": receipts }))
}

/// One receipt as shown over MCP: `rollback_data` redacted, plus `signature_valid`.
pub fn receipt_json(engine: &Engine, run_id: &str) -> Result<Value, StoreError> {
    let loaded = engine.store().load(run_id)?;
    Ok(json!({
        "receipt": receipt::redacted(&loaded.value),
        "signature_valid": loaded.signature_valid,
    }))
}

fn get_receipt(engine: &Engine, args: &Map<String, Value>) -> Answer {
    let run_id = match check_keys(GET_RECEIPT, args, &["run_id"])
        .and_then(|()| string_arg(GET_RECEIPT, args, "run_id"))
    {
        Ok(r) => r,
        Err(a) => return a,
    };
    match receipt_json(engine, run_id) {
        Ok(value) => {
            let valid = value["signature_valid"] == json!(true);
            let decision = value["receipt"]["decision"].as_str().unwrap_or("?");
            let summary = format!(
                "receipt {run_id}: {decision}, signature {}",
                if valid { "valid" } else { "INVALID" }
            );
            Answer::ok(summary, value)
        }
        Err(e) => Answer::refused(e.to_string()),
    }
}

async fn rollback(engine: &Engine, actor: &Actor, args: &Map<String, Value>) -> Answer {
    let run_id = match check_keys(ROLLBACK, args, &["run_id"])
        .and_then(|()| string_arg(ROLLBACK, args, "run_id"))
    {
        Ok(r) => r,
        Err(a) => return a,
    };
    match engine.rollback_as(run_id, Requester::Agent, actor).await {
        Ok(result) => Answer {
            summary: result.summary(),
            is_error: !result.success,
            structured: Some(serde_json::to_value(&result).unwrap_or(Value::Null)),
        },
        Err(refused) => Answer::refused(refused.0),
    }
}
