//! Guarded undo of HubSpot actions (SPEC-hubspot-slack §6), by the id recorded in signed
//! rollback data: archive a created contact or task, write an update's old values back — each
//! only if the record still holds what the run left. Guard failures name what changed, never
//! the values (the rollback result is shown to the agent). HubSpot has no conditional write,
//! so the check and the write are two requests.

use serde_json::{Map, Value, json};

use super::HubspotConnector;
use super::actions::timestamp_millis;
use super::api::{Failure, Object, check_id};
use crate::connector::{ActionOutcome, UndoMode};
use crate::kernel::receipt::ActionRecord;

pub(super) async fn undo(
    c: &HubspotConnector,
    record: &ActionRecord,
    _mode: UndoMode,
) -> ActionOutcome {
    let data = &record.rollback_data;
    let result = match record.action.as_str() {
        "create_contact" => archive_contact(c, data).await,
        "update_contact" => restore_contact(c, data).await,
        "create_task" => archive_task(c, data).await,
        other => Err(format!("cannot undo `{other}`")),
    };
    result.unwrap_or_else(ActionOutcome::failed)
}

fn text(f: Failure) -> String {
    f.text
}

fn field<'a>(data: &'a Value, key: &str) -> Result<&'a str, String> {
    data.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("rollback data has no `{key}`"))
}

fn map<'a>(data: &'a Value, key: &str) -> Result<&'a Map<String, Value>, String> {
    data.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("rollback data has no `{key}`"))
}

fn done(word: &str, key: &str, id: &str) -> ActionOutcome {
    let mut out = Map::new();
    out.insert(key.into(), json!(id));
    ActionOutcome::already_done(out, word)
}

/// Reads the contact by its recorded id; `Err` when it is gone or merged into another.
async fn live_contact(
    c: &HubspotConnector,
    id: &str,
    names: &[String],
    verb: &str,
) -> Result<Result<Object, ActionOutcome>, String> {
    check_id(id)?;
    match c.api.contact_by_id(id, names, false).await.map_err(text)? {
        Some(found) if found.id == id => Ok(Ok(found)),
        Some(found) => Err(format!(
            "contact {id} was merged into {} — not {verb}",
            found.id
        )),
        None => match c.api.contact_by_id(id, names, true).await.map_err(text)? {
            Some(_) if verb == "archived" => Ok(Err(done("archived", "archived", id))),
            Some(_) => Err(format!(
                "contact {id} was archived since the run — not {verb}"
            )),
            None => Err(format!(
                "contact {id} no longer exists — merged or permanently deleted; nothing {verb}"
            )),
        },
    }
}

/// The names whose value differs from `expected` (as strings; `null` as `""`).
fn changed(found: &Object, expected: &Map<String, Value>) -> Vec<String> {
    expected
        .iter()
        .filter(|(k, v)| found.text(k) != crate::kernel::hubspot::property_text(v))
        .map(|(k, _)| k.clone())
        .collect()
}

async fn archive_contact(c: &HubspotConnector, data: &Value) -> Result<ActionOutcome, String> {
    let id = field(data, "id")?;
    let written = map(data, "written")?;
    let names: Vec<String> = written.keys().cloned().collect();
    let found = match live_contact(c, id, &names, "archived").await? {
        Ok(found) => found,
        Err(already) => return Ok(already),
    };
    let changed = changed(&found, written);
    if !changed.is_empty() {
        return Err(format!(
            "contact {id} changed since the run: {} — not archived",
            changed.join(", ")
        ));
    }
    c.api.archive("contacts", id).await.map_err(text)?;
    Ok(ActionOutcome::ok(json!({"archived": id}), json!({})))
}

async fn restore_contact(c: &HubspotConnector, data: &Value) -> Result<ActionOutcome, String> {
    let id = field(data, "id")?;
    let before = map(data, "before")?;
    let after = map(data, "after")?;
    let names: Vec<String> = after.keys().cloned().collect();
    let found = match live_contact(c, id, &names, "restored").await? {
        Ok(found) => found,
        Err(already) => return Ok(already),
    };
    if changed(&found, before).is_empty() {
        return Ok(done("restored", "restored", id));
    }
    let changed = changed(&found, after);
    if !changed.is_empty() {
        return Err(format!(
            "contact {id} changed since the run: {} — not restored",
            changed.join(", ")
        ));
    }
    let old: Map<String, Value> = before
        .iter()
        .map(|(k, v)| (k.clone(), json!(crate::kernel::hubspot::property_text(v))))
        .collect();
    c.api.update_contact(id, old).await.map_err(text)?;
    let names: Vec<&String> = before.keys().collect();
    Ok(ActionOutcome::ok(
        json!({"restored": id, "properties": names}),
        json!({}),
    ))
}

async fn archive_task(c: &HubspotConnector, data: &Value) -> Result<ActionOutcome, String> {
    let id = field(data, "task_id")?;
    check_id(id)?;
    let Some(task) = c.api.task_by_id(id, false).await.map_err(text)? else {
        return match c.api.task_by_id(id, true).await.map_err(text)? {
            Some(_) => Ok(done("archived", "archived", id)),
            None => Err(format!(
                "task {id} no longer exists — permanently deleted; nothing archived"
            )),
        };
    };
    match task.text("hs_task_status").as_str() {
        "NOT_STARTED" => {}
        "COMPLETED" => {
            return Err(format!(
                "task {id} was completed since the run — not archived"
            ));
        }
        _ => {
            return Err(format!(
                "task {id} was started since the run — not archived"
            ));
        }
    }
    let mut changed = Vec::new();
    if task.text("hs_task_subject") != field(data, "subject")? {
        changed.push("hs_task_subject");
    }
    if task.text("hs_task_body") != field(data, "body")? {
        changed.push("hs_task_body");
    }
    let due = |s: &str| timestamp_millis(s);
    if due(&task.text("hs_timestamp")) != due(field(data, "due")?) {
        changed.push("hs_timestamp");
    }
    if !changed.is_empty() {
        return Err(format!(
            "task {id} changed since the run: {} — not archived",
            changed.join(", ")
        ));
    }
    c.api.archive("tasks", id).await.map_err(text)?;
    Ok(ActionOutcome::ok(json!({"archived": id}), json!({})))
}
