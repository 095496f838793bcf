//! Reading and tampering with a receipts journal from the outside, as a person with a text
//! editor (or an attacker with write access) would: the tests' view of the folder.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The segment files, in order.
pub fn segments(receipts: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(receipts.join("journal")) else {
        return vec![];
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    out.sort();
    out
}

/// Every record (intent, step, receipt), in journal order.
pub fn records(receipts: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for seg in segments(receipts) {
        let text = std::fs::read_to_string(seg).unwrap();
        for line in text.lines().filter(|l| !l.is_empty()) {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

/// The receipts, oldest (lowest seq) first.
pub fn receipts(receipts: &Path) -> Vec<Value> {
    let mut out: Vec<Value> = records(receipts)
        .into_iter()
        .filter(|r| r.get("kind").is_none_or(|k| k == "receipt"))
        .collect();
    out.sort_by_key(|v| v["seq"].as_u64());
    out
}

/// The whole journal as text.
pub fn text(receipts: &Path) -> String {
    segments(receipts)
        .into_iter()
        .map(|s| std::fs::read_to_string(s).unwrap())
        .collect()
}

/// Rewrites, in place, the receipt line of `run_id` with `edit` (which sees the compact JSON
/// line without its newline).
pub fn edit_receipt(receipts: &Path, run_id: &str, edit: impl FnOnce(&str) -> String) {
    let needle = format!("\"run_id\":\"{run_id}\"");
    for seg in segments(receipts) {
        let text = std::fs::read_to_string(&seg).unwrap();
        if let Some(line) = text.lines().find(|l| {
            l.contains(&needle) && (l.contains("\"kind\":\"receipt\"") || !l.contains("\"kind\""))
        }) {
            let new = text.replacen(line, &edit(line), 1);
            std::fs::write(&seg, new).unwrap();
            return;
        }
    }
    panic!("no receipt line for {run_id}");
}
