//! `[systems.<name>]`: each a named connector of one type with its settings, credentials (read
//! from the environment, never printed) and `allowed_actions`.

use std::path::{Path, PathBuf};

use super::super::raw::{Problems, Section, wrong_type};
use super::super::{SystemConfig, SystemSettings};
use super::{is_plain_name, resolve};
use crate::kernel::action::SystemKind;
use crate::kernel::plan::validate_repo;
use crate::secret::Secret;

/// The places a filesystem root must keep out of reach (absolute, resolved).
pub(super) struct Places<'a> {
    pub config: &'a Path,
    pub receipts: &'a Path,
    pub secret: Option<&'a Path>,
}

/// What workflows may rely on about a system, even one with errors (so that a broken system
/// does not also produce a cascade of "unknown system" errors in the steps that use it).
#[derive(Debug, Clone)]
pub(super) struct Known {
    pub name: String,
    /// `None`: the type is missing or unknown; steps on it are not checked further.
    pub kind: Option<SystemKind>,
    /// The valid entries of `allowed_actions`.
    pub allowed: Vec<String>,
}

/// Validates every system. Returns the valid ones (sorted by name) and what is known about all.
pub(super) fn validate(
    top: &Section<'_>,
    dir: &Path,
    places: &Places<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> (Vec<SystemConfig>, Vec<Known>) {
    let Some(table) = top.table("systems", p) else {
        return (Vec::new(), Vec::new());
    };
    let mut systems = Vec::new();
    let mut known = Vec::new();
    for (name, value) in table {
        let path = format!("systems.{name}");
        if !is_plain_name(name) {
            p.push_hint(
                &path,
                format!("invalid system name `{name}`"),
                "use 1 to 64 letters, digits, `_`, `.` or `-`",
            );
        }
        let toml::Value::Table(t) = value else {
            wrong_type(&path, "a table", value, p);
            known.push(Known {
                name: name.clone(),
                kind: None,
                allowed: Vec::new(),
            });
            continue;
        };
        let before = p.errors.len();
        let s = Section::new(&path, t);
        let (info, system) = system(name, &s, dir, places, env, p);
        known.push(info);
        if let Some(system) = system.filter(|_| p.errors.len() == before) {
            systems.push(system);
        }
    }
    (systems, known)
}

fn system(
    name: &str,
    s: &Section<'_>,
    dir: &Path,
    places: &Places<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> (Known, Option<SystemConfig>) {
    let types = SystemKind::ALL.map(SystemKind::as_str).join(", ");
    let kind = match s.string("type", p) {
        None => {
            if !s.has("type") {
                s.missing("type", Some(&format!("type is one of: {types}")), p);
            }
            None
        }
        Some(t) => {
            let kind = SystemKind::parse(t);
            if kind.is_none() {
                p.push_hint(
                    s.at("type"),
                    format!("unknown system type `{t}`"),
                    format!("valid types: {types}"),
                );
            }
            kind
        }
    };
    let Some(kind) = kind else {
        return (
            Known {
                name: name.to_string(),
                kind: None,
                allowed: Vec::new(),
            },
            None,
        );
    };
    let mut keys = vec!["type", "allowed_actions"];
    keys.extend(match kind {
        SystemKind::Github => ["token_env", "base_url", "repos"].as_slice(),
        SystemKind::Postgres => &["dsn_env", "max_rows", "statement_timeout"],
        SystemKind::Filesystem => &["root"],
        SystemKind::Hubspot => super::hubspot::KEYS.as_slice(),
        SystemKind::Slack => &["token_env", "base_url", "team_id", "channels"],
    });
    s.check_keys(&keys, p);
    let allowed = allowed_actions(kind, s, p);
    let settings = match kind {
        SystemKind::Github => github(name, s, env, p),
        SystemKind::Postgres => postgres(name, s, env, p),
        SystemKind::Filesystem => filesystem(s, dir, places, p),
        SystemKind::Hubspot => super::hubspot::hubspot(name, s, env, p),
        SystemKind::Slack => super::slack::slack(name, s, env, p),
    };
    let info = Known {
        name: name.to_string(),
        kind: Some(kind),
        allowed: allowed.clone(),
    };
    let config = settings.map(|settings| SystemConfig {
        name: name.to_string(),
        kind,
        allowed_actions: allowed,
        settings,
    });
    (info, config)
}

/// `allowed_actions`: omitted → every action of the type; `[]` → nothing. Duplicates are
/// dropped; entries that are not actions of the type are reported.
fn allowed_actions(kind: SystemKind, s: &Section<'_>, p: &mut Problems) -> Vec<String> {
    let all = kind.actions();
    let Some(listed) = s.strings("allowed_actions", p) else {
        if s.has("allowed_actions") {
            return Vec::new();
        }
        return all.iter().map(|a| a.to_string()).collect();
    };
    let mut out: Vec<String> = Vec::new();
    for action in listed {
        if !all.contains(&action) {
            p.push_hint(
                s.at("allowed_actions"),
                format!("`{action}` is not a {kind} action"),
                format!("{kind} actions: {}", all.join(", ")),
            );
        } else if !out.iter().any(|a| a == action) {
            out.push(action.to_string());
        }
    }
    out
}

/// Reads a credential from the environment variable named by `key` (default `default`).
/// Only the variable's name ever appears in a message.
pub(super) fn credential(
    system: &str,
    s: &Section<'_>,
    key: &str,
    default: &str,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<(String, Secret)> {
    let var = if s.has(key) {
        s.non_empty_string(key, p)?
    } else {
        default
    };
    match env(var).filter(|v| !v.is_empty()) {
        Some(value) => Some((var.to_string(), Secret::new(value))),
        None if p.credentials_optional => Some((var.to_string(), Secret::default())),
        None => {
            p.push_hint(
                s.at(key),
                format!("environment variable `{var}` is unset or empty"),
                format!("set it to the credential of system `{system}` before starting enact"),
            );
            None
        }
    }
}

fn github(
    name: &str,
    s: &Section<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<SystemSettings> {
    let token = credential(name, s, "token_env", "GITHUB_TOKEN", env, p);
    let base_url = match s.get("base_url") {
        None => Some("https://api.github.com".to_string()),
        Some(_) => s.string("base_url", p).and_then(|url| {
            let ok = ["https://", "http://"].iter().any(|scheme| {
                url.strip_prefix(scheme)
                    .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
            }) && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                p.push_hint(
                    s.at("base_url"),
                    format!("`base_url` must be an http(s) URL, got {url:?}"),
                    "e.g. https://api.github.com, or https://github.example.com/api/v3",
                );
            }
            // octocrab joins paths onto the root itself; a trailing slash would double them.
            ok.then(|| url.trim_end_matches('/').to_string())
        }),
    };
    let repos = repos(s, p);
    let (token_env, token) = token?;
    Some(SystemSettings::Github {
        token_env,
        token,
        base_url: base_url?,
        repos: repos?,
    })
}

/// `repos`: required, non-empty, each `owner/name` or `owner/*`.
fn repos(s: &Section<'_>, p: &mut Problems) -> Option<Vec<String>> {
    let hint = "list the repos this system may touch, e.g. repos = [\"acme/app\", \"acme-labs/*\"]";
    if !s.has("repos") {
        s.missing("repos", Some(hint), p);
        return None;
    }
    let listed = s.strings("repos", p)?;
    if listed.is_empty()
        && s.get("repos")
            .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
    {
        p.push_hint(s.at("repos"), "`repos` must not be empty", hint);
        return None;
    }
    let mut ok = true;
    for repo in &listed {
        let valid = match repo.strip_suffix("/*") {
            // Any valid name stands in for `*` so that only the owner is judged.
            Some(owner) => validate_repo(&format!("{owner}/x")).is_ok(),
            None => validate_repo(repo).is_ok(),
        };
        if !valid {
            ok = false;
            p.push_hint(
                s.at("repos"),
                format!("repo `{repo}` is not of the form owner/name or owner/*"),
                "owners are letters, digits and `-`; names are letters, digits, `-`, `_` and `.`",
            );
        }
    }
    ok.then(|| listed.iter().map(|r| r.to_string()).collect())
}

fn postgres(
    name: &str,
    s: &Section<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<SystemSettings> {
    let dsn = credential(name, s, "dsn_env", "DATABASE_URL", env, p);
    let max_rows = match s.get("max_rows") {
        None => Some(100),
        Some(_) => s
            .integer("max_rows", "a positive integer", p)
            .and_then(|n| {
                if n < 1 {
                    p.push(
                        s.at("max_rows"),
                        format!("`max_rows` must be a positive integer, got {n}"),
                    );
                }
                u64::try_from(n).ok().filter(|n| *n > 0)
            }),
    };
    let statement_timeout = match s.get("statement_timeout") {
        None => Some(crate::config::DEFAULT_STATEMENT_TIMEOUT),
        Some(_) => statement_timeout(s, p),
    };
    let (dsn_env, dsn) = dsn?;
    Some(SystemSettings::Postgres {
        dsn_env,
        dsn,
        max_rows: max_rows?,
        statement_timeout: statement_timeout?,
    })
}

/// `statement_timeout`: a duration such as `"500ms"`, `"30s"` or `"2m"`, from 1ms to 24h.
fn statement_timeout(s: &Section<'_>, p: &mut Problems) -> Option<std::time::Duration> {
    let value = s.get("statement_timeout")?;
    let max = crate::config::MAX_STATEMENT_TIMEOUT;
    let parsed = value.as_str().and_then(crate::config::parse_duration);
    match parsed {
        Some(d) if d <= max => return Some(d),
        Some(_) => p.push(
            s.at("statement_timeout"),
            format!(
                "`statement_timeout` must be at most {}, got {value}",
                crate::config::format_duration(max)
            ),
        ),
        None => p.push_hint(
            s.at("statement_timeout"),
            format!(
                "`statement_timeout` must be a duration such as \"500ms\", \"30s\" or \"2m\", got {value}"
            ),
            "a positive whole number followed by ms, s, m or h",
        ),
    }
    None
}

/// `root`: required, an existing folder that keeps the receipts folder, the secret file and the
/// config file out of reach (it may neither contain them nor, for receipts, lie inside them).
fn filesystem(
    s: &Section<'_>,
    dir: &Path,
    places: &Places<'_>,
    p: &mut Problems,
) -> Option<SystemSettings> {
    if !s.has("root") {
        s.missing(
            "root",
            Some("the folder this system is confined to, e.g. root = \"workspace\""),
            p,
        );
        return None;
    }
    let root = resolve(&dir.join(s.non_empty_string("root", p)?));
    let at = s.at("root");
    match std::fs::metadata(&root) {
        Err(_) => {
            p.push_hint(
                &at,
                format!("root `{}` does not exist", root.display()),
                "create the folder first",
            );
            return None;
        }
        Ok(m) if !m.is_dir() => {
            p.push(&at, format!("root `{}` is not a directory", root.display()));
            return None;
        }
        Ok(_) => {}
    }
    let before = p.errors.len();
    let shown = root.display();
    if places.receipts.starts_with(&root) {
        p.push_hint(
            &at,
            format!(
                "root `{shown}` contains the receipts folder `{}`",
                places.receipts.display()
            ),
            "keep the receipts folder outside every filesystem root",
        );
    } else if root.starts_with(places.receipts) {
        p.push_hint(
            &at,
            format!(
                "root `{shown}` lies inside the receipts folder `{}`",
                places.receipts.display()
            ),
            "keep the receipts folder outside every filesystem root",
        );
    }
    if let Some(secret) = places.secret.filter(|f| f.starts_with(&root)) {
        p.push_hint(
            &at,
            format!(
                "root `{shown}` contains the secret file `{}`",
                secret.display()
            ),
            "keep the secret file outside every filesystem root",
        );
    }
    if places.config.starts_with(&root) {
        p.push_hint(
            &at,
            format!(
                "root `{shown}` contains the config file `{}`",
                places.config.display()
            ),
            "keep the config file outside every filesystem root, e.g. root = \"workspace\"",
        );
    }
    (p.errors.len() == before).then(|| SystemSettings::Filesystem {
        root: PathBuf::from(&root),
    })
}
