//! Reads that are not actions: the conversation kind for `block_dms`, and recovery of an
//! interrupted action (SPEC §5.5).

use serde_json::{Value, json};

use super::{Effect, SlackConnector};
use crate::connector::http::{Request, query_encode};
use crate::connector::{ActionOutcome, Recovered};
use crate::kernel::slack::{Channel, Ts};

/// A deleted parent that Slack keeps because it has replies.
pub(super) fn is_tombstone(message: &Value) -> bool {
    message.get("subtype").and_then(Value::as_str) == Some("tombstone")
}

/// The recorded channel and ts, checked again before they reach a query string.
pub(super) fn channel_and_ts(data: &Value) -> Result<(Channel, Ts), String> {
    let field = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
    let channel = Channel::parse(field("channel")).map_err(|_| {
        "cannot undo: the recorded rollback_data has no valid `channel`".to_string()
    })?;
    let ts = Ts::parse(field("ts"))
        .map_err(|_| "cannot undo: the recorded rollback_data has no valid `ts`".to_string())?;
    Ok((channel, ts))
}

pub(super) async fn is_dm(c: &SlackConnector, channel: &str) -> Result<bool, String> {
    let channel = Channel::parse(channel)?;
    if channel.is_dm_id() {
        return Ok(true);
    }
    c.identity().await?;
    let what = format!("conversations.info for {channel}");
    let answer = c
        .call(
            Request::get(format!(
                "/conversations.info?channel={}",
                query_encode(channel.as_str())
            )),
            &what,
            Effect::Read,
        )
        .await
        .map_err(|(_, e)| e)?;
    let flag = |k: &str| answer.pointer(&format!("/channel/{k}")) == Some(&Value::Bool(true));
    Ok(flag("is_im") || flag("is_mpim"))
}

pub(super) async fn recover(
    c: &SlackConnector,
    action: &str,
    pre: &Value,
) -> (Recovered, ActionOutcome) {
    match action {
        // Slack has no idempotency key and no read of "the message this request would have
        // posted": without the ts nothing can be looked up, and the undo (which needs the ts)
        // will refuse rather than guess.
        "post_message" => unknown(
            pre,
            "Slack cannot say whether the message was posted (no ts was received)",
        ),
        "update_message" => {
            let Ok((channel, ts)) = channel_and_ts(pre) else {
                return unknown(pre, "the step record has no channel and ts");
            };
            if let Err(e) = c.identity().await {
                return unknown(pre, &e);
            }
            let text = |k: &str| pre.get(k).and_then(Value::as_str).unwrap_or_default();
            let what = format!("update_message in {channel}");
            match c.read_message(&channel, &ts, None, &what).await {
                Ok(Some(m)) => {
                    let now = m.get("text").and_then(Value::as_str).unwrap_or_default();
                    if now == text("after") {
                        (
                            Recovered::Done,
                            ActionOutcome::ok(
                                json!({"channel": channel.as_str(), "ts": ts.as_str(), "already_done": false}),
                                pre.clone(),
                            ),
                        )
                    } else if now == text("before") {
                        (
                            Recovered::NotDone,
                            ActionOutcome::ok(
                                json!({"not_done": format!("message {ts} in {channel} still has its old text")}),
                                json!({}),
                            ),
                        )
                    } else {
                        unknown(
                            pre,
                            &format!("message {ts} in {channel} holds neither text"),
                        )
                    }
                }
                Ok(None) => unknown(pre, &format!("message {ts} not found in {channel}")),
                Err(e) => unknown(pre, &e),
            }
        }
        other => unknown(pre, &format!("'{other}' is not a slack action")),
    }
}

fn unknown(pre: &Value, why: &str) -> (Recovered, ActionOutcome) {
    (
        Recovered::Unknown,
        ActionOutcome::ok(
            json!({"already_done": false, "unknown": why}),
            Value::Object(pre.as_object().cloned().unwrap_or_default()),
        ),
    )
}
