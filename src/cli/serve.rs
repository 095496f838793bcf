//! `enact serve`: MCP over stdio. stdout carries only JSON-RPC; logs go to stderr.
//!
//! Before serving: the receipts journal must be writable (SPEC §5.5: refuse to start
//! otherwise), and runs a crashed process left unfinished are recovered. SIGTERM and SIGINT
//! are handled like stdin closing: no new request is read, started runs finish and are
//! recorded (the MCP layer waits up to 30 s for them), and the process exits 0.

use tokio::io::AsyncWriteExt;

use super::{ConfigArg, EXIT_FAILED, EXIT_OK, build_engine, load_config};

/// How much of stdin is read ahead of the server (the rest waits in the pipe).
const STDIN_BUFFER: usize = 64 * 1024;

pub async fn run(arg: &ConfigArg) -> u8 {
    let config = match load_config(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = match build_engine(config) {
        Ok(e) => e,
        Err(code) => return code,
    };
    if let Err(e) = engine.check_journal() {
        eprintln!(
            "error: the receipts journal cannot be written, so nothing could run safely: {e}"
        );
        return EXIT_FAILED;
    }
    match engine.recover().await {
        Ok(report) => {
            for run in &report.runs {
                tracing::warn!(run_id = %run.run_id, workflow = %run.workflow, steps = ?run.steps, "recovered a run interrupted by a crash");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "recovery of interrupted runs failed; serving anyway")
        }
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "enact serve: listening on stdio"
    );
    let input = stdin_until_signal();
    let result = crate::mcp::serve(engine.clone(), input, tokio::io::stdout()).await;
    let left = engine.flush();
    if left > 0 {
        tracing::error!(
            runs = left,
            "receipts still unrecorded at exit; recovery will finish those runs"
        );
    }
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            EXIT_FAILED
        }
    }
}

/// stdin, ending (EOF) when it closes or when SIGTERM or SIGINT arrives.
fn stdin_until_signal() -> tokio::io::DuplexStream {
    let (reader, mut writer) = tokio::io::duplex(STDIN_BUFFER);
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        tokio::select! {
            _ = tokio::io::copy(&mut stdin, &mut writer) => {}
            signal = shutdown_signal() => {
                tracing::info!(signal, "shutting down: no new requests; started runs finish and are recorded");
            }
        }
        let _ = writer.shutdown().await;
    });
    reader
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the default action (exit) stays: never resolve here.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
