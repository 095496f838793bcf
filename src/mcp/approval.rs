//! A call held for approval, over MCP (SPEC §9): who is asked and how.
//!
//! - `[approvals] via` holds `elicitation` and the client declared the capability: in a
//!   2025-06-18 / 2025-11-25 session the server sends `elicitation/create` and waits for the
//!   answer; in a 2026-07-28 session it answers `input_required` with an elicitation and a
//!   sealed `requestState`, and the client's retry carries the answer.
//! - Otherwise the call waits up to `[approvals] wait` for an operator's answer (sending
//!   progress notifications when the client gave a `progressToken`), then returns
//!   `APPROVAL_REQUIRED`.
//!
//! An approval is recorded first (an `APPROVE` record), then the run is resumed exactly as
//! `enact_resume` would; a denial is a `DENY` record and an `isError` result.

use std::time::Duration;

use rmcp::model::{ElicitRequestParams, ElicitResult, ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RoleServer};
use serde_json::{Map, Value, json};

use super::rounds::{InputRequired, Outcome, Round};
use super::summary::Summarise;
use super::tools::Answer;
use crate::config::ApprovalVia;
use crate::engine::{CallError, CallResult, Cancel, Engine};
use crate::kernel::approval::plan_digest;
use crate::kernel::context::Actor;
use crate::kernel::policy::Decision;

/// The key of the approval form in `inputRequests` / `inputResponses`.
pub const INPUT_KEY: &str = "approval";
/// Progress notifications while a call waits: at least this often (SPEC: every 5 s at most).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Longest argument text shown to the human (SPEC §9: never more than 200 characters).
const SHOWN_CHARS: usize = 200;

/// What the server knows of the client making a call.
#[derive(Clone, Default)]
pub struct ClientSide {
    /// The connection, to send `elicitation/create` and progress notifications on.
    pub peer: Option<Peer<RoleServer>>,
    /// A 2026-07-28 session (no server-to-client requests: `input_required` instead).
    pub modern: bool,
    /// The client declared form elicitation.
    pub elicitation: bool,
    /// `clientInfo.name`.
    pub name: String,
    pub progress_token: Option<ProgressToken>,
}

impl std::fmt::Debug for ClientSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSide")
            .field("modern", &self.modern)
            .field("elicitation", &self.elicitation)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The result of a workflow call as a tool answer.
pub fn call_answer(result: &CallResult) -> Answer {
    Answer {
        summary: result.summary(),
        structured: Some(serde_json::to_value(result).unwrap_or(Value::Null)),
        is_error: result.decision != Decision::Pass || !result.success,
    }
}

fn error_answer(e: CallError) -> Answer {
    match e {
        CallError::UnknownWorkflow(w) => Answer::refused(format!("unknown workflow `{w}`")),
        CallError::Journal(m) | CallError::Refused(m) => Answer::refused(m),
    }
}

/// The form's answer: approve or not, and the human's reason.
struct Decided {
    approve: bool,
    reason: Option<String>,
}

/// Reads an elicitation result: accept with `decision: "approve"` approves; anything else
/// (deny, decline, cancel, a malformed answer) denies.
fn decided(result: &Value) -> Decided {
    let action = result.get("action").and_then(Value::as_str).unwrap_or("");
    let content = result.get("content");
    let field = |k: &str| content.and_then(|c| c.get(k)).and_then(Value::as_str);
    let reason = field("reason")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    match (action, field("decision")) {
        ("accept", Some("approve")) => Decided {
            approve: true,
            reason,
        },
        ("accept", Some("deny")) => Decided {
            approve: false,
            reason,
        },
        ("decline", _) => Decided {
            approve: false,
            reason: reason.or(Some("declined".into())),
        },
        ("cancel", _) => Decided {
            approve: false,
            reason: reason.or(Some("cancelled".into())),
        },
        _ => Decided {
            approve: false,
            reason: Some("no valid answer".into()),
        },
    }
}

