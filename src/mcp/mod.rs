//! The MCP adapter (SPEC §3): the only code that imports `rmcp`.
//!
//! - [`framing`]: JSON lines in and out, with a JSON-RPC error for every bad line;
//! - [`server`]: the rmcp `ServerHandler`;
//! - [`rounds`]: what a tool handler sees and answers, including 2026-07-28 `input_required`;
//! - [`tools`] and [`resources`]: what each tool and resource answers, over the engine;
//! - [`http`]: MCP over streamable HTTP (`serve --http`), behind the bearer-token front door;
//! - [`client`]: the client side, for `enact demo`.

pub mod approval;
pub mod client;
pub mod framing;
pub mod http;
mod resources;
pub mod rounds;
mod server;
pub mod summary;
pub mod tools;

use std::sync::Arc;

use rmcp::ServiceExt;

use crate::engine::Engine;

/// Serves MCP over the given byte streams until the input closes.
pub async fn serve<R, W>(engine: Arc<Engine>, reader: R, writer: W) -> Result<(), String>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let requests = framing::Requests::default();
    let transport = framing::LineTransport::new(reader, writer, requests.clone());
    let in_flight = server::InFlight::default();
    let server = server::EnactServer::new(engine, requests, in_flight.clone())?;
    let running = match server.serve(transport).await {
        Ok(r) => r,
        // stdin closed before (or during) the handshake: nothing to serve, a clean exit.
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => {
            tracing::info!("stdin closed before the MCP handshake");
            return Ok(());
        }
        Err(e) => return Err(format!("MCP session did not start: {e}")),
    };
    let reason = running
        .waiting()
        .await
        .map_err(|e| format!("MCP session failed: {e}"))?;
    tracing::info!(?reason, "MCP session ended");
    if in_flight.count() > 0 {
        tracing::warn!(
            calls = in_flight.count(),
            "stdin closed with calls still running: waiting for them to finish and write their receipts"
        );
        // Up to 30 s (SPEC §5.5); a run still going then is recovery's job.
        if tokio::time::timeout(std::time::Duration::from_secs(30), in_flight.idle())
            .await
            .is_err()
        {
            tracing::error!(
                calls = in_flight.count(),
                "calls still running after 30 s: exiting; recovery will finish their records"
            );
        }
    }
    Ok(())
}
