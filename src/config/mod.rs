//! The config file (SPEC §2), read in two phases: [`raw`] mirrors the TOML as closely as
//! possible; [`validate`] does every check (collecting all errors, each with its location and
//! a hint) and builds the validated [`Config`].

mod describe;
mod error;
mod raw;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::kernel::action::SystemKind;
use crate::kernel::context::Actor;
use crate::kernel::policy::Policy;
use crate::kernel::workflow::Workflow;
use crate::secret::Secret;

pub use describe::describe;
pub use validate::{ConfigError, ConfigErrors, Credentials, load, load_str, load_with};

/// Where the config file is: `--config`, else `$ENACT_CONFIG`, else `./enact.toml`.
pub fn resolve_path(flag: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match (flag, env("ENACT_CONFIG")) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("enact.toml"),
    }
}

/// The default `statement_timeout` of a Postgres system.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `statement_timeout` accepted (PostgreSQL's limit is about 24.8 days).
pub const MAX_STATEMENT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Parses a duration written as a positive whole number and a unit: `500ms`, `30s`, `2m`,
/// `1h`. `None` for anything else.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }?;
    (millis > 0).then(|| Duration::from_millis(millis))
}

pub use crate::kernel::schema::format_duration;

impl<'a> From<&'a Config> for crate::connector::filesystem::OwnFiles<'a> {
    fn from(config: &'a Config) -> Self {
        crate::connector::filesystem::OwnFiles {
            receipts_dir: &config.receipts_dir,
            secret_file: config.secret_file.as_deref(),
            config_file: &config.path,
        }
    }
}

/// A validated config. Paths are absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself.
    pub path: PathBuf,
    pub actor: Actor,
    /// The HMAC key for receipts.
    pub secret: Secret,
    /// The HMAC key built from `secret` at load (receipts are verified with it).
    pub mac_key: crate::kernel::receipt::MacKey,
    /// `[secret] file`, if the key came from a file (never reachable by a filesystem system).
    pub secret_file: Option<PathBuf>,
    pub receipts_dir: PathBuf,
    pub fsync: bool,
    /// `[receipts] backend`: the folder journal (default) or a shared PostgreSQL journal.
    pub receipts_backend: ReceiptsBackend,
    pub receipts_db: ReceiptsDb,
    /// `[http]` and `[[http.clients]]` (SPEC §10), used by `serve --http`.
    pub http: HttpConfig,
    pub rollback_enabled: bool,
    /// `[approvals]` (SPEC §9).
    pub approvals: ApprovalsConfig,
    /// Sorted by name.
    pub systems: Vec<SystemConfig>,
    /// In config order.
    pub policies: Vec<Policy>,
    /// In config order.
    pub workflows: Vec<Workflow>,
}

/// Who may answer an approval request (SPEC §9 `[approvals] via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalVia {
    /// The operator's `enact approvals approve|deny`.
    Cli,
    /// The MCP client asks its user (`elicitation/create`, or `input_required` in 2026).
    Elicitation,
}

/// `[approvals]` (SPEC §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalsConfig {
    pub via: Vec<ApprovalVia>,
    /// A request (and its approval) is void after this.
    pub expires: Duration,
    /// How long a call waits for an operator's answer before returning APPROVAL_REQUIRED.
    pub wait: Duration,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            via: vec![ApprovalVia::Cli],
            expires: Duration::from_secs(3_600),
            wait: Duration::ZERO,
        }
    }
}

impl ApprovalVia {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalVia::Cli => "cli",
            ApprovalVia::Elicitation => "elicitation",
        }
    }
}

impl ApprovalsConfig {
    pub fn allows(&self, via: ApprovalVia) -> bool {
        self.via.contains(&via)
    }
}

/// The longest `[approvals] wait`.
pub const MAX_APPROVAL_WAIT: Duration = Duration::from_secs(15 * 60);
/// The longest grant (`enact approvals grant --for`).
pub const MAX_GRANT: Duration = Duration::from_secs(24 * 3_600);

/// Where the receipts journal lives (SPEC §5.3, §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptsBackend {
    /// `journal/` segments in `[receipts] dir`.
    Files,
    /// Tables under `[receipts] schema` in the database named by `[receipts] dsn_env`.
    Postgres,
}

