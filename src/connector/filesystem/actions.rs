//! The four filesystem actions and the undo of the two that change anything. Each works on a
//! [`Location`] opened beneath the root by [`Jail::locate`]; errors are the failed action's
//! message.

use std::io::Write as _;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::MAX_FILE_BYTES;
use super::jail::{Entry, Jail, Location, too_big};
use crate::connector::{ActionOutcome, Recovered, StepLog, UndoMode};
use crate::kernel::receipt::ActionRecord;
use crate::kernel::typed::FilesystemAction;

/// Runs one action; every error becomes a failed outcome. `log.before` is called once, just
/// before the file changes (read-only actions: first, with `{}`); its error is the outcome's.
pub(super) fn execute(
    jail: &Jail,
    action: &str,
    args: &Map<String, Value>,
    log: &mut dyn StepLog,
) -> ActionOutcome {
    let result = match action {
        "read_file" => str_arg(args, "path").and_then(|p| read_file(jail, p, log)),
        "write_file" => {
            str_arg(args, "path").and_then(|p| write_file(jail, p, str_arg(args, "content")?, log))
        }
        "delete_file" => str_arg(args, "path").and_then(|p| delete_file(jail, p, log)),
        "list_dir" => match args.get("path") {
            None => list_dir(jail, ".", log),
            Some(_) => str_arg(args, "path").and_then(|p| list_dir(jail, p, log)),
        },
        other => Err(format!("unknown filesystem action `{other}`")),
    };
    result.unwrap_or_else(ActionOutcome::failed)
}

/// Runs one typed action (arguments checked when the plan was built).
pub(super) fn run(jail: &Jail, action: &FilesystemAction, log: &mut dyn StepLog) -> ActionOutcome {
    let result = match action {
        FilesystemAction::ReadFile { path } => read_file(jail, path.as_str(), log),
        FilesystemAction::WriteFile { path, content } => {
            write_file(jail, path.as_str(), content, log)
        }
        FilesystemAction::DeleteFile { path } => delete_file(jail, path.as_str(), log),
        FilesystemAction::ListDir { path } => list_dir(jail, path.as_str(), log),
    };
    result.unwrap_or_else(ActionOutcome::failed)
}

/// Undoes one recorded action (SPEC §6), only if the file still holds what the run left.
pub(super) fn undo(jail: &Jail, record: &ActionRecord, mode: UndoMode) -> ActionOutcome {
    let tolerate = mode == UndoMode::AfterCrash;
    match record.action.as_str() {
        "read_file" | "list_dir" => {
            return ActionOutcome::ok(json!("skipped: read-only action"), json!({}));
        }
        "write_file" | "delete_file" => {}
        other => {
            return ActionOutcome::failed(format!(
                "cannot undo unknown filesystem action `{other}`"
            ));
        }
    }
    let fresh = record.success && record.output.get("already_done") == Some(&Value::Bool(false));
    let data = record.rollback_data.as_object().filter(|d| !d.is_empty());
    let (true, Some(data)) = (fresh, data) else {
        return ActionOutcome::ok(json!({"skipped": "nothing to undo"}), json!({}));
    };
    let result = if record.action == "write_file" {
        undo_write(jail, data, tolerate)
    } else {
        undo_delete(jail, data, tolerate)
    };
    result.unwrap_or_else(ActionOutcome::failed)
}

fn read_file(jail: &Jail, path: &str, log: &mut dyn StepLog) -> Result<ActionOutcome, String> {
    log.before(json!({}))?;
    let loc = existing_file(jail, path)?;
    let (bytes, _) = loc.read_bytes()?;
    let content = String::from_utf8(bytes)
        .map_err(|_| format!("'{path}' is not UTF-8 text — only UTF-8 text files can be read"))?;
    Ok(ActionOutcome::ok(
        json!({"path": path, "content": content}),
        json!({}),
    ))
}

fn write_file(
    jail: &Jail,
    path: &str,
    content: &str,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, String> {
    if content.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(
            &format!("the content for '{path}'"),
            content.len() as u64,
        ));
    }
    let loc = jail.locate(path, true)?.ok_or_else(|| missing(path))?;
    let result = write_located(&loc, path, content, log);
    if result.is_err() {
        remove_created_dirs(jail, &loc.created_dirs);
    }
    result
}

