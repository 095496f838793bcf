//! Atomic file replacement: a temporary file in the same folder, written (and synced if
//! asked), then renamed over the target, then the folder synced, so a reader sees the old
//! file or the new one, never a torn one.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Prefix of temporary files; the audit ignores them (a crash may leave one behind).
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Writes `bytes` to `dir/name` atomically. With `fsync`, the file's data and the folder entry
/// are durable when this returns.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let temp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&temp, dir.join(name))
    })();
    if written.is_err() {
        // Best effort: the write already failed, and a leftover temp file is ignored anyway.
        let _ = fs::remove_file(&temp);
    }
    written?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes the folder's entries (creations, renames) durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Folders cannot be opened for syncing on this platform; renames are durable on their own
/// once the file data is.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
