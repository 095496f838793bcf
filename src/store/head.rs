//! The signed head record (`.head.json`): the newest link of the chain as last written, so
//! that removing the newest receipts is detectable (SPEC §5.4), plus the length of the index
//! it was written with, so an interrupted append is detectable before the next one.
//!
//! ```json
//! {"kind": "enact-head", "seq": 41, "run_id": "…", "hash": "…", "index_bytes": 10422,
//!  "signature": "…"}
//! ```
//!
//! Signed like a receipt (HMAC-SHA256 of JCS without `signature`, same key); `kind` keeps a
//! head record from ever being mistaken for a receipt.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::strict;
use crate::kernel::receipt;

/// File name of the head record.
pub(crate) const HEAD_FILE: &str = ".head.json";
const KIND: &str = "enact-head";

/// The chain position of the newest receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub seq: u64,
    pub run_id: String,
    /// `chain_hash` of the newest receipt (what the next receipt's `prev_hash` will be).
    pub hash: String,
    /// Length of `.index.jsonl` right after this head's receipt was indexed.
    pub index_bytes: u64,
}

/// What is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadState {
    Missing,
    /// Present but not trustworthy: why.
    Invalid(String),
    Valid(Head),
}

impl HeadState {
    pub fn valid(&self) -> Option<&Head> {
        match self {
            HeadState::Valid(head) => Some(head),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    kind: String,
    #[serde(flatten)]
    head: Head,
    signature: String,
}

/// Reads and checks the head record of `dir`.
pub(crate) fn read(dir: &Path, secret: &[u8]) -> io::Result<HeadState> {
    let bytes = match fs::read(dir.join(HEAD_FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HeadState::Missing),
        Err(e) => return Err(e),
    };
    let value = match strict::parse(&bytes) {
        Ok(value) => value,
        Err(e) => return Ok(HeadState::Invalid(format!("not valid JSON: {e}"))),
    };
    if !receipt::verify(&value, secret) {
        return Ok(HeadState::Invalid("its signature does not verify".into()));
    }
    match serde_json::from_value::<Record>(value) {
        Ok(record) if record.kind == KIND => Ok(HeadState::Valid(record.head)),
        Ok(record) => Ok(HeadState::Invalid(format!(
            "unexpected kind `{}`",
            record.kind
        ))),
        Err(e) => Ok(HeadState::Invalid(format!("unexpected shape: {e}"))),
    }
}

/// Signs and writes the head record atomically.
pub(crate) fn write(dir: &Path, head: &Head, secret: &[u8], fsync: bool) -> io::Result<()> {
    let mut record = Record {
        kind: KIND.into(),
        head: head.clone(),
        signature: String::new(),
    };
    record.signature = receipt::sign(&to_value(&record)?, secret);
    let mut text = serde_json::to_string_pretty(&record).map_err(io::Error::other)?;
    text.push('\n');
    super::file::write_atomic(dir, HEAD_FILE, text.as_bytes(), fsync)
}

fn to_value(record: &Record) -> io::Result<Value> {
    serde_json::to_value(record).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), KEY).unwrap(), HeadState::Missing);
        let head = Head {
            seq: 3,
            run_id: "r".into(),
            hash: "h".into(),
            index_bytes: 9,
        };
        write(dir.path(), &head, KEY, false).unwrap();
        assert_eq!(read(dir.path(), KEY).unwrap(), HeadState::Valid(head));
        assert_eq!(
            read(dir.path(), b"another key, also 32 characters").unwrap(),
            HeadState::Invalid("its signature does not verify".into())
        );
        let path = dir.path().join(HEAD_FILE);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("\"seq\": 3", "\"seq\": 2");
        fs::write(&path, text).unwrap();
        assert_eq!(
            read(dir.path(), KEY).unwrap(),
            HeadState::Invalid("its signature does not verify".into())
        );
    }
}
