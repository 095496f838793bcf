//! Integration tests: one binary (faster to build), one module per area. The policy
//! scenarios (`tests/fixtures/policies/*.json`) run as unit tests of `kernel::policy`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test that cannot set up or finds a wrong value fails by panicking"
)]

mod approvals;
mod cli;
mod config;
mod engine;
pub mod faults;
mod filesystem;
mod github;
mod github_mcp;
pub mod http;
mod http_rpc;
mod hubspot;
mod hubspot_faults;
mod invariants;
pub mod journal;
pub mod mcp;
pub mod pg_journal;
mod postgres;
mod postgres_mcp;
pub mod protocol;
mod setup;
mod slack;
mod slack_mcp;
mod steplog;
mod store;
