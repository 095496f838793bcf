//! STUB: to be implemented.

use super::Outcome;
use crate::kernel::context::Context;

pub fn no_push_to_main(_branches: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn require_branch_prefix(_prefix: &str, ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn max_files_per_commit(_max: u64, ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn no_delete_branch(ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn no_merge_to_main(_branches: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}
