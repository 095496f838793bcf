//! STUB: to be implemented.

use super::Outcome;
use crate::kernel::context::Context;

pub fn no_delete_row(ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn no_delete_without_where(ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn no_update_without_where(ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn protect_tables(_tables: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn contractor_cannot_write_pii(
    _fields: &[String],
    ctx: &Context<'_>,
) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}
