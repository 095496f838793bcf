//! STUB: to be implemented.

use super::Outcome;
use crate::kernel::context::Context;

pub fn require_actor_role(_roles: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn within_maintenance_window(
    _start: u32,
    _end: u32,
    ctx: &Context<'_>,
) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}

pub fn rate_limit(_max: u64, _index: usize, ctx: &Context<'_>) -> Result<Outcome, String> {
    let _ = ctx;
    Err("not implemented".into())
}
