//! One Slack Web API call and what its answer means (SPEC-hubspot-slack §7.5): `ok: true` or a
//! failure message built from Slack's `error`, `needed` and `response_metadata.messages` only
//! — never from the request, so the token cannot appear in it.

use serde_json::Value;

use crate::connector::http::{HttpError, JsonClient, Request};

/// What a request does, for its error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// A read (`auth.test`, `conversations.*`); the word is what its failure leaves undone:
    /// `updated` for the read before an update, `read` for a lookup.
    Read(&'static str),
    /// A write; the word is what did not happen: `posted`, `updated`, `deleted`.
    Write(&'static str),
}

/// Sends one request (never retried) and returns the body of an `ok: true` answer, or the
/// failure message: `<what>: Slack said: <code> (<hint>)`, the rate-limit sentence, or
/// `… — the message may or may not have been <done>` for a write without a clear answer.
/// `Err((code, message))`: `code` is Slack's error code when it gave one.
pub(super) async fn call(
    client: &JsonClient,
    token_env: &str,
    request: &Request,
    what: &str,
    effect: Effect,
) -> Result<Value, (Option<String>, String)> {
    let (Effect::Read(not) | Effect::Write(not)) = effect;
    let maybe = |detail: String| match effect {
        Effect::Write(done) => {
            format!("{what}: {detail} — the message may or may not have been {done}")
        }
        Effect::Read(_) => format!("{what}: {detail}"),
    };
    let response = match client.send(request).await {
        Ok(r) => r,
        Err(HttpError::NotSent(e)) => return Err((None, format!("{what}: {e} — nothing sent"))),
        Err(HttpError::NoAnswer(e)) => return Err((None, maybe(e))),
    };
    let code = response
        .body
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string);
    let rate_limited =
        response.status == 429 || matches!(code.as_deref(), Some("ratelimited" | "rate_limited"));
    if rate_limited {
        let after = response
            .header("retry-after")
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or("?");
        // One code for every rate-limit shape, so callers need not know them all.
        return Err((
            Some("ratelimited".to_string()),
            format!("Slack rate limit: retry after {after} s — not {not}"),
        ));
    }
    if response.status != 200 {
        return Err((code, maybe(format!("HTTP {}", response.status))));
    }
    log_warnings(what, &response.body);
    if response.body.get("ok") == Some(&Value::Bool(true)) {
        return Ok(response.body);
    }
    let Some(code) = code else {
        return Err((
            None,
            maybe("Slack's answer has neither ok nor error".into()),
        ));
    };
    let mut message = format!("{what}: Slack said: {code}");
    if let Some(hint) = hint(&code, &response.body, token_env) {
        message.push_str(&format!(" ({hint})"));
    }
    let details: Vec<&str> = response
        .body
        .pointer("/response_metadata/messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .take(5)
        .collect();
    if !details.is_empty() {
        message.push_str(&format!(": {}", details.join("; ")));
    }
    Err((Some(code), message))
}

/// The hint for the common codes (SPEC-hubspot-slack §7.5).
fn hint(code: &str, body: &Value, token_env: &str) -> Option<String> {
    Some(match code {
        "not_in_channel" => "invite the bot or grant chat:write.public".into(),
        "is_archived" => "the channel is archived".into(),
        "channel_not_found" => "no such channel, or the bot cannot see it".into(),
        "missing_scope" => {
            let needed = body.get("needed").and_then(Value::as_str).unwrap_or("?");
            format!("the bot token needs the scope {needed}")
        }
        "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" => {
            format!("the token in {token_env} was refused")
        }
        "cant_update_message" | "cant_delete_message" => {
            "the message was not posted by this bot".into()
        }
        _ => return None,
    })
}

/// `warning` and `response_metadata.warnings` go to the log; they are not failures.
fn log_warnings(what: &str, body: &Value) {
    if let Some(w) = body.get("warning").and_then(Value::as_str) {
        tracing::warn!("{what}: Slack warning: {w}");
    }
    for w in body
        .pointer("/response_metadata/warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        tracing::warn!("{what}: Slack warning: {w}");
    }
}
