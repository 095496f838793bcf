//! The fake Slack's state and its answers, one Web API method at a time.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::fake_http::{Reply, Request};

/// Slack truncates message texts longer than this (characters).
const MAX_TEXT: usize = 40_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Public,
    Private,
    Im,
    Mpim,
}

#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub name: String,
    pub kind: Kind,
    pub archived: bool,
    pub member: bool,
}

/// A message as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMessage {
    pub ts: String,
    pub text: String,
    /// The person who posted it (`None` for the bot's own messages).
    pub user: Option<String>,
    pub bot_id: Option<String>,
    pub thread_ts: Option<String>,
    pub reply_count: u32,
    /// Who last edited it and when (`edited.user`, `edited.ts`).
    pub edited: Option<(String, String)>,
    /// A parent deleted while it had replies: Slack keeps a tombstone.
    pub tombstone: bool,
    /// `blocks`, `attachments` or `files` the message carries (rich content a text
    /// update would leave shown), as Slack renders them.
    pub rich: serde_json::Map<String, Value>,
}

impl FakeMessage {
    fn json(&self) -> Value {
        let mut m = json!({"type": "message", "ts": self.ts, "text": self.text});
        let o = m.as_object_mut();
        if let Some(o) = o {
            if let Some(u) = &self.user {
                o.insert("user".into(), json!(u));
            }
            if let Some(b) = &self.bot_id {
                o.insert("bot_id".into(), json!(b));
                o.insert("user".into(), json!(super::BOT_USER));
            }
            if let Some(t) = &self.thread_ts {
                o.insert("thread_ts".into(), json!(t));
            }
            if self.reply_count > 0 {
                o.insert("reply_count".into(), json!(self.reply_count));
            }
            if let Some((user, ts)) = &self.edited {
                o.insert("edited".into(), json!({"user": user, "ts": ts}));
            }
            if self.tombstone {
                o.insert("subtype".into(), json!("tombstone"));
            }
            for (k, v) in &self.rich {
                o.insert(k.clone(), v.clone());
            }
        }
        m
    }
    fn is_top_level(&self) -> bool {
        self.thread_ts.as_ref().is_none_or(|t| *t == self.ts)
    }
}

pub(crate) struct State {
    pub team_id: String,
    pub required_token: Option<String>,
    pub conversations: BTreeMap<String, Conversation>,
    pub messages: BTreeMap<String, Vec<FakeMessage>>,
    pub clock: u64,
    pub injections: Vec<(String, Reply)>,
    pub requests: Vec<String>,
}

impl Default for State {
    fn default() -> Self {
        State {
            team_id: "T0000DEMO".into(),
            required_token: None,
            conversations: BTreeMap::new(),
            messages: BTreeMap::new(),
            clock: 0,
            injections: Vec::new(),
            requests: Vec::new(),
        }
    }
}

fn fail(code: &str) -> Reply {
    Reply::json(200, json!({"ok": false, "error": code}))
}

fn ok(mut body: Value) -> Reply {
    if let Some(o) = body.as_object_mut() {
        o.insert("ok".into(), json!(true));
    }
    Reply::json(200, body)
}

impl State {
    pub fn next_ts(&mut self) -> String {
        self.clock += 1;
        format!(
            "{}.{:06}",
            1_716_900_000 + self.clock,
            self.clock % 1_000_000
        )
    }

    pub fn find(&self, channel: &str, ts: &str) -> Option<&FakeMessage> {
        self.messages.get(channel)?.iter().find(|m| m.ts == ts)
    }

    pub fn find_mut(&mut self, channel: &str, ts: &str) -> Option<&mut FakeMessage> {
        self.messages
            .get_mut(channel)?
            .iter_mut()
            .find(|m| m.ts == ts)
    }

