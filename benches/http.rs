//! A team's server, measured (run: `cargo bench --bench http`; about two minutes here).
//!
//! Calls per second and per-call latency (p50, p99) through ONE `enact serve --http` with 1, 8
//! and 32 concurrent clients — each client its own bearer token and its own 2025-11-25 session,
//! as 32 agents of a team would be — against the same calls through `enact serve` over stdio
//! (one client, and the same number of calls in flight on its one connection). Each is run on
//! the file journal and on the Postgres journal (a throwaway cluster from the local PostgreSQL
//! binaries, or `$ENACT_BENCH_DATABASE_URL`).
//!
//! Every call is the read-only workflow `read` behind seven policies: the whole call path —
//! front door (token digest, Origin, body), rmcp, gate, intent, step record, the read, the
//! signed receipt — with the file connector's own cost kept small. Both sides use rmcp's own
//! client (streamable HTTP over reqwest; a child process over stdio), so the client's cost is
//! the same on both. The file journal is durable (`fsync = true`, the default), so its numbers
//! include the group-committed `fdatasync`s.
//!
//! The machine's other load moves these numbers; the bench reports, it has no targets to miss.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench that cannot set up stops with a panic"
)]

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{CONFIG, SECRET};
use enact::sandbox::postgres::TempPostgres;
use rmcp::RoleClient;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RunningService, ServiceExt};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};

type Client = RunningService<RoleClient, ()>;

/// The concurrency levels the issue asks for.
const LEVELS: [usize; 3] = [1, 8, 32];
const MAX_CLIENTS: usize = 32;
/// Calls per measured series (split evenly among the clients), after a warm-up.
const CALLS: usize = 1600;
const WARM_UP: usize = 2;

/// Where a series' receipts go.
enum Journal {
    File,
    Postgres { dsn: String },
}

impl Journal {
    fn name(&self) -> &'static str {
        match self {
            Journal::File => "file journal",
            Journal::Postgres { .. } => "postgres journal",
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Journal::File => Vec::new(),
            Journal::Postgres { dsn } => vec![("ENACT_RECEIPTS_DSN", dsn.clone())],
        }
    }
}

fn token(i: usize) -> String {
    format!("bench-token-{i:02}-0123456789abcdef0123456789abcdef")
}

