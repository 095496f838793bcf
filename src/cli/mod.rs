//! The command line (SPEC §1): argument parsing and one function per subcommand. `main.rs`
//! only sets up logging, calls [`run`], and exits with its code.

mod approvals;
mod check;
mod http_token;
mod receipts;
mod recover;
mod rollback;
mod serve;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::engine::Engine;
use crate::registry::Registry;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

pub use crate::exit::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

#[derive(Debug, Parser)]
#[command(
    name = "enact",
    version,
    about = "An action firewall for AI agents: vetted workflows as MCP tools, a deterministic policy gate, signed receipts and rollback."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the configured workflows as MCP tools over stdio (or streamable HTTP with --http).
    Serve(ServeArgs),
    /// Validate the config without contacting any system; print what would be served.
    Check(ConfigArg),
    /// Write a commented starter enact.toml, a secret and a workspace folder.
    Init {
        /// Folder to initialise (default: the current folder).
        dir: Option<PathBuf>,
    },
    /// Inspect and verify receipts.
    #[command(subcommand)]
    Receipts(ReceiptsCommand),
    /// Roll a run back from its receipt.
    Rollback {
        /// The run to roll back.
        run_id: String,
        /// Print the inverse steps without running them.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a new bearer token for `serve --http`, and the [[http.clients]] lines with its SHA-256.
    HttpToken {
        /// The client's name (e.g. ci-bot).
        name: String,
        /// The actor this client acts as.
        #[arg(long)]
        email: String,
        /// The actor's role.
        #[arg(long, default_value = "unknown")]
        role: String,
    },
    /// Finish the records of runs interrupted by a crash (serve and rollback do this on start).
    Recover(ConfigArg),
    /// Answer the calls that wait for a human's approval, and grant or revoke approvals.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Run a self-contained demo: a BLOCK, a PASS and a ROLLBACK through the real MCP server.
    Demo {
        /// Keep the demo folder instead of removing it.
        #[arg(long)]
        keep: bool,
        /// Run act 3 on files even when PostgreSQL is available.
        #[arg(long)]
        no_postgres: bool,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Serve MCP streamable HTTP at http(s)://ADDR/mcp instead of stdio (e.g. 127.0.0.1:8787).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Config file (default: $ENACT_CONFIG, else ./enact.toml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ReceiptsCommand {
    /// List receipts, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        workflow: Option<String>,
        /// PASS, BLOCK, PARTIAL, PENDING, APPROVE, DENY, GRANT or REVOKE.
        #[arg(long)]
        decision: Option<String>,
        /// Print JSON: {"receipts": [...]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show one receipt and whether its signature verifies.
    Show {
        run_id: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Verify one receipt, or the whole journal (signatures, chain and head record).
    Verify {
        run_id: Option<String>,
        /// Also require that the chain still holds a receipt with this chain hash (a head hash
        /// kept elsewhere), so nothing up to it was removed or rewritten.
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write every receipt as DIR/<run_id>.json (pretty-printed, as `receipts show` prints it).
    Export {
        dir: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Import a receipts folder of the earlier layout (one <run_id>.json per receipt) into the
    /// journal, keeping seq, prev_hash and signatures.
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// After `verify` reported a truncated chain: append a signed record acknowledging it, so
    /// appends can resume.
    Repair {
        /// Required: say that the loss is accepted.
        #[arg(long)]
        accept_truncation: bool,
        /// Who acknowledges it (default: $ENACT_OPERATOR, else user@host).
        #[arg(long = "as", value_name = "EMAIL")]
        operator: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Create the tables of a Postgres journal ([receipts] dsn_env and schema); run by an owner.
    InitDb {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Copy the journal between backends, keeping every record and signature: the folder
    /// journal ([receipts] dir) into the database, or the database journal into the folder.
    Copy {
        /// Where to copy to: `postgres` or `files`. The target must be empty.
        #[arg(long, value_enum)]
        to: CopyTarget,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List requests waiting for approval (unanswered and unexpired), newest first.
    List {
        /// Print JSON: {"approvals": [{run_id, workflow, actor_email, plan, expires_at}]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show one request: its whole plan and what became of it.
    Show {
        id: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Approve a request: the agent may then run exactly its plan, once.
    Approve(AnswerArgs),
    /// Deny a request.
    Deny(AnswerArgs),
    /// Approve an actor's calls of a workflow for a while (at most 24h); prints the GRANT_ID.
    Grant {
        #[arg(long)]
        workflow: String,
        /// Only calls whose held steps are all this action.
        #[arg(long)]
        action: Option<String>,
        /// How long: 30m, 2h, … (at most 24h).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        #[arg(long)]
        reason: Option<String>,
        /// Who grants it (default: $ENACT_OPERATOR, else user@host).
        #[arg(long = "as", value_name = "EMAIL")]
        operator: Option<String>,
        /// The actor it is for (default: the config's [actor]; an HTTP client's email).
        #[arg(long, value_name = "EMAIL")]
        actor: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// End a grant early.
    Revoke {
        grant_id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Who revokes it (default: $ENACT_OPERATOR, else user@host).
        #[arg(long = "as", value_name = "EMAIL")]
        operator: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct AnswerArgs {
    /// The request's run id (from `enact approvals list`).
    pub id: String,
    #[arg(long)]
    pub reason: Option<String>,
    /// Who answers (default: $ENACT_OPERATOR, else user@host).
    #[arg(long = "as", value_name = "EMAIL")]
    pub operator: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// The target of `receipts copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CopyTarget {
    Postgres,
    Files,
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Serve(args) => match &args.http {
            None => serve::run(&args.config).await,
            Some(addr) => serve::run_http(&args.config, addr).await,
        },
        Command::HttpToken { name, email, role } => http_token::run(&name, &email, &role),
        Command::Check(c) => check::run(&c),
        Command::Init { dir } => crate::init::run(dir.as_deref().unwrap_or(Path::new("."))),
        Command::Receipts(cmd) => receipts::run(cmd),
        Command::Rollback {
            run_id,
            dry_run,
            config,
        } => rollback::run(&config, &run_id, dry_run).await,
        Command::Recover(c) => recover::run(&c).await,
        Command::Approvals(cmd) => approvals::run(cmd),
        Command::Demo { keep, no_postgres } => demo(keep, no_postgres).await,
    }
}

#[cfg(all(
    feature = "fake-github",
    feature = "fake-hubspot",
    feature = "fake-slack"
))]
async fn demo(keep: bool, no_postgres: bool) -> u8 {
    crate::demo::run(keep, no_postgres).await
}

#[cfg(not(all(
    feature = "fake-github",
    feature = "fake-hubspot",
    feature = "fake-slack"
)))]
async fn demo(_keep: bool, _no_postgres: bool) -> u8 {
    eprintln!(
        "error: this build has no demo (it was built without the `fake-github`, `fake-hubspot` and `fake-slack` features)"
    );
    EXIT_USAGE
}

/// The process environment, as the config loader wants it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads and validates the config, printing every error on failure.
pub fn load_config(arg: &ConfigArg) -> Result<Config, u8> {
    load_config_with(arg, config::Credentials::Required)
}

/// [`load_config`], choosing whether the systems' credentials must be set.
pub fn load_config_with(arg: &ConfigArg, credentials: config::Credentials) -> Result<Config, u8> {
    let path = config::resolve_path(arg.config.as_deref(), &process_env);
    config::load_with(&path, &process_env, credentials).map_err(|errors| {
        eprint!("{errors}");
        EXIT_USAGE
    })
}

/// Config → registry → store → engine, as `serve` and `rollback` need them.
pub fn build_engine(config: Config) -> Result<Arc<Engine>, u8> {
    let store = open_store(&config)?;
    let registry = Registry::build(config).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_USAGE
    })?;
    Ok(Arc::new(Engine::new(registry, store)))
}

/// The receipts store of a config.
pub fn open_store(config: &Config) -> Result<Store, u8> {
    open_store_with(config, Store::open)
}

/// How a file journal is opened: [`Store::open`] or [`Store::open_for_audit`].
pub type OpenFiles = fn(&Path, bool, Secret) -> Result<Store, StoreError>;

/// The receipts store of a config, a file journal opened by `open_files` ([`Store::open`], or
/// [`Store::open_for_audit`] for `receipts verify`); the Postgres journal always loads its
/// index.
pub fn open_store_with(config: &Config, open_files: OpenFiles) -> Result<Store, u8> {
    let opened = match config.receipts_backend {
        config::ReceiptsBackend::Files => {
            open_files(&config.receipts_dir, config.fsync, config.secret.clone())
        }
        config::ReceiptsBackend::Postgres => Store::open_postgres(
            &config.receipts_db.dsn,
            &config.receipts_db.schema,
            config.secret.clone(),
        ),
    };
    opened.map_err(|e| {
        eprintln!("error: {e}");
        EXIT_FAILED
    })
}

/// Who an operator is: `--as`, else `$ENACT_OPERATOR`, else the OS user `@` host.
pub fn operator_identity(given: Option<String>) -> String {
    given
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            std::env::var("ENACT_OPERATOR")
                .ok()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or_else(os_operator)
}

/// `user@host` of the OS user (the operator's identity when none is given).
pub fn os_operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{user}@{host}")
}
