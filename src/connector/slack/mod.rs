//! The Slack connector (SPEC-hubspot-slack §7.5): `post_message` and `update_message` over the
//! Slack Web API with a bot token, and their guarded undo (`chat.delete`, the old text back).
//!
//! - **Identity first.** The first action, undo or lookup of a process asks `auth.test` who the
//!   token belongs to; a workspace other than the configured `team_id` fails every call with
//!   nothing sent. A successful check (and the bot's `user_id`/`bot_id`) is kept for the
//!   process.
//! - **Agent strings stay in their place.** The channel (a conversation ID inside the system's
//!   `channels`) and timestamps are checked again here before they reach a query string; the
//!   text only ever travels inside a JSON body, with `link_names: false` and `parse: none`.
//! - **One request per write**, never retried (see [`crate::connector::http`]); the step record
//!   is written before it is sent.

mod api;
mod lookup;
mod undo;

use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use super::http::{JsonClient, Request, query_encode};
use super::{ActionOutcome, Recovered, StepLog, recover_without_asking};
use crate::kernel::receipt::ActionRecord;
use crate::kernel::slack::{Channel, Ts, channel_in_scope};
use crate::kernel::typed::SlackAction;
use crate::secret::Secret;
use api::Effect;

/// Who the token is, as `auth.test` answered.
#[derive(Debug, Clone)]
struct Identity {
    user_id: String,
    bot_id: String,
}

/// A Slack system: one API root, one bot token, one workspace, the channels it may post in.
pub struct SlackConnector {
    client: JsonClient,
    token_env: String,
    team_id: String,
    channels: Vec<String>,
    identity: OnceCell<Identity>,
}

impl SlackConnector {
    /// Builds the connector. Contacts nothing.
    pub fn new(
        base_url: &str,
        token_env: &str,
        token: &Secret,
        team_id: &str,
        channels: &[String],
    ) -> Result<Self, String> {
        Ok(SlackConnector {
            client: JsonClient::new(base_url, token)?,
            token_env: token_env.to_string(),
            team_id: team_id.to_string(),
            channels: channels.to_vec(),
            identity: OnceCell::new(),
        })
    }

    /// `{"type": "slack", "base_url": …, "team_id": …}` (SPEC-hubspot-slack §5.1).
    pub fn target(&self) -> Value {
        json!({"type": "slack", "base_url": self.client.base_url(), "team_id": self.team_id})
    }

    /// `auth.test` on first use; the workspace must be the configured one.
    async fn identity(&self) -> Result<&Identity, String> {
        self.identity
            .get_or_try_init(|| async {
                let body = self
                    .call(Request::get("/auth.test"), "auth.test", Effect::Read("read"))
                    .await
                    .map_err(|(_, e)| {
                        if e.ends_with("— nothing sent") {
                            e
                        } else {
                            format!("{e} — nothing sent")
                        }
                    })?;
                let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
                if text("team_id") != self.team_id {
                    return Err(format!(
                        "the token in {} belongs to Slack workspace {}, not team_id {} — nothing sent",
                        self.token_env,
                        text("team_id"),
                        self.team_id
                    ));
                }
                Ok(Identity {
                    user_id: text("user_id").to_string(),
                    bot_id: text("bot_id").to_string(),
                })
            })
            .await
    }

    async fn call(
        &self,
        request: Request,
        what: &str,
        effect: Effect,
    ) -> Result<Value, (Option<String>, String)> {
        api::call(&self.client, &self.token_env, &request, what, effect).await
    }

