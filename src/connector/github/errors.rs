//! Turning octocrab errors into one clear sentence: GitHub's own `message` and status, the
//! rate-limit reset time when that is the cause, or why GitHub could not be reached.
//!
//! Only the status, message, documented error details and the rate-limit reset header are
//! read — never request headers — so no credential can end up in a message.

use octocrab::Error;
use serde_json::Value;

/// The HTTP status GitHub answered with, if it answered.
pub(super) fn status(err: &Error) -> Option<u16> {
    match err {
        Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// GitHub's `message` (or, for "Validation Failed", the details it lists).
pub(super) fn github_message(err: &Error) -> Option<String> {
    match err {
        Error::GitHub { source, .. } => Some(message_of(&source.message, source.errors.as_deref())),
        _ => None,
    }
}

/// `GitHub said: <message> (<status>)`, or why there was no usable answer.
pub(super) fn describe(err: &Error, base_url: &str) -> String {
    match err {
        Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let mut text = format!(
                "GitHub said: {} ({status})",
                message_of(&source.message, source.errors.as_deref())
            );
            if is_rate_limit(status, source) {
                match source.rate_limit_reset_at() {
                    Some(at) => {
                        text.push_str(&format!("; the rate limit resets at {}", at.to_rfc3339()))
                    }
                    None => text.push_str("; rate limited"),
                }
            }
            text
        }
        Error::Json { source, .. } => {
            format!(
                "unexpected response from GitHub at {base_url}: `{}`: {}",
                source.path(),
                source.inner()
            )
        }
        Error::Serde { source, .. } => {
            format!("unexpected response from GitHub at {base_url}: {source}")
        }
        Error::Service { source, .. } => format!(
            "no answer from GitHub at {base_url}: {}",
            chain(source.as_ref())
        ),
        Error::Hyper { source, .. } => {
            format!("no answer from GitHub at {base_url}: {}", chain(source))
        }
        other => format!("GitHub request to {base_url} failed: {}", chain(other)),
    }
}

fn is_rate_limit(status: u16, source: &octocrab::GitHubError) -> bool {
    let exhausted = source
        .headers
        .as_ref()
        .and_then(|h| h.get("x-ratelimit-remaining"))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    (status == 403 || status == 429)
        && (exhausted || source.message.to_ascii_lowercase().contains("rate limit"))
}

/// GitHub answers a rejected write with `"Validation Failed"` and the real reasons in
/// `errors`; show those reasons instead of the generic word.
fn message_of(message: &str, errors: Option<&[Value]>) -> String {
    let details: Vec<String> = errors
        .unwrap_or_default()
        .iter()
        .filter_map(detail)
        .collect();
    if details.is_empty() {
        message.to_string()
    } else if message == "Validation Failed" {
        details.join("; ")
    } else {
        format!("{message}: {}", details.join("; "))
    }
}

fn detail(error: &Value) -> Option<String> {
    if let Some(text) = error.as_str() {
        return Some(text.to_string());
    }
    if let Some(text) = error.get("message").and_then(Value::as_str) {
        return Some(text.to_string());
    }
    let field = error.get("field").and_then(Value::as_str);
    let code = error.get("code").and_then(Value::as_str);
    match (field, code) {
        (Some(field), Some(code)) => Some(format!("`{field}` is {}", code.replace('_', " "))),
        (None, Some(code)) => Some(code.replace('_', " ")),
        _ => None,
    }
}

/// An error and its sources, each message once, without octocrab's backtrace.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        let text = text.lines().next().unwrap_or_default().trim().to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_details_replace_the_generic_message() {
        let errs = vec![
            json!({"resource": "PullRequest", "code": "custom", "message": "No commits between main and agent/x"}),
        ];
        assert_eq!(
            message_of("Validation Failed", Some(&errs)),
            "No commits between main and agent/x"
        );
        let errs = vec![json!({"resource": "PullRequest", "field": "head", "code": "invalid"})];
        assert_eq!(
            message_of("Validation Failed", Some(&errs)),
            "`head` is invalid"
        );
        assert_eq!(message_of("Not Found", None), "Not Found");
        assert_eq!(
            message_of("Oops", Some(&[json!("bad thing")])),
            "Oops: bad thing"
        );
    }
}
