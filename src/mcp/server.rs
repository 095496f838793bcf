//! The rmcp `ServerHandler`, written by hand because the tool list comes from the config.
//! It only translates: MCP requests → [`super::tools`] / [`super::resources`] → MCP results.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};

use super::approval::ClientSide;
use super::framing::Requests;
use super::resources::{self, ReadError};
use super::rounds::{Outcome, Round, ToolCall};
use super::tools::{self, Answer, Unroutable};
use crate::engine::Engine;

/// The protocol versions served (SPEC §3): 2026-07-28 (`server/discover`, the version in each
/// request's `_meta`) and every revision with an `initialize` handshake back to 2024-11-05.
/// `initialize` gets the version it asks for, or 2025-11-25 (the newest with a handshake,
/// named in [`ServerHandler::get_info`]).
const VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2026_07_28,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2024_11_05,
];

#[derive(Clone)]
pub struct EnactServer {
    engine: Arc<Engine>,
    requests: Requests,
    info: ServerConfig,
    in_flight: InFlight,
}

/// Tool calls still running. When stdin closes, rmcp waits only a few seconds for handlers
/// before it returns; `serve` then waits here, so a run that has started always finishes and
/// writes its receipt (its answer can no longer be delivered, but nothing is half-done).
#[derive(Clone, Default)]
pub struct InFlight(Arc<(std::sync::atomic::AtomicUsize, tokio::sync::Notify)>);

/// Held while one call runs.
struct Running(InFlight);

impl InFlight {
    fn start(&self) -> Running {
        self.0.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running(self.clone())
    }

    pub fn count(&self) -> usize {
        self.0.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Returns once no call is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        (self.0)
            .0
            .0
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        (self.0).0.1.notify_waiters();
    }
}

impl EnactServer {
    pub fn new(
        engine: Arc<Engine>,
        requests: Requests,
        in_flight: InFlight,
    ) -> Result<EnactServer, String> {
        let info = from_json(json!({
            "protocolVersion": ProtocolVersion::V_2025_11_25,
            "capabilities": {"tools": {"listChanged": false}, "resources": {"listChanged": false}},
            "serverInfo": {"name": "enact", "version": env!("CARGO_PKG_VERSION")},
            "instructions": "Enact: every tool is a vetted workflow behind a deterministic policy gate. Each call leaves a signed receipt; use enact_preview to see what a call would do and enact_list_receipts / enact_get_receipt to read receipts.",
        }))
        .map_err(|e| e.message.to_string())?;
        Ok(EnactServer {
            engine,
            requests,
            info,
            in_flight,
        })
    }
}

/// Builds an rmcp type from its JSON wire form (its structs are `#[non_exhaustive]`, and the
/// wire form is what the SPEC describes anyway).
fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ErrorData> {
    serde_json::from_value(value)
        .map_err(|e| ErrorData::internal_error(format!("cannot build a response: {e}"), None))
}

/// The call a `tools/call` request makes, with what the framing knows of it (its inexact
/// numbers and its cancellation flag).
pub(crate) fn tool_call(
    request: CallToolRequestParams,
    context: &RequestContext<RoleServer>,
    requests: &Requests,
) -> ToolCall {
    let (mut inexact, cancel) = requests.take_call(&context.id);
    // Over HTTP, what the framing knows comes with the request (see `super::http`).
    let http = http_caller(context);
    if let Some(caller) = http
        && inexact.is_empty()
    {
        inexact = caller.inexact.clone();
    }
    let capabilities = context.client_capabilities();
    let elicitation = capabilities
        .as_ref()
        .and_then(|c| c.elicitation.as_ref())
        .is_some_and(|e| e.form.is_some() || e.url.is_none());
    let client = ClientSide {
        peer: Some(context.peer.clone()),
        modern: context
            .protocol_version()
            .is_some_and(|v| !v.has_initialize()),
        elicitation,
        name: context.client_info().map(|i| i.name).unwrap_or_default(),
        progress_token: context.meta.get_progress_token(),
    };
    ToolCall {
        name: request.name.into_owned(),
        arguments: request.arguments.unwrap_or_default(),
        inexact,
        cancel,
        client,
        actor: http.and_then(|c| c.actor.clone()),
        round: Round {
            request_state: request.request_state,
            input_responses: request
                .input_responses
                .map(|r| r.into_iter().collect())
                .unwrap_or_default(),
        },
    }
}

