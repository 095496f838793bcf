//! The resources (SPEC §3.2): `enact://receipts`, the `enact://receipts/{run_id}` template,
//! `enact://policies` and `enact://workflows`, all `application/json`.

use serde_json::{Value, json};

use super::tools::{receipt_json, receipts_json};
use crate::engine::Engine;
use crate::kernel::context::Actor;
use crate::kernel::schema;
use crate::kernel::workflow::WorkflowBody;
use crate::store::{ListFilter, StoreError};

pub const RECEIPTS: &str = "enact://receipts";
pub const RECEIPT_TEMPLATE: &str = "enact://receipts/{run_id}";
pub const POLICIES: &str = "enact://policies";
pub const WORKFLOWS: &str = "enact://workflows";
pub const APPROVALS: &str = "enact://approvals";
pub const MIME: &str = "application/json";

/// How many summaries `enact://receipts` shows.
const RECENT_RECEIPTS: usize = 50;

/// `(uri, name, description)` of each fixed resource.
pub const FIXED: &[(&str, &str, &str)] = &[
    (
        RECEIPTS,
        "receipts",
        "The 50 newest receipt summaries, newest first",
    ),
    (
        POLICIES,
        "policies",
        "The active policies: name, parameters, scope",
    ),
    (
        WORKFLOWS,
        "workflows",
        "Each workflow: name, inputs, and its steps or built-in plan",
    ),
    (
        APPROVALS,
        "approvals",
        "This actor's requests still waiting for a human's approval, newest first",
    ),
];

/// Why a resource could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// No such resource (a JSON-RPC resource-not-found error).
    NotFound(String),
    /// The URI names a receipt with an invalid run id (invalid params).
    Invalid(String),
    /// The store failed.
    Internal(String),
}

/// Reads one resource as JSON; `actor` is who asks (`enact://approvals` shows only theirs).
pub fn read(engine: &Engine, actor: &Actor, uri: &str) -> Result<Value, ReadError> {
    match uri {
        APPROVALS => engine
            .waiting_approvals(Some(&actor.email))
            .map(|approvals| json!({ "approvals": approvals }))
            .map_err(|e| ReadError::Internal(e.to_string())),
        RECEIPTS => receipts_json(
            engine,
            &ListFilter {
                limit: RECENT_RECEIPTS,
                ..ListFilter::default()
            },
        )
        .map_err(ReadError::Internal),
        POLICIES => Ok(json!({"policies": engine.policies_json()})),
        WORKFLOWS => Ok(workflows_json(engine)),
        _ => match uri.strip_prefix("enact://receipts/") {
            Some(run_id) => match receipt_json(engine, run_id) {
                Ok(v) => Ok(v["receipt"].clone()),
                Err(e @ StoreError::InvalidRunId(_)) => Err(ReadError::Invalid(e.to_string())),
                Err(e @ StoreError::NotFound(_)) => Err(ReadError::NotFound(e.to_string())),
                Err(e) => Err(ReadError::Internal(e.to_string())),
            },
            None => Err(ReadError::NotFound(format!("Resource not found: {uri}"))),
        },
    }
}

/// `{"workflows": [{name, description, inputs, input_schema, steps | builtin+system+actions}]}`.
fn workflows_json(engine: &Engine) -> Value {
    let list: Vec<Value> = engine
        .workflows()
        .iter()
        .map(|w| {
            let mut entry = json!({
                "name": w.name,
                "description": w.description,
                "inputs": w.inputs,
                "input_schema": schema::input_schema(&w.inputs),
            });
            match &w.body {
                WorkflowBody::Declared { steps } => entry["steps"] = json!(steps),
                WorkflowBody::Builtin { builtin, system } => {
                    entry["builtin"] = json!(builtin.name());
                    entry["system"] = json!(system);
                    entry["plan"] = json!(builtin.actions());
                }
            }
            entry
        })
        .collect();
    json!({ "workflows": list })
}
