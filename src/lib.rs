//! Enact: an action firewall for AI agents.
//!
//! Data flows one way: `enact.toml` → [`config`] (parse, validate every error at once) →
//! [`registry`] (immutable) → an MCP `tools/call` → [`engine`] builds a [`kernel::plan`] →
//! [`kernel::policy`] gate → (PASS) [`connector`]s run the plan → a signed
//! [`kernel::receipt`] → [`store`]. Rollback loads a receipt, verifies it, and runs its
//! inverse through the same engine.

pub mod cli;
pub mod config;
pub mod connector;
#[cfg(all(
    feature = "fake-github",
    feature = "fake-hubspot",
    feature = "fake-slack"
))]
pub mod demo;
pub mod engine;
pub mod exit;
#[cfg(feature = "fake-github")]
pub mod fake_github;
#[cfg(feature = "fake-http")]
pub mod fake_http;
#[cfg(feature = "fake-hubspot")]
pub mod fake_hubspot;
#[cfg(feature = "fake-slack")]
pub mod fake_slack;
pub mod faults;
pub mod init;
pub mod kernel;
pub mod mcp;
pub mod registry;
pub mod sandbox;
pub mod secret;
pub mod store;
