//! Fault injection for the crash tests: with `ENACT_TEST_CRASH_AT=<point>[:<n>]` in its
//! environment, the process aborts (no unwinding, no flushing, like `kill -9`) the n-th time
//! (default: the first) it reaches the named point. The kill-loop tests use it to die at exact
//! places of the write order (SPEC §5.5) besides killing at random times. Without the variable
//! a point costs one atomic load.
//!
//! Points: `intent` (the intent is recorded, no action yet), `step` (a step record is written,
//! its action not started), `action` (an action returned, the next step or the receipt not yet
//! written), `undo_step` and `undo` (the same for a rollback's undo steps).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn plan() -> Option<&'static (String, u64)> {
    PLAN.get_or_init(|| {
        let spec = std::env::var("ENACT_TEST_CRASH_AT").ok()?;
        Some(match spec.split_once(':') {
            Some((point, n)) => (point.to_owned(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        })
    })
    .as_ref()
}

/// Aborts the process here if the environment asks for it (see the module docs).
pub fn crash_point(name: &str) {
    if let Some((point, nth)) = plan()
        && point == name
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth
    {
        tracing::error!(point = name, "ENACT_TEST_CRASH_AT: aborting here");
        std::process::abort();
    }
}
