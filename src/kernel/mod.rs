//! The pure kernel: plan building, the policy gate, receipts and inverse plans.
//!
//! Invariant: nothing here does I/O, reads the clock or draws randomness — `now` and run ids
//! are passed in. `tests/it/invariants.rs` scans these sources to keep it so.

pub mod action;
pub mod approval;
pub mod context;
pub mod hubspot;
pub mod jcs;
pub mod plan;
pub mod policy;
pub mod receipt;
pub mod rollback;
pub mod schema;
pub mod slack;
pub mod typed;
pub mod workflow;
