//! Checking journal records as they are read: strict parse, signature, chain hash — the
//! expensive part of opening a journal and of `verify`. (Checking on two threads was tried: no
//! faster here, as the time goes to the allocator, which the threads then contend for.)
//!
//! The canonical form (JCS) is computed once per record: its members sorting before
//! `signature` and those after are canonicalized apart, so the bytes signed (without the
//! signature) and the bytes chained (with it) are both sequences of the same pieces — no copy
//! of the record and no second canonicalization. The result is byte for byte
//! `receipt::verify` and `receipt::chain_hash`.

use std::io;

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::segment::{Line, Pos, Reader, Span};
use super::strict;
use crate::kernel::jcs::canonicalize;

/// A record, parsed and checked.
pub(crate) struct Checked {
    pub value: Value,
    /// Its signature verifies with the key.
    pub verified: bool,
    /// Its chain hash, for a receipt (`kind` absent, not a string, or `receipt`).
    pub hash: Option<String>,
}

/// One line of a segment, checked.
pub(crate) enum Item {
    Record(Span, Result<Checked, serde_json::Error>),
    /// A line over 16 MiB.
    TooLong(Span),
    /// An unfinished last line (not consumed).
    Partial(Pos),
}

const SIGNATURE: &str = "signature";

/// Parses and checks one record.
pub(crate) fn check(bytes: &[u8], key: &[u8]) -> Result<Checked, serde_json::Error> {
    strict::parse(bytes).map(|value| check_value(value, key))
}

fn check_value(value: Value, key: &[u8]) -> Checked {
    let Value::Object(mut map) = value else {
        return Checked {
            value,
            verified: false,
            hash: None,
        };
    };
    let chained = map.get("kind").and_then(Value::as_str).unwrap_or("receipt") == "receipt";
    let signature = map.remove(SIGNATURE);
    let sig_key: Vec<u16> = SIGNATURE.encode_utf16().collect();
    let (before, after): (Map<String, Value>, Map<String, Value>) = map
        .into_iter()
        .partition(|(k, _)| k.encode_utf16().lt(sig_key.iter().copied()));
    let (before, after) = (Value::Object(before), Value::Object(after));
    let (a, b) = (canonicalize(&before), canonicalize(&after));
    // "{A}" and "{B}" without their braces: the members on either side of `signature`.
    let inner = |c: &[u8]| {
        c.get(1..c.len().saturating_sub(1))
            .unwrap_or_default()
            .to_vec()
    };
    let (a, b) = (inner(&a), inner(&b));
    let unsigned: [&[u8]; 4] = [
        b"{",
        &a,
        if !a.is_empty() && !b.is_empty() {
            b","
        } else {
            b""
        },
        &b,
    ];
    let verified = match &signature {
        Some(Value::String(sig)) => verifies(sig, key, &unsigned),
        _ => false,
    };
    let hash = chained.then(|| {
        let mut sha = Sha256::new();
        match &signature {
            None => {
                for piece in unsigned {
                    sha.update(piece);
                }
            }
            Some(sig) => {
                sha.update(b"{");
                sha.update(&a);
                if !a.is_empty() {
                    sha.update(b",");
                }
                sha.update(b"\"signature\":");
                sha.update(canonicalize(sig));
                if !b.is_empty() {
                    sha.update(b",");
                }
                sha.update(&b);
            }
        }
        sha.update(b"}");
        hex::encode(sha.finalize())
    });
    let mut map = match before {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Value::Object(after) = after {
        map.extend(after);
    }
    if let Some(sig) = signature {
        map.insert(SIGNATURE.into(), sig);
    }
    Checked {
        value: Value::Object(map),
        verified,
        hash,
    }
}

/// `receipt::verify`'s check: exactly 64 lowercase hex characters, then the HMAC compared in
/// constant time. `unsigned` is the canonical record without its signature, less the `}`.
fn verifies(sig: &str, key: &[u8], unsigned: &[&[u8]]) -> bool {
    if sig.len() != 64
        || !sig
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return false;
    }
    let Ok(expected) = hex::decode(sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    for piece in unsigned {
        mac.update(piece);
    }
    mac.update(b"}");
    mac.verify_slice(&expected).is_ok()
}

/// Reads the rest of `reader`'s segment, handing every line to `f`, checked, in order.
pub(crate) fn read_checked(
    reader: &mut Reader,
    key: &[u8],
    mut f: impl FnMut(Item),
) -> io::Result<()> {
    while let Some(line) = reader.next_line()? {
        f(match line {
            Line::Record(span, bytes) => Item::Record(span, check(&bytes, key)),
            Line::TooLong(span) => Item::TooLong(span),
            Line::Partial(pos) => Item::Partial(pos),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::receipt;
    use serde_json::json;

    #[test]
    fn same_as_verify_and_chain_hash() {
        let key = b"k";
        let mut values = vec![
            json!({"a": 1, "z": [1, 2.5, "é"], "kind": "receipt"}),
            json!({"seq": 3, "b": {"x": null}}),
            json!({"only": true}),
            json!({}),
            json!({"kind": "intent", "run_id": "r"}),
            json!({"kind": 7, "\u{10000}": 1, "\u{ff61}": 2, "sig": 1, "signaturf": 2}),
        ];
        for v in values.clone() {
            let signature = receipt::sign(&v, key);
            let mut signed = v.clone();
            signed["signature"] = json!(signature);
            values.push(signed.clone());
            let mut wrong = signed.clone();
            wrong["signature"] = json!("A".repeat(64));
            values.push(wrong);
            let mut odd = signed;
            odd["signature"] = json!({"not": "a string"});
            values.push(odd);
        }
        for v in values {
            let bytes = serde_json::to_vec(&v).unwrap();
            let c = check(&bytes, key).unwrap();
            assert_eq!(c.value, v);
            assert_eq!(c.verified, receipt::verify(&v, key), "{v}");
            let chained = v.get("kind").and_then(Value::as_str).unwrap_or("receipt") == "receipt";
            assert_eq!(c.hash, chained.then(|| receipt::chain_hash(&v)), "{v}");
        }
        let c = check(b"[1]", key).unwrap();
        assert!(!c.verified && c.hash.is_none());
    }
}
