//! The tools (SPEC §3.1): one per workflow plus `enact_preview`, `enact_list_receipts`,
//! `enact_get_receipt` and (when enabled) `enact_rollback`. Each returns `structuredContent`,
//! a one-line human summary and the same JSON as text.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::approval;
use super::rounds::{Outcome, ToolCall};
use super::summary::Summarise;
use crate::engine::{CallError, CallResult, Cancel, Engine, Preview, Requester, RollbackResult};
use crate::kernel::context::Actor;
use crate::kernel::policy::Decision;
use crate::kernel::receipt;
use crate::kernel::schema;
use crate::store::{ListFilter, StoreError, Summary};

pub use crate::kernel::workflow::{GET_RECEIPT, LIST_RECEIPTS, PREVIEW, RESUME, ROLLBACK};

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
    let workflows = engine.workflows();
    let mut out: Vec<ToolSpec> = workflows
        .iter()
        .map(|w| ToolSpec {
            name: w.name.clone(),
            description: if w.description.is_empty() {
                format!("Run the `{}` workflow (policy-gated, receipted)", w.name)
            } else {
                w.description.clone()
            },
            // Workflows exist only at run time: their input schema is built from the config.
            input_schema: schema::input_schema(&w.inputs),
            output_schema: schema_of::<CallResult>(),
        })
        .collect();
    let mut preview_input = schema_of::<PreviewArgs>();
    let names: Vec<Value> = workflows.iter().map(|w| json!(w.name)).collect();
    if !names.is_empty()
        && let Some(Value::Object(workflow)) = preview_input
            .get_mut("properties")
            .and_then(|p| p.get_mut("workflow"))
    {
        workflow.insert("enum".into(), Value::Array(names));
    }
    out.push(ToolSpec {
        name: PREVIEW.into(),
        description: "Evaluate the policy gate for a workflow call without running anything or writing a receipt: returns the plan and every policy result.".into(),
        input_schema: preview_input,
        output_schema: schema_of::<Preview>(),
    });
    out.push(ToolSpec {
        name: LIST_RECEIPTS.into(),
        description:
            "List receipts newest first (summaries), optionally filtered by workflow or decision."
                .into(),
        input_schema: schema_of::<ListReceiptsArgs>(),
        output_schema: schema_of::<ReceiptList>(),
    });
    out.push(ToolSpec {
        name: GET_RECEIPT.into(),
        description: "Get one receipt (rollback data shown only as a digest) and whether its signature verifies.".into(),
        input_schema: schema_of::<RunIdArgs>(),
        output_schema: schema_of::<ReceiptView>(),
    });
    if engine.rollback_enabled() {
        out.push(ToolSpec {
            name: ROLLBACK.into(),
            description: "Roll back one of this server's runs from its receipt: undo its actions in reverse order, each only if the target still holds what the run left.".into(),
            input_schema: schema_of::<RunIdArgs>(),
            output_schema: schema_of::<RollbackResult>(),
        });
    }
    if engine.approvals_enabled() {
        out.push(ToolSpec {
            name: RESUME.into(),
            description: "Run a call that a human has approved (it answered APPROVAL_REQUIRED): the plan is built again from the recorded arguments and must be exactly the approved one; every other policy is judged again. Runs at most once.".into(),
            input_schema: schema_of::<RunIdArgs>(),
            output_schema: schema_of::<CallResult>(),
        });
    }
    out
}

/// `enact_preview`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewArgs {
    /// The workflow (tool) name
    pub workflow: String,
    /// The arguments the workflow would be called with
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// `enact_list_receipts`' arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListReceiptsArgs {
    /// At most this many summaries, newest first
    #[serde(default = "default_list_limit")]
    #[schemars(range(min = 1, max = MAX_LIST_LIMIT))]
    pub limit: u64,
    /// Only receipts of this workflow
    #[serde(default)]
    pub workflow: Option<String>,
    /// Only receipts with this decision
    #[serde(default)]
    pub decision: Option<Decision>,
}

fn default_list_limit() -> u64 {
    DEFAULT_LIST_LIMIT
}

/// `enact_get_receipt`'s and `enact_rollback`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIdArgs {
    pub run_id: String,
}

/// `enact_list_receipts`' result (and `enact://receipts`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReceiptList {
    pub receipts: Vec<Summary>,
}

