//! RFC 8785 JSON Canonicalization Scheme: object keys sorted by UTF-16 code units, no
//! insignificant whitespace, numbers in ECMAScript's shortest form, minimal string escaping.

use serde_json::Value;

/// The canonical bytes of a value.
pub fn canonicalize(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(value, &mut out);
    out.into_bytes()
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

fn write_number(n: &serde_json::Number, out: &mut String) {
    // Numbers are doubles in JCS. An integer a double cannot hold (beyond 2^53) still reaches
    // a receipt: the payload of the BLOCK that refused it is kept verbatim. Rounding it to a
    // double would sign `9007199254740992` for `9007199254740993`, so an edit between the two
    // would go unnoticed; such an integer is written with its exact digits instead (an
    // integer a double holds exactly keeps JCS's form).
    let exact = n
        .as_i64()
        .map(|i| (i as f64) as i128 == i128::from(i))
        .or_else(|| n.as_u64().map(|u| (u as f64) as i128 == i128::from(u)));
    if exact == Some(false) {
        out.push_str(&n.to_string());
        return;
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.is_finite() {
        if f == 0.0 {
            out.push('0');
        } else {
            out.push_str(ryu_js::Buffer::new().format_finite(f));
        }
    } else {
        out.push_str("null");
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jcs(text: &str) -> String {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        String::from_utf8(canonicalize(&v)).unwrap_or_default()
    }

    /// RFC 8785 §3.2.2 example (numbers, literals, strings with escapes).
    #[test]
    fn rfc8785_example_values() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        assert_eq!(
            jcs(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 §3.2.3 sorting example: keys ordered by UTF-16 code units.
    #[test]
    fn rfc8785_sorting() {
        let input = r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}"#;
        assert_eq!(
            jcs(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    /// RFC 8785 Appendix B number samples.
    #[test]
    fn rfc8785_numbers() {
        for (input, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("9007199254740992", "9007199254740992"),
            ("295147905179352830000", "295147905179352830000"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("-1.5", "-1.5"),
        ] {
            assert_eq!(jcs(input), want, "{input}");
        }
    }

    /// Regression: an integer beyond 2^53 (kept verbatim in a BLOCK receipt's payload) was
    /// canonicalized as its nearest double, so editing it to that double kept the signature.
    #[test]
    fn integers_a_double_cannot_hold_keep_their_exact_digits() {
        for (input, want) in [
            ("9007199254740993", "9007199254740993"),
            ("-9007199254740993", "-9007199254740993"),
            ("18446744073709551615", "18446744073709551615"),
            ("-9223372036854775807", "-9223372036854775807"),
            ("9223372036854775807", "9223372036854775807"),
            ("9007199254740994", "9007199254740994"),
            // A double holds -2^63 exactly: JCS's shortest form, as before.
            ("-9223372036854775808", "-9223372036854776000"),
        ] {
            assert_eq!(jcs(input), want, "{input}");
        }
        assert_ne!(jcs("9007199254740993"), jcs("9007199254740992"));
    }

    #[test]
    fn whitespace_and_order_do_not_matter() {
        assert_eq!(
            jcs(r#"{ "b" : [1, 2], "a": {"y":1,"x":2} }"#),
            r#"{"a":{"x":2,"y":1},"b":[1,2]}"#
        );
    }
}
