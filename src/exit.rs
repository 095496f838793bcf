//! Exit codes (SPEC §1), shared by the CLI, `enact init` and `enact demo`.

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
