//! `[approvals]` (SPEC §9): who may answer a request, how long a request lives, how long a
//! call waits for an answer.

use std::time::Duration;

use super::super::raw::{Problems, Section};
use super::super::{ApprovalVia, ApprovalsConfig, MAX_APPROVAL_WAIT};
use crate::kernel::policy::parse_window;

const KEYS: &[&str] = &["via", "expires", "wait"];

pub(super) fn validate(top: &Section<'_>, p: &mut Problems) -> ApprovalsConfig {
    let empty = toml::Table::new();
    let s = Section::new("approvals", top.table("approvals", p).unwrap_or(&empty));
    s.check_keys(KEYS, p);
    let mut config = ApprovalsConfig::default();

    if let Some(list) = s.strings("via", p) {
        config.via = Vec::new();
        if list.is_empty() {
            p.push_hint(
                s.at("via"),
                "no one could answer a request",
                "name at least one of \"cli\", \"elicitation\"",
            );
        }
        for via in list {
            match via {
                "cli" => config.via.push(ApprovalVia::Cli),
                "elicitation" => config.via.push(ApprovalVia::Elicitation),
                other => p.push_hint(
                    s.at("via"),
                    format!("unknown way to answer: {}", serde_json::Value::from(other)),
                    "use \"cli\" (the operator's `enact approvals`) and/or \"elicitation\" (the MCP client asks its user)",
                ),
            }
        }
    }
    if let Some(text) = s.string("expires", p) {
        match parse_window(text) {
            Ok(secs) => config.expires = Duration::from_secs(secs),
            Err(e) => p.push(s.at("expires"), e),
        }
    }
    if let Some(text) = s.string("wait", p) {
        match parse_wait(text) {
            Ok(wait) if wait > MAX_APPROVAL_WAIT => p.push(
                s.at("wait"),
                format!("wait {text:?} is longer than the longest allowed, 15m"),
            ),
            Ok(wait) => config.wait = wait,
            Err(e) => p.push(s.at("wait"), e),
        }
    }
    config
}

/// A window (`30s`, `5m`), or zero (`0s`, `0m`): no waiting.
fn parse_wait(text: &str) -> Result<Duration, String> {
    if matches!(text, "0s" | "0m" | "0h" | "0d") {
        return Ok(Duration::ZERO);
    }
    parse_window(text).map(Duration::from_secs)
}
