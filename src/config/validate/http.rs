//! `[http]` and `[[http.clients]]` (SPEC §10): who may call `serve --http`, and as whom.
//! Whether the listen address needs clients or TLS is checked by `serve --http`, which knows
//! the address.

use std::path::Path;

use super::super::raw::{Problems, Section};
use super::super::{DEFAULT_CLIENT_CONCURRENCY, HttpClient, HttpConfig, parse_size};
use super::{is_plain_name, resolve};
use crate::kernel::context::Actor;

const HTTP_KEYS: &[&str] = &[
    "allowed_origins",
    "tls_cert_file",
    "tls_key_file",
    "allow_plaintext",
    "max_body",
    "clients",
];
const CLIENT_KEYS: &[&str] = &["name", "token_sha256", "email", "role", "max_concurrent"];

pub(super) fn validate(top: &Section<'_>, dir: &Path, p: &mut Problems) -> HttpConfig {
    let empty = toml::Table::new();
    let s = Section::new("http", top.table("http", p).unwrap_or(&empty));
    s.check_keys(HTTP_KEYS, p);
    let mut http = HttpConfig::default();

    for origin in s.strings("allowed_origins", p).unwrap_or_default() {
        if is_origin(origin) {
            http.allowed_origins.push(origin.to_string());
        } else {
            p.push_hint(
                s.at("allowed_origins"),
                format!("not an origin: {}", serde_json::Value::from(origin)),
                "write scheme://host or scheme://host:port, without a path (e.g. \"https://app.example.com\")",
            );
        }
    }

    let cert = s.string("tls_cert_file", p).filter(|f| !f.is_empty());
    let key = s.string("tls_key_file", p).filter(|f| !f.is_empty());
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let cert = resolve(&dir.join(cert));
            let key = resolve(&dir.join(key));
            for (name, file) in [("tls_cert_file", &cert), ("tls_key_file", &key)] {
                if let Err(e) = std::fs::metadata(file) {
                    p.push(s.at(name), format!("cannot read `{}`: {e}", file.display()));
                }
            }
            http.tls = Some((cert, key));
        }
        (None, None) => {}
        (Some(_), None) => p.push(
            s.at("tls_key_file"),
            "tls_cert_file is set but tls_key_file is not: set both to serve HTTPS",
        ),
        (None, Some(_)) => p.push(
            s.at("tls_cert_file"),
            "tls_key_file is set but tls_cert_file is not: set both to serve HTTPS",
        ),
    }

    http.allow_plaintext = s.boolean("allow_plaintext", p).unwrap_or(false);

    match s.get("max_body") {
        None => {}
        Some(toml::Value::Integer(n)) if *n > 0 => {
            http.max_body = usize::try_from(*n).unwrap_or(usize::MAX);
        }
        Some(toml::Value::String(text)) if parse_size(text).is_some() => {
            http.max_body = parse_size(text).unwrap_or(http.max_body);
        }
        Some(other) => p.push_hint(
            s.at("max_body"),
            format!("not a size: {other}"),
            "write a positive size such as \"64KiB\" or \"2MiB\"",
        ),
    }

    let mut seen_names: Vec<String> = Vec::new();
    let mut seen_digests: Vec<([u8; 32], String)> = Vec::new();
    for (_, location, table) in s.array_of_tables("clients", p) {
        let c = Section::new(&location, table);
        c.check_keys(CLIENT_KEYS, p);
        let name = c.non_empty_string("name", p);
        if !c.has("name") {
            c.missing("name", None, p);
        }
        if let Some(name) = name {
            if !is_plain_name(name) {
                p.push(
                    c.at("name"),
                    format!(
                        "client name {} must match [A-Za-z0-9_.-]{{1,64}}",
                        serde_json::Value::from(name)
                    ),
                );
            } else if seen_names.iter().any(|n| n == name) {
                p.push(c.at("name"), format!("duplicate client name \"{name}\""));
            }
            seen_names.push(name.to_string());
        }
        let digest = match c.string("token_sha256", p) {
            None => {
                if !c.has("token_sha256") {
                    c.missing(
                        "token_sha256",
                        Some("`enact http-token NAME --email EMAIL` prints a token and this line"),
                        p,
                    );
                }
                None
            }
            Some(text) => match parse_digest(text) {
                Some(d) => Some(d),
                None => {
                    // Never echo the value: a token pasted here by mistake must not reach a log.
                    p.push_hint(
                        c.at("token_sha256"),
                        format!(
                            "expected the token's SHA-256 as 64 hex characters, got {} characters",
                            text.chars().count()
                        ),
                        "`enact http-token NAME --email EMAIL` prints the digest line; the token itself never goes into the config",
                    );
                    None
                }
            },
        };
        if let Some(d) = digest {
            if let Some((_, other)) = seen_digests.iter().find(|(x, _)| *x == d) {
                p.push(
                    c.at("token_sha256"),
                    format!("the same token digest as {other}: every client needs its own token"),
                );
            }
            seen_digests.push((d, location.clone()));
        }
        let email = c.non_empty_string("email", p);
        if !c.has("email") {
            c.missing("email", Some("the actor this client acts as"), p);
        }
        let role = match c.get("role") {
            None => Some("unknown"),
            Some(_) => c.non_empty_string("role", p),
        };
        let max_concurrent = match c.get("max_concurrent") {
            None => Some(DEFAULT_CLIENT_CONCURRENCY),
            Some(_) => c
                .integer("max_concurrent", "a positive integer", p)
                .and_then(|n| match usize::try_from(n) {
                    Ok(n) if (1..=4096).contains(&n) => Some(n),
                    _ => {
                        p.push(
                            c.at("max_concurrent"),
                            format!("max_concurrent must be between 1 and 4096, got {n}"),
                        );
                        None
                    }
                }),
        };
        if let (Some(name), Some(token_sha256), Some(email), Some(role), Some(max_concurrent)) =
            (name, digest, email, role, max_concurrent)
        {
            http.clients.push(HttpClient {
                name: name.to_string(),
                token_sha256,
                actor: Actor {
                    email: email.to_string(),
                    role: role.to_string(),
                },
                max_concurrent,
            });
        }
    }
    http
}

/// `scheme://host[:port]` with no path, or `null` (a browser's opaque origin).
fn is_origin(s: &str) -> bool {
    if s == "null" {
        return true;
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@'])
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// 64 hex characters (either case) as 32 bytes.
fn parse_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        for ok in ["https://a.example", "http://localhost:8080", "null"] {
            assert!(is_origin(ok), "{ok}");
        }
        for bad in [
            "",
            "a.example",
            "https://",
            "https://a/b",
            "https://a b",
            "*",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
