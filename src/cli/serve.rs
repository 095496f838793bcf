//! `enact serve`: MCP over stdio. stdout carries only JSON-RPC; logs go to stderr.
//!
//! Before serving: the receipts journal must be writable (SPEC §5.5: refuse to start
//! otherwise), and runs a crashed process left unfinished are recovered. SIGTERM and SIGINT
//! are handled like stdin closing: no new request is read, started runs finish and are
//! recorded (the MCP layer waits up to 30 s for them), and the process exits 0.

use tokio::io::AsyncWriteExt;

use super::{ConfigArg, EXIT_FAILED, EXIT_OK, EXIT_USAGE, build_engine, load_config};

/// How much of stdin is read ahead of the server (the rest waits in the pipe).
const STDIN_BUFFER: usize = 64 * 1024;

pub async fn run(arg: &ConfigArg) -> u8 {
    let engine = match prepare(arg).await {
        Ok(e) => e,
        Err(code) => return code,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "enact serve: listening on stdio"
    );
    let input = stdin_until_signal();
    let result = crate::mcp::serve(engine.clone(), input, tokio::io::stdout()).await;
    finish(&engine, result)
}

/// `serve --http ADDR` (SPEC §10): the same server over MCP streamable HTTP at `/mcp`.
/// Refuses to start (exit 2, naming the rule) on a non-loopback address without
/// `[[http.clients]]`, or without TLS unless `allow_plaintext`.
pub async fn run_http(arg: &ConfigArg, addr: &str) -> u8 {
    let Ok(addr) = addr.parse::<std::net::SocketAddr>() else {
        eprintln!(
            "error: --http {addr:?} is not an address: write IP:PORT, e.g. 127.0.0.1:8787 or [::1]:8787"
        );
        return EXIT_USAGE;
    };
    let config = match load_config(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let http = &config.http;
    let loopback = addr.ip().is_loopback();
    if !loopback && http.clients.is_empty() {
        eprintln!(
            "error: refusing to serve on {addr}: a non-loopback address needs at least one [[http.clients]] entry (a bearer token per agent; `enact http-token NAME --email EMAIL` makes one)"
        );
        return EXIT_USAGE;
    }
    if !loopback && http.tls.is_none() && !http.allow_plaintext {
        eprintln!(
            "error: refusing to serve on {addr} without TLS: set [http] tls_cert_file and tls_key_file, or allow_plaintext = true when a TLS proxy is in front"
        );
        return EXIT_USAGE;
    }
    let tls = match &http.tls {
        None => None,
        Some((cert, key)) => match crate::mcp::http::tls(cert, key) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        },
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let engine = match prepare_engine(config).await {
        Ok(e) => e,
        Err(code) => return code,
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return EXIT_FAILED;
        }
    };
    let signal = shutdown_signal_installed();
    let bound = listener.local_addr().unwrap_or(addr);
    // On stderr whatever RUST_LOG says: scripts (and the tests) read the port from it.
    eprintln!("enact serve: listening on {scheme}://{bound}/mcp");
    tracing::info!(version = env!("CARGO_PKG_VERSION"), %bound, scheme, "enact serve --http");
    let result = crate::mcp::http::serve(engine.clone(), listener, tls, async {
        let signal = signal.await;
        tracing::info!(signal, "shutting down");
    })
    .await;
    finish(&engine, result)
}

/// Config → engine, the journal checked writable and interrupted runs recovered.
async fn prepare(arg: &ConfigArg) -> Result<std::sync::Arc<crate::engine::Engine>, u8> {
    let config = load_config(arg)?;
    prepare_engine(config).await
}

async fn prepare_engine(
    config: crate::config::Config,
) -> Result<std::sync::Arc<crate::engine::Engine>, u8> {
    let engine = build_engine(config)?;
    if let Err(e) = engine.check_journal() {
        eprintln!(
            "error: the receipts journal cannot be written, so nothing could run safely: {e}"
        );
        return Err(EXIT_FAILED);
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
    Ok(engine)
}

/// After serving: retry unrecorded receipts once more, and the exit code.
fn finish(engine: &crate::engine::Engine, result: Result<(), String>) -> u8 {
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
    shutdown_signal_installed().await
}

/// Installs the SIGTERM and SIGINT handlers now (so a signal that arrives before the returned
/// future is first polled is not fatal), and resolves when one arrives.
fn shutdown_signal_installed() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            // Without signal handlers the default action (exit) stays: never resolve here.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
}