/// The database journal: `[receipts] dsn_env` and `schema` (SPEC §10).
#[derive(Debug, Clone)]
pub struct ReceiptsDb {
    pub dsn_env: String,
    /// Empty when the variable is unset (an error only with `backend = "postgres"`).
    pub dsn: Secret,
    pub schema: String,
}

/// The default `[http] max_body`.
pub const DEFAULT_MAX_BODY: usize = 2 * 1024 * 1024;
/// The default number of requests one HTTP client may have running at once.
pub const DEFAULT_CLIENT_CONCURRENCY: usize = 16;

/// `[http]` (SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Exact `Origin` values allowed; a request with any other `Origin` gets 403.
    pub allowed_origins: Vec<String>,
    /// `(tls_cert_file, tls_key_file)`: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allow_plaintext: bool,
    /// Largest request body, in bytes.
    pub max_body: usize,
    pub clients: Vec<HttpClient>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            allowed_origins: Vec::new(),
            tls: None,
            allow_plaintext: false,
            max_body: DEFAULT_MAX_BODY,
            clients: Vec::new(),
        }
    }
}

/// One `[[http.clients]]` entry: a bearer token's SHA-256 and the actor it acts as.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpClient {
    pub name: String,
    pub token_sha256: [u8; 32],
    pub actor: Actor,
    /// Requests of this client running at once (`max_concurrent`, default 16).
    pub max_concurrent: usize,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The digest is not a secret, but there is no reason to print it either.
        f.debug_struct("HttpClient")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("max_concurrent", &self.max_concurrent)
            .finish_non_exhaustive()
    }
}

/// Parses a size written as a whole number and a unit: `512B`, `64KiB`, `2MiB`, `1GiB`
/// (`KB`/`MB`/`GB` are read as powers of 1000). `None` for anything else or zero.
pub fn parse_size(s: &str) -> Option<usize> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    let n: usize = digits.parse().ok()?;
    let scale: usize = match unit {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(scale).filter(|n| *n > 0)
}

/// One `[systems.<name>]` entry.
#[derive(Debug, Clone)]
pub struct SystemConfig {
    pub name: String,
    pub kind: SystemKind,
    /// The actions this system may run (the type's default set when omitted).
    pub allowed_actions: Vec<String>,
    pub settings: SystemSettings,
}

/// Type-specific settings of a system.
#[derive(Debug, Clone)]
pub enum SystemSettings {
    Github {
        token_env: String,
        token: Secret,
        base_url: String,
        repos: Vec<String>,
    },
    Postgres {
        dsn_env: String,
        dsn: Secret,
        max_rows: u64,
        /// Bounds every statement of an action or undo, waiting for row locks included.
        statement_timeout: Duration,
    },
    Filesystem {
        root: PathBuf,
    },
    Hubspot {
        token_env: String,
        token: Secret,
        /// No trailing slash.
        base_url: String,
        /// The HubSpot account the token must belong to (checked on first use).
        portal_id: u64,
        /// The contact properties agents may write and `find_contact` returns.
        properties: Vec<String>,
        /// The `hubspot_owner_id` of every task this system creates.
        task_owner_id: Option<u64>,
    },
    Slack {
        token_env: String,
        token: Secret,
        base_url: String,
        /// The workspace the token must belong to (`auth.test` → `team_id`).
        team_id: String,
        /// Conversation IDs this system may post in; `["*"]` = any the bot can reach.
        channels: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_millis(ms)),
                "{text}"
            );
            assert_eq!(format_duration(Duration::from_millis(ms)), text);
        }
        for bad in [
            "",
            "30",
            "s",
            "0s",
            "-1s",
            "1.5s",
            "30 s",
            "2d",
            "1S",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("2MiB"), Some(2 * 1024 * 1024));
        assert_eq!(parse_size("10B"), Some(10));
        assert_eq!(parse_size("1KB"), Some(1000));
        for bad in ["", "2", "MiB", "0MiB", "2 MiB", "2mib", "-1KiB", "1.5MiB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
