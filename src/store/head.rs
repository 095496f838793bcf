//! The signed head record (`journal/head`, SPEC §5.4): the newest receipt's `seq`, chain hash,
//! segment and end offset, so that removing the newest receipts is detectable.
//!
//! The file has two 512-byte slots, each one signed JSON line padded with spaces:
//!
//! ```json
//! {"kind":"head","seq":41,"hash":"…","segment":1,"offset":10422,"signature":"…"}
//! ```
//!
//! (`seq` is `null` for an empty chain). A head for seq N is written in place into slot N mod 2,
//! so a torn write can only damage the slot being replaced: the other still holds a valid,
//! older head, and a head behind the journal is normal (the next append moves it forward).
//! Writing in place (one `pwrite`) instead of temp-and-rename keeps an append to no new inode.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::segment;
use super::strict;
use crate::kernel::receipt;

/// File name of the head record, inside the journal folder.
pub(crate) const HEAD_FILE: &str = "head";
const KIND: &str = "head";
const SLOT: usize = 512;

/// The chain position of the newest receipt (`seq: None`: the chain is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub seq: Option<u64>,
    /// Chain hash of the newest receipt (genesis for an empty chain).
    pub hash: String,
    pub segment: u64,
    /// End offset of the newest receipt's line.
    pub offset: u64,
}

/// What is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadState {
    Missing,
    /// Present but not trustworthy: why.
    Invalid(String),
    Valid(Head),
}

#[derive(Serialize, Deserialize)]
struct Record {
    kind: String,
    #[serde(flatten)]
    head: Head,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    signature: String,
}

fn encode(head: &Head, key: &[u8]) -> io::Result<Vec<u8>> {
    let mut record = Record {
        kind: KIND.into(),
        head: head.clone(),
        signature: String::new(),
    };
    let value = serde_json::to_value(&record).map_err(io::Error::other)?;
    record.signature = receipt::sign(&value, key);
    let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
    if line.len() >= SLOT {
        return Err(io::Error::other("head record longer than its slot"));
    }
    line.resize(SLOT - 1, b' ');
    line.push(b'\n');
    Ok(line)
}

fn decode(slot: &[u8], key: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(slot).map_err(|_| "not UTF-8".to_string())?;
    let text = text.trim_end_matches(['\n', ' ', '\0']);
    if text.is_empty() {
        return Err("empty".into());
    }
    let value: Value = strict::parse(text.as_bytes()).map_err(|e| e.to_string())?;
    if !receipt::verify(&value, key) {
        return Err("its signature does not verify".into());
    }
    let record: Record = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if record.kind != KIND {
        return Err(format!("kind `{}` is not `{KIND}`", record.kind));
    }
    Ok(record.head)
}

/// Reads the newest valid slot.
pub(crate) fn read(journal: &Path, key: &[u8]) -> io::Result<HeadState> {
    let path = journal.join(HEAD_FILE);
    let file = match segment::open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HeadState::Missing),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; 2 * SLOT];
    let mut read = 0;
    while read < buf.len() {
        let n = file.read_at(&mut buf[read..], read as u64)?;
        if n == 0 {
            break;
        }
        read += n;
    }
    buf.truncate(read);
    let slots: Vec<Result<Head, String>> = buf.chunks(SLOT).map(|s| decode(s, key)).collect();
    let best = slots
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .max_by_key(|h| h.seq.map_or(0, |s| s + 1));
    Ok(match best {
        Some(head) => HeadState::Valid(head.clone()),
        None => HeadState::Invalid(
            slots
                .into_iter()
                .find_map(Result::err)
                .unwrap_or_else(|| "empty".into()),
        ),
    })
}

/// Writes `head` into its slot (both slots when `both`, for a new file).
pub(crate) fn write(journal: &Path, head: &Head, key: &[u8], both: bool) -> io::Result<()> {
    let file = segment::open_write(&journal.join(HEAD_FILE), both)?;
    let line = encode(head, key)?;
    if both {
        file.write_all_at(&line, 0)?;
        file.write_all_at(&line, SLOT as u64)?;
    } else {
        let slot = head.seq.map_or(0, |s| s % 2);
        file.write_all_at(&line, slot * SLOT as u64)?;
    }
    Ok(())
}
