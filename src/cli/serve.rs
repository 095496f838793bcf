//! `enact serve`: MCP over stdio. stdout carries only JSON-RPC; logs go to stderr.

use super::{ConfigArg, EXIT_FAILED, EXIT_OK, build_engine, load_config};

pub async fn run(arg: &ConfigArg) -> u8 {
    let config = match load_config(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = match build_engine(config) {
        Ok(e) => e,
        Err(code) => return code,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "enact serve: listening on stdio"
    );
    match crate::mcp::serve(engine, tokio::io::stdin(), tokio::io::stdout()).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            EXIT_FAILED
        }
    }
}
