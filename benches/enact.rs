//! Speed targets, measured (run: `cargo bench --bench enact`; about three minutes here).
//!
//! What an operator cares about, each against a target (SPEC §5.6 and issue 12):
//! - **gate**: validate arguments, build the plan and run every policy (`enact_preview`'s
//!   work, no I/O) — the overhead Enact adds before anything runs;
//! - **call read / write** (in process): a whole call — gate, intent, step record, the action,
//!   the signed receipt;
//! - **mcp**: round trips through the real `enact serve` over stdio, against a **floor**
//!   measured in the same run: a bare rmcp stdio server with one `echo` tool
//!   (`examples/echo_server.rs`). A read-only call costs ≤ floor + 100 µs; a one-file write
//!   costs ≤ the read-only call + the connector's own write (timed alone here: temp file,
//!   write, fsync, rename, folder fsync);
//! - **durable** (`fsync = true`): a run costs ≤ 1.3× its syncs (an append + `fdatasync` in the
//!   receipts folder, timed alone, times the three records a run syncs: intent, step, receipt;
//!   plus the connector's own write for a write run);
//! - **scale** (100,000 receipts, built through `Store` directly): a rate-limited call costs
//!   the same (±25%) as on an empty folder; `enact receipts verify` ≤ 2 s; `serve` answers
//!   `initialize` in ≤ 10 ms on an empty folder and ≤ 500 ms at 100,000 receipts;
//! - **memory**: `serve`'s resident set after 1k, 50k and 100k pipelined read-only calls.
//!
//! Percentiles over a fixed number of iterations after a warm-up; the machine's other load
//! moves these numbers, so the bench reports rather than fails unless a target is missed by
//! more than twice (exit 1). Series compared with each other run interleaved, so a burst of
//! load hits both.

// A bench is a test-like harness: a failed set-up should stop it loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench that cannot set up stops with a panic"
)]

#[allow(
    dead_code,
    reason = "the bench uses the echo server's serve function, not its main"
)]
#[path = "../examples/echo_server.rs"]
mod echo_server;

#[path = "common/mod.rs"]
mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::{CONFIG, SECRET};
use enact::engine::Engine;
use enact::kernel::policy::{Decision, PolicyResult};
use enact::kernel::receipt::{ActionRecord, Receipt};
use enact::registry::Registry;
use enact::store::Store;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};

/// Set in the bench's own child process that serves as the floor.
const ECHO_ENV: &str = "ENACT_BENCH_ECHO_SERVER";
const ACTOR: &str = "bench@example.com";
/// Receipts in the big folder.
const BIG: usize = 100_000;
/// The write workflow, beside the shared config's `read`.
const SAVE: &str = r#"
[[workflows]]
name = "save"
[workflows.inputs.path]
type = "string"
[workflows.inputs.content]
type = "string"
[workflows.inputs.tag]
type = "string"
default = "note"
enum = ["note", "doc"]
[[workflows.steps]]
system = "files"
action = "write_file"
args = { path = "notes/{{path}}", content = "{{content}}" }
"#;

/// Appended for the rate-limited series: a limit the bench never reaches, so every call is
/// counted and passes.
const RATE_LIMIT: &str = r#"
[[policies]]
policy = "rate_limit"
max = 1000000000
window = "1d"
workflows = ["read"]
"#;

struct Stats {
    name: String,
    samples: Vec<Duration>,
    /// The target for p50, and how it is derived when it comes from other measurements.
    target_p50: Duration,
    target_note: String,
}

impl Stats {
    fn new(name: impl Into<String>, samples: Vec<Duration>, target_p50: Duration) -> Stats {
        Stats {
            name: name.into(),
            samples,
            target_p50,
            target_note: String::new(),
        }
    }

    fn with_target(mut self, target: Duration, note: String) -> Stats {
        self.target_p50 = target;
        self.target_note = note;
        self
    }

    fn pct(&self, p: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        let i = ((s.len() as f64 - 1.0) * p).round() as usize;
        s[i]
    }

    fn p50(&self) -> Duration {
        self.pct(0.5)
    }

    /// p50 of the first and the last tenth of the samples: whether the cost grows with the
    /// folder (every call adds a receipt).
    fn drift(&self) -> (Duration, Duration) {
        let tenth = (self.samples.len() / 10).max(1);
        let p50 = |s: &[Duration]| {
            let mut s = s.to_vec();
            s.sort();
            s[s.len() / 2]
        };
        (
            p50(&self.samples[..tenth]),
            p50(&self.samples[self.samples.len() - tenth..]),
        )
    }

