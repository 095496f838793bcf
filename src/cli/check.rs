//! `enact check`: validate the config and print what would be served.

use super::{ConfigArg, EXIT_OK, EXIT_USAGE, load_config};
use crate::registry::Registry;

pub fn run(arg: &ConfigArg) -> u8 {
    let config = match load_config(arg) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // Building the connectors contacts no system but parses what only they understand (a
    // DSN's options, a TLS set-up), so `check` refuses exactly what `serve` would refuse.
    let description = crate::config::describe(&config);
    // Named as the user named it, like the config errors.
    let path = crate::config::resolve_path(arg.config.as_deref(), &super::process_env)
        .display()
        .to_string();
    match Registry::build(config) {
        Ok(_) => {
            print!("{description}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("{path}: 1 error\n  - {e}");
            EXIT_USAGE
        }
    }
}
