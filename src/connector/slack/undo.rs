//! Undo of recorded Slack actions (SPEC-hubspot-slack §6). Each first reads the message back
//! and checks it still holds what the run left; if not, it fails naming what changed (never
//! the text, which the agent would see) and sends nothing. Neither `chat.delete` nor
//! `chat.update` is conditional: the check and the write are two requests.

use serde_json::{Value, json};

use super::lookup::{channel_and_ts, is_tombstone};
use super::{Effect, SlackConnector};
use crate::connector::ActionOutcome;
use crate::connector::http::Request;
use crate::kernel::slack::Ts;

pub(super) async fn run(c: &SlackConnector, action: &str, data: &Value) -> ActionOutcome {
    let (channel, ts) = match channel_and_ts(data) {
        Ok(x) => x,
        Err(e) => return ActionOutcome::failed(e),
    };
    let me = match c.identity().await {
        Ok(me) => me.clone(),
        Err(e) => return ActionOutcome::failed(e),
    };
    let text = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
    let out = |extra: Value| {
        let mut o = json!({"channel": channel.as_str(), "ts": ts.as_str()});
        if let (Some(o), Value::Object(e)) = (o.as_object_mut(), extra) {
            o.extend(e);
        }
        o
    };
    match action {
        "post_message" => {
            let what = format!("undo post_message in {channel}");
            let thread = data
                .get("thread_ts")
                .and_then(Value::as_str)
                .and_then(|t| Ts::parse(t).ok());
            let message = match c
                .read_message(
                    &channel,
                    &ts,
                    thread.as_ref(),
                    &what,
                    Effect::Read("deleted"),
                )
                .await
            {
                Ok(Some(m)) if !is_tombstone(&m) => m,
                Ok(_) => return deleted(out(json!({}))),
                Err(e) => return ActionOutcome::failed(e),
            };
            let now = message
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let edited_by = message.pointer("/edited/user").and_then(Value::as_str);
            if now != text("text") || edited_by.is_some_and(|u| u != me.user_id) {
                return ActionOutcome::failed(format!(
                    "message {ts} in {channel} was edited since the run — not deleted"
                ));
            }
            let replies = message
                .get("reply_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if replies > 0 {
                let s = if replies == 1 { "reply" } else { "replies" };
                return ActionOutcome::failed(format!(
                    "message {ts} in {channel} has {replies} thread {s} — not deleted"
                ));
            }
            let body = json!({"channel": channel.as_str(), "ts": ts.as_str()});
            match c
                .call(
                    Request::post_json("/chat.delete", body),
                    &what,
                    Effect::Write("deleted"),
                )
                .await
            {
                Ok(_) => ActionOutcome::ok(out(json!({"deleted": true})), json!({})),
                Err((Some(code), _)) if code == "message_not_found" => deleted(out(json!({}))),
                Err((_, e)) => ActionOutcome::failed(e),
            }
        }
        "update_message" => {
            let what = format!("undo update_message in {channel}");
            let read = Effect::Read("restored");
            let message = match c.read_message(&channel, &ts, None, &what, read).await {
                Ok(Some(m)) if !is_tombstone(&m) => m,
                Ok(_) => {
                    return ActionOutcome::failed(format!(
                        "message {ts} not found in {channel} — not restored"
                    ));
                }
                Err(e) => return ActionOutcome::failed(e),
            };
            let now = message
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if now == text("before") {
                let mut o = out(json!({}));
                o["already_done"] = json!("restored");
                return ActionOutcome::ok(o, json!({}));
            }
            if now != text("after") {
                return ActionOutcome::failed(format!(
                    "message {ts} in {channel} was edited since the run — not restored"
                ));
            }
            let body = json!({"channel": channel.as_str(), "ts": ts.as_str(), "text": text("before"),
                "link_names": false, "parse": "none"});
            match c
                .call(
                    Request::post_json("/chat.update", body),
                    &what,
                    Effect::Write("updated"),
                )
                .await
            {
                Ok(_) => ActionOutcome::ok(out(json!({"restored": true})), json!({})),
                Err((_, e)) => ActionOutcome::failed(e),
            }
        }
        other => ActionOutcome::failed(format!(
            "'{other}' is not a slack action that can be undone"
        )),
    }
}

fn deleted(mut output: Value) -> ActionOutcome {
    output["already_done"] = json!("deleted");
    ActionOutcome::ok(output, json!({}))
}
