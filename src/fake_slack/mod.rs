//! An in-process fake Slack Web API (feature `fake-slack`) for the tests and `enact demo`: a
//! stateful server on `127.0.0.1` (random port) answering `auth.test`, `chat.postMessage`,
//! `chat.update`, `chat.delete`, `conversations.replies` and `conversations.info` with Slack's
//! shapes — every API error is HTTP 200 `{"ok": false, "error": …}`, any other method is
//! `unknown_method` (SPEC-hubspot-slack §7.5).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use enact::fake_slack::{FakeSlack, Kind};
//! let fake = FakeSlack::start().await?;              // serves until dropped
//! fake.add_channel("C0123ABCD", "general", Kind::Public);
//! // point a `type = "slack"` system at fake.base_url(), team_id "T0000DEMO"
//! let ts = fake.post_as_person("C0123ABCD", "U0PERSON1", "hello");
//! assert!(fake.message("C0123ABCD", &ts).is_some());
//! # Ok(()) }
//! ```

mod state;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};

use crate::fake_http::{self, Handler, Reply};
use state::{Conversation, State};
pub use state::{FakeMessage, Kind};

/// The fake's bot user and bot id (what `auth.test` answers).
pub const BOT_USER: &str = "U0000BOT";
pub const BOT_ID: &str = "B0000BOT";

/// A running fake Slack. Dropping it stops the server.
pub struct FakeSlack {
    server: fake_http::Running<State>,
}

struct Slack(Arc<Mutex<State>>);

impl Handler for Slack {
    fn handle(&self, request: &fake_http::Request) -> Reply {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .handle(request)
    }
}

/// A canned answer for the next call of a method (see [`FakeSlack::inject`]).
pub struct Injected(Reply);

impl Injected {
    /// HTTP 429 with `{"ok": false, "error": "ratelimited"}` and, when given, `Retry-After`.
    pub fn rate_limited(retry_after: Option<u64>) -> Injected {
        let reply = Reply::json(429, json!({"ok": false, "error": "ratelimited"}));
        Injected(match retry_after {
            Some(s) => reply.with_header("retry-after", &s.to_string()),
            None => reply,
        })
    }
    /// An HTTP error status (5xx) with a plain body.
    pub fn status(status: u16) -> Injected {
        Injected(Reply::json(
            status,
            json!({"ok": false, "error": "fatal_error"}),
        ))
    }
    /// `ok: false` with this error code (HTTP 200), e.g. `missing_scope` with `needed`.
    pub fn error(code: &str, needed: Option<&str>) -> Injected {
        let mut body = json!({"ok": false, "error": code});
        if let Some(n) = needed {
            body["needed"] = json!(n);
            body["provided"] = json!("chat:write");
        }
        Injected(Reply::json(200, body))
    }
    /// Reads the request and closes the connection without answering.
    pub fn disconnect() -> Injected {
        Injected(Reply::disconnect())
    }
}

impl FakeSlack {
    /// Starts the server on `127.0.0.1`, a free port, in the current Tokio runtime.
    pub async fn start() -> std::io::Result<FakeSlack> {
        let server = fake_http::Running::start("/api", State::default(), |s, _| Slack(s)).await?;
        Ok(FakeSlack { server })
    }

    /// `http://127.0.0.1:<port>/api`: the `base_url` for a Slack system.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.server.lock()
    }

    /// The workspace `auth.test` reports (default `T0000DEMO`).
    pub fn set_team_id(&self, team_id: &str) {
        self.lock().team_id = team_id.to_string();
    }

    /// From now on only `Authorization: Bearer <token>` is accepted (`invalid_auth` otherwise).
    pub fn require_token(&self, token: &str) {
        self.lock().required_token = Some(token.to_string());
    }

    /// Adds a conversation the bot is a member of.
    pub fn add_channel(&self, id: &str, name: &str, kind: Kind) {
        self.lock().conversations.insert(
            id.to_string(),
            Conversation {
                name: name.to_string(),
                kind,
                archived: false,
                member: true,
            },
        );
    }

    /// Whether the bot is in the conversation (`not_in_channel` otherwise).
    pub fn set_member(&self, id: &str, member: bool) {
        if let Some(c) = self.lock().conversations.get_mut(id) {
            c.member = member;
        }
    }

    pub fn archive(&self, id: &str) {
        if let Some(c) = self.lock().conversations.get_mut(id) {
            c.archived = true;
        }
    }

    /// A person posts a message; returns its ts.
    pub fn post_as_person(&self, channel: &str, user: &str, text: &str) -> String {
        self.lock().add_message(channel, Some(user), text, None)
    }

    /// A person replies in a thread; returns the reply's ts.
    pub fn reply_as_person(
        &self,
        channel: &str,
        thread_ts: &str,
        user: &str,
        text: &str,
    ) -> String {
        self.lock()
            .add_message(channel, Some(user), text, Some(thread_ts))
    }

    /// A person (an admin) edits a message; false if there is no such message.
    pub fn edit_as_person(&self, channel: &str, ts: &str, user: &str, text: &str) -> bool {
        self.lock().edit(channel, ts, text, user)
    }

    /// Rich content arrives on a message (`key` is `blocks`, `attachments` or `files`), as
    /// when the bot's token posted it from another tool, or a link unfurled into an
    /// attachment; false if there is no such message.
    pub fn attach(&self, channel: &str, ts: &str, key: &str, value: Value) -> bool {
        match self.lock().find_mut(channel, ts) {
            Some(m) => {
                m.rich.insert(key.to_string(), value);
                true
            }
            None => false,
        }
    }

    /// One message (a thread reply too), for assertions.
    pub fn message(&self, channel: &str, ts: &str) -> Option<FakeMessage> {
        self.lock().find(channel, ts).cloned()
    }

    /// Every message of a conversation, oldest first.
    pub fn messages(&self, channel: &str) -> Vec<FakeMessage> {
        self.lock()
            .messages
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }

    /// The next call of `method` (e.g. `chat.postMessage`) gets this answer.
    pub fn inject(&self, method: &str, answer: Injected) {
        self.lock().injections.push((method.to_string(), answer.0));
    }

    /// `POST /chat.postMessage 200 (token)` per request: whether a token was sent, never its
    /// value.
    pub fn request_lines(&self) -> Vec<String> {
        self.lock().requests.clone()
    }
}
