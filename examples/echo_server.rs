//! The floor for `cargo bench --bench enact`: a bare rmcp server over stdio with one trivial
//! tool, `echo`, which answers its `text` argument. Whatever a call through `enact serve` costs
//! beyond this is Enact's own time.

use std::borrow::Cow;

use rmcp::ErrorData;
use rmcp::ServiceExt;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};

#[derive(Clone)]
struct Echo {
    info: ServerConfig,
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ErrorData> {
    serde_json::from_value(value).map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(&[ProtocolVersion::V_2025_06_18])
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        from_json(json!({"tools": [{
            "name": "echo",
            "description": "Answers its text",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        }]}))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let text = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("text"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![
            ContentBlock::text(text),
        ])))
    }
}

/// Serves `echo` over stdin/stdout until stdin closes. (The bench includes this file and runs
/// it in a child process of its own, so the floor is built with the same profile.)
#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let info = from_json(json!({
        "protocolVersion": ProtocolVersion::V_2025_06_18,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "echo", "version": "1"},
    }))?;
    let running = Echo { info }
        .serve((tokio::io::stdin(), tokio::io::stdout()))
        .await?;
    running.waiting().await?;
    Ok(())
}