    /// Prints one line; whether the target was met within 2×. A series without a target
    /// (`Duration::MAX`: an input to other targets) is printed as measured.
    fn report(&self) -> bool {
        let (p50, p99) = (self.p50(), self.pct(0.99));
        let within_2x = self
            .target_p50
            .checked_mul(2)
            .is_none_or(|twice| p50 <= twice);
        let verdict = verdict(p50 <= self.target_p50, within_2x);
        let drift = if self.samples.len() >= 100 {
            let (first, last) = self.drift();
            format!(" (first/last tenth {first:.1?}/{last:.1?})")
        } else {
            String::new()
        };
        let target = if self.target_p50 == Duration::MAX {
            "(no target of its own)".to_string()
        } else {
            format!(
                "target p50≤{:.1?}{}  {verdict}",
                self.target_p50, self.target_note
            )
        };
        println!(
            "{:<34} n={:<6} p50={:>9.1?} p99={:>9.1?}{drift}  {target}",
            self.name,
            self.samples.len(),
            p50,
            p99,
        );
        within_2x
    }
}

fn verdict(ok: bool, within_2x: bool) -> &'static str {
    if ok {
        "ok"
    } else if within_2x {
        "SLOW (within 2x of target)"
    } else {
        "MISSED"
    }
}

/// A folder with a workspace and a config; `extra` is appended to the config.
fn setup(dir: &Path, fsync: bool, extra: &str) -> PathBuf {
    common::workspace(dir);
    let path = dir.join("enact.toml");
    let text = format!("{CONFIG}{SAVE}\n[receipts]\nfsync = {fsync}\n{extra}");
    std::fs::write(&path, text).unwrap();
    path
}

fn config(path: &Path) -> enact::config::Config {
    let env = |name: &str| (name == "ENACT_SECRET").then(|| SECRET.to_string());
    enact::config::load(path, &env).unwrap()
}

fn engine_at(path: &Path) -> Arc<Engine> {
    let config = config(path);
    let store = Store::open(&config.receipts_dir, config.fsync, config.secret.clone()).unwrap();
    Arc::new(Engine::new(Registry::build(config).unwrap(), store))
}

fn engine(dir: &Path, fsync: bool) -> Arc<Engine> {
    engine_at(&setup(dir, fsync, ""))
}

fn args(i: usize) -> Map<String, Value> {
    json!({"path": format!("n{i}.md"), "content": format!("note {i}")})
        .as_object()
        .cloned()
        .unwrap()
}

async fn bench_gate(engine: &Engine) -> Stats {
    for i in 0..200 {
        engine.preview("save", &args(i), &[]).await.unwrap();
    }
    let mut samples = Vec::new();
    for i in 0..5000 {
        let a = args(i);
        let t = Instant::now();
        let p = engine.preview("save", &a, &[]).await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(p.policy_results.len(), 7);
    }
    Stats::new("gate (preview)", samples, Duration::from_micros(100))
}

/// `n` calls of `workflow`, appended to `samples`; `offset` keeps each series writing files no
/// other wrote (a repeated write is an idempotent no-op, which would flatter the numbers).
async fn calls(
    engine: &Engine,
    workflow: &str,
    n: usize,
    offset: usize,
    samples: &mut Vec<Duration>,
) {
    let input = |i: usize| {
        if workflow == "save" {
            args(offset + i)
        } else {
            Map::new()
        }
    };
    for i in 0..n {
        let a = input(i);
        let t = Instant::now();
        let r = engine.call(workflow, a, &[]).await.unwrap();
        samples.push(t.elapsed());
        assert!(r.success);
    }
}