/// The HTTP caller of a request (`None` over stdio).
fn http_caller(context: &RequestContext<RoleServer>) -> Option<&super::http::Caller> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<super::http::Caller>())
}

/// Sets `cancel` when `ct` is cancelled, until the returned guard is dropped.
fn watch_cancel(
    ct: tokio_util::sync::CancellationToken,
    cancel: crate::engine::Cancel,
) -> tokio_util::sync::DropGuard {
    let done = tokio_util::sync::CancellationToken::new();
    let guard = done.clone().drop_guard();
    tokio::spawn(async move {
        tokio::select! {
            () = ct.cancelled() => cancel.cancel(),
            () = done.cancelled() => {}
        }
    });
    guard
}

/// A handler's [`Outcome`] as rmcp's response. `input_required` needs a 2026-07-28 session;
/// in an older one it is a JSON-RPC error.
pub(crate) fn respond(
    outcome: Outcome,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    match outcome {
        Outcome::Complete(answer) => Ok(CallToolResponse::Complete(to_result(answer))),
        Outcome::InputRequired(input) => {
            let modern = context
                .protocol_version()
                .is_some_and(|v| !v.has_initialize());
            if !modern {
                return Err(ErrorData::invalid_request(
                    "this call needs input from the client, which needs protocol version 2026-07-28",
                    None,
                ));
            }
            let mut result = json!({"resultType": "input_required"});
            if !input.input_requests.is_empty() {
                result["inputRequests"] = Value::Object(input.input_requests);
            }
            if let Some(state) = input.request_state {
                result["requestState"] = Value::String(state);
            }
            Ok(CallToolResponse::InputRequired(from_json(result)?))
        }
    }
}

/// A final result from its wire form, marked `resultType: "complete"` as 2026-07-28 wants
/// (rmcp drops the mark again for older sessions).
fn complete<T: serde::de::DeserializeOwned>(mut value: Value) -> Result<T, ErrorData> {
    if let Value::Object(object) = &mut value {
        object.insert("resultType".into(), json!("complete"));
    }
    from_json(value)
}

fn to_result(answer: Answer) -> CallToolResult {
    let mut content = vec![ContentBlock::text(answer.summary)];
    if let Some(s) = &answer.structured {
        content.push(ContentBlock::text(
            serde_json::to_string_pretty(s).unwrap_or_default(),
        ));
    }
    let mut result = if answer.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    result.structured_content = answer.structured;
    result
}

