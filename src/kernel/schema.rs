//! Workflow inputs as a JSON Schema, and argument validation with JSON Schema 2020-12
//! semantics plus the SPEC's limits (SPEC §2, §3.1).
//!
//! The schemas Enact generates use a small subset (`type`, `enum`, `default`, `required`,
//! `additionalProperties`), so validation is written here rather than pulling in a general
//! validator: the messages can then name the offending argument and value exactly.

use serde_json::{Map, Value, json};

use super::plan::json_type_name;
use super::workflow::{InputSpec, InputType};

/// Largest accepted arguments object, as compact JSON.
pub const MAX_ARGUMENTS_BYTES: usize = 1024 * 1024;
/// Deepest accepted nesting of arrays/objects in the arguments.
pub const MAX_DEPTH: usize = 64;

/// The `inputSchema` of a workflow's tool.
pub fn input_schema(inputs: &[InputSpec]) -> Map<String, Value> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for input in inputs {
        let mut prop = Map::new();
        prop.insert("type".into(), json!(input.ty.as_str()));
        if let Some(d) = &input.description {
            prop.insert("description".into(), json!(d));
        }
        if let Some(d) = &input.default {
            prop.insert("default".into(), d.clone());
        }
        if let Some(e) = &input.enum_values {
            prop.insert("enum".into(), json!(e));
        }
        if let Some(v) = input.values {
            prop.insert("additionalProperties".into(), json!({"type": v.as_str()}));
        }
        if input.required() {
            required.push(json!(input.name));
        }
        properties.insert(input.name.clone(), Value::Object(prop));
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), Value::Array(required));
    schema.insert("additionalProperties".into(), json!(false));
    schema
}

/// Validates a call's arguments and returns them with defaults filled in.
/// The error is one sentence naming the offending argument and value.
pub fn validate_arguments(
    inputs: &[InputSpec],
    args: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    check_limits(args)?;
    for key in args.keys() {
        if !inputs.iter().any(|i| &i.name == key) {
            return Err(format!("unknown argument `{key}`"));
        }
    }
    let mut out = Map::new();
    for input in inputs {
        let value = match (args.get(&input.name), &input.default) {
            (Some(v), _) => v,
            (None, Some(d)) => {
                out.insert(input.name.clone(), d.clone());
                continue;
            }
            (None, None) if input.optional => continue,
            (None, None) => return Err(format!("missing required argument `{}`", input.name)),
        };
        if !has_type(value, input.ty) {
            return Err(format!(
                "argument `{}` must be {}, got {} {}",
                input.name,
                article(input.ty),
                json_type_name(value),
                short(value)
            ));
        }
        if let (Some(values_ty), Value::Object(map)) = (input.values, value) {
            for (k, v) in map {
                if !has_type(v, values_ty) {
                    return Err(format!(
                        "argument `{}`: value of `{k}` must be {}, got {}",
                        input.name,
                        article(values_ty),
                        json_type_name(v)
                    ));
                }
            }
        }
        if let Some(allowed) = &input.enum_values
            && !allowed.iter().any(|a| json_equal(a, value))
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(format!(
                "argument `{}` must be one of {}, got {}",
                input.name,
                list.join(", "),
                short(value)
            ));
        }
        out.insert(input.name.clone(), value.clone());
    }
    Ok(out)
}

/// Size, depth and number-exactness limits (SPEC §3.1).
pub fn check_limits(args: &Map<String, Value>) -> Result<(), String> {
    let size = serde_json::to_vec(args)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_ARGUMENTS_BYTES {
        return Err(format!(
            "arguments are {size} bytes as JSON, more than the limit of {MAX_ARGUMENTS_BYTES}"
        ));
    }
    fn walk(v: &Value, depth: usize, path: &mut String) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "arguments are nested deeper than {MAX_DEPTH} levels"
            ));
        }
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    walk(item, depth + 1, path)?;
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    path.push('/');
                    path.push_str(k);
                    walk(item, depth + 1, path)?;
                    path.truncate(len);
                }
            }
            Value::Number(n) if !number_is_exact(n) => {
                return Err(format!(
                    "number {n} at `{path}` cannot be represented exactly as a double"
                ));
            }
            _ => {}
        }
        Ok(())
    }
    let mut path = String::new();
    walk(&Value::Object(args.clone()), 1, &mut path)
}

