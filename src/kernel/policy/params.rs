//! The parameters of a `[[policies]]` entry (SPEC §2, §4): defaults applied, every value
//! type-checked, and every problem of an entry reported at once.
//!
//! Parameters arrive as JSON (the TOML entry without its `policy` and `workflows` keys).
//! Values are checked once here, so the policy functions can trust them:
//! times become minutes after midnight, windows become seconds, extensions get their leading
//! dot, and list entries that could never match anything (empty strings) are refused.
//!
//! [`to_json`] shows the parameters with defaults applied. Windows are shown in their
//! canonical form — the largest unit that divides them exactly (`"90m"`, `"1h"`, `"2d"`) — since
//! only the number of seconds is kept; times as `"HH:MM"`; a missing `per` as `""`.

use serde_json::{Map, Value, json};

use super::{POLICY_NAMES, PolicyKind};
use crate::kernel::plan::integer_value;

const DEFAULT_BRANCHES: &[&str] = &["main", "master"];
const DEFAULT_EXTENSIONS: &[&str] = &[".env", ".key", ".pem"];

/// Parses a built-in's parameters; `Err` lists every problem found.
pub fn parse(name: &str, params: &Map<String, Value>) -> Result<PolicyKind, Vec<String>> {
    let mut r = Reader {
        params,
        known: Vec::new(),
        errors: Vec::new(),
    };
    let kind = match name {
        "no_push_to_main" => PolicyKind::NoPushToMain {
            branches: r.list("branches", Some(DEFAULT_BRANCHES), branch_entry),
        },
        "require_branch_prefix" => PolicyKind::RequireBranchPrefix {
            prefix: r.string("prefix", Some("agent/")),
        },
        "max_files_per_commit" => PolicyKind::MaxFilesPerCommit {
            max: r.count("max", Some(50)),
        },
        "no_delete_branch" => PolicyKind::NoDeleteBranch,
        "no_merge_to_main" => PolicyKind::NoMergeToMain {
            branches: r.list("branches", Some(DEFAULT_BRANCHES), branch_entry),
        },
        "no_delete_row" => PolicyKind::NoDeleteRow,
        "no_delete_without_where" => PolicyKind::NoDeleteWithoutWhere,
        "no_update_without_where" => PolicyKind::NoUpdateWithoutWhere,
        "protect_tables" => PolicyKind::ProtectTables {
            tables: r.list("tables", None, table_entry),
        },
        "no_delete_file" => PolicyKind::NoDeleteFile,
        "restrict_paths" => PolicyKind::RestrictPaths {
            paths: r.list("paths", None, path_entry),
        },
        "block_extensions" => PolicyKind::BlockExtensions {
            extensions: r.list("extensions", Some(DEFAULT_EXTENSIONS), extension_entry),
        },
        "contractor_cannot_write_pii" => PolicyKind::ContractorCannotWritePii {
            fields: r.list("fields", None, name_entry),
        },
        "require_actor_role" => PolicyKind::RequireActorRole {
            roles: r.list("roles", None, name_entry),
        },
        "within_maintenance_window" => PolicyKind::WithinMaintenanceWindow {
            start: r.time("start"),
            end: r.time("end"),
        },
        "rate_limit" => {
            let max = r.count("max", None);
            let window = r.window("window", 3_600);
            let per = r.string("per", Some(""));
            PolicyKind::RateLimit {
                max,
                window,
                per: (!per.is_empty()).then_some(per),
            }
        }
        "require_approval" => {
            let actions = if r.params.contains_key("actions") {
                Some(r.list("actions", None, action_entry))
            } else {
                r.known.push("actions");
                None
            };
            if actions.as_ref().is_some_and(Vec::is_empty) {
                // An empty list would hold nothing: surely not what the operator meant.
                r.errors.push(
                    "parameter actions must name at least one action (leave it out to hold every plan)"
                        .into(),
                );
            }
            PolicyKind::RequireApproval {
                actions,
                irreversible: r.flag("irreversible", false),
            }
        }
        "no_duplicate_contacts" => PolicyKind::NoDuplicateContacts,
        "limit_tasks_per_contact" => {
            let max = r.count("max", Some(3));
            let (window, window_text) = r.window_as_written("window", 7 * 86_400, "7d");
            PolicyKind::LimitTasksPerContact {
                max,
                window,
                window_text,
            }
        }
        "require_channel_allowlist" => PolicyKind::RequireChannelAllowlist {
            channels: r.list("channels", None, channel_entry),
        },
        "block_dms" => PolicyKind::BlockDms,
        "no_mass_mentions" => PolicyKind::NoMassMentions,
        _ => {
            return Err(vec![format!(
                "unknown policy `{name}` (built-in policies: {})",
                POLICY_NAMES.join(", ")
            )]);
        }
    };
    r.finish(kind)
}

