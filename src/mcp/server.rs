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

use super::framing::InexactNumbers;
use super::resources::{self, ReadError};
use super::tools::{self, Answer, Unroutable};
use crate::engine::Engine;

/// The protocol versions served: every released revision with an `initialize` handshake up to
/// 2025-11-25 (2025-06-18 and 2025-11-25 are the ones the SPEC requires).
const VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2024_11_05,
];

#[derive(Clone)]
pub struct EnactServer {
    engine: Arc<Engine>,
    inexact: InexactNumbers,
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
        inexact: InexactNumbers,
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
            inexact,
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
        from_json(json!({ "tools": tools }))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let _running = self.in_flight.start();
        let inexact = self.inexact.take(&context.id);
        let args = request.arguments.unwrap_or_default();
        match tools::call(&self.engine, &request.name, args, &inexact).await {
            Ok(answer) => Ok(CallToolResponse::Complete(to_result(answer))),
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
        from_json(json!({ "resources": list }))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        from_json(json!({"resourceTemplates": [{
            "uriTemplate": resources::RECEIPT_TEMPLATE,
            "name": "receipt",
            "description": "One full receipt (rollback data shown only as a digest)",
            "mimeType": resources::MIME,
        }]}))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        match resources::read(&self.engine, &uri) {
            Ok(value) => {
                let result: ReadResourceResult = from_json(json!({"contents": [{
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
