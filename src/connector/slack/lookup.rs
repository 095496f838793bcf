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
            Effect::Read("read"),
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
        "post_message" => recover_post(c, pre).await,
        "update_message" => {
            let Ok((channel, ts)) = channel_and_ts(pre) else {
                return unknown(pre, "the step record has no channel and ts");
            };
            if let Err(e) = c.identity().await {
                return unknown(pre, &e);
            }
            let text = |k: &str| pre.get(k).and_then(Value::as_str).unwrap_or_default();
            let what = format!("update_message in {channel}");
            match c
                .read_message(&channel, &ts, None, &what, Effect::Read("read"))
                .await
            {
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

/// A top-level post cannot be found again: Slack has no idempotency key and (among the
/// methods this connector uses) no read of "the message this request would have posted", so
/// without the ts it stays unknown and its undo refuses rather than guess. A thread reply can:
/// the thread's replies are read, and exactly one by this bot with the planned text is it.
async fn recover_post(c: &SlackConnector, pre: &Value) -> (Recovered, ActionOutcome) {
    let text = pre.get("text").and_then(Value::as_str).unwrap_or_default();
    let field = |k: &str| pre.get(k).and_then(Value::as_str).unwrap_or_default();
    let (Ok(channel), Ok(thread)) = (
        Channel::parse(field("channel")),
        Ts::parse(field("thread_ts")),
    ) else {
        return unknown(
            pre,
            "Slack cannot say whether the message was posted (no ts was received)",
        );
    };
    let me = match c.identity().await {
        Ok(me) => me.clone(),
        Err(e) => return unknown(pre, &e),
    };
    let path = format!(
        "/conversations.replies?channel={}&ts={}&limit=1000",
        query_encode(channel.as_str()),
        query_encode(thread.as_str()),
    );
    let what = format!("post_message to {channel}");
    let answer = match c
        .call(Request::get(path), &what, Effect::Read("read"))
        .await
    {
        Ok(a) => a,
        Err((_, e)) => return unknown(pre, &e),
    };
    if answer.get("has_more") == Some(&Value::Bool(true)) {
        return unknown(
            pre,
            &format!("thread {thread} in {channel} has too many replies to search"),
        );
    }
    let mine: Vec<&Value> = answer
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("ts").and_then(Value::as_str) != Some(thread.as_str()))
        .filter(|m| m.get("bot_id").and_then(Value::as_str) == Some(me.bot_id.as_str()))
        .filter(|m| m.get("text").and_then(Value::as_str) == Some(text))
        .collect();
    match mine.as_slice() {
        [] => (
            Recovered::NotDone,
            ActionOutcome::ok(
                json!({"not_done": format!("no reply of this bot with the planned text in thread {thread} of {channel}")}),
                json!({}),
            ),
        ),
        [m] => {
            let ts = m.get("ts").and_then(Value::as_str).unwrap_or_default();
            (
                Recovered::Done,
                ActionOutcome::ok(
                    json!({"channel": channel.as_str(), "ts": ts, "thread_ts": thread.as_str(), "already_done": false}),
                    json!({"channel": channel.as_str(), "ts": ts, "thread_ts": thread.as_str(), "text": text}),
                ),
            )
        }
        _ => unknown(
            pre,
            &format!(
                "several replies of this bot with the planned text in thread {thread} of {channel}"
            ),
        ),
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
