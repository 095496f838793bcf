//! The config file (SPEC §2), read in two phases: [`raw`] mirrors the TOML as closely as
//! possible; [`validate`] does every check (collecting all errors, each with its location and
//! a hint) and builds the validated [`Config`].

mod describe;
mod raw;
mod validate;

use std::path::{Path, PathBuf};

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

/// A validated config. Paths are absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself.
    pub path: PathBuf,
    pub actor: Actor,
    /// The HMAC key for receipts.
    pub secret: Secret,
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
    },
    Filesystem {
        root: PathBuf,
    },
}
