//! Phase two of reading the config: every rule of SPEC §2, checked section by section so that
//! one run reports every problem (each with its location and, where useful, a hint), then the
//! validated [`Config`] built from the pieces.
//!
//! This file holds the entry points and the small sections (`actor`, `secret`, `receipts`,
//! `rollback`); `systems` and `workflows` (with the policies that name them) have their own
//! files.

mod approvals;
mod http;
mod hubspot;
mod slack;
mod systems;
mod workflows;

use std::path::{Component, Path, PathBuf};

use super::raw::{self, Problems, Section};
use super::{Config, ReceiptsBackend, ReceiptsDb};
use crate::kernel::context::Actor;
use crate::kernel::receipt::MacKey;
use crate::secret::Secret;

pub use super::error::ConfigError;

/// Every problem found, section by section (`actor`, `secret`, `receipts`, `rollback`,
/// `systems` by name, `policies`, `workflows`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub path: String,
    pub errors: Vec<ConfigError>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: {n} error{}",
            self.path,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The top-level keys of `enact.toml`.
const TOP_KEYS: &[&str] = &[
    "actor",
    "secret",
    "receipts",
    "rollback",
    "approvals",
    "http",
    "systems",
    "policies",
    "workflows",
];

/// The shortest signing secret accepted without `allow_insecure`.
const MIN_SECRET_CHARS: usize = 32;

/// Reads and validates a config file. `env` looks up environment variables (injectable for tests).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    load_with(path, env, Credentials::Required)
}

/// Whether the systems' credentials (`token_env`, `dsn_env`) must be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// `serve`, `check`, `rollback`: they may act on the systems.
    Required,
    /// `receipts list|show|verify`: they read the receipts folder only, so an operator can
    /// audit without holding the agent's tokens. Unset credentials become empty secrets,
    /// and such a config must never build connectors.
    Optional,
}

/// [`load`], choosing whether credentials must be set.
pub fn load_with(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    credentials: Credentials,
) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        path: path.display().to_string(),
        errors: vec![ConfigError {
            location: "file".into(),
            message: format!("cannot read `{}`: {e}", path.display()),
            hint: None,
        }],
    })?;
    load_str_with(&text, path, env, credentials)
}

/// Validates config text as if read from `path` (relative paths resolve against its folder).
pub fn load_str(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    load_str_with(text, path, env, Credentials::Required)
}

fn load_str_with(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    credentials: Credentials,
) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        path: path.display().to_string(),
        errors,
    };
    let table = raw::parse(text).map_err(|e| fail(vec![e]))?;
    let config_path = resolve(path);
    // Relative paths are relative to the folder the config was named in (a symlinked config
    // keeps its neighbours), while the file itself is compared with roots where it really is.
    let named_dir = match resolve_lexically(path).parent() {
        Some(parent) => parent.to_path_buf(),
        None => PathBuf::from("/"),
    };
    let dir = resolve(&named_dir);

    let mut p = Problems {
        credentials_optional: credentials == Credentials::Optional,
        ..Problems::default()
    };
    let top = Section::new("", &table);
    top.check_keys(TOP_KEYS, &mut p);
    let actor = actor(&top, env, &mut p);
    let (secret, secret_file) = secret(&top, &dir, env, &mut p);
    let (receipts_dir, fsync, receipts_backend, receipts_db) = receipts(&top, &dir, env, &mut p);
    let http = http::validate(&top, &dir, &mut p);
    let rollback_enabled = rollback(&top, &mut p);
    let approvals = approvals::validate(&top, &mut p);
    let places = systems::Places {
        config: &config_path,
        receipts: &receipts_dir,
        secret: secret_file.as_deref(),
    };
    let (mut systems, known) = systems::validate(&top, &dir, &places, env, &mut p);
    systems.sort_by(|a, b| a.name.cmp(&b.name));
    let names = workflows::names(&top);
    let policies = workflows::policies(&top, &names, &mut p);
    let workflows = workflows::validate(&top, &known, &mut p);
    check_rate_limit_keys(&policies, &workflows, &mut p);
    let policies = policies.into_iter().map(|(_, policy)| policy).collect();

    // The signing key is keyed once, here; a key HMAC refuses is a config error, never a
    // stand-in key.
    let mac_key = secret.as_ref().and_then(|s| {
        MacKey::new(s.expose().as_bytes())
            .map_err(|e| p.push("secret", e.to_string()))
            .ok()
    });
    match (actor, secret, mac_key) {
        (Some(actor), Some(secret), Some(mac_key)) if p.is_empty() => Ok(Config {
            path: config_path,
            actor,
            mac_key,
            secret,
            secret_file,
            receipts_dir,
            fsync,
            receipts_backend,
            receipts_db,
            http,
            rollback_enabled,
            approvals,
            systems,
            policies,
            workflows,
        }),
        _ => Err(fail(p.errors)),
    }
}

