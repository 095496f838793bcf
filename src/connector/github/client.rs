//! The octocrab client and the names that reach its URLs.
//!
//! The client is built on first use, not when the config is loaded: octocrab's `build()`
//! spawns its request-buffer worker on the current Tokio runtime (so it cannot run outside
//! one) and loads the system's root certificates (which a config check must not depend on).
//!
//! No retries, ever: octocrab 0.54 is compiled without its `retry` feature — `RetryConfig`
//! and the `RetryLayer` in its `OctocrabBuilder::build` exist only under
//! `#[cfg(feature = "retry")]` — and without `follow-redirect` and `jwt` (whose installation
//! path re-sends a request after a 401). The only re-send left is hyper-util's pool retrying
//! a request that never started being written to a stale pooled connection, which GitHub
//! therefore never saw. So each write is one HTTP request.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use octocrab::Octocrab;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::kernel::plan::validate_repo;
use crate::secret::Secret;

/// Bytes of a branch name kept as-is in a URL path: RFC 3986 unreserved characters and the
/// `/` that separates ref components. Everything else is percent-encoded, so a (validated)
/// branch name can only ever name a ref, never reshape the path.
const REF_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for a slow merge; a write that times out is reported, never re-sent.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A lazily built octocrab client for one API root and token.
pub(super) struct Client {
    base_url: String,
    token: Secret,
    octocrab: OnceLock<Octocrab>,
}

impl Client {
    /// Checks `base_url` (an `http://` or `https://` URL) without building anything.
    pub(super) fn new(base_url: &str, token: &Secret) -> Result<Client, String> {
        let has_scheme = base_url.starts_with("https://") || base_url.starts_with("http://");
        let parses = Octocrab::builder().base_uri(base_url).is_ok();
        if !has_scheme || !parses || base_url.contains(['?', '#']) {
            return Err(format!(
                "invalid GitHub base_url '{base_url}': it must be an http:// or https:// URL"
            ));
        }
        Ok(Client {
            base_url: base_url.to_string(),
            token: token.clone(),
            octocrab: OnceLock::new(),
        })
    }

    pub(super) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The client, built on first use (inside the Tokio runtime that will drive it).
    pub(super) fn get(&self) -> Result<&Octocrab, String> {
        if let Some(octocrab) = self.octocrab.get() {
            return Ok(octocrab);
        }
        let built = Octocrab::builder()
            .base_uri(self.base_url.as_str())
            .map_err(|_| format!("invalid GitHub base_url '{}'", self.base_url))?
            .personal_token(self.token.expose().to_string())
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(IO_TIMEOUT))
            .set_write_timeout(Some(IO_TIMEOUT))
            .build()
            // The error names what failed (e.g. no root certificates); it never holds the token.
            .map_err(|e| format!("cannot set up the GitHub client for {}: {e}", self.base_url))?;
        Ok(self.octocrab.get_or_init(|| built))
    }
}

/// A validated `owner/name`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    pub(super) fn parse(s: &str) -> Result<RepoName, String> {
        validate_repo(s)?;
        let (owner, name) = s
            .split_once('/')
            .ok_or_else(|| format!("repo '{s}' is not of the form owner/name"))?;
        Ok(RepoName {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// A branch name as it goes into a URL path (`…/git/ref/heads/<this>`).
pub(super) fn ref_path(branch: &str) -> String {
    utf8_percent_encode(branch, REF_PATH).to_string()
}

/// The first 7 characters of a sha, as git shows them.
pub(super) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_paths_keep_plain_names_and_encode_the_rest() {
        assert_eq!(ref_path("agent/fix-1_a.b"), "agent/fix-1_a.b");
        assert_eq!(ref_path("agent/é\"<>"), "agent/%C3%A9%22%3C%3E");
    }

    #[test]
    fn base_urls_must_be_http() {
        let t = Secret::new("t");
        assert!(Client::new("https://api.github.com", &t).is_ok());
        assert!(Client::new("http://127.0.0.1:1234/api/v3", &t).is_ok());
        for bad in [
            "ftp://x",
            "api.github.com",
            "http://x/?a=b",
            "http://bad host",
        ] {
            let err = Client::new(bad, &t).err().unwrap_or_default();
            assert!(
                err.contains(&format!("invalid GitHub base_url '{bad}'")),
                "{bad}: {err}"
            );
        }
    }
}