/// The parameters with defaults applied, for display (`enact check`, `enact://policies`).
pub fn to_json(kind: &PolicyKind) -> Value {
    match kind {
        PolicyKind::NoPushToMain { branches } | PolicyKind::NoMergeToMain { branches } => {
            json!({ "branches": branches })
        }
        PolicyKind::RequireBranchPrefix { prefix } => json!({ "prefix": prefix }),
        PolicyKind::MaxFilesPerCommit { max } => json!({ "max": max }),
        PolicyKind::NoDeleteBranch
        | PolicyKind::NoDeleteRow
        | PolicyKind::NoDeleteWithoutWhere
        | PolicyKind::NoUpdateWithoutWhere
        | PolicyKind::NoDeleteFile
        | PolicyKind::NoDuplicateContacts => json!({}),
        PolicyKind::LimitTasksPerContact {
            max, window_text, ..
        } => json!({ "max": max, "window": window_text }),
        PolicyKind::ProtectTables { tables } => json!({ "tables": tables }),
        PolicyKind::RestrictPaths { paths } => json!({ "paths": paths }),
        PolicyKind::BlockExtensions { extensions } => json!({ "extensions": extensions }),
        PolicyKind::ContractorCannotWritePii { fields } => json!({ "fields": fields }),
        PolicyKind::RequireActorRole { roles } => json!({ "roles": roles }),
        PolicyKind::RequireChannelAllowlist { channels } => json!({ "channels": channels }),
        PolicyKind::BlockDms | PolicyKind::NoMassMentions => json!({}),
        PolicyKind::WithinMaintenanceWindow { start, end } => {
            json!({ "start": format_time(*start), "end": format_time(*end) })
        }
        PolicyKind::RateLimit { max, window, per } => {
            json!({ "max": max, "window": format_window(*window), "per": per.as_deref().unwrap_or("") })
        }
        PolicyKind::RequireApproval {
            actions,
            irreversible,
        } => json!({ "actions": actions, "irreversible": irreversible }),
    }
}

/// Parses `30s`, `5m`, `1h`, `2d` into seconds: a positive whole number and one unit.
pub fn parse_window(s: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid window {s:?}: expected a positive whole number followed by s, m, h or d")
    };
    let unit_at = s.len().checked_sub(1).ok_or_else(bad)?;
    let (digits, unit) = s.split_at_checked(unit_at).ok_or_else(bad)?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    // `u64::from_str` would also take a leading `+`; only plain digits are a window.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match n.checked_mul(scale) {
        Some(secs) if secs > 0 => Ok(secs),
        _ => Err(bad()),
    }
}

