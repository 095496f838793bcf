//! `enact approvals …` (SPEC §9): the operator's side of approvals — list and show waiting
//! requests, approve or deny one, grant a time-boxed approval, revoke a grant.

use std::time::Duration;

use super::{
    ApprovalsCommand, ConfigArg, EXIT_FAILED, EXIT_OK, EXIT_USAGE, load_config_with, open_store,
};
use crate::config::{ApprovalVia, MAX_GRANT};
use crate::engine::{Engine, GrantError};
use crate::kernel::policy::parse_window;
use crate::registry::Registry;
use serde_json::{Value, json};

pub fn run(cmd: ApprovalsCommand) -> u8 {
    match cmd {
        ApprovalsCommand::List { json, config } => with_engine(&config, |e| list(e, json)),
        ApprovalsCommand::Show { id, config } => with_engine(&config, |e| show(e, &id)),
        ApprovalsCommand::Approve(a) => {
            let who = super::operator_identity(a.operator);
            with_engine(&a.config, |e| answer(e, &a.id, true, &who, a.reason))
        }
        ApprovalsCommand::Deny(a) => {
            let who = super::operator_identity(a.operator);
            with_engine(&a.config, |e| answer(e, &a.id, false, &who, a.reason))
        }
        ApprovalsCommand::Grant {
            workflow,
            action,
            duration,
            reason,
            operator,
            actor,
            config,
        } => {
            let duration = match parse_grant_duration(&duration) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_USAGE;
                }
            };
            let who = super::operator_identity(operator);
            with_engine(&config, |e| {
                grant(
                    e,
                    &workflow,
                    action.as_deref(),
                    duration,
                    &who,
                    actor.as_deref(),
                    reason,
                )
            })
        }
        ApprovalsCommand::Revoke {
            grant_id: id,
            reason,
            operator,
            config,
        } => {
            let who = super::operator_identity(operator);
            with_engine(&config, |e| revoke(e, &id, &who, reason))
        }
    }
}

/// `--for`: `30m`, `2h`, at most 24 hours.
fn parse_grant_duration(text: &str) -> Result<Duration, String> {
    let secs = parse_window(text).map_err(|e| format!("--for: {e}"))?;
    let d = Duration::from_secs(secs);
    if d > MAX_GRANT {
        return Err(format!("--for {text}: a grant lasts at most 24h"));
    }
    Ok(d)
}

/// The engine of an operator who answers requests: it reads and appends receipts and never
/// acts on a system, so the agent's credentials need not be set (only the signing secret).
fn with_engine(arg: &ConfigArg, f: impl FnOnce(&Engine) -> u8) -> u8 {
    let config = match load_config_with(arg, crate::config::Credentials::Optional) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let store = match open_store(&config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    f(&Engine::new(Registry::without_connectors(config), store))
}

/// `merge_pr on gh (pr_number=7, repo=acme/app); …`
fn plan_summary(plan: &Value) -> String {
    let steps: Vec<String> = plan
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    let args: Vec<String> = s
                        .get("args")
                        .and_then(Value::as_object)
                        .map(|a| {
                            a.iter()
                                .map(|(k, v)| match v {
                                    Value::String(s) if s.chars().count() <= 40 => {
                                        format!("{k}={s}")
                                    }
                                    Value::Number(n) => format!("{k}={n}"),
                                    Value::Bool(b) => format!("{k}={b}"),
                                    _ => format!("{k}=…"),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    format!(
                        "{} on {} ({})",
                        s.get("action").and_then(Value::as_str).unwrap_or("?"),
                        s.get("system").and_then(Value::as_str).unwrap_or("?"),
                        args.join(", ")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    steps.join("; ")
}

fn list(engine: &Engine, as_json: bool) -> u8 {
    let waiting = match engine.waiting_approvals(None) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "approvals": waiting })).unwrap_or_default()
        );
        return EXIT_OK;
    }
    if waiting.is_empty() {
        println!("no request waits for approval");
        return EXIT_OK;
    }
    println!(
        "{:<36}  {:<20}  {:<24}  {:<27}  plan",
        "run_id", "workflow", "actor", "expires"
    );
    for w in &waiting {
        println!(
            "{:<36}  {:<20}  {:<24}  {:<27}  {}",
            w.run_id,
            w.workflow,
            w.actor_email,
            w.expires_at,
            plan_summary(&w.plan)
        );
    }
    EXIT_OK
}

fn show(engine: &Engine, id: &str) -> u8 {
    let status = match engine.approval_status(id) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let r = &status.request;
    let state = match (&status.answer, &status.used_by) {
        (_, Some(by)) => format!("used by run {by}"),
        (Some(a), None) => format!(
            "{} by {} via {}{}",
            if a.approved { "approved" } else { "denied" },
            a.actor_email,
            a.via,
            a.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        (None, None) if status.expired => "expired".to_string(),
        (None, None) => "waiting".to_string(),
    };
    let shown = json!({
        "run_id": r.run_id,
        "workflow": r.workflow,
        "actor_email": r.actor_email,
        "requested_at": r.timestamp,
        "expires_at": r.expires_at,
        "status": state,
        "plan_digest": r.plan_digest,
        "plan": r.plan,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    );
    EXIT_OK
}

fn answer(engine: &Engine, id: &str, approve: bool, who: &str, reason: Option<String>) -> u8 {
    match engine.answer_approval(id, approve, who, ApprovalVia::Cli, reason) {
        Ok(record) => {
            if approve {
                println!(
                    "approved request {id} as {who} (record {}); the agent runs it with enact_resume {{\"run_id\": \"{id}\"}}",
                    record.run_id
                );
            } else {
                println!("denied request {id} as {who} (record {})", record.run_id);
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

fn grant(
    engine: &Engine,
    workflow: &str,
    action: Option<&str>,
    duration: Duration,
    who: &str,
    actor: Option<&str>,
    reason: Option<String>,
) -> u8 {
    match engine.grant(workflow, action, duration, who, actor, reason) {
        Ok(record) => {
            println!("{}", record.run_id);
            eprintln!(
                "granted {} calls of `{workflow}`{} until {} (revoke with `enact approvals revoke {}`)",
                record.approvals.grant_for.as_deref().unwrap_or("?"),
                action.map(|a| format!(" ({a} only)")).unwrap_or_default(),
                record.approvals.expires_at.as_deref().unwrap_or("?"),
                record.run_id
            );
            EXIT_OK
        }
        Err(GrantError::Refused(e)) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
        Err(GrantError::Store(e)) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

fn revoke(engine: &Engine, id: &str, who: &str, reason: Option<String>) -> u8 {
    match engine.revoke(id, who, reason) {
        Ok(record) => {
            println!("revoked grant {id} (record {})", record.run_id);
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}
