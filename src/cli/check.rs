//! `enact check`: validate the config and print what would be served.

use super::{ConfigArg, EXIT_OK, load_config};

pub fn run(arg: &ConfigArg) -> u8 {
    match load_config(arg) {
        Ok(config) => {
            print!("{}", crate::config::describe(&config));
            EXIT_OK
        }
        Err(code) => code,
    }
}
