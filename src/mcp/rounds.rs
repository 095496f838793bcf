//! Multi-round-trip tool calls (MCP 2026-07-28 `input_required`): a tool handler may answer
//! "I need more from the client first" instead of a result. The client then fulfils the input
//! requests and calls again with the same arguments, its `inputResponses` and the echoed
//! `requestState`; the handler sees those in the next call's [`Round`].
//!
//! The handler speaks only these types; [`super::server`] turns an [`Outcome`] into rmcp's
//! `CallToolResponse`. `requestState` comes back from the client verbatim, so it is
//! untrusted: a handler that keeps meaning in it must authenticate it (the approvals of SPEC
//! §9 sign theirs).

use serde_json::{Map, Value};

use super::tools::Answer;
use crate::engine::Cancel;
use crate::kernel::context::Actor;

/// What the client sent with this call beyond the tool's arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Round {
    /// The `requestState` of an earlier `input_required` answer, echoed back; `None` on the
    /// first round.
    pub request_state: Option<String>,
    /// The client's answers to the earlier input requests, by the keys the handler gave them.
    pub input_responses: Map<String, Value>,
}

impl Round {
    /// Whether this is a retry after an `input_required` answer.
    pub fn is_retry(&self) -> bool {
        self.request_state.is_some() || !self.input_responses.is_empty()
    }
}

/// One `tools/call` as a handler sees it.
#[derive(Debug, Clone, Default)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Map<String, Value>,
    /// Numbers in the arguments that a double cannot hold exactly (found by the framing).
    pub inexact: Vec<String>,
    /// Set when the client cancels the call.
    pub cancel: Cancel,
    pub round: Round,
    /// Who calls: an HTTP client's own actor (SPEC §10); `None` acts as the config's `[actor]`.
    pub actor: Option<Actor>,
    /// The client's session: what it can be asked (approvals, SPEC §9).
    pub client: super::approval::ClientSide,
}

/// A handler's answer to one round.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The final result.
    Complete(Answer),
    /// Ask the client first. Only a 2026-07-28 session can carry this; in older sessions it
    /// becomes a JSON-RPC error (SPEC §9 uses `elicitation/create` there instead).
    InputRequired(InputRequired),
}

/// An `input_required` answer: at least one of its fields is non-empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRequired {
    /// Requests for the client to fulfil (each an `elicitation/create`,
    /// `sampling/createMessage` or `roots/list` request as JSON), by a key of the handler's
    /// choosing; the client answers under the same keys.
    pub input_requests: Map<String, Value>,
    /// Opaque state the client echoes back on the next round.
    pub request_state: Option<String>,
}

impl From<Answer> for Outcome {
    fn from(answer: Answer) -> Outcome {
        Outcome::Complete(answer)
    }
}
