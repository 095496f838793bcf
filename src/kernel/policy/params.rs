//! STUB
use super::PolicyKind;
use serde_json::{Map, Value};

pub fn parse(name: &str, _params: &Map<String, Value>) -> Result<PolicyKind, Vec<String>> {
    Err(vec![format!("unknown policy `{name}`")])
}

pub fn to_json(_kind: &PolicyKind) -> Value {
    Value::Null
}

/// Parses `30s`, `5m`, `1h`, `2d` into seconds.
pub fn parse_window(_s: &str) -> Result<u64, String> {
    Err("not implemented".into())
}