/// A folder with a workspace and a config: the workflow, 32 HTTP clients, the journal.
fn setup(dir: &Path, journal: &Journal, schema: &str) -> PathBuf {
    common::workspace(dir);
    let mut text = CONFIG.to_string();
    for i in 0..MAX_CLIENTS {
        text.push_str(&format!(
            "\n[[http.clients]]\nname = \"agent-{i}\"\ntoken_sha256 = \"{}\"\nemail = \"agent-{i}@example.com\"\nrole = \"engineer\"\n",
            hex::encode(Sha256::digest(token(i).as_bytes()))
        ));
    }
    if let Journal::Postgres { .. } = journal {
        text.push_str(&format!(
            "\n[receipts]\nbackend = \"postgres\"\ndsn_env = \"ENACT_RECEIPTS_DSN\"\nschema = \"{schema}\"\n"
        ));
    }
    let path = dir.join("enact.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn command(config: &Path, journal: &Journal, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_enact"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env("ENACT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .env_remove("ENACT_CONFIG")
        .kill_on_drop(true);
    for (k, v) in journal.env() {
        cmd.env(k, v);
    }
    cmd
}

/// `enact serve --http` on a free loopback port, and its URL once it listens.
async fn start_http(config: &Path, journal: &Journal) -> (tokio::process::Child, String) {
    let mut child = command(config, journal, &["serve", "--http", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("enact serve: listening on ") {
                return url.to_string();
            }
            eprintln!("{line}");
        }
        panic!("`enact serve --http` exited before listening");
    })
    .await
    .expect("`enact serve --http` did not start listening");
    // Keep draining its log so a chatty server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

async fn http_client(url: &str, i: usize) -> Client {
    let config =
        StreamableHttpClientTransportConfig::with_uri(url.to_string()).auth_header(token(i));
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

async fn stdio_client(config: &Path, journal: &Journal) -> Client {
    let (transport, _) = TokioChildProcess::builder(command(config, journal, &["serve"]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ().serve(transport).await.unwrap()
}

/// One `read` call, timed; it must pass.
async fn call(client: &Client) -> Duration {
    let t = Instant::now();
    let result = client
        .call_tool(CallToolRequestParams::new("read"))
        .await
        .unwrap();
    let took = t.elapsed();
    let decision = result
        .structured_content
        .as_ref()
        .and_then(|s| s.get("decision"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    assert_eq!(decision.as_deref(), Some("PASS"), "{result:?}");
    took
}

/// `lanes` tasks share `CALLS` calls; each lane uses `clients[lane % clients.len()]`.
async fn series(clients: &[Arc<Client>], lanes: usize) -> Series {
    for client in clients {
        for _ in 0..WARM_UP {
            call(client).await;
        }
    }
    let per_lane = CALLS / lanes;
    let start = Instant::now();
    let tasks: Vec<_> = (0..lanes)
        .map(|lane| {
            let client = clients[lane % clients.len()].clone();
            tokio::spawn(async move {
                let mut took = Vec::with_capacity(per_lane);
                for _ in 0..per_lane {
                    took.push(call(&client).await);
                }
                took
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(CALLS);
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    Series {
        wall: start.elapsed(),
        samples,
    }
}

struct Series {
    wall: Duration,
    samples: Vec<Duration>,
}

impl Series {
    fn pct(&self, p: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        s[((s.len() as f64 - 1.0) * p).round() as usize]
    }

    fn report(&self, name: &str) {
        println!(
            "{name:<46} {:>7.0} calls/s  p50={:>9.1?}  p99={:>9.1?}  (n={})",
            self.samples.len() as f64 / self.wall.as_secs_f64(),
            self.pct(0.5),
            self.pct(0.99),
            self.samples.len()
        );
    }
}

async fn bench(dir: &Path, journal: &Journal) {
    let schema = format!("bench_{}", std::process::id());
    // HTTP: one server, N clients with their own tokens and sessions.
    let http_config = setup(&dir.join("http"), journal, &format!("{schema}_http"));
    let (mut server, url) = start_http(&http_config, journal).await;
    let mut clients = Vec::new();
    for i in 0..MAX_CLIENTS {
        clients.push(Arc::new(http_client(&url, i).await));
    }
    for n in LEVELS {
        series(&clients[..n], n)
            .await
            .report(&format!("http, {n:>2} clients, {}", journal.name()));
    }
    for client in clients {
        if let Ok(client) = Arc::try_unwrap(client) {
            let _ = client.cancel().await;
        }
    }
    let _ = server.kill().await;

    // stdio: one client, the same number of calls in flight on its connection.
    let stdio_config = setup(&dir.join("stdio"), journal, &format!("{schema}_stdio"));
    let client = Arc::new(stdio_client(&stdio_config, journal).await);
    for n in LEVELS {
        series(std::slice::from_ref(&client), n)
            .await
            .report(&format!("stdio, {n:>2} in flight, {}", journal.name()));
    }
    if let Ok(client) = Arc::try_unwrap(client) {
        let _ = client.cancel().await;
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("enact over HTTP vs stdio (2 cores here; numbers move with machine load)");
        println!("load average at start: {}", load_average());
        let dir = tempfile::tempdir().unwrap();
        bench(dir.path(), &Journal::File).await;
        println!();
        let (_cluster, dsn) = match std::env::var("ENACT_BENCH_DATABASE_URL") {
            Ok(dsn) if !dsn.is_empty() => (None, dsn),
            _ => {
                let pg = tokio::task::spawn_blocking(TempPostgres::start)
                    .await
                    .unwrap()
                    .unwrap();
                let dsn = pg.dsn();
                (Some(pg), dsn)
            }
        };
        bench(dir.path(), &Journal::Postgres { dsn }).await;
        println!("\nload average at end: {}", load_average());
    });
}

/// The machine's 1, 5 and 15 minute load averages, printed with the numbers they move.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}