/// `enact_get_receipt`'s result: the receipt with `rollback_data` redacted.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReceiptView {
    pub receipt: Map<String, Value>,
    pub signature_valid: bool,
}

/// The JSON Schema of `T` (derived), as a tool's `inputSchema` / `outputSchema`.
fn schema_of<T: JsonSchema>() -> Map<String, Value> {
    match schemars::schema_for!(T).to_value() {
        Value::Object(m) => m,
        _ => Map::new(),
    }
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
    let rollback_enabled = engine.rollback_enabled();
    let ToolCall {
        name,
        arguments: args,
        inexact,
        cancel,
        round,
        actor,
        client,
    } = call;
    let actor = actor.as_ref().unwrap_or(&engine.registry().config.actor);
    let answer = match name.as_str() {
        PREVIEW => preview(engine, actor, &args, &inexact).await,
        LIST_RECEIPTS => list_receipts(engine, &args),
        GET_RECEIPT => get_receipt(engine, &args),
        ROLLBACK if rollback_enabled => rollback(engine, actor, &args).await,
        RESUME if engine.approvals_enabled() => resume(engine, actor, &args, &cancel).await,
        _ if engine.workflow(&name).is_some() && round.is_retry() => {
            let call = approval::Retry {
                workflow: &name,
                args: &args,
                inexact: &inexact,
                round: &round,
                client: &client,
                cancel: &cancel,
            };
            approval::retry(engine, actor, call).await
        }
        _ if engine.workflow(&name).is_some() => {
            return Ok(workflow_call(engine, actor, &name, args, &inexact, &client, &cancel).await);
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
    client: &approval::ClientSide,
    cancel: &Cancel,
) -> Outcome {
    match engine.call_as(actor, name, args, inexact, cancel).await {
        Ok(result) if result.decision == Decision::ApprovalRequired => {
            approval::hold(engine, actor, result, client, cancel).await
        }
        Ok(result) => Outcome::Complete(approval::call_answer(&result)),
        Err(CallError::Journal(message) | CallError::Refused(message)) => {
            Outcome::Complete(Answer::refused(message))
        }
        Err(CallError::UnknownWorkflow(w)) => {
            Outcome::Complete(Answer::refused(format!("unknown workflow `{w}`")))
        }
    }
}

async fn resume(
    engine: &Engine,
    actor: &Actor,
    args: &Map<String, Value>,
    cancel: &Cancel,
) -> Answer {
    let run_id = match check_keys(RESUME, args, &["run_id"])
        .and_then(|()| string_arg(RESUME, args, "run_id"))
    {
        Ok(r) => r,
        Err(a) => return a,
    };
    approval::resume_tool(engine, actor, run_id, cancel).await
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
        && Decision::parse_recorded(d).is_none()
    {
        return Err(Answer::refused(format!(
            "{LIST_RECEIPTS}: `decision` must be one of {}, got \"{d}\"",
            Decision::recorded_names()
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
    let receipts = engine.receipts(filter).map_err(|e| e.to_string())?;
    Ok(json!({ "receipts": receipts }))
}

/// One receipt as shown over MCP: `rollback_data` redacted, plus `signature_valid`.
pub fn receipt_json(engine: &Engine, run_id: &str) -> Result<Value, StoreError> {
    let loaded = engine.load_receipt(run_id)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_schemas_refuse_unknown_arguments_and_keep_the_limits() {
        let list = Value::Object(schema_of::<ListReceiptsArgs>());
        assert_eq!(list["type"], "object");
        assert_eq!(list["additionalProperties"], false);
        assert_eq!(
            list["properties"]["limit"]["maximum"],
            json!(MAX_LIST_LIMIT)
        );
        assert_eq!(list["properties"]["limit"]["minimum"], json!(1));
        assert_eq!(
            list["properties"]["limit"]["default"],
            json!(DEFAULT_LIST_LIMIT)
        );
        let run = Value::Object(schema_of::<RunIdArgs>());
        assert_eq!(run["required"], json!(["run_id"]));
        let out = Value::Object(schema_of::<CallResult>());
        for field in CALL_FIELDS {
            assert!(
                out["required"]
                    .as_array()
                    .is_some_and(|r| r.contains(&json!(field))),
                "{field}: {out}"
            );
        }
    }

    const CALL_FIELDS: [&str; 7] = [
        "run_id",
        "workflow",
        "decision",
        "success",
        "actions",
        "policy_results",
        "receipt",
    ];
}
