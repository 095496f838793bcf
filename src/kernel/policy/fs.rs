//! STUB: to be implemented.

use super::Outcome;
use crate::kernel::context::Context;

pub fn no_delete_file(ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn restrict_paths(_paths: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn block_extensions(_extensions: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}