async fn bench_call(
    engine: &Engine,
    (name, workflow): (&'static str, &str),
    n: usize,
    offset: usize,
    target: Duration,
) -> Stats {
    calls(engine, workflow, 20, offset + 10_000_000, &mut Vec::new()).await;
    let mut samples = Vec::new();
    calls(engine, workflow, n, offset, &mut samples).await;
    Stats::new(name, samples, target)
}

/// The connector's own write, alone: what `write_file` does to the disk (a temporary file
/// beside the target, written and synced, renamed over it, the folder synced).
fn bench_fs_write(folder: &Path, n: usize) -> Stats {
    let dir = std::fs::File::open(folder).unwrap();
    let mut samples = Vec::new();
    for i in 0..n + 10 {
        let t = Instant::now();
        let tmp = folder.join(format!(".bench-tmp-{i}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .unwrap();
        f.write_all(format!("note {i}").as_bytes()).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, folder.join(format!("fs{i}.md"))).unwrap();
        dir.sync_all().unwrap();
        if i >= 10 {
            samples.push(t.elapsed());
        }
    }
    Stats::new("connector write alone", samples, Duration::MAX)
}

/// One journal sync, alone: a record-sized append to a file in the receipts folder, then
/// `fdatasync`.
fn bench_sync(folder: &Path, n: usize) -> Stats {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(folder.join(".bench-sync"))
        .unwrap();
    let line = [b'x'; 900];
    let mut samples = Vec::new();
    for i in 0..n + 10 {
        let t = Instant::now();
        f.write_all(&line).unwrap();
        f.sync_data().unwrap();
        if i >= 10 {
            samples.push(t.elapsed());
        }
    }
    drop(f);
    std::fs::remove_file(folder.join(".bench-sync")).unwrap();
    Stats::new("append + fdatasync alone", samples, Duration::MAX)
}

/// A server child process spoken to in JSON lines.
struct Server {
    child: tokio::process::Child,
    stdin: BufWriter<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

impl Server {
    fn spawn_enact(config: &Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_enact"));
        cmd.args(args)
            .arg("--config")
            .arg(config)
            .env("ENACT_SECRET", SECRET)
            .env("RUST_LOG", "warn");
        cmd
    }

    fn enact(config: &Path) -> Server {
        Server::start(Server::spawn_enact(config, &["serve"]))
    }

    /// This bench's own binary, as the bare rmcp echo server.
    fn echo() -> Server {
        let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
        cmd.env(ECHO_ENV, "1");
        Server::start(cmd)
    }

    fn start(mut cmd: tokio::process::Command) -> Server {
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Server {
            stdin: BufWriter::new(child.stdin.take().unwrap()),
            lines: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
            next_id: 1,
        }
    }

    async fn send(&mut self, v: &Value) {
        self.stdin
            .write_all(format!("{v}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn line(&mut self) -> String {
        self.lines.next_line().await.unwrap().unwrap()
    }

    /// The `initialize` round trip, then `notifications/initialized`.
    async fn initialize(&mut self) {
        self.send(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}}}),
        )
        .await;
        self.stdin.flush().await.unwrap();
        let line = self.line().await;
        assert!(line.contains("\"result\""), "{line}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        self.stdin.flush().await.unwrap();
    }

    fn call_request(&mut self, tool: &str, arguments: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}})
    }

    /// One `tools/call` round trip, timed.
    async fn call(&mut self, tool: &str, arguments: Value) -> (Duration, String) {
        let request = self.call_request(tool, arguments);
        let t = Instant::now();
        self.send(&request).await;
        self.stdin.flush().await.unwrap();
        let line = self.line().await;
        (t.elapsed(), line)
    }

    fn rss_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    async fn close(mut self) {
        self.stdin.shutdown().await.unwrap();
        drop(self.stdin);
        let _ = self.child.wait().await;
    }
}

/// Round trips through the echo floor and `enact serve` (a read and a write workflow), in
/// interleaved rounds.
async fn bench_mcp(config: &Path, rounds: usize, per_round: usize) -> [Stats; 3] {
    let mut echo = Server::echo();
    echo.initialize().await;
    let mut serve = Server::enact(config);
    serve.initialize().await;
    let (mut floor, mut read, mut write) = (Vec::new(), Vec::new(), Vec::new());
    let mut file = 0;
    for round in 0..=rounds {
        // Round 0 is the warm-up.
        let keep = round > 0;
        for i in 0..per_round {
            let (t, line) = echo
                .call("echo", json!({"text": format!("hello {i}")}))
                .await;
            assert!(line.contains("hello"), "{line}");
            if keep {
                floor.push(t);
            }
        }
        for _ in 0..per_round {
            let (t, line) = serve.call("read", json!({})).await;
            assert!(line.contains("PASS"), "{line}");
            if keep {
                read.push(t);
            }
        }
        for _ in 0..per_round {
            file += 1;
            let (t, line) = serve
                .call("save", Value::Object(args(2_000_000 + file)))
                .await;
            assert!(line.contains("PASS"), "{line}");
            if keep {
                write.push(t);
            }
        }
    }
    echo.close().await;
    serve.close().await;
    [
        Stats::new("mcp floor: rmcp echo server", floor, Duration::MAX),
        Stats::new("mcp read call, fsync=false", read, Duration::MAX),
        Stats::new("mcp write call, fsync=false", write, Duration::MAX),
    ]
}