/// A held call: asks the client's user, or waits for an operator, as `[approvals]` says.
pub async fn hold(
    engine: &Engine,
    actor: &Actor,
    held: CallResult,
    client: &ClientSide,
    cancel: &Cancel,
) -> Outcome {
    let config = engine.approvals_config();
    let id = held.run_id.clone();
    let plan = held
        .approval
        .as_ref()
        .and_then(|a| a.get("plan"))
        .cloned()
        .unwrap_or(Value::Null);
    if config.allows(ApprovalVia::Elicitation) && client.elicitation {
        let form = form_params(&held.workflow, actor, &plan);
        if client.modern {
            let expires_at = held
                .approval
                .as_ref()
                .and_then(|a| a.get("expires_at"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let digest = plan_digest(&held.workflow, &actor.email, &plan);
            let mut input_requests = Map::new();
            input_requests.insert(
                INPUT_KEY.into(),
                json!({"method": "elicitation/create", "params": form}),
            );
            return Outcome::InputRequired(InputRequired {
                input_requests,
                request_state: Some(engine.request_state(&id, &digest, expires_at)),
            });
        }
        if let Some(peer) = &client.peer {
            // A user who never answers must not hold the call past the request's life.
            match tokio::time::timeout(config.expires, ask(peer, form)).await {
                Ok(Ok(answer)) => {
                    return answered(engine, actor, &id, client, decided(&answer), cancel).await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(run_id = %id, error = %e, "the client could not be asked; the request waits for an operator");
                }
                Err(_) => {
                    tracing::warn!(run_id = %id, "the client's user did not answer before the request expired");
                }
            }
        }
    }
    if !config.wait.is_zero() && config.allows(ApprovalVia::Cli) {
        let mut tick = |elapsed: Duration| progress(client, &id, elapsed);
        if let Some(answer) = engine
            .wait_for_answer(&id, config.wait, PROGRESS_EVERY, cancel, &mut tick)
            .await
        {
            if answer.approved {
                return resume(engine, actor, &id, cancel).await;
            }
            return Outcome::Complete(Answer::refused(format!(
                "denied by {}: {}",
                answer.actor_email,
                answer.reason.as_deref().unwrap_or("no reason given")
            )));
        }
    }
    Outcome::Complete(call_answer(&held))
}

/// A workflow call that retries after `input_required`.
pub struct Retry<'a> {
    pub workflow: &'a str,
    pub args: &'a Map<String, Value>,
    pub inexact: &'a [String],
    pub round: &'a Round,
    pub client: &'a ClientSide,
    pub cancel: &'a Cancel,
}

/// The retry of a 2026-07-28 call after `input_required`: checks the sealed state and that
/// the call still plans exactly what was held, records the user's answer, and on approval
/// runs it.
pub async fn retry(engine: &Engine, actor: &Actor, call: Retry<'_>) -> Answer {
    let Retry {
        workflow,
        args,
        inexact,
        round,
        client,
        cancel,
    } = call;
    let Some(sealed) = &round.request_state else {
        return Answer::refused("an approval answer needs the requestState it was asked with");
    };
    let state = match engine.open_request_state(sealed) {
        Ok(s) => s,
        Err(e) => return Answer::refused(e.to_string()),
    };
    match engine.plan_digest_for(actor, workflow, args, inexact) {
        Ok(digest) if digest == state.plan_digest => {}
        _ => {
            return Answer::refused(format!(
                "the plan changed since approval request `{}` was made (its digest differs): nothing was run; call the workflow again to ask anew",
                state.run_id
            ));
        }
    }
    let Some(response) = round.input_responses.get(INPUT_KEY) else {
        return Answer::refused(format!(
            "the retry carries no `{INPUT_KEY}` input response for approval request `{}`",
            state.run_id
        ));
    };
    match answered(
        engine,
        actor,
        &state.run_id,
        client,
        decided(response),
        cancel,
    )
    .await
    {
        Outcome::Complete(a) => a,
        Outcome::InputRequired(_) => Answer::refused("unexpected second input request"),
    }
}

/// Records a user's answer given through the client, then runs or refuses.
async fn answered(
    engine: &Engine,
    actor: &Actor,
    id: &str,
    client: &ClientSide,
    answer: Decided,
    cancel: &Cancel,
) -> Outcome {
    let who = format!("client:{}", client.name);
    if let Err(e) = engine.answer_approval(
        id,
        answer.approve,
        &who,
        ApprovalVia::Elicitation,
        answer.reason.clone(),
    ) {
        return Outcome::Complete(Answer::refused(e.to_string()));
    }
    if !answer.approve {
        return Outcome::Complete(Answer::refused(format!(
            "denied by the user: {}",
            answer.reason.as_deref().unwrap_or("no reason given")
        )));
    }
    resume(engine, actor, id, cancel).await
}

async fn resume(engine: &Engine, actor: &Actor, id: &str, cancel: &Cancel) -> Outcome {
    Outcome::Complete(match engine.resume_as(actor, id, cancel).await {
        Ok(result) => call_answer(&result),
        Err(e) => error_answer(e),
    })
}

/// `enact_resume {run_id}`.
pub async fn resume_tool(engine: &Engine, actor: &Actor, id: &str, cancel: &Cancel) -> Answer {
    match engine.resume_as(actor, id, cancel).await {
        Ok(result) => call_answer(&result),
        Err(e) => error_answer(e),
    }
}

async fn ask(peer: &Peer<RoleServer>, form: Value) -> Result<Value, String> {
    let params: ElicitRequestParams =
        serde_json::from_value(form).map_err(|e| format!("cannot build the form: {e}"))?;
    let result: ElicitResult = peer
        .create_elicitation(params)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_value(result).map_err(|e| e.to_string())
}

fn progress(client: &ClientSide, id: &str, elapsed: Duration) {
    let (Some(peer), Some(token)) = (&client.peer, &client.progress_token) else {
        return;
    };
    let param: Result<ProgressNotificationParam, _> = serde_json::from_value(json!({
        "progressToken": token,
        "progress": elapsed.as_secs_f64().floor(),
        "message": format!("waiting for a human to approve request {id} (`enact approvals approve {id}`)"),
    }));
    if let Ok(param) = param {
        let peer = peer.clone();
        tokio::spawn(async move {
            let _ = peer.notify_progress(param).await;
        });
    }
}

/// The `elicitation/create` params (form mode): the message names the workflow, the actor
/// and every planned step; the form is `{decision: approve | deny, reason?}`.
fn form_params(workflow: &str, actor: &Actor, plan: &Value) -> Value {
    let steps: Vec<String> = plan
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .enumerate()
                .map(|(i, s)| step_line(i + 1, s))
                .collect()
        })
        .unwrap_or_default();
    let message = format!(
        "Enact holds a call for your approval.\nWorkflow: {workflow}\nActor: {} (role {})\nPlanned steps:\n{}\nApprove exactly this plan?",
        actor.email,
        actor.role,
        steps.join("\n")
    );
    json!({
        "mode": "form",
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": {
                "decision": {
                    "type": "string",
                    "title": "Decision",
                    "description": "approve runs exactly the plan shown; deny refuses it",
                    "enum": ["approve", "deny"],
                },
                "reason": {
                    "type": "string",
                    "title": "Reason",
                    "description": "Why (recorded in the signed receipt)",
                },
            },
            "required": ["decision"],
        },
    })
}

