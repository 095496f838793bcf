//! Confinement: every path is resolved beneath the root one component at a time, through
//! directory handles, with symlinks refused, so that checking a path and using it are the
//! same system calls and cannot be raced.
//!
//! 1. The path is resolved lexically first (`.` dropped, `..` pops a component); a `..` that
//!    would climb above the root, or an absolute path that is not under the root, is refused
//!    before any system call.
//! 2. The root is opened (`O_DIRECTORY`; the root path itself is the operator's and may contain
//!    symlinks), then each parent component with `openat(dir, name, O_DIRECTORY | O_NOFOLLOW)`:
//!    a symlink there fails the open. `..` never reaches the kernel.
//! 3. The final component is looked at with `fstatat(AT_SYMLINK_NOFOLLOW)` and opened with
//!    `O_NOFOLLOW`; every check (regular file, one hard link, not one of Enact's own files) is
//!    done again on the opened descriptor, so what is read is what was checked. Writes go to a
//!    temporary file in the same opened directory, renamed over the name: `renameat` replaces
//!    a symlink swapped in meanwhile instead of following it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat};
use rustix::io::Errno;

use super::MAX_FILE_BYTES;

/// The name prefix of the temporary files atomic writes create beside their target. They are
/// never listed, and [`Jail::remove_temp_files`] removes those a crash left behind.
pub(super) const TMP_PREFIX: &str = ".enact-tmp-";

/// The message for every path that escapes the root (SPEC §7).
pub(super) fn outside(given: &str) -> String {
    format!("Path '{given}' resolves outside the root — operation blocked")
}

/// The message for content over [`MAX_FILE_BYTES`].
pub(super) fn too_big(what: &str, bytes: u64) -> String {
    format!(
        "{what} is {bytes} bytes, over the 10 MiB ({MAX_FILE_BYTES}-byte) limit for files read, written or kept for rollback"
    )
}

/// A file or folder Enact itself depends on, which no filesystem action may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guarded {
    ReceiptsDir,
    SecretFile,
    ConfigFile,
}

impl Guarded {
    fn describe(self) -> &'static str {
        match self {
            Guarded::ReceiptsDir => "Enact's receipts folder",
            Guarded::SecretFile => "Enact's signing secret file",
            Guarded::ConfigFile => "Enact's config file",
        }
    }
}

/// The identity of a file: two paths name the same file iff these are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ident {
    dev: u64,
    ino: u64,
}

