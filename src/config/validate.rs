//! STUB: to be implemented.
use std::path::Path;

use super::Config;

/// One problem in a config file: where it is, what is wrong, and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// e.g. `workflows[2].steps[0].action`, or `line 3, column 5` for TOML syntax.
    pub location: String,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub path: String,
    pub errors: Vec<ConfigError>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}: {} error(s)", self.path, self.errors.len())?;
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates a config file. `env` looks up environment variables (injectable for tests).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        path: path.display().to_string(),
        errors: vec![ConfigError {
            location: "file".into(),
            message: format!("cannot read `{}`: {e}", path.display()),
            hint: None,
        }],
    })?;
    load_str(&text, path, env)
}

/// Validates config text as if read from `path` (relative paths resolve against its folder).
pub fn load_str(
    _text: &str,
    path: &Path,
    _env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    Err(ConfigErrors {
        path: path.display().to_string(),
        errors: vec![],
    })
}