/// `[actor]`: the email is required (`$ENACT_ACTOR_EMAIL` overrides), the role defaults to
/// `unknown` (`$ENACT_ACTOR_ROLE` overrides). Wrong types in the file are reported even when
/// the environment overrides them.
fn actor(
    top: &Section<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<Actor> {
    let empty = toml::Table::new();
    let table = top.table("actor", p);
    // `actor = "x"` is already reported as a wrong type; "missing email" would only repeat it.
    let wrong_type = top.has("actor") && table.is_none();
    let s = Section::new("actor", table.unwrap_or(&empty));
    s.check_keys(&["email", "role"], p);
    let email = overridable(&s, "email", env("ENACT_ACTOR_EMAIL"), p);
    let role = overridable(&s, "role", env("ENACT_ACTOR_ROLE"), p);
    if email.is_none() && !wrong_type && !s.has("email") {
        s.missing("email", Some("set [actor] email, or $ENACT_ACTOR_EMAIL"), p);
    }
    Some(Actor {
        email: email?,
        role: role.unwrap_or_else(|| "unknown".into()),
    })
}

/// A string key that a non-empty environment variable overrides. An empty value in the file is
/// an error only when nothing overrides it.
fn overridable(
    s: &Section<'_>,
    key: &str,
    from_env: Option<String>,
    p: &mut Problems,
) -> Option<String> {
    let from_file = s.string(key, p);
    match (from_env.filter(|v| !v.trim().is_empty()), from_file) {
        (Some(v), _) => Some(v),
        (None, Some(v)) if !v.trim().is_empty() => Some(v.to_string()),
        (None, Some(_)) => {
            p.push(s.at(key), format!("`{key}` must not be empty"));
            None
        }
        (None, None) => None,
    }
}

/// `[secret]`: the HMAC key, from `file` if set (only the file), else from the env var `env`.
/// Returns the key and the absolute secret file. The key's value never enters a message.
fn secret(
    top: &Section<'_>,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> (Option<Secret>, Option<PathBuf>) {
    let empty = toml::Table::new();
    let s = Section::new("secret", top.table("secret", p).unwrap_or(&empty));
    s.check_keys(&["env", "file", "allow_insecure"], p);
    let var = if s.has("env") {
        s.non_empty_string("env", p)
    } else {
        Some("ENACT_SECRET")
    };
    let allow_insecure = s.boolean("allow_insecure", p).unwrap_or(false);
    let (value, file) = if s.has("file") {
        let Some(file) = s.non_empty_string("file", p) else {
            return (None, None);
        };
        let file = resolve(&dir.join(file));
        match std::fs::read_to_string(&file) {
            // The trailing newline an editor or `echo` leaves is not part of the key.
            Ok(text) => (text.trim_end_matches(['\n', '\r']).to_string(), Some(file)),
            Err(e) => {
                p.push(
                    s.at("file"),
                    format!("cannot read secret file `{}`: {e}", file.display()),
                );
                return (None, Some(file));
            }
        }
    } else {
        match var {
            Some(var) => (env(var).unwrap_or_default(), None),
            // A bad `env` key is already reported; "no signing secret" would only repeat it.
            None => return (None, None),
        }
    };
    if value.is_empty() {
        p.push_hint(
            "secret",
            format!(
                "no signing secret: set {} or [secret] file",
                var.unwrap_or("ENACT_SECRET")
            ),
            "`enact init` writes a random secret to .enact/secret",
        );
        return (None, file);
    }
    if value.chars().count() < MIN_SECRET_CHARS && !allow_insecure {
        p.push_hint(
            "secret",
            format!("the signing secret is shorter than {MIN_SECRET_CHARS} characters"),
            "use a longer secret (`enact init` writes 64 hex characters), or set [secret] allow_insecure = true (development only)",
        );
        return (None, file);
    }
    (Some(Secret::new(value)), file)
}

/// The default `[receipts] dsn_env`.
const RECEIPTS_DSN_ENV: &str = "ENACT_RECEIPTS_DSN";

/// `[receipts]`: the folder (default `receipts`, absolute), whether writes are fsynced, the
/// backend (`files` or `postgres`), and the database journal's DSN and schema (needed by the
/// `postgres` backend, and by `receipts copy` from either side).
fn receipts(
    top: &Section<'_>,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> (PathBuf, bool, ReceiptsBackend, ReceiptsDb) {
    let empty = toml::Table::new();
    let s = Section::new("receipts", top.table("receipts", p).unwrap_or(&empty));
    s.check_keys(&["dir", "fsync", "backend", "dsn_env", "schema"], p);
    let folder = match s.get("dir") {
        None => "receipts",
        Some(_) => s.non_empty_string("dir", p).unwrap_or("receipts"),
    };
    let backend = match s.get("backend") {
        None => ReceiptsBackend::Files,
        Some(_) => match s.string("backend", p) {
            Some("files") | None => ReceiptsBackend::Files,
            Some("postgres") => ReceiptsBackend::Postgres,
            Some(other) => {
                p.push_hint(
                    s.at("backend"),
                    format!(
                        "unknown receipts backend {}",
                        serde_json::Value::from(other)
                    ),
                    "use \"files\" (the default) or \"postgres\"",
                );
                ReceiptsBackend::Files
            }
        },
    };
    let dsn_env = match s.get("dsn_env") {
        None => RECEIPTS_DSN_ENV.to_string(),
        Some(_) => s
            .non_empty_string("dsn_env", p)
            .unwrap_or(RECEIPTS_DSN_ENV)
            .to_string(),
    };
    let schema = match s.get("schema") {
        None => "enact".to_string(),
        Some(_) => match s.non_empty_string("schema", p) {
            Some(name) if is_sql_name(name) => name.to_string(),
            Some(name) => {
                p.push_hint(
                    s.at("schema"),
                    format!(
                        "schema name {} is not a plain SQL name",
                        serde_json::Value::from(name)
                    ),
                    "use lower-case letters, digits and `_`, starting with a letter or `_` (at most 63)",
                );
                "enact".to_string()
            }
            None => "enact".to_string(),
        },
    };
    let dsn = match env(&dsn_env).filter(|v| !v.is_empty()) {
        Some(value) => Secret::new(value),
        None => {
            if backend == ReceiptsBackend::Postgres {
                p.push_hint(
                    s.at("dsn_env"),
                    format!("environment variable `{dsn_env}` is unset or empty"),
                    "set it to the DSN of the receipts database before starting enact",
                );
            }
            Secret::default()
        }
    };
    (
        resolve(&dir.join(folder)),
        s.boolean("fsync", p).unwrap_or(true),
        backend,
        ReceiptsDb {
            dsn_env,
            dsn,
            schema,
        },
    )
}

/// `[a-z_][a-z0-9_]{0,62}`: a schema name used unquoted-equivalent (and always quoted).
fn is_sql_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

/// `[rollback]`: off unless `enabled = true`.
fn rollback(top: &Section<'_>, p: &mut Problems) -> bool {
    let empty = toml::Table::new();
    let s = Section::new("rollback", top.table("rollback", p).unwrap_or(&empty));
    s.check_keys(&["enabled"], p);
    s.boolean("enabled", p).unwrap_or(false)
}

/// A path made absolute (against the current directory), `.` and `..` resolved, and symlinks
/// resolved in its longest existing prefix — so two spellings of one place compare equal
/// whether or not the place exists yet.
pub(super) fn resolve(path: &Path) -> PathBuf {
    let lexical = resolve_lexically(path);
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(real, |acc: PathBuf, part| acc.join(part));
        }
        match existing.file_name() {
            Some(name) => {
                rest.push(name.to_os_string());
                existing.pop();
            }
            None => return lexical,
        }
    }
}

