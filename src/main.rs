//! The `enact` binary: parse arguments, send logs to stderr, run the library, exit.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = enact::cli::Cli::parse();
    // stdout belongs to the MCP protocol in `serve`: logs always go to stderr.
    // The demo talks to the user on stdout; its own (client-side) logs stay quiet by default.
    let default = match cli.command {
        enact::cli::Command::Demo { .. } => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    ExitCode::from(enact::cli::run(cli).await)
}