/// Folders missing on the way are made by [`Jail::locate`] before the step record (they are
/// removed again when the write does not happen), so that `created_dirs` is exact in it.
fn write_located(
    loc: &Location,
    path: &str,
    content: &str,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, String> {
    let previous = match loc.entry()? {
        Entry::Dir => return Err(is_folder(path)),
        Entry::Missing => None,
        Entry::File => {
            let (bytes, st) = loc.read_bytes()?;
            if bytes == content.as_bytes() {
                let out = output(path, content.len());
                log.before(already(&out, "written"))?;
                return Ok(ActionOutcome::already_done(out, "written"));
            }
            let text = String::from_utf8(bytes).map_err(|_| not_capturable(path, "overwritten"))?;
            Some((text, st.st_mode & 0o777))
        }
    };
    let rollback = json!({
        "path": path,
        "existed": previous.is_some(),
        "previous_content": previous.as_ref().map(|p| p.0.as_str()),
        "previous_mode": previous.as_ref().map(|p| p.1),
        "written_sha256": hex::encode(Sha256::digest(content.as_bytes())),
        "created_dirs": loc.created_dirs,
    });
    log.before(rollback.clone())?;
    loc.replace(content.as_bytes(), previous.as_ref().map(|p| p.1), false)?;
    Ok(fresh(output(path, content.len()), rollback))
}

fn delete_file(jail: &Jail, path: &str, log: &mut dyn StepLog) -> Result<ActionOutcome, String> {
    let gone = |log: &mut dyn StepLog| {
        log.before(already(&path_map(path), "deleted"))?;
        Ok(ActionOutcome::already_done(path_map(path), "deleted"))
    };
    let Some(loc) = jail.locate(path, false)? else {
        return gone(log);
    };
    match loc.entry()? {
        Entry::Missing => return gone(log),
        Entry::Dir => {
            return Err(format!(
                "'{path}' is a folder — delete_file only deletes files"
            ));
        }
        Entry::File => {}
    }
    let (bytes, st) = loc.read_bytes()?;
    let content = String::from_utf8(bytes).map_err(|_| not_capturable(path, "deleted"))?;
    // What is unlinked must be the file whose content was captured.
    if !loc.still_is(&st) {
        return Err(format!(
            "'{path}' changed while it was being deleted — not deleted"
        ));
    }
    let rollback = json!({"path": path, "content": content, "mode": st.st_mode & 0o777});
    log.before(rollback.clone())?;
    loc.remove_file()?;
    Ok(fresh(output(path, content.len()), rollback))
}

fn list_dir(jail: &Jail, path: &str, log: &mut dyn StepLog) -> Result<ActionOutcome, String> {
    log.before(json!({}))?;
    let loc = jail.locate(path, false)?.ok_or_else(|| missing(path))?;
    let entries = loc.list()?;
    Ok(ActionOutcome::ok(
        json!({"path": path, "entries": entries}),
        json!({}),
    ))
}

/// What recovery found about an interrupted `write_file` or `delete_file` (SPEC §5.5): the file
/// is looked at again and compared with `pre`, the undo data recorded before the change.
/// (Read-only actions and `already_done` steps are answered by the caller.)
pub(super) fn recover(
    jail: &Jail,
    action: &str,
    pre: &Map<String, Value>,
) -> (Recovered, ActionOutcome) {
    let path = match data_str(pre, "path") {
        Ok(path) => path,
        Err(e) => return unknown(pre, &e),
    };
    let now = match current(jail, path) {
        Ok(now) => now,
        Err(e) => return unknown(pre, &format!("cannot look at '{path}': {e}")),
    };
    let hash = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    match action {
        "write_file" => {
            let Ok(written) = data_str(pre, "written_sha256") else {
                return unknown(pre, "the step record has no `written_sha256`");
            };
            let existed = pre.get("existed").and_then(Value::as_bool).unwrap_or(true);
            let previous = pre.get("previous_content").and_then(Value::as_str);
            match now {
                Current::File(bytes) if hash(&bytes) == written => (
                    Recovered::Done,
                    fresh(output(path, bytes.len()), Value::Object(pre.clone())),
                ),
                Current::Missing if !existed => (
                    Recovered::NotDone,
                    not_done(path, "the file still does not exist"),
                ),
                Current::File(bytes)
                    if existed && previous.is_some_and(|p| p.as_bytes() == bytes) =>
                {
                    (
                        Recovered::NotDone,
                        not_done(path, "the file still holds its previous content"),
                    )
                }
                Current::Missing => unknown(pre, &format!("'{path}' was deleted since")),
                Current::Dir => unknown(pre, &format!("'{path}' is now a folder")),
                Current::File(bytes) => unknown(
                    pre,
                    &format!(
                        "'{path}' holds neither the content written (sha256 {written}) nor the previous content (found sha256 {})",
                        hash(&bytes)
                    ),
                ),
            }
        }
        "delete_file" => {
            let recorded = pre.get("content").and_then(Value::as_str);
            match now {
                Current::Missing => (
                    Recovered::Done,
                    fresh(
                        output(path, recorded.map_or(0, str::len)),
                        Value::Object(pre.clone()),
                    ),
                ),
                Current::File(bytes) if recorded.is_some_and(|c| c.as_bytes() == bytes) => (
                    Recovered::NotDone,
                    not_done(path, "the file still holds the content it had"),
                ),
                Current::Dir => unknown(pre, &format!("'{path}' is now a folder")),
                Current::File(bytes) => unknown(
                    pre,
                    &format!(
                        "'{path}' exists with other content than recorded (found sha256 {})",
                        hash(&bytes)
                    ),
                ),
            }
        }
        other => unknown(
            pre,
            &format!("`{other}` is not a filesystem action that changes files"),
        ),
    }
}

/// What a path holds now, for recovery.
enum Current {
    Missing,
    Dir,
    File(Vec<u8>),
}

fn current(jail: &Jail, path: &str) -> Result<Current, String> {
    let Some(loc) = jail.locate(path, false)? else {
        return Ok(Current::Missing);
    };
    Ok(match loc.entry()? {
        Entry::Missing => Current::Missing,
        Entry::Dir => Current::Dir,
        Entry::File => Current::File(loc.read_bytes()?.0),
    })
}

fn not_done(path: &str, why: &str) -> ActionOutcome {
    ActionOutcome::ok(json!({"path": path, "not_done": why}), json!({}))
}

/// Neither state found: the recorded undo data is kept, so an undo runs with its usual guard
/// (the file must hold what the write left) and refuses otherwise.
fn unknown(pre: &Map<String, Value>, why: &str) -> (Recovered, ActionOutcome) {
    let mut out = Map::new();
    if let Some(path) = pre.get("path") {
        out.insert("path".into(), path.clone());
    }
    out.insert("unknown".into(), json!(why));
    (Recovered::Unknown, fresh(out, Value::Object(pre.clone())))
}

/// The step record of an action that found its desired state already there.
fn already(output: &Map<String, Value>, word: &str) -> Value {
    let mut pre = output.clone();
    pre.insert("already_done".into(), json!(word));
    Value::Object(pre)
}

/// Restores the previous content, or deletes the file the run created — only if the file
/// still holds exactly what the run wrote.
fn undo_write(
    jail: &Jail,
    data: &Map<String, Value>,
    tolerate: bool,
) -> Result<ActionOutcome, String> {
    let path = data_str(data, "path")?;
    let expected = data_str(data, "written_sha256")?;
    let existed = data
        .get("existed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // The state the undo would leave already holds (a rollback interrupted by a crash after
    // this undo, then retried): nothing to do, and it is a success.
    let already_undone = || {
        Ok(ActionOutcome::ok(
            json!({"path": path, "undone": "already undone: the file already holds its state from before the run"}),
            json!({}),
        ))
    };
    let Some(loc) = jail.locate(path, false)? else {
        return if existed || !tolerate {
            Err(format!("'{path}' was deleted after the run — not restored"))
        } else {
            already_undone()
        };
    };
    match loc.entry()? {
        Entry::Missing if !existed && tolerate => return already_undone(),
        Entry::Missing => return Err(format!("'{path}' was deleted after the run — not restored")),
        Entry::Dir => {
            return Err(format!(
                "'{path}' was replaced by a folder after the run — not restored"
            ));
        }
        Entry::File => {}
    }
    let (mut file, st) = loc.open_file()?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| format!("cannot read '{path}': {e}"))?;
    hasher
        .flush()
        .map_err(|e| format!("cannot read '{path}': {e}"))?;
    let found = hex::encode(hasher.finalize());
    if tolerate
        && existed
        && let Ok(previous) = data_str(data, "previous_content")
        && found != expected
        && hex::encode(Sha256::digest(previous.as_bytes())) == found
    {
        return already_undone();
    }
    if found != expected {
        return Err(format!(
            "'{path}' was modified after the run (expected sha256 {expected}, found {found}) — not restored"
        ));
    }
    if data
        .get("existed")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        let previous = data_str(data, "previous_content")?;
        let mode = data
            .get("previous_mode")
            .and_then(Value::as_u64)
            .and_then(|m| u32::try_from(m).ok());
        loc.replace(previous.as_bytes(), mode, false)?;
        return Ok(ActionOutcome::ok(
            json!({"path": path, "undone": "restored the previous content"}),
            json!({}),
        ));
    }
    if !loc.still_is(&st) {
        return Err(format!(
            "'{path}' was modified after the run — not restored"
        ));
    }
    loc.remove_file()?;
    let created: Vec<String> = data
        .get("created_dirs")
        .and_then(Value::as_array)
        .map(|dirs| {
            dirs.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    remove_created_dirs(jail, &created);
    Ok(ActionOutcome::ok(
        json!({"path": path, "undone": "deleted the file the run created"}),
        json!({}),
    ))
}

/// Writes the deleted content back — only if the path is still free.
fn undo_delete(
    jail: &Jail,
    data: &Map<String, Value>,
    tolerate: bool,
) -> Result<ActionOutcome, String> {
    let path = data_str(data, "path")?;
    let content = data_str(data, "content")?;
    let mode = data
        .get("mode")
        .and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok());
    let recreated = || format!("'{path}' was recreated after the run — not restored");
    let loc = jail.locate(path, true)?.ok_or_else(|| missing(path))?;
    let result = match loc.entry() {
        Ok(Entry::Missing) => match loc.replace(content.as_bytes(), mode, true) {
            Ok(true) => Ok(ActionOutcome::ok(
                json!({"path": path, "undone": "wrote the deleted content back", "bytes": content.len()}),
                json!({}),
            )),
            Ok(false) => Err(recreated()),
            Err(e) => Err(e),
        },
        Ok(Entry::File) => match loc.read_bytes() {
            // Already written back (a retried rollback): nothing to do.
            Ok((bytes, _)) if tolerate && bytes == content.as_bytes() => Ok(ActionOutcome::ok(
                json!({"path": path, "undone": "already undone: the deleted content is already back"}),
                json!({}),
            )),
            Ok(_) => Err(recreated()),
            Err(e) => Err(e),
        },
        Ok(Entry::Dir) => Err(recreated()),
        Err(e) => Err(e),
    };
    if result.is_err() {
        remove_created_dirs(jail, &loc.created_dirs);
    }
    result
}

/// The location of a file that must exist (read).
fn existing_file(jail: &Jail, path: &str) -> Result<Location, String> {
    let loc = jail.locate(path, false)?.ok_or_else(|| missing(path))?;
    match loc.entry()? {
        Entry::File => Ok(loc),
        Entry::Missing => Err(missing(path)),
        Entry::Dir => Err(is_folder(path)),
    }
}

/// Removes folders made for a write, innermost first, as long as they are empty.
fn remove_created_dirs(jail: &Jail, dirs: &[String]) {
    for dir in dirs.iter().rev() {
        match jail.locate(dir, false) {
            Ok(Some(loc)) if loc.remove_empty_dir() => {}
            _ => break,
        }
    }
}

fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("argument `{name}` must be a string")),
        None => Err(format!("missing argument `{name}`")),
    }
}

fn data_str<'a>(data: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    data.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the recorded rollback data has no `{name}` — not restored"))
}

fn path_map(path: &str) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("path".into(), json!(path));
    map
}

fn output(path: &str, bytes: usize) -> Map<String, Value> {
    let mut map = path_map(path);
    map.insert("bytes".into(), json!(bytes));
    map
}

fn fresh(mut output: Map<String, Value>, rollback: Value) -> ActionOutcome {
    output.insert("already_done".into(), json!(false));
    ActionOutcome::ok(Value::Object(output), rollback)
}

fn missing(path: &str) -> String {
    format!("'{path}' does not exist")
}

fn is_folder(path: &str) -> String {
    format!("'{path}' is a folder, not a file")
}

fn not_capturable(path: &str, verb: &str) -> String {
    format!(
        "'{path}' holds content that is not UTF-8 text, which cannot be kept for rollback — not {verb}"
    )
}
