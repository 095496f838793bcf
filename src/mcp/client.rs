//! A small MCP client over a child process's stdio, for `enact demo`: it drives `enact serve`
//! exactly as an agent's client would. Kept here so `rmcp` stays inside `src/mcp/`.

use std::process::Stdio;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Map, Value};

/// A connected client; the server is the child process.
pub struct McpClient {
    service: RunningService<RoleClient, ()>,
}

/// A tool result, reduced to what a caller reads.
#[derive(Debug, Clone)]
pub struct Reply {
    pub texts: Vec<String>,
    /// `structuredContent` (`Null` when absent).
    pub structured: Value,
    pub is_error: bool,
}

impl McpClient {
    /// Spawns `command` (whose stdin and stdout become the transport; its stderr goes to
    /// `stderr`) and completes the MCP handshake.
    pub async fn spawn(
        command: tokio::process::Command,
        stderr: impl Into<Stdio>,
    ) -> Result<McpClient, String> {
        let (transport, _) = TokioChildProcess::builder(command)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start the MCP server: {e}"))?;
        let service = ().serve(transport).await.map_err(|e| format!("MCP handshake failed: {e}"))?;
        Ok(McpClient { service })
    }

    /// `name version` of the server, from `initialize`.
    pub fn server(&self) -> String {
        self.service
            .peer_info()
            .and_then(|i| i.server_info.clone())
            .map(|s| format!("{} {}", s.name, s.version))
            .unwrap_or_else(|| "unknown server".into())
    }

    pub async fn tool_names(&self) -> Result<Vec<String>, String> {
        let tools = self
            .service
            .list_all_tools()
            .await
            .map_err(|e| format!("tools/list failed: {e}"))?;
        Ok(tools.into_iter().map(|t| t.name.to_string()).collect())
    }

    pub async fn call(&self, tool: &str, args: &Value) -> Result<Reply, String> {
        let arguments: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let result = self
            .service
            .call_tool(params)
            .await
            .map_err(|e| format!("tools/call `{tool}` failed: {e}"))?;
        let texts = result
            .content
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .filter_map(|v| v.get("text").and_then(Value::as_str).map(str::to_string))
            .collect();
        Ok(Reply {
            texts,
            structured: result.structured_content.unwrap_or(Value::Null),
            is_error: result.is_error == Some(true),
        })
    }

    /// Closes the session (the server sees stdin close and exits).
    pub async fn close(self) {
        if let Err(e) = self.service.cancel().await {
            tracing::warn!(error = %e, "MCP client did not shut down cleanly");
        }
    }
}