/// A path made absolute against the current directory, `.` and `..` resolved, without
/// following symlinks.
fn resolve_lexically(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    };
    normalise(&absolute)
}

/// `.` and `..` resolved without touching the disk.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Names as `[A-Za-z0-9_.-]{1,64}` (workflow and system names).
pub(super) fn is_plain_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A `rate_limit` with `per` must name an input of every workflow it applies to; otherwise
/// every run would count under `null` and the limit would silently become global.
fn check_rate_limit_keys(
    policies: &[(usize, crate::kernel::policy::Policy)],
    workflows: &[crate::kernel::workflow::Workflow],
    p: &mut Problems,
) {
    for (i, policy) in policies {
        let crate::kernel::policy::PolicyKind::RateLimit { per: Some(per), .. } = &policy.kind
        else {
            continue;
        };
        for w in workflows.iter().filter(|w| policy.applies_to(&w.name)) {
            if !w.inputs.iter().any(|input| &input.name == per) {
                p.push_hint(
                    workflows::policy_location(&format!("policies[{i}]"), policy.kind.name()),
                    format!(
                        "parameter per must name an input of workflow `{}`, got {}",
                        w.name,
                        serde_json::Value::from(per.as_str())
                    ),
                    "scope the policy with `workflows = [...]` to workflows that have this input",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_resolves_dots() {
        assert_eq!(normalise(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalise(Path::new("/../a")), PathBuf::from("/a"));
    }

    #[test]
    fn resolve_keeps_the_missing_tail() {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        assert_eq!(
            resolve(&tmp.join("no-such-enact-dir/x/../y")),
            tmp.join("no-such-enact-dir/y")
        );
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("open_pr.v2-x"));
        assert!(!is_plain_name(""));
        assert!(!is_plain_name("a b"));
        assert!(!is_plain_name(&"a".repeat(65)));
    }
}
