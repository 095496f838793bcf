//! Phase one of reading the config: the TOML text as a `toml::Table`, and a typed, located view
//! of its sections that records every wrong type and unknown key instead of stopping at the
//! first.
//!
//! Walking the table by hand (rather than `serde` with `deny_unknown_fields`) is what lets
//! `enact check` report every problem at once, each with the section it is in.

use serde_json::Value as Json;
use toml::{Table, Value};

use super::error::ConfigError;

/// Parses the TOML text. A syntax error is reported alone, at its line and column: nothing
/// after it can be trusted.
pub(super) fn parse(text: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|e| {
        let location = match e.span() {
            Some(span) => line_column(text, span.start),
            None => "file".to_string(),
        };
        ConfigError {
            location,
            message: e.message().trim().to_string(),
            hint: None,
        }
    })
}

/// `line L, column C` (both 1-based, columns in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

/// The problems found so far, in the order they were found.
#[derive(Debug, Default)]
pub(super) struct Problems {
    pub errors: Vec<ConfigError>,
    /// `Credentials::Optional`: an unset system credential is not a problem (the commands
    /// that only read receipts never build a connector).
    pub credentials_optional: bool,
}

impl Problems {
    pub fn push(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            location: location.into(),
            message: message.into(),
            hint: None,
        });
    }

    pub fn push_hint(
        &mut self,
        location: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.errors.push(ConfigError {
            location: location.into(),
            message: message.into(),
            hint: Some(hint.into()),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// One table of the config with its location (`""` for the top level, `systems.gh`,
/// `workflows[1].steps[0]`, …).
#[derive(Debug, Clone, Copy)]
pub(super) struct Section<'a> {
    pub path: &'a str,
    pub table: &'a Table,
}

impl<'a> Section<'a> {
    pub fn new(path: &'a str, table: &'a Table) -> Self {
        Section { path, table }
    }

    /// The location of a key of this section.
    pub fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The location of the section itself.
    pub fn here(&self) -> String {
        if self.path.is_empty() {
            "top level".to_string()
        } else {
            self.path.to_string()
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.table.get(key)
    }

    /// Reports every key not in `allowed`.
    pub fn check_keys(&self, allowed: &[&str], p: &mut Problems) {
        for key in self.table.keys() {
            if !allowed.contains(&key.as_str()) {
                p.push_hint(
                    self.here(),
                    format!("unknown key `{key}`"),
                    format!("valid keys: {}", allowed.join(", ")),
                );
            }
        }
    }

    /// Reports a missing required key.
    pub fn missing(&self, key: &str, hint: Option<&str>, p: &mut Problems) {
        let message = format!("missing required key `{key}`");
        match hint {
            Some(h) => p.push_hint(self.here(), message, h),
            None => p.push(self.here(), message),
        }
    }

    /// A string value; `None` when absent or of another type (reported).
    pub fn string(&self, key: &str, p: &mut Problems) -> Option<&'a str> {
        match self.get(key)? {
            Value::String(s) => Some(s),
            other => {
                wrong_type(&self.at(key), "a string", other, p);
                None
            }
        }
    }

    /// A string that must not be empty (reported when it is).
    pub fn non_empty_string(&self, key: &str, p: &mut Problems) -> Option<&'a str> {
        let s = self.string(key, p)?;
        if s.trim().is_empty() {
            p.push(self.at(key), format!("`{key}` must not be empty"));
            return None;
        }
        Some(s)
    }

    pub fn boolean(&self, key: &str, p: &mut Problems) -> Option<bool> {
        match self.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                wrong_type(&self.at(key), "a boolean", other, p);
                None
            }
        }
    }

    pub fn integer(&self, key: &str, expected: &str, p: &mut Problems) -> Option<i64> {
        match self.get(key)? {
            Value::Integer(i) => Some(*i),
            other => {
                wrong_type(&self.at(key), expected, other, p);
                None
            }
        }
    }

    /// An array of strings. A non-string element is reported and skipped.
    pub fn strings(&self, key: &str, p: &mut Problems) -> Option<Vec<&'a str>> {
        let items = match self.get(key)? {
            Value::Array(items) => items,
            other => {
                wrong_type(&self.at(key), "an array of strings", other, p);
                return None;
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.as_str()),
                other => wrong_type(&format!("{}[{i}]", self.at(key)), "a string", other, p),
            }
        }
        Some(out)
    }

    /// A sub-table, e.g. `[actor]` or a step's `args`.
    pub fn table(&self, key: &str, p: &mut Problems) -> Option<&'a Table> {
        match self.get(key)? {
            Value::Table(t) => Some(t),
            other => {
                wrong_type(&self.at(key), "a table", other, p);
                None
            }
        }
    }

    /// An array of tables (`[[policies]]`), each with its location `key[i]`. Elements that are
    /// not tables are reported and skipped, keeping the indexes of the others.
    pub fn array_of_tables(&self, key: &str, p: &mut Problems) -> Vec<(usize, String, &'a Table)> {
        let items = match self.get(key) {
            None => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                let location = self.at(key);
                p.push_hint(
                    location,
                    format!("expected an array of tables, got {}", describe(other)),
                    format!("write each entry as [[{key}]]"),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let location = format!("{}[{i}]", self.at(key));
            match item {
                Value::Table(t) => out.push((i, location, t)),
                other => wrong_type(&location, "a table", other, p),
            }
        }
        out
    }
}

/// Reports a value of the wrong type: `expected a string, got integer 5`.
pub(super) fn wrong_type(location: &str, expected: &str, got: &Value, p: &mut Problems) {
    p.push(
        location,
        format!("expected {expected}, got {}", describe(got)),
    );
}

/// A TOML value named by its type, with short scalars shown: `integer 5`, `string "x"`.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// A TOML value as JSON (step arguments, input defaults, policy parameters). Datetimes become
/// their RFC 3339 text; a float JSON cannot hold (NaN, infinity) is an error.
pub(super) fn to_json(v: &Value) -> Result<Json, String> {
    Ok(match v {
        Value::String(s) => Json::String(s.clone()),
        Value::Integer(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| format!("float {f} cannot be represented in JSON"))?,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Datetime(d) => Json::String(d.to_string()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Table(t) => Json::Object(table_to_json(t)?),
    })
}

pub(super) fn table_to_json(t: &Table) -> Result<serde_json::Map<String, Json>, String> {
    t.iter()
        .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = parse("[actor]\nemail = \"a@b\"\nrole = \n").unwrap_err();
        assert_eq!(err.location, "line 3, column 8");
        let err = parse("a = 1\na = 2\n").unwrap_err();
        assert_eq!(err.location, "line 2, column 1");
        assert_eq!(err.message, "duplicate key");
    }

    #[test]
    fn values_are_described_by_type() {
        assert_eq!(describe(&Value::Integer(5)), "integer 5");
        assert_eq!(describe(&Value::String("x".into())), "string \"x\"");
        assert_eq!(describe(&Value::Array(vec![])), "an array");
    }

    #[test]
    fn datetimes_become_strings() {
        let t = parse("d = 1979-05-27T07:32:00Z\nf = 1.5\n").unwrap();
        let j = table_to_json(&t).unwrap();
        assert_eq!(j["d"], Json::String("1979-05-27T07:32:00Z".into()));
        assert_eq!(j["f"], serde_json::json!(1.5));
    }
}