    /// Adds a message (a person's when `user` is set, else the bot's); a reply raises its
    /// parent's `reply_count`.
    pub fn add_message(
        &mut self,
        channel: &str,
        user: Option<&str>,
        text: &str,
        thread_ts: Option<&str>,
    ) -> String {
        let ts = self.next_ts();
        if let Some(parent) = thread_ts.and_then(|t| self.find_mut(channel, t)) {
            parent.reply_count += 1;
            parent.thread_ts = Some(parent.ts.clone());
        }
        let text: String = text.chars().take(MAX_TEXT).collect();
        self.messages
            .entry(channel.to_string())
            .or_default()
            .push(FakeMessage {
                ts: ts.clone(),
                text,
                user: user.map(str::to_string),
                bot_id: user.is_none().then(|| super::BOT_ID.to_string()),
                thread_ts: thread_ts.map(str::to_string),
                reply_count: 0,
                edited: None,
                tombstone: false,
                rich: serde_json::Map::new(),
            });
        ts
    }

    pub fn edit(&mut self, channel: &str, ts: &str, text: &str, by: &str) -> bool {
        let edit_ts = self.next_ts();
        let Some(m) = self.find_mut(channel, ts) else {
            return false;
        };
        m.text = text.chars().take(MAX_TEXT).collect();
        m.edited = Some((by.to_string(), edit_ts));
        true
    }

    pub fn handle(&mut self, req: &Request) -> Reply {
        let method = req
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let reply = self.respond(&method, req);
        let token = if req.header("authorization").is_some() {
            "token"
        } else {
            "no token"
        };
        self.requests.push(format!(
            "{} /{method} {} ({token})",
            req.method, reply.status
        ));
        reply
    }

