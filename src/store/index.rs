//! The index (`.index.jsonl`): a cache of one summary line per receipt file, so listing,
//! rate counting and rollback lookups need not parse every receipt.
//!
//! Each line is one JSON object, either a receipt's summary
//!
//! ```json
//! {"seq":41,"run_id":"…","workflow":"open_pr","actor_email":"a@b.c","decision":"PASS",
//!  "timestamp":"2026-11-26T01:02:03.456789Z","rollback_of":null,"hash":"…"}
//! ```
//!
//! (`hash`: the receipt's chain hash), or, for a receipt-named file that is not a valid
//! receipt, `{"run_id":"…","invalid":"why"}` — so the index always has exactly one line per
//! `<run_id>.json` file. Appends add a line; a rebuild rewrites the file sorted by `seq`.
//! The index is never trusted for anything signed: rate counting and rollback lookups re-read
//! and verify the receipts the index points at.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// File name of the index.
pub(crate) const INDEX_FILE: &str = ".index.jsonl";

/// A receipt's summary line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub seq: u64,
    pub run_id: String,
    pub workflow: String,
    pub actor_email: String,
    pub decision: String,
    pub timestamp: String,
    pub rollback_of: Option<String>,
    pub hash: String,
}

/// One line of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Line {
    // Listed first: untagged tries variants in order, and only this one requires `invalid`.
    Invalid { run_id: String, invalid: String },
    Entry(Entry),
}

impl Line {
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            Line::Entry(entry) => Some(entry),
            Line::Invalid { .. } => None,
        }
    }

    fn sort_key(&self) -> (u64, &str) {
        match self {
            Line::Entry(e) => (e.seq, &e.run_id),
            Line::Invalid { run_id, .. } => (u64::MAX, run_id),
        }
    }
}

impl Entry {
    /// The summary of a receipt value whose chain hash is `hash`.
    pub fn from_receipt(receipt: &Value, hash: String) -> Result<Entry, String> {
        let text = |field: &str| {
            receipt
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("`{field}` is missing or not a string"))
        };
        let rollback_of = match receipt.get("rollback_of") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("`rollback_of` is not a string or null".into()),
        };
        Ok(Entry {
            seq: receipt
                .get("seq")
                .and_then(Value::as_u64)
                .ok_or("`seq` is missing or not a non-negative integer")?,
            run_id: text("run_id")?,
            workflow: text("workflow")?,
            actor_email: text("actor_email")?,
            decision: text("decision")?,
            timestamp: text("timestamp")?,
            rollback_of,
            hash,
        })
    }
}

/// The index lines and the file's length; `None` when the file is missing or any line does
/// not parse (an interrupted write), which calls for a rebuild.
pub(crate) fn read(dir: &Path) -> io::Result<Option<(Vec<Line>, u64)>> {
    let text = match fs::read_to_string(dir.join(INDEX_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::InvalidData => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let lines: Result<Vec<Line>, _> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(serde_json::from_str)
        .collect();
    Ok(lines.ok().map(|lines| (lines, text.len() as u64)))
}

/// Replaces the index with `lines`, sorted by `seq` (invalid lines last); returns them and the
/// file's length.
pub(crate) fn write(dir: &Path, mut lines: Vec<Line>) -> io::Result<(Vec<Line>, u64)> {
    lines.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut text = String::new();
    for line in &lines {
        text.push_str(&serde_json::to_string(line).map_err(io::Error::other)?);
        text.push('\n');
    }
    // The index is a cache: after a crash it is rebuilt, so it is never synced.
    super::file::write_atomic(dir, INDEX_FILE, text.as_bytes(), false)?;
    Ok((lines, text.len() as u64))
}

/// Appends one entry; returns the file's length before and after.
pub(crate) fn append(dir: &Path, entry: &Entry) -> io::Result<(u64, u64)> {
    let mut text = serde_json::to_string(&Line::Entry(entry.clone())).map_err(io::Error::other)?;
    text.push('\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(INDEX_FILE))?;
    let before = file.metadata()?.len();
    file.write_all(text.as_bytes())?;
    Ok((before, before + text.len() as u64))
}

/// Cuts the index back to `len` bytes (undoing an append whose receipt was not written).
pub(crate) fn truncate(dir: &Path, len: u64) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(dir.join(INDEX_FILE))?
        .set_len(len)
}

/// The index file's current length, if it exists.
pub(crate) fn len(dir: &Path) -> io::Result<Option<u64>> {
    match fs::metadata(dir.join(INDEX_FILE)) {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_in_both_shapes() {
        let entry = Line::Entry(Entry {
            seq: 2,
            run_id: "r".into(),
            workflow: "w".into(),
            actor_email: "a@b.c".into(),
            decision: "PASS".into(),
            timestamp: "t".into(),
            rollback_of: None,
            hash: "h".into(),
        });
        let invalid = Line::Invalid {
            run_id: "x".into(),
            invalid: "bad".into(),
        };
        for line in [entry, invalid] {
            let text = serde_json::to_string(&line).unwrap();
            assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
        }
    }
}
