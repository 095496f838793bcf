//! STUB: the MCP adapter (the only code that imports `rmcp`).
use std::sync::Arc;

use crate::engine::Engine;

/// Serves MCP over the given byte streams until the input closes.
pub async fn serve<R, W>(engine: Arc<Engine>, reader: R, writer: W) -> Result<(), String>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _ = (engine, reader, writer);
    Err("the MCP server is not implemented yet".into())
}