/// `2. merge_pr on gh: repo=acme/app, pr_number=7` — values cut at 200 characters.
fn step_line(n: usize, step: &Value) -> String {
    let text = |k: &str| step.get(k).and_then(Value::as_str).unwrap_or("?");
    let args: Vec<String> = step
        .get("args")
        .and_then(Value::as_object)
        .map(|args| {
            args.iter()
                .map(|(k, v)| {
                    let shown = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    format!("{k}={}", cut(&shown))
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{n}. {} on {}: {}",
        text("action"),
        text("system"),
        args.join(", ")
    )
}

fn cut(s: &str) -> String {
    if s.chars().count() <= SHOWN_CHARS {
        return s.to_string();
    }
    let kept: String = s.chars().take(SHOWN_CHARS).collect();
    format!("{kept}… ({} characters in all)", s.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_strictly() {
        let d = decided(
            &json!({"action": "accept", "content": {"decision": "approve", "reason": " ok "}}),
        );
        assert!(d.approve);
        assert_eq!(d.reason.as_deref(), Some("ok"));
        let d = decided(&json!({"action": "accept", "content": {"decision": "deny"}}));
        assert!(!d.approve);
        assert_eq!(d.reason, None);
        assert_eq!(
            decided(&json!({"action": "decline"})).reason.as_deref(),
            Some("declined")
        );
        assert_eq!(
            decided(&json!({"action": "cancel"})).reason.as_deref(),
            Some("cancelled")
        );
        for bad in [
            json!({}),
            json!({"action": "accept"}),
            json!({"action": "accept", "content": {"decision": "yes"}}),
        ] {
            assert!(!decided(&bad).approve, "{bad}");
        }
    }

    #[test]
    fn the_message_names_every_step_and_cuts_long_values() {
        let plan = json!([
            {"system": "gh", "action": "merge_pr", "args": {"repo": "acme/app", "pr_number": 7}},
            {"system": "files", "action": "write_file", "args": {"path": "a.txt", "content": "x".repeat(500)}},
        ]);
        let actor = Actor {
            email: "agent@acme.dev".into(),
            role: "engineer".into(),
        };
        let form = form_params("ship", &actor, &plan);
        let message = form["message"].as_str().unwrap();
        assert!(message.contains("Workflow: ship"), "{message}");
        assert!(message.contains("agent@acme.dev"), "{message}");
        assert!(
            message.contains("1. merge_pr on gh: pr_number=7, repo=acme/app"),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "content={}… (500 characters in all)",
                "x".repeat(200)
            )),
            "{message}"
        );
        assert!(!message.contains(&"x".repeat(201)));
        assert_eq!(
            form["requestedSchema"]["properties"]["decision"]["enum"],
            json!(["approve", "deny"])
        );
    }
}
