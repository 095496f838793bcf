//! What `enact check` prints for a valid config: the systems, policies and tools it would
//! serve, as plain text. Credentials are named by their environment variable only; the
//! signing secret is never shown.

use std::fmt::Write;

use serde_json::Value;

use super::{Config, SystemConfig, SystemSettings};
use crate::kernel::policy::Policy;
use crate::kernel::workflow::{InputSpec, Workflow, WorkflowBody};

/// A readable summary of a validated config.
pub fn describe(config: &Config) -> String {
    let mut out = String::new();
    let on_off = |b: bool| if b { "on" } else { "off" };
    let secret = match &config.secret_file {
        Some(file) => format!("from the file {}", file.display()),
        None => "from the environment".to_string(),
    };
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(out, "config:   {}", config.path.display());
    let _ = writeln!(
        out,
        "actor:    {} (role: {})",
        config.actor.email, config.actor.role
    );
    let _ = writeln!(out, "secret:   {secret}");
    let _ = writeln!(
        out,
        "receipts: {} (fsync {})",
        config.receipts_dir.display(),
        on_off(config.fsync)
    );
    let _ = writeln!(out, "rollback: {}", on_off(config.rollback_enabled));

    section(&mut out, "systems", config.systems.len());
    for system in &config.systems {
        describe_system(&mut out, system);
    }
    section(&mut out, "policies", config.policies.len());
    for policy in &config.policies {
        describe_policy(&mut out, policy);
    }
    section(&mut out, "tools", config.workflows.len());
    for workflow in &config.workflows {
        describe_workflow(&mut out, workflow);
    }
    use crate::kernel::workflow::{GET_RECEIPT, LIST_RECEIPTS, PREVIEW, RESUME, ROLLBACK};
    let mut builtin = vec![PREVIEW, LIST_RECEIPTS, GET_RECEIPT];
    if config.rollback_enabled {
        builtin.push(ROLLBACK);
    }
    let approvals = config
        .policies
        .iter()
        .any(|p| p.name() == "require_approval");
    if approvals {
        builtin.push(RESUME);
    }
    let _ = writeln!(
        out,
        "
also served: {}",
        builtin.join(", ")
    );
    let _ = writeln!(
        out,
        "resources:   enact://receipts, enact://receipts/{{run_id}}, enact://policies, enact://workflows, enact://approvals"
    );
    if approvals {
        let a = &config.approvals;
        let via: Vec<&str> = a.via.iter().map(|v| v.as_str()).collect();
        let _ = writeln!(
            out,
            "approvals:   via {}, requests expire after {}, calls wait {}",
            via.join(" and "),
            crate::kernel::schema::format_duration(a.expires),
            if a.wait.is_zero() {
                "0s (they answer APPROVAL_REQUIRED at once)".to_string()
            } else {
                crate::kernel::schema::format_duration(a.wait)
            }
        );
    }
    out
}

fn section(out: &mut String, title: &str, count: usize) {
    let _ = writeln!(out, "\n{title} ({count}):");
    if count == 0 {
        let _ = writeln!(out, "  (none)");
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

fn describe_system(out: &mut String, system: &SystemConfig) {
    let _ = writeln!(out, "  {} ({})", system.name, system.kind);
    match &system.settings {
        SystemSettings::Github {
            token_env,
            base_url,
            repos,
            ..
        } => {
            let _ = writeln!(out, "    base_url:        {base_url}");
            let _ = writeln!(out, "    token:           ${token_env}");
            let _ = writeln!(out, "    repos:           {}", list(repos));
        }
        SystemSettings::Postgres {
            dsn_env,
            max_rows,
            statement_timeout,
            ..
        } => {
            let _ = writeln!(out, "    dsn:             ${dsn_env}");
            let _ = writeln!(out, "    max_rows:        {max_rows}");
            let _ = writeln!(
                out,
                "    timeout:         {} per statement (statement_timeout)",
                crate::config::format_duration(*statement_timeout)
            );
        }
        SystemSettings::Filesystem { root } => {
            let _ = writeln!(out, "    root:            {}", root.display());
        }
        SystemSettings::Hubspot {
            token_env,
            base_url,
            portal_id,
            properties,
            task_owner_id,
            ..
        } => {
            let _ = writeln!(out, "    base_url:        {base_url}");
            let _ = writeln!(out, "    token:           ${token_env}");
            let _ = writeln!(out, "    portal_id:       {portal_id}");
            let _ = writeln!(out, "    properties:      email, {}", list(properties));
            if let Some(owner) = task_owner_id {
                let _ = writeln!(out, "    task owner:      {owner}");
            }
        }
        SystemSettings::Slack {
            token_env,
            base_url,
            team_id,
            channels,
            ..
        } => {
            let _ = writeln!(out, "    base_url:        {base_url}");
            let _ = writeln!(out, "    token:           ${token_env}");
            let _ = writeln!(out, "    team_id:         {team_id}");
            let _ = writeln!(out, "    channels:        {}", list(channels));
        }
    }
    let _ = writeln!(
        out,
        "    allowed actions: {}",
        list(&system.allowed_actions)
    );
}

fn describe_policy(out: &mut String, policy: &Policy) {
    let params = match policy.kind.params_json() {
        Value::Object(m) if !m.is_empty() => {
            let shown: Vec<String> = m.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!(": {}", shown.join(", "))
        }
        _ => String::new(),
    };
    let scope = match &policy.scope {
        None => "all tools".to_string(),
        Some(names) => format!("only {}", list(names)),
    };
    let _ = writeln!(out, "  {}{params} ({scope})", policy.name());
}

fn describe_workflow(out: &mut String, workflow: &Workflow) {
    let _ = writeln!(out, "  {}: {}", workflow.name, workflow.description);
    match &workflow.body {
        WorkflowBody::Builtin { builtin, system } => {
            let _ = writeln!(out, "    built-in {} on system {system}", builtin.name());
        }
        WorkflowBody::Declared { steps } => {
            let _ = writeln!(out, "    steps:");
            for (i, step) in steps.iter().enumerate() {
                let args = Value::Object(step.args.clone());
                let _ = writeln!(
                    out,
                    "      {}. {}.{} {args}",
                    i + 1,
                    step.system,
                    step.action
                );
            }
        }
    }
    if workflow.inputs.is_empty() {
        let _ = writeln!(out, "    inputs: (none)");
    } else {
        let _ = writeln!(out, "    inputs:");
        for input in &workflow.inputs {
            let _ = writeln!(out, "      {}", describe_input(input));
        }
    }
}

/// `name: type = default, one of [..] — description`
fn describe_input(input: &InputSpec) -> String {
    let mut s = format!("{}: {}", input.name, input.ty.as_str());
    match &input.default {
        Some(d) => {
            let _ = write!(s, " = {d}");
        }
        None if input.optional => s.push_str(" (optional)"),
        None => s.push_str(" (required)"),
    }
    if let Some(values) = &input.enum_values {
        let shown: Vec<String> = values.iter().map(Value::to_string).collect();
        let _ = write!(s, ", one of {}", shown.join(" | "));
    }
    if let Some(d) = &input.description {
        let _ = write!(s, " — {d}");
    }
    s
}