impl Ident {
    fn of(st: &Stat) -> Ident {
        Ident {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// The root and what must stay unreachable from it.
#[derive(Debug)]
pub(super) struct Jail {
    root: PathBuf,
    /// Lexical forms of the root (as configured and canonical), to recognise absolute paths.
    root_forms: Vec<Vec<String>>,
    guarded: Vec<(PathBuf, Guarded)>,
}

impl Jail {
    pub(super) fn new(
        root: &Path,
        receipts_dir: &Path,
        secret_file: Option<&Path>,
        config_file: &Path,
    ) -> Result<Jail, String> {
        if !root.is_absolute() {
            return Err(format!(
                "filesystem root '{}' must be an absolute path",
                root.display()
            ));
        }
        let mut root_forms = Vec::new();
        for form in [Some(root.to_path_buf()), std::fs::canonicalize(root).ok()]
            .into_iter()
            .flatten()
        {
            if let Some(parts) = form.to_str().and_then(|s| lexical(s, true))
                && !root_forms.contains(&parts)
            {
                root_forms.push(parts);
            }
        }
        let mut guarded = vec![
            (receipts_dir.to_path_buf(), Guarded::ReceiptsDir),
            (config_file.to_path_buf(), Guarded::ConfigFile),
        ];
        if let Some(secret) = secret_file {
            guarded.push((secret.to_path_buf(), Guarded::SecretFile));
        }
        Ok(Jail {
            root: root.to_path_buf(),
            root_forms,
            guarded,
        })
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// Root-relative components of `given`, or `None` when it escapes the root.
    fn components(&self, given: &str) -> Option<Vec<String>> {
        if given.starts_with('/') {
            let parts = lexical(given, true)?;
            self.root_forms
                .iter()
                .find(|root| parts.starts_with(root))
                .map(|root| parts[root.len()..].to_vec())
        } else {
            lexical(given, false)
        }
    }

    /// The identities of the guarded files now. Taken per call rather than once: the receipts
    /// folder is created on the first receipt, and a secret file may be replaced while the
    /// server runs. A guarded path that does not exist cannot be reached anyway.
    fn guards(&self) -> Vec<(Ident, Guarded)> {
        self.guarded
            .iter()
            .filter_map(|(path, what)| {
                std::fs::metadata(path).ok().map(|m| {
                    (
                        Ident {
                            dev: m.dev(),
                            ino: m.ino(),
                        },
                        *what,
                    )
                })
            })
            .collect()
    }

    /// Opens the folder that holds `given`'s last component, beneath the root. With
    /// `create_parents`, missing folders are made (and listed in `created_dirs`); without it,
    /// `Ok(None)` means a parent folder does not exist.
    pub(super) fn locate(
        &self,
        given: &str,
        create_parents: bool,
    ) -> Result<Option<Location>, String> {
        let mut parts = self.components(given).ok_or_else(|| outside(given))?;
        let guards = self.guards();
        let name = parts.pop();
        let mut dir = rustix::fs::open(
            &self.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            format!(
                "cannot open the filesystem root '{}': {e}",
                self.root.display()
            )
        })?;
        check_guards(&guards, &dir_stat(&dir, given)?, given)?;
        let mut created_dirs = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let so_far = parts[..=i].join("/");
            let next = match open_dir(&dir, part) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create_parents => {
                    match rustix::fs::mkdirat(&dir, part.as_str(), Mode::from_raw_mode(0o777)) {
                        Ok(()) => created_dirs.push(so_far.clone()),
                        Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(format!(
                                "cannot create folder '{so_far}' for '{given}': {e}"
                            ));
                        }
                    }
                    open_dir(&dir, part)
                        .map_err(|e| explain_dir_error(&dir, part, Some(&so_far), given, e))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(explain_dir_error(&dir, part, Some(&so_far), given, e)),
            };
            check_guards(&guards, &dir_stat(&next, given)?, given)?;
            dir = next;
        }
        Ok(Some(Location {
            given: given.to_string(),
            dir,
            name,
            guards,
            created_dirs,
        }))
    }
}

impl Jail {
    /// Removes the temporary files of atomic writes (`.enact-tmp-*`, regular files only) that
    /// a crash left anywhere beneath the root, if their last change is at least `min_age` old
    /// (a younger one may belong to a write still under way in another process). Folders are
    /// walked through handles with symlinks never followed, and Enact's own files (the
    /// receipts folder) are skipped. Returns the root-relative paths removed; a root that does
    /// not exist holds nothing.
    pub(super) fn remove_temp_files(
        &self,
        min_age: std::time::Duration,
    ) -> Result<Vec<String>, String> {
        let guards = self.guards();
        let root = match rustix::fs::open(
            &self.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Vec::new()),
            Err(e) => {
                return Err(format!(
                    "cannot open the filesystem root '{}': {e}",
                    self.root.display()
                ));
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let min_age = min_age.as_secs();
        let mut removed = Vec::new();
        // Folders still to visit, root-relative; each is opened again from the root, one
        // component at a time, so no more than a path's depth of handles is ever open.
        let mut pending: Vec<Vec<String>> = vec![Vec::new()];
        while let Some(parts) = pending.pop() {
            let shown = parts.join("/");
            let mut dir = root.try_clone().map_err(|e| {
                format!(
                    "cannot open the filesystem root '{}': {e}",
                    self.root.display()
                )
            })?;
            let mut reachable = true;
            for part in &parts {
                match open_dir(&dir, part) {
                    Ok(next) => dir = next,
                    // Gone or swapped for a symlink meanwhile: nothing of ours to remove there.
                    Err(_) => {
                        reachable = false;
                        break;
                    }
                }
            }
            if !reachable || check_guards(&guards, &dir_stat(&dir, &shown)?, &shown).is_err() {
                continue;
            }
            let reader = rustix::fs::Dir::read_from(&dir).map_err(|e| {
                format!(
                    "cannot list '{}' under the root: {e}",
                    if shown.is_empty() { "." } else { &shown }
                )
            })?;
            for entry in reader {
                let entry =
                    entry.map_err(|e| format!("cannot list '{shown}' under the root: {e}"))?;
                let raw = entry.file_name();
                if raw == c"." || raw == c".." {
                    continue;
                }
                let Ok(name) = raw.to_str() else { continue };
                let Ok(st) = rustix::fs::statat(&dir, raw, AtFlags::SYMLINK_NOFOLLOW) else {
                    continue;
                };
                let path = if shown.is_empty() {
                    name.to_string()
                } else {
                    format!("{shown}/{name}")
                };
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => {
                        let mut next = parts.clone();
                        next.push(name.to_string());
                        pending.push(next);
                    }
                    FileType::RegularFile if name.starts_with(TMP_PREFIX) => {
                        let changed = u64::try_from(st.st_mtime).unwrap_or(0);
                        if now.saturating_sub(changed) < min_age {
                            continue;
                        }
                        match rustix::fs::unlinkat(&dir, raw, AtFlags::empty()) {
                            Ok(()) => removed.push(path),
                            Err(Errno::NOENT) => {}
                            Err(e) => {
                                return Err(format!(
                                    "cannot remove the leftover temporary file '{path}': {e}"
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        removed.sort();
        Ok(removed)
    }
}

/// Splits a `/`-separated path and resolves `.` and `..` lexically. At the top, `..` either
/// stays there (`clamp`: an absolute path, where `/..` is `/`) or escapes (`None`).
fn lexical(path: &str, clamp: bool) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() && !clamp {
                    return None;
                }
            }
            p => out.push(p.to_string()),
        }
    }
    Some(out)
}

fn open_dir(dir: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Why a component could not be opened as a folder, looked at again without following it.
/// `so_far` is the path up to that component; `None` when it is the last one.
fn explain_dir_error(
    dir: &OwnedFd,
    part: &str,
    so_far: Option<&str>,
    given: &str,
    err: Errno,
) -> String {
    let last = so_far.is_none();
    let so_far = so_far.unwrap_or(given);
    let not_folder = || {
        if last {
            format!("'{given}' is not a folder")
        } else {
            format!("'{given}' cannot be reached: '{so_far}' is not a folder")
        }
    };
    if err == Errno::LOOP {
        return outside(given);
    }
    match rustix::fs::statat(dir, part, AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| FileType::from_raw_mode(st.st_mode))
    {
        Ok(FileType::Symlink) => outside(given),
        // `O_DIRECTORY | O_NOFOLLOW` fails on a symlink with ENOTDIR: a folder here now means
        // the entry was swapped between the two calls.
        Ok(FileType::Directory) if err == Errno::NOTDIR => {
            format!("'{given}' cannot be reached: '{so_far}' changed while it was being opened")
        }
        Ok(FileType::Directory) => format!("cannot open folder '{so_far}' of '{given}': {err}"),
        Ok(_) => not_folder(),
        Err(Errno::NOENT) => format!("'{given}' does not exist"),
        Err(_) => format!("cannot open folder '{so_far}' of '{given}': {err}"),
    }
}

fn dir_stat(fd: &OwnedFd, given: &str) -> Result<Stat, String> {
    rustix::fs::fstat(fd).map_err(|e| format!("cannot inspect a folder of '{given}': {e}"))
}

fn check_guards(guards: &[(Ident, Guarded)], st: &Stat, given: &str) -> Result<(), String> {
    match guards.iter().find(|(id, _)| *id == Ident::of(st)) {
        Some((_, what)) => Err(format!(
            "Path '{given}' reaches {} — operation blocked",
            what.describe()
        )),
        None => Ok(()),
    }
}

/// What the last component of a path is (never followed).
#[derive(Debug)]
pub(super) enum Entry {
    Missing,
    File,
    Dir,
}

/// A resolved path: an open handle on its folder and the name in it.
pub(super) struct Location {
    pub(super) given: String,
    dir: OwnedFd,
    /// `None`: the path is the root itself.
    name: Option<String>,
    guards: Vec<(Ident, Guarded)>,
    /// Folders made by [`Jail::locate`], outermost first, root-relative.
    pub(super) created_dirs: Vec<String>,
}

impl Location {
    /// The name of a file path; the root itself is not a file.
    fn file_name(&self) -> Result<&str, String> {
        self.name
            .as_deref()
            .ok_or_else(|| format!("'{}' is a folder, not a file", self.given))
    }

    /// What the last component is. A symlink is refused like any escape; a file that must not
    /// be touched (non-regular, several hard links, Enact's own) is refused here too.
    pub(super) fn entry(&self) -> Result<Entry, String> {
        let Some(name) = &self.name else {
            return Ok(Entry::Dir);
        };
        match rustix::fs::statat(&self.dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(Entry::Missing),
            Err(e) => Err(format!("cannot inspect '{}': {e}", self.given)),
            Ok(st) => {
                check_guards(&self.guards, &st, &self.given)?;
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::Symlink => Err(outside(&self.given)),
                    FileType::Directory => Ok(Entry::Dir),
                    _ => check_file(&st, &self.given).map(|()| Entry::File),
                }
            }
        }
    }

    /// Opens the last component for reading, checking it again on the descriptor.
    /// `O_NONBLOCK` keeps a fifo swapped in meanwhile from blocking the open.
    pub(super) fn open_file(&self) -> Result<(File, Stat), String> {
        let name = self.file_name()?;
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd =
            rustix::fs::openat(&self.dir, name, flags, Mode::empty()).map_err(|e| match e {
                Errno::LOOP => outside(&self.given),
                e => format!("cannot open '{}': {e}", self.given),
            })?;
        let st =
            rustix::fs::fstat(&fd).map_err(|e| format!("cannot inspect '{}': {e}", self.given))?;
        check_guards(&self.guards, &st, &self.given)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(format!("'{}' is a folder, not a file", self.given));
        }
        check_file(&st, &self.given)?;
        Ok((File::from(fd), st))
    }

    /// The content of the file, at most [`MAX_FILE_BYTES`], as raw bytes.
    pub(super) fn read_bytes(&self) -> Result<(Vec<u8>, Stat), String> {
        let (file, st) = self.open_file()?;
        let size = u64::try_from(st.st_size).unwrap_or(0);
        if size > MAX_FILE_BYTES {
            return Err(too_big(&format!("'{}'", self.given), size));
        }
        let mut bytes = Vec::new();
        // `take` bounds the read even if the file grows after the size was checked.
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read '{}': {e}", self.given))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(too_big(&format!("'{}'", self.given), bytes.len() as u64));
        }
        Ok((bytes, st))
    }

    /// Whether the last component is still the file described by `st` (same device and inode).
    pub(super) fn still_is(&self, st: &Stat) -> bool {
        let Some(name) = &self.name else { return false };
        rustix::fs::statat(&self.dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|now| Ident::of(&now) == Ident::of(st))
    }

    /// Writes `bytes` to a new file in the same folder, syncs it, and renames it over the name
    /// (with `exclusive`, only if the name is still free: `Ok(false)` when it is taken).
    /// `mode`: the permission bits to give it; `None` for a new file's default (umask applies).
    pub(super) fn replace(
        &self,
        bytes: &[u8],
        mode: Option<u32>,
        exclusive: bool,
    ) -> Result<bool, String> {
        let name = self.file_name()?;
        let tmp = format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.dir, tmp.as_str(), flags, Mode::from_raw_mode(0o666))
            .map_err(|e| {
                format!(
                    "cannot create a temporary file beside '{}': {e}",
                    self.given
                )
            })?;
        let written =
            fill(fd, bytes, mode).and_then(|()| self.rename_into_place(&tmp, name, exclusive));
        match written {
            Ok(true) => {
                // The rename is durable only once the folder itself is synced.
                rustix::fs::fsync(&self.dir)
                    .map_err(|e| format!("cannot sync the folder of '{}': {e}", self.given))?;
                Ok(true)
            }
            Ok(false) => {
                let _ = rustix::fs::unlinkat(&self.dir, tmp.as_str(), AtFlags::empty());
                Ok(false)
            }
            Err(e) => {
                let _ = rustix::fs::unlinkat(&self.dir, tmp.as_str(), AtFlags::empty());
                Err(format!("cannot write '{}': {e}", self.given))
            }
        }
    }

    fn rename_into_place(&self, tmp: &str, name: &str, exclusive: bool) -> std::io::Result<bool> {
        if !exclusive {
            rustix::fs::renameat(&self.dir, tmp, &self.dir, name)?;
            return Ok(true);
        }
        match rustix::fs::renameat_with(&self.dir, tmp, &self.dir, name, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            // Filesystems without RENAME_NOREPLACE: a hard link also refuses an existing name.
            Err(Errno::INVAL | Errno::NOSYS) => {
                match rustix::fs::linkat(&self.dir, tmp, &self.dir, name, AtFlags::empty()) {
                    Ok(()) => rustix::fs::unlinkat(&self.dir, tmp, AtFlags::empty())
                        .map(|()| true)
                        .map_err(Into::into),
                    Err(Errno::EXIST) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the last component (a file) and syncs the folder.
    pub(super) fn remove_file(&self) -> Result<(), String> {
        let name = self.file_name()?;
        rustix::fs::unlinkat(&self.dir, name, AtFlags::empty())
            .map_err(|e| format!("cannot delete '{}': {e}", self.given))?;
        rustix::fs::fsync(&self.dir)
            .map_err(|e| format!("cannot sync the folder of '{}': {e}", self.given))
    }

    /// Removes the last component if it is an empty folder; anything else is left alone.
    pub(super) fn remove_empty_dir(&self) -> bool {
        let Some(name) = &self.name else { return false };
        rustix::fs::unlinkat(&self.dir, name.as_str(), AtFlags::REMOVEDIR).is_ok()
    }

    /// The sorted entries of the folder at this path, folders with a trailing `/`.
    pub(super) fn list(&self) -> Result<Vec<String>, String> {
        let dir = match &self.name {
            None => rustix::fs::openat(
                &self.dir,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| format!("cannot open '{}': {e}", self.given))?,
            Some(name) => open_dir(&self.dir, name)
                .map_err(|e| explain_dir_error(&self.dir, name, None, &self.given, e))?,
        };
        check_guards(&self.guards, &dir_stat(&dir, &self.given)?, &self.given)?;
        let reader = rustix::fs::Dir::read_from(&dir)
            .map_err(|e| format!("cannot list '{}': {e}", self.given))?;
        let mut entries: Vec<(String, bool)> = Vec::new();
        for entry in reader {
            let entry = entry.map_err(|e| format!("cannot list '{}': {e}", self.given))?;
            let raw = entry.file_name();
            if raw == c"." || raw == c".." || raw.to_bytes().starts_with(TMP_PREFIX.as_bytes()) {
                continue;
            }
            let is_dir = match entry.file_type() {
                FileType::Unknown => rustix::fs::statat(&dir, raw, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
                t => t == FileType::Directory,
            };
            entries.push((raw.to_string_lossy().into_owned(), is_dir));
        }
        entries.sort();
        Ok(entries
            .into_iter()
            .map(|(name, is_dir)| if is_dir { name + "/" } else { name })
            .collect())
    }
}

fn fill(fd: OwnedFd, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    if let Some(mode) = mode {
        rustix::fs::fchmod(fd.as_fd(), Mode::from_raw_mode(mode & 0o777))?;
    }
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    file.sync_all()
}

/// Refuses what is not a plain file with a single name.
fn check_file(st: &Stat, given: &str) -> Result<(), String> {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => None,
        FileType::Directory => Some("a folder"),
        FileType::Symlink => return Err(outside(given)),
        FileType::Fifo => Some("a fifo"),
        FileType::Socket => Some("a socket"),
        FileType::CharacterDevice => Some("a character device"),
        FileType::BlockDevice => Some("a block device"),
        FileType::Unknown => Some("of an unknown type"),
    };
    if let Some(kind) = kind {
        return Err(format!(
            "'{given}' is {kind}, not a regular file — operation refused"
        ));
    }
    // A second name for the same file may lie outside the root (a hard link made by someone
    // else), so reading or changing it could reach outside.
    if st.st_nlink > 1 {
        return Err(format!(
            "'{given}' has {} hard links — refused, since another link could lie outside the root",
            st.st_nlink
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_resolution() {
        assert_eq!(
            lexical("a/./b/../c", false),
            Some(vec!["a".to_string(), "c".to_string()])
        );
        assert_eq!(lexical("a/../../x", false), None);
        assert_eq!(lexical("..", false), None);
        assert_eq!(lexical(".", false), Some(vec![]));
        assert_eq!(lexical("/../etc", true), Some(vec!["etc".to_string()]));
    }

    #[test]
    fn absolute_paths_must_lie_under_the_root() {
        let jail = Jail::new(
            Path::new("/srv/ws/"),
            Path::new("/srv/receipts"),
            None,
            Path::new("/srv/enact.toml"),
        )
        .unwrap();
        assert_eq!(
            jail.components("/srv/ws/a/b"),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(jail.components("/srv/ws"), Some(vec![]));
        assert_eq!(
            jail.components("/srv/ws/../ws/a"),
            Some(vec!["a".to_string()])
        );
        assert_eq!(jail.components("/srv/wsx/a"), None);
        assert_eq!(jail.components("/srv/ws/../x"), None);
        assert_eq!(jail.components("/etc/passwd"), None);
    }
}