    /// Checks the channel against this system's `channels` once more (a direct caller may not
    /// have gone through the plan builder).
    fn scoped(&self, channel: &Channel) -> Result<(), String> {
        if channel_in_scope(&self.channels, channel.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "channel '{channel}' is not in the channels of this system"
            ))
        }
    }

    /// Runs one typed action; its step record goes through `log` just before the write.
    pub async fn run(&self, action: &SlackAction, log: &mut dyn StepLog) -> ActionOutcome {
        let name = action.name();
        let channel = action.channel();
        if let Err(e) = self.scoped(channel) {
            return ActionOutcome::failed(format!("{name}: {e}"));
        }
        let me = match self.identity().await {
            Ok(me) => me.clone(),
            Err(e) => return ActionOutcome::failed(e),
        };
        match action {
            SlackAction::PostMessage {
                channel,
                text,
                thread_ts,
            } => self.post(channel, text, thread_ts.as_ref(), log).await,
            SlackAction::UpdateMessage { channel, ts, text } => {
                self.update(&me, channel, ts, text, log).await
            }
        }
    }

    async fn post(
        &self,
        channel: &Channel,
        text: &str,
        thread_ts: Option<&Ts>,
        log: &mut dyn StepLog,
    ) -> ActionOutcome {
        let thread = thread_ts.map(Ts::as_str);
        if let Err(e) =
            log.before(json!({"channel": channel.as_str(), "thread_ts": thread, "text": text}))
        {
            return ActionOutcome::failed(e);
        }
        let mut body = json!({
            "channel": channel.as_str(), "text": text, "link_names": false, "parse": "none",
            "unfurl_links": false, "unfurl_media": false,
        });
        if let Some(t) = thread {
            body["thread_ts"] = json!(t);
        }
        let what = format!("post_message to {channel}");
        let answer = match self
            .call(
                Request::post_json("/chat.postMessage", body),
                &what,
                Effect::Write("posted"),
            )
            .await
        {
            Ok(a) => a,
            Err((_, e)) => return ActionOutcome::failed(e),
        };
        let ts = answer.get("ts").and_then(Value::as_str).unwrap_or_default();
        if Ts::parse(ts).is_err() {
            return ActionOutcome::failed(format!(
                "{what}: unexpected ts '{ts}' from Slack — the message may or may not have been posted"
            ));
        }
        let stored = answer
            .pointer("/message/text")
            .and_then(Value::as_str)
            .unwrap_or(text);
        ActionOutcome::ok(
            json!({"channel": channel.as_str(), "ts": ts, "thread_ts": thread, "already_done": false}),
            json!({"channel": channel.as_str(), "ts": ts, "thread_ts": thread, "text": stored}),
        )
    }

    async fn update(
        &self,
        me: &Identity,
        channel: &Channel,
        ts: &Ts,
        text: &str,
        log: &mut dyn StepLog,
    ) -> ActionOutcome {
        let what = format!("update_message in {channel}");
        let read = Effect::Read("updated");
        let message = match self.read_message(channel, ts, None, &what, read).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return ActionOutcome::failed(format!("message {ts} not found in {channel}"));
            }
            Err(e) => return ActionOutcome::failed(e),
        };
        let plain = ["blocks", "attachments", "files"].iter().all(|k| {
            message
                .get(*k)
                .is_none_or(|v| v.as_array().is_some_and(Vec::is_empty))
        });
        let by_me = message.get("bot_id").and_then(Value::as_str) == Some(me.bot_id.as_str());
        if !plain || !by_me || lookup::is_tombstone(&message) {
            return ActionOutcome::failed(
                "update_message only edits plain-text messages this bot posted",
            );
        }
        let before = message
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let out = json!({"channel": channel.as_str(), "ts": ts.as_str()});
        if before == text {
            if let Err(e) = log.before(
                json!({"already_done": "updated", "channel": channel.as_str(), "ts": ts.as_str()}),
            ) {
                return ActionOutcome::failed(e);
            }
            return ActionOutcome::already_done(
                out.as_object().cloned().unwrap_or_default(),
                "updated",
            );
        }
        let pre = json!({"channel": channel.as_str(), "ts": ts.as_str(), "before": before, "after": text});
        if let Err(e) = log.before(pre) {
            return ActionOutcome::failed(e);
        }
        let body = json!({"channel": channel.as_str(), "ts": ts.as_str(), "text": text, "link_names": false, "parse": "none"});
        let answer = match self
            .call(
                Request::post_json("/chat.update", body),
                &what,
                Effect::Write("updated"),
            )
            .await
        {
            Ok(a) => a,
            Err((_, e)) => return ActionOutcome::failed(e),
        };
        let after = answer.get("text").and_then(Value::as_str).unwrap_or(text);
        ActionOutcome::ok(
            json!({"channel": channel.as_str(), "ts": ts.as_str(), "already_done": false}),
            json!({"channel": channel.as_str(), "ts": ts.as_str(), "before": before, "after": after}),
        )
    }

    /// One message by its ts (a top-level message or a thread reply) through
    /// `conversations.replies`; `None` when Slack says there is no such message. A failed
    /// read of a reply is retried with the recorded `thread_ts` (SPEC settled choice 4).
    async fn read_message(
        &self,
        channel: &Channel,
        ts: &Ts,
        thread_ts: Option<&Ts>,
        what: &str,
        effect: Effect,
    ) -> Result<Option<Value>, String> {
        let first = self.replies(channel, ts, ts, what, effect).await;
        let answer = match (first, thread_ts) {
            (Ok(a), _) => a,
            (Err((code, _)), Some(thread)) if code.as_deref() != Some("ratelimited") => {
                match self.replies(channel, thread, ts, what, effect).await {
                    Ok(a) => a,
                    Err((Some(code), _)) if code == "thread_not_found" => return Ok(None),
                    Err((_, e)) => return Err(e),
                }
            }
            (Err((Some(code), _)), None) if code == "thread_not_found" => return Ok(None),
            (Err((_, e)), _) => return Err(e),
        };
        Ok(answer
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|m| m.get("ts").and_then(Value::as_str) == Some(ts.as_str()))
            .cloned())
    }

    async fn replies(
        &self,
        channel: &Channel,
        thread: &Ts,
        ts: &Ts,
        what: &str,
        effect: Effect,
    ) -> Result<Value, (Option<String>, String)> {
        let path = format!(
            "/conversations.replies?channel={}&ts={}&oldest={}&latest={}&inclusive=true",
            query_encode(channel.as_str()),
            query_encode(thread.as_str()),
            query_encode(ts.as_str()),
            query_encode(ts.as_str()),
        );
        self.call(Request::get(path), what, effect).await
    }

    /// Whether a conversation is a direct message or a group DM (`block_dms`): `D…` without a
    /// lookup, anything else through `conversations.info`.
    pub async fn is_dm(&self, channel: &str) -> Result<bool, String> {
        lookup::is_dm(self, channel).await
    }

    /// Whether an interrupted action happened (SPEC §5.5).
    pub async fn recover(
        &self,
        action: &str,
        _args: &Map<String, Value>,
        pre: &Value,
    ) -> (Recovered, ActionOutcome) {
        if let Some(found) = recover_without_asking(false, pre) {
            return found;
        }
        lookup::recover(self, action, pre).await
    }

    /// Reverses one recorded action, with the guards of SPEC-hubspot-slack §6.
    pub async fn undo(&self, record: &ActionRecord) -> ActionOutcome {
        undo::run(self, &record.action, &record.rollback_data).await
    }
}
