//! The earlier layout (one `<run_id>.json` file per receipt): detected so `serve` can refuse
//! it, and imported by `enact receipts migrate` (SPEC §5.3) — each receipt value is appended
//! as it was signed, so seq, prev_hash, signatures and the chain hash stay unchanged.

use std::fs;
use std::io;
use std::path::Path;

use serde_json::Value;

use super::segment;
use super::{Store, StoreError, strict};
use crate::kernel::receipt::{self, is_valid_run_id};

/// Where migrated receipt files are moved.
pub(crate) const MIGRATED_DIR: &str = "migrated";

fn receipt_file_id(name: &str) -> Option<&str> {
    name.strip_suffix(".json").filter(|id| is_valid_run_id(id))
}

/// Whether the folder holds receipt files of the earlier layout.
pub(super) fn has_receipt_files(dir: &Path) -> Result<bool, StoreError> {
    for entry in fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let entry = entry.map_err(StoreError::io(dir))?;
        if receipt_file_id(&entry.file_name().to_string_lossy()).is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Imports every receipt file, in seq order, then moves the files to `migrated/`.
pub(super) fn migrate(store: &Store) -> Result<usize, StoreError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(&store.dir).map_err(StoreError::io(&store.dir))? {
        let entry = entry.map_err(StoreError::io(&store.dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = receipt_file_id(&name) else {
            continue;
        };
        let path = entry.path();
        let file = segment::open_read(&path).map_err(StoreError::io(&path))?;
        let len = file.metadata().map_err(StoreError::io(&path))?.len();
        if len > segment::MAX_RECORD as u64 {
            return Err(StoreError::Invalid {
                run_id: id.into(),
                reason: "the file is over 16 MiB".into(),
            });
        }
        let bytes = io::read_to_string(file).map_err(StoreError::io(&path))?;
        let value = strict::parse(bytes.as_bytes()).map_err(|e| StoreError::Invalid {
            run_id: id.into(),
            reason: e.to_string(),
        })?;
        let Some(seq) = value.get("seq").and_then(Value::as_u64) else {
            return Err(StoreError::Invalid {
                run_id: id.into(),
                reason: "no seq".into(),
            });
        };
        if value.get("run_id").and_then(Value::as_str) != Some(id) {
            return Err(StoreError::Invalid {
                run_id: id.into(),
                reason: "its signed run_id is not the file name".into(),
            });
        }
        if !receipt::verify(&value, store.key()) {
            tracing::warn!(
                run_id = id,
                "migrating a receipt whose signature does not verify (verify will report it)"
            );
        }
        found.push((seq, name, value));
    }
    found.sort_by_key(|(seq, _, _)| *seq);
    let moved = store.dir.join(MIGRATED_DIR);
    fs::create_dir_all(&moved).map_err(StoreError::io(&moved))?;
    let mut imported = 0;
    for (_, name, value) in &found {
        let run_id = value
            .get("run_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let appended = store.append_line(|index| {
            if index.get(run_id).is_some() {
                // Imported by an earlier, interrupted migrate.
                return Ok(None);
            }
            Ok(Some(value.clone()))
        });
        match appended {
            Ok(Some(_)) => imported += 1,
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        let from = store.dir.join(name);
        fs::rename(&from, moved.join(name)).map_err(StoreError::io(&from))?;
    }
    // The earlier layout's own files.
    for leftover in [".head.json", ".index.jsonl"] {
        let path = store.dir.join(leftover);
        if path.exists() {
            fs::rename(&path, moved.join(leftover)).map_err(StoreError::io(&path))?;
        }
    }
    let pending = store.dir.join(".pending");
    if pending.is_dir() {
        let _ = fs::remove_dir_all(&pending);
    }
    Ok(imported)
}
