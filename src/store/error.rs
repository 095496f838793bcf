//! Why a store operation failed.

use std::io;
use std::path::Path;

use crate::kernel::receipt::SigningError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `Invalid run_id: '<id>'`
    #[error("Invalid run_id: '{0}'")]
    InvalidRunId(String),
    /// `No receipt found for run_id: <id>`
    #[error("No receipt found for run_id: {0}")]
    NotFound(String),
    /// The record exists but is not a valid receipt (bad JSON, duplicate keys).
    #[error("receipt `{run_id}` is invalid: {reason}")]
    Invalid { run_id: String, reason: String },
    /// The run already has a receipt (recovery racing another process, or a reused id).
    #[error("run `{0}` already has a receipt")]
    Duplicate(String),
    /// The chain was truncated or rewound: appends wait for `receipts repair`.
    #[error(
        "the receipts chain is truncated or its head record is damaged ({0}); appends are refused until an operator runs `enact receipts repair --accept-truncation`"
    )]
    Truncated(String),
    /// A receipts folder of the earlier layout, not migrated yet.
    #[error(
        "receipts folder `{0}` holds receipts in the earlier layout (one file per run): run `enact receipts migrate` first"
    )]
    Legacy(String),
    /// Rate counts cannot be taken (the journal holds receipts whose signature does not
    /// verify), so a `rate_limit` policy fails closed; the message is the one the gate gets.
    #[error("{0}")]
    Uncountable(String),
    /// An approval operation refused (SPEC §9); the message is the product's.
    #[error(transparent)]
    Approval(#[from] super::approvals::Refusal),
    /// A record could not be signed (never written unsigned or with a stand-in key).
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error("receipts folder `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl StoreError {
    pub(super) fn io(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