/// Seconds in the largest unit that divides them exactly: 3600 → `1h`, 5400 → `90m`.
pub fn format_window(secs: u64) -> String {
    for (unit, scale) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs > 0 && secs.is_multiple_of(scale) {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

/// Minutes after midnight as `HH:MM`.
pub fn format_time(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `HH:MM` (or `H:MM`) from 00:00 to 23:59, as minutes after midnight.
fn parse_time(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let digits = |t: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Collects the parameters one by one, remembering which keys were read (the rest are
/// unknown) and every problem met, so that one pass reports them all.
struct Reader<'a> {
    params: &'a Map<String, Value>,
    known: Vec<&'static str>,
    errors: Vec<String>,
}

impl<'a> Reader<'a> {
    /// The value of `key`, or its default; `None` when it is missing and required (recorded).
    fn value(&mut self, key: &'static str, has_default: bool) -> Option<&'a Value> {
        self.known.push(key);
        let value = self.params.get(key);
        if value.is_none() && !has_default {
            self.errors.push(format!("missing parameter {key}"));
        }
        value
    }

    fn wrong(&mut self, key: &str, expected: &str, got: &Value) {
        self.errors.push(format!(
            "parameter {key} must be {expected}, got {}",
            shown(got)
        ));
    }

    fn string(&mut self, key: &'static str, default: Option<&str>) -> String {
        match self.value(key, default.is_some()) {
            None => default.unwrap_or_default().to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                self.wrong(key, "a string", other);
                String::new()
            }
        }
    }

    fn flag(&mut self, key: &'static str, default: bool) -> bool {
        match self.value(key, true) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.wrong(key, "true or false", other);
                default
            }
        }
    }

    fn count(&mut self, key: &'static str, default: Option<u64>) -> u64 {
        let Some(value) = self.value(key, default.is_some()) else {
            return default.unwrap_or_default();
        };
        match integer_value(value).and_then(|n| u64::try_from(n).ok()) {
            Some(n) => n,
            None => {
                self.wrong(key, "a non-negative integer", value);
                0
            }
        }
    }

    /// A list of strings, each checked (and possibly normalised) by `entry`.
    fn list(
        &mut self,
        key: &'static str,
        default: Option<&[&str]>,
        entry: fn(&str) -> Result<String, String>,
    ) -> Vec<String> {
        let Some(value) = self.value(key, default.is_some()) else {
            return default
                .unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect();
        };
        let items = match value {
            Value::Array(items) if items.iter().all(Value::is_string) => items,
            other => {
                self.wrong(key, "an array of strings", other);
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items.iter().filter_map(Value::as_str) {
            match entry(item) {
                Ok(v) => out.push(v),
                Err(why) => self
                    .errors
                    .push(format!("parameter {key}: entry {item:?} {why}")),
            }
        }
        out
    }

    fn time(&mut self, key: &'static str) -> u32 {
        let Some(value) = self.value(key, false) else {
            return 0;
        };
        match value.as_str().and_then(parse_time) {
            Some(minutes) => minutes,
            None => {
                self.wrong(key, "a time \"HH:MM\" from 00:00 to 23:59", value);
                0
            }
        }
    }

    fn window(&mut self, key: &'static str, default_secs: u64) -> u64 {
        self.window_as_written(key, default_secs, "").0
    }

    /// A window in seconds and as the config wrote it (`default_text` when absent), for
    /// reasons that quote it as configured.
    fn window_as_written(
        &mut self,
        key: &'static str,
        default_secs: u64,
        default_text: &str,
    ) -> (u64, String) {
        let Some(value) = self.value(key, true) else {
            return (default_secs, default_text.to_owned());
        };
        match value.as_str().map(|s| (parse_window(s), s)) {
            Some((Ok(secs), text)) => (secs, text.to_owned()),
            _ => {
                self.wrong(
                    key,
                    "a duration such as \"30s\", \"5m\", \"1h\" or \"2d\"",
                    value,
                );
                (default_secs, default_text.to_owned())
            }
        }
    }

    fn finish(mut self, kind: PolicyKind) -> Result<PolicyKind, Vec<String>> {
        let unknown: Vec<&String> = self
            .params
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()))
            .collect();
        for key in unknown {
            let expected = if self.known.is_empty() {
                "it takes no parameters".to_string()
            } else {
                format!(
                    "its parameters are {}",
                    self.known
                        .iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            self.errors
                .push(format!("unknown parameter {key} ({expected})"));
        }
        if self.errors.is_empty() {
            Ok(kind)
        } else {
            Err(self.errors)
        }
    }
}

/// A value as written, cut short if long, for messages.
fn shown(value: &Value) -> String {
    const MAX: usize = 60;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A non-empty name (role, column).
/// An action name of any connector (`merge_pr`, `delete_row`, …).
fn action_entry(s: &str) -> Result<String, String> {
    match crate::kernel::action::ActionName::parse(s) {
        Some(a) => Ok(a.as_str().to_string()),
        None => Err("is not an action of any connector".into()),
    }
}

fn name_entry(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("is empty".into())
    } else {
        Ok(s.to_string())
    }
}

/// A Slack conversation ID (`^[CGD][A-Z0-9]{8,}$`), checked at load.
fn channel_entry(s: &str) -> Result<String, String> {
    if crate::kernel::slack::is_channel_id(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a conversation ID (^[CGD][A-Z0-9]{{8,}}$)"
        ))
    }
}

/// A protected branch; kept as written (the policy normalises both sides when comparing).
fn branch_entry(s: &str) -> Result<String, String> {
    name_entry(s)
}

/// A table name: `table` or `schema.table`, optionally with `"quoted"` parts.
fn table_entry(s: &str) -> Result<String, String> {
    match super::db::TableName::parse(s) {
        Some(_) => Ok(s.to_string()),
        None => Err("is not a valid table name".into()),
    }
}

/// A directory relative to the system root; `""` and `"."` mean the whole root.
fn path_entry(s: &str) -> Result<String, String> {
    let path = super::fs::LexicalPath::new(s);
    if path.absolute {
        Err("must be relative to the system root".into())
    } else if path.escapes() {
        Err("leads outside the system root".into())
    } else {
        Ok(s.to_string())
    }
}

/// One file extension, stored with its leading dot (`pem` and `.pem` both mean `.pem`).
fn extension_entry(s: &str) -> Result<String, String> {
    let ext = if s.starts_with('.') {
        s.to_string()
    } else {
        format!(".{s}")
    };
    let body = &ext[1..];
    if body.is_empty() || body.contains(['.', '/']) || body.trim() != body {
        return Err("is not a single extension such as '.pem'".into());
    }
    Ok(ext)
}

#[cfg(test)]
mod tests;
