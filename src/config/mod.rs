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
    pub rollback_enabled: bool,
    /// Sorted by name.
    pub systems: Vec<SystemConfig>,
    /// In config order.
    pub policies: Vec<Policy>,
    /// In config order.
    pub workflows: Vec<Workflow>,
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
}