/// Whether a parsed number equals its nearest double. Integers beyond 2^53 may not; floats
/// were already rounded by the parser (the MCP transport checks their source text).
pub fn number_is_exact(n: &serde_json::Number) -> bool {
    if let Some(u) = n.as_u64() {
        return (u as f64) as u64 == u && (u as f64) < 18_446_744_073_709_551_616.0;
    }
    if let Some(i) = n.as_i64() {
        return (i as f64) as i64 == i && (i as f64) >= -9_223_372_036_854_775_808.0;
    }
    n.as_f64().is_some_and(f64::is_finite)
}

/// Whether a number's source text has the same value as the shortest decimal form of its
/// nearest double (`9007199254740993` → false, `0.1` → true, `1.0` → true).
pub fn number_text_is_exact(text: &str) -> bool {
    let Ok(f) = text.parse::<f64>() else {
        return false;
    };
    if !f.is_finite() {
        return false;
    }
    let shortest = ryu_js::Buffer::new().format(f).to_string();
    decimal_key(text) == decimal_key(&shortest)
}

/// Wraps in quotes each number token (outside strings) whose text is not exactly a double, so
/// that parsing the result keeps it as a string of its literal text (`9007199254740993` →
/// `"9007199254740993"`, `0.1` stays a number). Used on PostgreSQL's JSON and on the raw
/// arguments of a call the transport found inexact numbers in (SPEC §5.2).
pub fn quote_inexact_numbers(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut chars = json.char_indices().peekable();
    let (mut in_string, mut escaped) = (false, false);
    while let Some((i, c)) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
            out.push(c);
            continue;
        }
        if c == '-' || c.is_ascii_digit() {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_digit() || matches!(d, '.' | 'e' | 'E' | '+' | '-') {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let token = &json[i..end];
            if number_text_is_exact(token) {
                out.push_str(token);
            } else {
                out.push('"');
                out.push_str(token);
                out.push('"');
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The value with every number a double cannot hold exactly replaced by the string of its
/// digits, however deeply nested. Parsed integers beyond 2^53 keep their exact value (serde_json
/// reads them as `u64`/`i64`), and such a number is never signed as a JSON number (SPEC §5.2).
pub fn exact_numbers(v: &Value) -> Value {
    match v {
        Value::Number(n) if !number_is_exact(n) => Value::String(n.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(exact_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), exact_numbers(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A normal form of a decimal literal: (negative, significant digits, exponent of the last
/// digit), so two texts with the same value compare equal.
fn decimal_key(text: &str) -> Option<(bool, String, i64)> {
    let (neg, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int}{frac}");
    let mut exp = exp - frac.len() as i64;
    let trimmed = digits.trim_start_matches('0').to_string();
    digits = trimmed;
    while digits.ends_with('0') {
        digits.pop();
        exp += 1;
    }
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((neg, digits, exp))
}

fn has_type(v: &Value, ty: InputType) -> bool {
    match ty {
        InputType::String => v.is_string(),
        InputType::Integer => super::plan::integer_value(v).is_some() || v.as_u64().is_some(),
        InputType::Number => v.is_number(),
        InputType::Boolean => v.is_boolean(),
        InputType::Object => v.is_object(),
        InputType::Array => v.is_array(),
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn article(ty: InputType) -> &'static str {
    match ty {
        InputType::String => "a string",
        InputType::Integer => "an integer",
        InputType::Number => "a number",
        InputType::Boolean => "a boolean",
        InputType::Object => "an object",
        InputType::Array => "an array",
    }
}

/// A value shortened for an error message.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// A duration in the largest unit that divides it exactly: `500ms`, `30s`, `2m`, `1h`.
pub fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    for (unit, scale) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms > 0 && ms.is_multiple_of(scale) {
            return format!("{}{unit}", ms / scale);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, ty: InputType) -> InputSpec {
        InputSpec {
            name: name.into(),
            ty,
            description: None,
            default: None,
            optional: false,
            enum_values: None,
            values: None,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn inexact_numbers_become_strings_of_their_text() {
        let v: Value = serde_json::from_str(
            r#"{"a": 9007199254740993, "b": [1, -9007199254740993, {"c": 18446744073709551615}],
                "d": 9007199254740992, "e": 0.1, "f": "9007199254740993"}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            exact_numbers(&v),
            serde_json::json!({"a": "9007199254740993",
                "b": [1, "-9007199254740993", {"c": "18446744073709551615"}],
                "d": 9007199254740992u64, "e": 0.1, "f": "9007199254740993"})
        );
        assert_eq!(
            quote_inexact_numbers(r#"{"p": [9007199254740993, 0.10000000000000000001, 2.5]}"#),
            r#"{"p": ["9007199254740993", "0.10000000000000000001", 2.5]}"#
        );
    }

    #[test]
    fn five_point_zero_is_an_integer() {
        let inputs = [input("n", InputType::Integer)];
        assert!(validate_arguments(&inputs, &obj(json!({"n": 5.0}))).is_ok());
        let err = validate_arguments(&inputs, &obj(json!({"n": 5.5})))
            .err()
            .unwrap_or_default();
        assert_eq!(err, "argument `n` must be an integer, got a number 5.5");
    }

    #[test]
    fn missing_unknown_and_enum_are_named() {
        let mut mode = input("mode", InputType::String);
        mode.enum_values = Some(vec![json!("a"), json!("b")]);
        let inputs = [input("p", InputType::String), mode];
        assert_eq!(
            validate_arguments(&inputs, &obj(json!({"mode": "a"}))),
            Err("missing required argument `p`".into())
        );
        assert_eq!(
            validate_arguments(&inputs, &obj(json!({"p": "x", "mode": "a", "z": 1}))),
            Err("unknown argument `z`".into())
        );
        assert_eq!(
            validate_arguments(&inputs, &obj(json!({"p": "x", "mode": "c"}))),
            Err("argument `mode` must be one of \"a\", \"b\", got \"c\"".into())
        );
    }

    #[test]
    fn defaults_are_filled_in() {
        let mut d = input("d", InputType::Boolean);
        d.default = Some(json!(false));
        assert_eq!(
            validate_arguments(&[d], &Map::new()),
            Ok(obj(json!({"d": false})))
        );
    }

    #[test]
    fn big_integers_a_double_cannot_hold_are_refused() {
        let inputs = [input("n", InputType::Integer)];
        let args: Map<String, Value> =
            serde_json::from_str(r#"{"n": 9007199254740993}"#).unwrap_or_default();
        let err = validate_arguments(&inputs, &args).err().unwrap_or_default();
        assert!(err.contains("9007199254740993"), "{err}");
        let args: Map<String, Value> =
            serde_json::from_str(r#"{"n": 9007199254740992}"#).unwrap_or_default();
        assert!(validate_arguments(&inputs, &args).is_ok());
    }

    #[test]
    fn number_text_exactness() {
        for ok in ["0.1", "1.0", "5", "1e3", "-0.5", "100", "1.5E-7", "0"] {
            assert!(number_text_is_exact(ok), "{ok}");
        }
        for bad in ["9007199254740993", "0.10000000000000000001", "1e400"] {
            assert!(!number_text_is_exact(bad), "{bad}");
        }
    }

    #[test]
    fn depth_limit() {
        let mut v = json!(1);
        for _ in 0..70 {
            v = json!([v]);
        }
        let err = validate_arguments(&[input("a", InputType::Array)], &obj(json!({"a": v})))
            .err()
            .unwrap_or_default();
        assert_eq!(err, "arguments are nested deeper than 64 levels");
    }

    #[test]
    fn schema_shape() {
        let mut b = input("b", InputType::String);
        b.default = Some(json!("x"));
        let s = input_schema(&[input("a", InputType::Integer), b]);
        assert_eq!(
            Value::Object(s),
            json!({"type": "object", "additionalProperties": false, "required": ["a"],
                   "properties": {"a": {"type": "integer"}, "b": {"type": "string", "default": "x"}}})
        );
    }
}