impl ServerHandler for EnactServer {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools: Vec<Value> = tools::tool_specs(&self.engine)
            .into_iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "inputSchema": t.input_schema,
                    "outputSchema": t.output_schema,
                })
            })
            .collect();
        complete(json!({ "tools": tools }))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let _running = self.in_flight.start();
        let call = tool_call(request, &context, &self.requests);
        // Over HTTP rmcp handles `notifications/cancelled` (and a closed stream) by cancelling
        // the request's token: it then abandons the run if no action has started yet.
        let _watch = context
            .extensions
            .get::<http::request::Parts>()
            .is_some()
            .then(|| watch_cancel(context.ct.clone(), call.cancel.clone()));
        match tools::call(&self.engine, call).await {
            Ok(outcome) => respond(outcome, &context),
            Err(Unroutable::UnknownTool(name)) => Err(ErrorData::invalid_params(
                format!("Unknown tool: `{name}`"),
                Some(json!({"tool": name})),
            )),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let list: Vec<Value> = resources::FIXED
            .iter()
            .map(|(uri, name, description)| {
                json!({"uri": uri, "name": name, "description": description, "mimeType": resources::MIME})
            })
            .collect();
        complete(json!({ "resources": list }))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        complete(json!({"resourceTemplates": [{
            "uriTemplate": resources::RECEIPT_TEMPLATE,
            "name": "receipt",
            "description": "One full receipt (rollback data shown only as a digest)",
            "mimeType": resources::MIME,
        }]}))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let actor = http_caller(&context)
            .and_then(|c| c.actor.clone())
            .unwrap_or_else(|| self.engine.registry().config.actor.clone());
        match resources::read(&self.engine, &actor, &uri) {
            Ok(value) => {
                let result: ReadResourceResult = complete(json!({"contents": [{
                    "uri": uri,
                    "mimeType": resources::MIME,
                    "text": serde_json::to_string_pretty(&value).unwrap_or_default(),
                }]}))?;
                Ok(ReadResourceResponse::Complete(result))
            }
            Err(ReadError::NotFound(m)) => {
                Err(ErrorData::resource_not_found(m, Some(json!({"uri": uri}))))
            }
            Err(ReadError::Invalid(m)) => {
                Err(ErrorData::invalid_params(m, Some(json!({"uri": uri}))))
            }
            Err(ReadError::Internal(m)) => Err(ErrorData::internal_error(m, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::ServiceExt;
    use rmcp::model::ErrorCode;
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService};

    use super::*;
    use crate::mcp::framing::LineTransport;
    use crate::mcp::rounds::InputRequired;

    /// A dummy tool handler that needs two rounds: the first answers `input_required` with a
    /// `requestState`, the retry completes with what it echoed.
    struct TwoRounds {
        requests: Requests,
    }

    impl ServerHandler for TwoRounds {
        fn get_info(&self) -> ServerConfig {
            from_json(json!({
                "protocolVersion": ProtocolVersion::V_2025_11_25,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "two-rounds", "version": "0"},
            }))
            .unwrap()
        }

        fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
            Cow::Borrowed(VERSIONS)
        }

        async fn call_tool(
            &self,
            request: CallToolRequestParams,
            context: RequestContext<RoleServer>,
        ) -> Result<CallToolResponse, ErrorData> {
            let call = tool_call(request, &context, &self.requests);
            let outcome = match &call.round.request_state {
                None => Outcome::InputRequired(InputRequired {
                    input_requests: serde_json::Map::new(),
                    request_state: Some(format!("state-of-{}", call.name)),
                }),
                Some(state) => Outcome::Complete(Answer {
                    summary: format!("done with {state}"),
                    structured: Some(json!({"state": state})),
                    is_error: false,
                }),
            };
            respond(outcome, &context)
        }
    }

    /// The dummy served over our own framing, and an rmcp client connected to it.
    async fn session(lifecycle: ClientLifecycleMode) -> RunningService<RoleClient, ()> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let (read, write) = tokio::io::split(server_io);
        let requests = Requests::default();
        let transport = LineTransport::new(read, write, requests.clone());
        tokio::spawn(async move {
            let server = TwoRounds { requests };
            if let Ok(running) = server.serve(transport).await {
                let _ = running.waiting().await;
            }
        });
        ().serve_with_lifecycle(tokio::io::split(client_io), lifecycle)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn input_required_then_complete_on_the_second_round_with_the_request_state() {
        let client = session(ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        })
        .await;
        let first = client
            .call_tool_once(CallToolRequestParams::new("approve"))
            .await
            .unwrap();
        let CallToolResponse::InputRequired(input) = first else {
            panic!("expected input_required, got {first:?}");
        };
        let state = input.request_state.clone().unwrap();
        assert_eq!(state, "state-of-approve");
        let second = client
            .call_tool_once(CallToolRequestParams::new("approve").with_request_state(state))
            .await
            .unwrap();
        let CallToolResponse::Complete(result) = second else {
            panic!("expected a complete result, got {second:?}");
        };
        assert_eq!(
            result.structured_content,
            Some(json!({"state": "state-of-approve"}))
        );
        assert_ne!(result.is_error, Some(true));
    }

    #[tokio::test]
    async fn input_required_is_a_json_rpc_error_in_a_2025_session() {
        let client = session(ClientLifecycleMode::Initialize).await;
        let err = client
            .call_tool_once(CallToolRequestParams::new("approve"))
            .await
            .unwrap_err();
        let rmcp::service::ServiceError::McpError(e) = err else {
            panic!("expected a JSON-RPC error, got {err:?}");
        };
        assert_eq!(e.code, ErrorCode::INVALID_REQUEST);
    }
}