    fn respond(&mut self, method: &str, req: &Request) -> Reply {
        let Some(auth) = req.header("authorization") else {
            return fail("not_authed");
        };
        let token = auth.strip_prefix("Bearer ").unwrap_or_default();
        let good = match &self.required_token {
            Some(t) => token == t,
            None => !token.is_empty(),
        };
        if !good {
            return fail("invalid_auth");
        }
        if let Some(at) = self.injections.iter().position(|(m, _)| m == method) {
            return self.injections.remove(at).1;
        }
        let params = match params(req) {
            Ok(p) => p,
            Err(code) => return fail(code),
        };
        let p = |k: &str| {
            params
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match method {
            "auth.test" => ok(json!({
                "url": "https://fake.slack.com/", "team": "Fake", "user": "enact-bot",
                "team_id": self.team_id, "user_id": super::BOT_USER, "bot_id": super::BOT_ID,
            })),
            "chat.postMessage" => {
                let channel = p("channel");
                if let Err(code) = self.writable(&channel) {
                    return fail(code);
                }
                let text = p("text");
                if text.is_empty() {
                    return fail("no_text");
                }
                let thread = params.get("thread_ts").and_then(Value::as_str);
                if let Some(t) = thread
                    && self.find(&channel, t).is_none()
                {
                    return fail("thread_not_found");
                }
                let ts = self.add_message(&channel, None, &text, thread);
                let message = self.find(&channel, &ts).map(FakeMessage::json);
                ok(json!({"channel": channel, "ts": ts, "message": message}))
            }
            "chat.update" => {
                let (channel, ts, text) = (p("channel"), p("ts"), p("text"));
                if let Err(code) = self.writable(&channel) {
                    return fail(code);
                }
                match self.find(&channel, &ts) {
                    None => return fail("message_not_found"),
                    Some(m) if m.bot_id.is_none() || m.tombstone => {
                        return fail("cant_update_message");
                    }
                    Some(_) => {}
                }
                if text.is_empty() {
                    return fail("no_text");
                }
                self.edit(&channel, &ts, &text, super::BOT_USER);
                let message = self.find(&channel, &ts).map(FakeMessage::json);
                let text = message.as_ref().and_then(|m| m.get("text")).cloned();
                ok(json!({"channel": channel, "ts": ts, "text": text, "message": message}))
            }
            "chat.delete" => {
                let (channel, ts) = (p("channel"), p("ts"));
                if let Err(code) = self.writable(&channel) {
                    return fail(code);
                }
                let Some(m) = self.find(&channel, &ts).cloned() else {
                    return fail("message_not_found");
                };
                if m.bot_id.is_none() || m.tombstone {
                    return fail("cant_delete_message");
                }
                self.delete(&channel, &m);
                ok(json!({"channel": channel, "ts": ts}))
            }
            "conversations.replies" => {
                let (channel, ts) = (p("channel"), p("ts"));
                if !self.conversations.contains_key(&channel) {
                    return fail("channel_not_found");
                }
                let Some(m) = self.find(&channel, &ts).cloned() else {
                    return fail("thread_not_found");
                };
                let root = m.thread_ts.clone().unwrap_or(m.ts.clone());
                let (oldest, latest) = (p("oldest"), p("latest"));
                let inclusive = p("inclusive") == "true" || p("inclusive") == "1";
                let within = |t: &str| {
                    let lo = oldest.is_empty()
                        || t > oldest.as_str()
                        || (inclusive && t == oldest.as_str());
                    let hi = latest.is_empty()
                        || t < latest.as_str()
                        || (inclusive && t == latest.as_str());
                    lo && hi
                };
                let messages: Vec<Value> = self
                    .messages
                    .get(&channel)
                    .into_iter()
                    .flatten()
                    .filter(|x| x.ts == root || x.thread_ts.as_deref() == Some(root.as_str()))
                    .filter(|x| within(&x.ts))
                    .map(FakeMessage::json)
                    .collect();
                ok(json!({"messages": messages, "has_more": false}))
            }
            "conversations.info" => {
                let channel = p("channel");
                let Some(c) = self.conversations.get(&channel) else {
                    return fail("channel_not_found");
                };
                ok(json!({"channel": {
                    "id": channel, "name": c.name,
                    "is_channel": c.kind == Kind::Public, "is_group": c.kind == Kind::Private,
                    "is_im": c.kind == Kind::Im, "is_mpim": c.kind == Kind::Mpim,
                    "is_private": c.kind != Kind::Public,
                    "is_archived": c.archived, "is_member": c.member,
                }}))
            }
            _ => fail("unknown_method"),
        }
    }

    fn writable(&self, channel: &str) -> Result<(), &'static str> {
        match self.conversations.get(channel) {
            None => Err("channel_not_found"),
            Some(c) if c.archived => Err("is_archived"),
            Some(c) if !c.member => Err("not_in_channel"),
            Some(_) => Ok(()),
        }
    }

    fn delete(&mut self, channel: &str, m: &FakeMessage) {
        let Some(list) = self.messages.get_mut(channel) else {
            return;
        };
        if m.is_top_level() && m.reply_count > 0 {
            if let Some(x) = list.iter_mut().find(|x| x.ts == m.ts) {
                x.tombstone = true;
                x.text = "This message was deleted.".into();
            }
            return;
        }
        list.retain(|x| x.ts != m.ts);
        if let Some(parent) = m.thread_ts.as_deref().filter(|t| *t != m.ts)
            && let Some(p) = list.iter_mut().find(|x| x.ts == parent)
        {
            p.reply_count = p.reply_count.saturating_sub(1);
        }
    }
}

/// The method's arguments: the query, plus a JSON or form body.
fn params(req: &Request) -> Result<Map<String, Value>, &'static str> {
    let mut out = Map::new();
    let mut form = |text: &str| {
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .to_string()
            };
            out.insert(decode(k), Value::String(decode(v)));
        }
    };
    form(req.query());
    let content_type = req.header("content-type").unwrap_or_default();
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(m)) => out.extend(m),
            _ => return Err("invalid_json"),
        }
    } else if !req.body.is_empty() {
        form(&String::from_utf8_lossy(&req.body));
    }
    Ok(out)
}
