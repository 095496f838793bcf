//! RFC 8785 JSON Canonicalization Scheme: object keys sorted by UTF-16 code units, no
//! insignificant whitespace, numbers as ECMAScript writes doubles (ryu-js), minimal string
//! escaping.

use serde_json::Value;

/// The canonical bytes of a value.
pub fn canonicalize(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(value, &mut out);
    out.into_bytes()
}

/// The canonical bytes of an object both whole and without its member `omit`, from one pass
/// over its members (`None` for the second when `value` is not an object). A journal record's
/// signature covers it without `signature` and its chain hash covers all of it: canonicalizing
/// (and cloning) it twice was most of the cost of opening a large journal.
pub fn canonicalize_with_and_without(value: &Value, omit: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let Value::Object(map) = value else {
        return (canonicalize(value), None);
    };
    let mut whole = String::new();
    let mut without = String::new();
    write_object(map, &mut whole, Some((omit, &mut without)));
    (whole.into_bytes(), Some(without.into_bytes()))
}

/// Writes an object, members in UTF-16 key order. With `without = Some((omit, buf))`, `buf`
/// gets the same object less its member `omit`, each member copied from `out` rather than
/// written twice.
fn write_object(
    map: &serde_json::Map<String, Value>,
    out: &mut String,
    mut without: Option<(&str, &mut String)>,
) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    if let Some((_, buf)) = without.as_mut() {
        buf.push('{');
    }
    let mut buf_members = 0;
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let start = out.len();
        write_string(k, out);
        out.push(':');
        write_value(v, out);
        if let Some((omit, buf)) = without.as_mut()
            && k != omit
        {
            if buf_members > 0 {
                buf.push(',');
            }
            buf.push_str(&out[start..]);
            buf_members += 1;
        }
    }
    out.push('}');
    if let Some((_, buf)) = without {
        buf.push('}');
    }
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
        Value::Object(map) => write_object(map, out, None),
    }
}

fn write_number(n: &serde_json::Number, out: &mut String) {
    // Numbers are IEEE 754 doubles in JCS, written as ECMAScript writes them. A number a
    // double cannot hold never reaches a receipt as a JSON number (SPEC §5.2: refused
    // arguments are stored as strings of their digits), so this is plain RFC 8785.
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
    // Runs of characters that need no escape are copied whole: strings are most of a record,
    // and opening a journal canonicalizes every record.
    let mut plain_from = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is on a character boundary.
        out.push_str(&s[plain_from..i]);
        match escaped {
            Some(e) => out.push_str(e),
            None => out.push_str(&format!("\\u{b:04x}")),
        }
        plain_from = i + 1;
    }
    out.push_str(&s[plain_from..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jcs(text: &str) -> String {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        String::from_utf8(canonicalize(&v)).unwrap_or_default()
    }

    /// Copying runs of plain characters escapes exactly as escaping character by character
    /// (RFC 8785 §3.2.2.2): every ASCII control character, quotes and backslashes, next to
    /// multi-byte characters, at either end and in runs.
    #[test]
    fn strings_escape_as_character_by_character() {
        fn reference(s: &str) -> String {
            let mut out = String::from('"');
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
            out
        }
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        let cases = [
            String::new(),
            every_ascii.clone(),
            format!("é{every_ascii}😀\u{7f}\u{80}\u{2028}"),
            "\"\"\\\\".to_string(),
            "plain text with no escapes at all".to_string(),
            "\u{1f}é\n😀\"".to_string(),
        ];
        for s in cases {
            let mut out = String::new();
            write_string(&s, &mut out);
            assert_eq!(out, reference(&s), "{s:?}");
        }
    }

    /// One pass gives exactly what canonicalizing the object, and a copy without the member,
    /// would: wherever the member sorts (first, middle, last, by UTF-16), absent or alone.
    #[test]
    fn with_and_without_one_member_match_two_separate_passes() {
        let cases = [
            r#"{"signature":"s","a":1,"z":[1,{"b":2,"a":"\u0001"}],"\u00e9":"x","\ud83d\ude00":null}"#,
            r#"{"a":1,"b":2}"#,
            r#"{"signature":"only"}"#,
            r#"{"sig":"1","signaturf":2,"signature":3,"signaturd":4}"#,
            r#"{}"#,
        ];
        for text in cases {
            let v: Value = serde_json::from_str(text).unwrap();
            let mut without = v.clone();
            without.as_object_mut().unwrap().remove("signature");
            let (whole, rest) = canonicalize_with_and_without(&v, "signature");
            assert_eq!(whole, canonicalize(&v), "{text}");
            assert_eq!(rest, Some(canonicalize(&without)), "{text}");
        }
        let (whole, rest) = canonicalize_with_and_without(&serde_json::json!([1, 2]), "signature");
        assert_eq!((whole, rest), (b"[1,2]".to_vec(), None));
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

    /// Plain RFC 8785: an integer beyond 2^53 is the double it parses to, as any other
    /// implementation writes it (receipts never hold one; SPEC §5.2 stores them as strings).
    #[test]
    fn integers_beyond_two_to_the_53_are_doubles() {
        for (input, want) in [
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("18446744073709551615", "18446744073709552000"),
            ("9223372036854775807", "9223372036854776000"),
            ("-9223372036854775808", "-9223372036854776000"),
        ] {
            assert_eq!(jcs(input), want, "{input}");
        }
    }

    #[test]
    fn whitespace_and_order_do_not_matter() {
        assert_eq!(
            jcs(r#"{ "b" : [1, 2], "a": {"y":1,"x":2} }"#),
            r#"{"a":{"x":2,"y":1},"b":[1,2]}"#
        );
    }
}
