//! The `enact` binary: parse arguments, send logs to stderr, run the library, exit.

use clap::Parser;

#[tokio::main]
async fn main() {
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
    let code = enact::cli::run(cli).await;
    // Exit here rather than by dropping the runtime: tokio reads stdin with a blocking read on
    // its own thread that cannot be cancelled, so after SIGTERM (stdin still open) dropping
    // the runtime would wait for the client to write or close stdin. Every run has finished
    // and been recorded by now.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(i32::from(code))
}