/// A run on a durable folder against its syncs: `calls` of the read and save workflows,
/// interleaved with timings of an append + fdatasync in the same folder.
async fn bench_durable(engine: &Engine, rounds: usize, per_round: usize) -> [Stats; 3] {
    let folder = engine.store().dir().to_path_buf();
    let (mut read, mut write, mut sync) = (Vec::new(), Vec::new(), Vec::new());
    calls(engine, "read", 5, 0, &mut Vec::new()).await;
    for round in 0..rounds {
        calls(engine, "read", per_round, 0, &mut read).await;
        calls(
            engine,
            "save",
            per_round,
            5_000_000 + round * per_round,
            &mut write,
        )
        .await;
        sync.extend(bench_sync(&folder, per_round).samples);
    }
    [
        Stats::new("durable read run, fsync=true", read, Duration::MAX),
        Stats::new("durable write run, fsync=true", write, Duration::MAX),
        Stats::new("append + fdatasync alone", sync, Duration::MAX),
    ]
}

/// Fills a receipts folder with `n` PASS receipts of the bench actor's `read` workflow, stamped
/// inside the last day, through the store directly (fsync off). Returns how long it took.
fn fill(config: &enact::config::Config, n: usize) -> Duration {
    let t = Instant::now();
    let store = Store::open(&config.receipts_dir, false, config.secret.clone()).unwrap();
    let now = Utc::now();
    let policy_results: Vec<PolicyResult> = [
        "restrict_paths",
        "block_extensions",
        "no_delete_file",
        "require_actor_role",
        "within_maintenance_window",
        "no_push_to_main",
        "protect_tables",
        "rate_limit",
    ]
    .iter()
    .map(|p| PolicyResult::pass(p, "ok"))
    .collect();
    for i in 0..n {
        let stamp = now - TimeDelta::milliseconds((n - i) as i64);
        let receipt = Receipt {
            kind: String::new(),
            run_id: uuid::Uuid::new_v4().to_string(),
            workflow: "read".into(),
            actor_email: ACTOR.into(),
            actor_role: "engineer".into(),
            payload: json!({}),
            inputs: Some(json!({})),
            policy_results: policy_results.clone(),
            decision: Decision::Pass,
            actions_taken: vec![ActionRecord {
                action: "read_file".into(),
                system: "files".into(),
                success: true,
                output: json!({"path": "notes/read-me.md", "content": "a small note"}),
                rollback_data: json!({}),
                target: json!({"type": "filesystem", "root": "/bench/workspace"}),
                args: json!({"path": "notes/read-me.md"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            }],
            timestamp: enact::engine::timestamp(stamp),
            rollback_of: None,
            plan: json!([{"system": "files", "action": "read_file", "args": {"path": "notes/read-me.md"}}]),
            policy_set_hash: "0".repeat(64),
            interrupted: false,
            approvals: Default::default(),
            seq: 0,
            prev_hash: String::new(),
            signature: String::new(),
        };
        store.append(receipt).unwrap();
    }
    t.elapsed()
}

/// A rate-limited `read` call on an empty folder and on one with `BIG` receipts in its
/// window, interleaved.
async fn bench_rate(empty: &Engine, big: &Engine, rounds: usize, per_round: usize) -> [Stats; 2] {
    let (mut none, mut many) = (Vec::new(), Vec::new());
    calls(empty, "read", 20, 0, &mut Vec::new()).await;
    calls(big, "read", 20, 0, &mut Vec::new()).await;
    for _ in 0..rounds {
        calls(empty, "read", per_round, 0, &mut none).await;
        calls(big, "read", per_round, 0, &mut many).await;
    }
    [
        Stats::new("rate-limited call, 0 in window", none, Duration::MAX),
        Stats::new("rate-limited call, 100k in window", many, Duration::MAX),
    ]
}

/// `enact receipts verify`, whole process, `n` times.
async fn bench_verify(config: &Path, n: usize, expected: usize) -> Stats {
    let mut samples = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let out = Server::spawn_enact(config, &["receipts", "verify"])
            .output()
            .await
            .unwrap();
        samples.push(t.elapsed());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(&format!("ok: {expected} receipt(s)")),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Stats::new(
        "receipts verify, 100k receipts",
        samples,
        Duration::from_secs(2),
    )
}

/// From spawning `enact serve` to its `initialize` answer, `n` times; with the resident set
/// once initialised (KiB) of the last.
async fn bench_initialize(config: &Path, n: usize, name: &str, target: Duration) -> (Stats, u64) {
    let mut samples = Vec::new();
    let mut rss = 0;
    for _ in 0..n {
        let t = Instant::now();
        let mut serve = Server::enact(config);
        serve.initialize().await;
        samples.push(t.elapsed());
        rss = serve.rss_kib("VmRSS:").unwrap_or(0);
        serve.close().await;
    }
    (Stats::new(name, samples, target), rss)
}

/// `serve`'s resident set after 1k, 50k and 100k read-only calls from a pipelined client
/// (64 requests in flight), alternating `enact_preview` (the gate) and `enact_list_receipts`
/// (the store's index). Returns (calls, VmRSS KiB) samples and the calls per second.
async fn bench_memory(config: &Path, total: u64) -> (Vec<(u64, u64)>, f64) {
    const WINDOW: u64 = 64;
    let mut serve = Server::enact(config);
    serve.initialize().await;
    let marks = [1_000, total / 2, total];
    let mut rss = Vec::new();
    let (mut sent, mut received) = (0u64, 0u64);
    let t = Instant::now();
    while received < total {
        while sent < total && sent - received < WINDOW {
            let request = if sent % 2 == 0 {
                serve.call_request("enact_preview", json!({"workflow": "read"}))
            } else {
                serve.call_request("enact_list_receipts", json!({"limit": 1}))
            };
            serve.send(&request).await;
            sent += 1;
        }
        serve.stdin.flush().await.unwrap();
        let line = serve.line().await;
        assert!(line.contains("\"result\""), "{line}");
        received += 1;
        if marks.contains(&received) {
            rss.push((received, serve.rss_kib("VmRSS:").unwrap_or(0)));
        }
    }
    let rate = total as f64 / t.elapsed().as_secs_f64();
    serve.close().await;
    (rss, rate)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    if std::env::var_os(ECHO_ENV).is_some() {
        echo_server::main().unwrap();
        return;
    }
    // For profiling: `ENACT_BENCH_FILL=DIR` builds the 100k folder in DIR and stops.
    if let Some(dir) = std::env::var_os("ENACT_BENCH_FILL") {
        let config_path = setup(Path::new(&dir), false, RATE_LIMIT);
        let took = fill(&config(&config_path), BIG);
        println!("{}: {BIG} receipts in {took:.1?}", config_path.display());
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Measured on a runtime worker, as `enact serve` runs its calls (the `block_on` thread
    // pays a park and unpark for every blocking-pool hop).
    let ok = runtime.block_on(async { tokio::spawn(run()).await.unwrap() });
    if !ok {
        std::process::exit(1);
    }
}

async fn run() -> bool {
    // `cargo bench` passes `--bench`; nothing to filter in this small harness.
    let dir = tempfile::tempdir().unwrap();
    let quick = std::env::var_os("ENACT_BENCH_QUICK").is_some();
    let scale = if quick { 10 } else { 1 };
    println!("enact benchmarks (2 cores here; numbers move with machine load)\n");
    let mut verdicts = Vec::new();

    // In process.
    let fast = engine(&dir.path().join("nofsync"), false);
    let fs_write = bench_fs_write(&dir.path().join("nofsync/workspace/notes"), 1000 / scale);
    let gate = bench_gate(&fast).await;
    let read = bench_call(
        &fast,
        ("call read, fsync=false", "read"),
        2000 / scale,
        0,
        Duration::from_millis(3),
    )
    .await;
    let write = bench_call(
        &fast,
        ("call write, fsync=false", "save"),
        2000 / scale,
        0,
        Duration::MAX,
    )
    .await;
    let write = write.with_target(
        read.p50() + fs_write.p50(),
        format!(
            " (read {:.1?} + write alone {:.1?})",
            read.p50(),
            fs_write.p50()
        ),
    );
    fs_write.report();
    for s in [&gate, &read, &write] {
        verdicts.push(s.report());
    }

    // Through `enact serve`, against the floor.
    println!();
    let mcp_config = setup(&dir.path().join("mcp"), false, "");
    let [floor, mcp_read, mcp_write] = bench_mcp(&mcp_config, 4, 500 / scale).await;
    floor.report();
    let read_target = floor.p50() + Duration::from_micros(100);
    let mcp_read =
        mcp_read.with_target(read_target, format!(" (floor {:.1?} + 100µs)", floor.p50()));
    let write_target = mcp_read.p50() + fs_write.p50();
    let mcp_write = mcp_write.with_target(
        write_target,
        format!(
            " (read {:.1?} + write alone {:.1?})",
            mcp_read.p50(),
            fs_write.p50()
        ),
    );
    verdicts.push(mcp_read.report());
    verdicts.push(mcp_write.report());

    // Durable.
    println!();
    let durable = engine(&dir.path().join("fsync"), true);
    let [d_read, d_write, sync] = bench_durable(&durable, 4, 50 / scale.min(5)).await;
    sync.report();
    let sync3 = sync.p50() * 3;
    let d_read = d_read.with_target(
        sync3.mul_f64(1.3),
        format!(" (1.3 × 3 syncs of {:.1?})", sync.p50()),
    );
    let d_write = d_write.with_target(
        (sync3 + fs_write.p50()).mul_f64(1.3),
        format!(" (1.3 × (3 syncs + write alone {:.1?}))", fs_write.p50()),
    );
    verdicts.push(d_read.report());
    verdicts.push(d_write.report());

    // Scale.
    println!();
    let big_config = setup(&dir.path().join("big"), false, RATE_LIMIT);
    let filled = fill(&config(&big_config), BIG / scale);
    println!(
        "(built a journal of {} receipts through Store::append in {filled:.1?})",
        BIG / scale
    );
    let t = Instant::now();
    let big = engine_at(&big_config);
    let opened = t.elapsed();
    println!("(Store::open of that journal, in process: {opened:.1?})");
    let empty_config = setup(&dir.path().join("empty"), false, RATE_LIMIT);
    let (init_empty, rss_empty) = bench_initialize(
        &empty_config,
        20,
        "serve initialize, empty folder",
        Duration::from_millis(10),
    )
    .await;
    let (init_big, rss_big) = bench_initialize(
        &big_config,
        5,
        "serve initialize, 100k receipts",
        Duration::from_millis(500),
    )
    .await;
    let verify = bench_verify(&big_config, 3, BIG / scale).await;
    let empty = engine_at(&empty_config);
    let [rate_none, rate_many] = bench_rate(&empty, &big, 4, 500 / scale).await;
    let rate_many = rate_many.with_target(
        rate_none.p50().mul_f64(1.25),
        format!(" (0 in window {:.1?} + 25%)", rate_none.p50()),
    );
    verdicts.push(rate_none.report());
    verdicts.push(rate_many.report());
    verdicts.push(verify.report());
    verdicts.push(init_empty.report());
    verdicts.push(init_big.report());
    println!(
        "serve resident set once initialised: {:.1} MiB empty, {:.1} MiB at 100k receipts ({:.0} bytes per receipt)",
        mib(rss_empty),
        mib(rss_big),
        (rss_big.saturating_sub(rss_empty) * 1024) as f64 / (BIG / scale) as f64
    );

    // Memory over many calls.
    println!();
    let (rss, rate) = bench_memory(&mcp_config, 100_000 / scale as u64).await;
    let first = rss.first().map_or(0, |r| r.1);
    let last = rss.last().map_or(0, |r| r.1);
    let series: Vec<String> = rss
        .iter()
        .map(|(n, kib)| format!("{n}: {:.1} MiB", mib(*kib)))
        .collect();
    // Flat: at most 2 MiB more after 100k calls than after the first 1k.
    let growth = last.saturating_sub(first);
    println!(
        "serve memory (VmRSS) over pipelined read-only calls ({rate:.0} calls/s): {}  growth {:.1} MiB, target ≤ 2 MiB  {}",
        series.join(", "),
        mib(growth),
        verdict(growth <= 2048, growth <= 4096)
    );
    verdicts.push(growth <= 4096);
    !verdicts.contains(&false)
}
