//! `type = "hubspot"` systems (SPEC-hubspot-slack §2): a private app token, the account the
//! token must belong to (`portal_id`), the contact properties agents may write.

use super::super::SystemSettings;
use super::super::raw::{Problems, Section};
use super::systems::credential;
use crate::kernel::hubspot::is_property_name;

/// The contact properties agents may write when `properties` is not given.
pub const DEFAULT_PROPERTIES: [&str; 5] = ["firstname", "lastname", "phone", "company", "jobtitle"];

pub(super) const KEYS: [&str; 5] = [
    "token_env",
    "base_url",
    "portal_id",
    "properties",
    "task_owner_id",
];

pub(super) fn hubspot(
    name: &str,
    s: &Section<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<SystemSettings> {
    let token = credential(name, s, "token_env", "HUBSPOT_TOKEN", env, p);
    let base_url = api_base_url(s, "https://api.hubapi.com", p);
    let portal_id = if s.has("portal_id") {
        positive(s, "portal_id", p)
    } else {
        s.missing(
            "portal_id",
            Some(
                "the HubSpot account (Hub ID) the token must belong to, e.g. portal_id = 12345678",
            ),
            p,
        );
        None
    };
    let task_owner_id = match s.get("task_owner_id") {
        None => Some(None),
        Some(_) => positive(s, "task_owner_id", p).map(Some),
    };
    let properties = properties(s, p);
    let (token_env, token) = token?;
    Some(SystemSettings::Hubspot {
        token_env,
        token,
        base_url: base_url?,
        portal_id: portal_id?,
        properties: properties?,
        task_owner_id: task_owner_id?,
    })
}

fn positive(s: &Section<'_>, key: &str, p: &mut Problems) -> Option<u64> {
    let n = s.integer(key, "a positive integer", p)?;
    let n = u64::try_from(n).ok().filter(|n| *n > 0);
    if n.is_none() {
        p.push(
            s.at(key),
            format!(
                "`{key}` must be a positive integer, got {}",
                s.get(key).map(ToString::to_string).unwrap_or_default()
            ),
        );
    }
    n
}

/// `properties`: names matching `^[a-z][a-z0-9_]{0,99}$`, never `email` (always implied).
fn properties(s: &Section<'_>, p: &mut Problems) -> Option<Vec<String>> {
    let Some(listed) = s.strings("properties", p) else {
        return (!s.has("properties")).then(|| DEFAULT_PROPERTIES.map(str::to_string).to_vec());
    };
    let mut ok = true;
    let mut out: Vec<String> = Vec::new();
    for name in listed {
        if name == "email" {
            ok = false;
            p.push_hint(
                s.at("properties"),
                "`properties` may not list `email`",
                "email is always implied: agents give it as the `email` argument",
            );
        } else if !is_property_name(name) {
            ok = false;
            p.push_hint(
                s.at("properties"),
                format!("property name `{name}` is not valid"),
                "HubSpot internal names: a lower-case letter, then up to 99 lower-case letters, digits or `_`",
            );
        } else if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    ok.then_some(out)
}

/// `base_url`: `https://…`, or `http://` on a loopback host only (the token would otherwise
/// travel in clear); no query or fragment; a path prefix is allowed. Returned without a
/// trailing slash, so request paths can be appended.
pub(super) fn api_base_url(s: &Section<'_>, default: &str, p: &mut Problems) -> Option<String> {
    if s.get("base_url").is_none() {
        return Some(default.to_string());
    }
    let url = s.string("base_url", p)?;
    match crate::connector::http::check_base_url(url) {
        Ok(()) => Some(url.trim_end_matches('/').to_string()),
        Err(why) => {
            p.push_hint(
                s.at("base_url"),
                why,
                format!("e.g. {default}, or http://127.0.0.1:<port> for a local fake"),
            );
            None
        }
    }
}
