//! Recovery of a HubSpot action whose process died after its step record (SPEC §5.5): HubSpot
//! is asked whether the contact exists, holds the values written, or has the task planned.

use serde_json::{Map, Value, json};

use super::HubspotConnector;
use super::actions::timestamp_millis;
use crate::connector::{ActionOutcome, Recovered};

pub(super) async fn recover(
    c: &HubspotConnector,
    action: &str,
    _args: &Map<String, Value>,
    pre: &Value,
) -> (Recovered, ActionOutcome) {
    let result = match action {
        "create_contact" => contact_created(c, pre).await,
        "update_contact" => contact_updated(c, pre).await,
        "create_task" => task_created(c, pre).await,
        other => Err(format!("cannot recover `{other}`")),
    };
    result.unwrap_or_else(|e| {
        (
            Recovered::Unknown,
            ActionOutcome::ok(json!({"note": e}), pre.clone()),
        )
    })
}

fn not_done(what: &str) -> (Recovered, ActionOutcome) {
    (
        Recovered::NotDone,
        ActionOutcome::ok(json!({"not_done": what}), json!({})),
    )
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn map_of(v: &Value, key: &str) -> Map<String, Value> {
    v.get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

async fn contact_created(
    c: &HubspotConnector,
    pre: &Value,
) -> Result<(Recovered, ActionOutcome), String> {
    let email = str_of(pre, "email");
    let sent = map_of(pre, "properties");
    let names: Vec<String> = sent.keys().cloned().collect();
    let Some(found) = c
        .api
        .contact_by_email(email, &names)
        .await
        .map_err(|f| f.text)?
    else {
        return Ok(not_done("the contact was not created"));
    };
    let written: Map<String, Value> = names
        .iter()
        .map(|k| (k.clone(), json!(found.text(k))))
        .collect();
    Ok((
        Recovered::Done,
        ActionOutcome::ok(
            json!({"id": found.id, "email": email, "already_done": false}),
            json!({"id": found.id, "email": email, "written": written}),
        ),
    ))
}

async fn contact_updated(
    c: &HubspotConnector,
    pre: &Value,
) -> Result<(Recovered, ActionOutcome), String> {
    let id = str_of(pre, "id");
    let before = map_of(pre, "before");
    let after = map_of(pre, "after");
    let names: Vec<String> = after.keys().cloned().collect();
    let Some(found) = c
        .api
        .contact_by_id(id, &names, false)
        .await
        .map_err(|f| f.text)?
    else {
        return Err(format!("contact {id} is not found"));
    };
    let holds = |m: &Map<String, Value>| {
        m.iter()
            .all(|(k, v)| found.text(k) == crate::kernel::hubspot::property_text(v))
    };
    if holds(&after) {
        return Ok((
            Recovered::Done,
            ActionOutcome::ok(
                json!({"id": id, "email": str_of(pre, "email"), "updated": names, "already_done": false}),
                pre.clone(),
            ),
        ));
    }
    if holds(&before) {
        return Ok(not_done("the contact was not updated"));
    }
    Err(format!(
        "contact {id} holds neither the values before nor the values planned"
    ))
}

async fn task_created(
    c: &HubspotConnector,
    pre: &Value,
) -> Result<(Recovered, ActionOutcome), String> {
    let contact_id = str_of(pre, "contact_id");
    let tasks = c.api.contact_tasks(contact_id).await.map_err(|f| f.text)?;
    let due = timestamp_millis(str_of(pre, "due"));
    let found = tasks.iter().find(|t| {
        t.text("hs_task_subject") == str_of(pre, "subject")
            && t.text("hs_task_body") == str_of(pre, "body")
            && timestamp_millis(&t.text("hs_timestamp")) == due
    });
    let Some(task) = found else {
        return Ok(not_done("the task was not created"));
    };
    let mut rollback = pre.as_object().cloned().unwrap_or_default();
    rollback.remove("contact_email");
    rollback.insert("task_id".into(), json!(task.id));
    rollback.insert("status".into(), json!(task.text("hs_task_status")));
    Ok((
        Recovered::Done,
        ActionOutcome::ok(
            json!({"task_id": task.id, "contact_id": contact_id,
                   "contact_email": str_of(pre, "contact_email"), "due": str_of(pre, "due"),
                   "already_done": false}),
            Value::Object(rollback),
        ),
    ))
}
