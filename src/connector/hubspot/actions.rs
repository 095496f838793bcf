//! The four HubSpot actions (SPEC-hubspot-slack §7.4). Each reads before it writes, so a call
//! whose desired state already holds changes nothing (`already_done`), and writes its step
//! record (the pre-state undo and recovery need) just before the one request that changes
//! anything. Writes are never retried.

use serde_json::{Map, Value, json};

use super::HubspotConnector;
use super::api::{Failure, Object};
use crate::connector::{ActionOutcome, StepLog};
use crate::kernel::hubspot::{Email, millis_to_rfc3339, property_text};
use crate::kernel::typed::HubspotAction;

pub(super) async fn run(
    c: &HubspotConnector,
    call: &HubspotAction,
    log: &mut dyn StepLog,
) -> ActionOutcome {
    let what = format!("{} for {}", call.name(), call.email());
    let result = match call {
        HubspotAction::FindContact { email } => find_contact(c, email, log).await,
        HubspotAction::CreateContact { email, properties } => {
            create_contact(c, email, properties, log).await
        }
        HubspotAction::UpdateContact { email, properties } => {
            update_contact(c, email, properties, log).await
        }
        HubspotAction::CreateTask {
            contact_email,
            subject,
            body,
            due,
        } => {
            let due_ms = due
                .as_ref()
                .map_or_else(|| chrono::Utc::now().timestamp_millis(), |d| d.millis());
            create_task(c, contact_email, subject, body, due_ms, log).await
        }
    };
    result.unwrap_or_else(|e| ActionOutcome::failed(format!("{what}: {e}")))
}

/// Why an action failed, before it is prefixed with `<action> for <email>`.
pub(super) enum Error {
    /// A failed request (its text says why); a write that may have been made says so.
    Request {
        failure: Failure,
        write: bool,
    },
    /// The step record could not be written: nothing was sent.
    Journal(String),
    Plain(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Request { failure, write } if *write && failure.maybe_sent => write!(
                f,
                "{} — the change may or may not have been made",
                failure.text
            ),
            Error::Request { failure, .. } => f.write_str(&failure.text),
            Error::Journal(e) | Error::Plain(e) => f.write_str(e),
        }
    }
}

fn read(failure: Failure) -> Error {
    Error::Request {
        failure,
        write: false,
    }
}

fn write(failure: Failure) -> Error {
    Error::Request {
        failure,
        write: true,
    }
}

fn before(log: &mut dyn StepLog, pre: Value) -> Result<(), Error> {
    log.before(pre).map_err(Error::Journal)
}

async fn find_contact(
    c: &HubspotConnector,
    email: &Email,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, Error> {
    before(log, json!({}))?;
    let found = c
        .api
        .contact_by_email(email.as_str(), &c.properties)
        .await
        .map_err(read)?;
    Ok(ActionOutcome::ok(
        match found {
            None => {
                json!({"email": email.as_str(), "found": false, "id": null, "properties": null})
            }
            Some(contact) => {
                let mut props = Map::new();
                for name in std::iter::once(&"email".to_string()).chain(&c.properties) {
                    let v = contact.properties.get(name).cloned().unwrap_or(Value::Null);
                    props.insert(name.clone(), v);
                }
                json!({"email": email.as_str(), "found": true, "id": contact.id, "properties": props})
            }
        },
        json!({}),
    ))
}

/// Property values as HubSpot takes them: strings.
fn as_strings(properties: &Map<String, Value>) -> Map<String, Value> {
    properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(property_text(v))))
        .collect()
}

fn already_created(id: &str, email: &Email) -> ActionOutcome {
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("email".into(), json!(email.as_str()));
    ActionOutcome::already_done(out, "created")
}

async fn create_contact(
    c: &HubspotConnector,
    email: &Email,
    properties: &Map<String, Value>,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, Error> {
    let names: Vec<String> = properties.keys().cloned().collect();
    if let Some(existing) = c
        .api
        .contact_by_email(email.as_str(), &names)
        .await
        .map_err(read)?
    {
        before(
            log,
            json!({"already_done": "created", "id": existing.id, "email": email.as_str()}),
        )?;
        return Ok(already_created(&existing.id, email));
    }
    let mut sent = as_strings(properties);
    sent.insert("email".into(), json!(email.as_str()));
    before(log, json!({"email": email.as_str(), "properties": sent}))?;
    match c.api.create_contact(sent.clone()).await.map_err(write)? {
        Ok(created) => {
            let written: Map<String, Value> = sent
                .keys()
                .map(|k| (k.clone(), json!(created.text(k))))
                .collect();
            Ok(ActionOutcome::ok(
                json!({"id": created.id, "email": email.as_str(), "already_done": false}),
                json!({"id": created.id, "email": email.as_str(), "written": written}),
            ))
        }
        // Someone created it in between: read it again and report it as there.
        Err(conflict) => {
            let again = c
                .api
                .contact_by_email(email.as_str(), &[])
                .await
                .map_err(read)?;
            match again.map(|o| o.id).or(conflict) {
                Some(id) => Ok(already_created(&id, email)),
                None => Err(Error::Plain(
                    "HubSpot refused the contact as a duplicate but none is found by email".into(),
                )),
            }
        }
    }
}

fn no_contact(email: &Email) -> Error {
    Error::Plain(format!("No HubSpot contact with email {email}"))
}

async fn update_contact(
    c: &HubspotConnector,
    email: &Email,
    properties: &Map<String, Value>,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, Error> {
    let names: Vec<String> = properties.keys().cloned().collect();
    let contact: Object = c
        .api
        .contact_by_email(email.as_str(), &names)
        .await
        .map_err(read)?
        .ok_or_else(|| no_contact(email))?;
    let wanted = as_strings(properties);
    let differing: Map<String, Value> = wanted
        .iter()
        .filter(|(k, v)| contact.text(k) != v.as_str().unwrap_or_default())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if differing.is_empty() {
        let mut out = Map::new();
        out.insert("id".into(), json!(contact.id));
        out.insert("email".into(), json!(email.as_str()));
        out.insert("updated".into(), json!([]));
        before(
            log,
            json!({"already_done": "updated", "id": contact.id, "email": email.as_str(), "updated": []}),
        )?;
        return Ok(ActionOutcome::already_done(out, "updated"));
    }
    let old: Map<String, Value> = differing
        .keys()
        .map(|k| (k.clone(), json!(contact.text(k))))
        .collect();
    before(
        log,
        json!({"id": contact.id, "email": email.as_str(), "before": old, "after": differing}),
    )?;
    let updated = c
        .api
        .update_contact(&contact.id, differing.clone())
        .await
        .map_err(write)?;
    let after: Map<String, Value> = differing
        .keys()
        .map(|k| (k.clone(), json!(updated.text(k))))
        .collect();
    let names: Vec<&String> = differing.keys().collect();
    Ok(ActionOutcome::ok(
        json!({"id": contact.id, "email": email.as_str(), "updated": names, "already_done": false}),
        json!({"id": contact.id, "email": email.as_str(), "before": old, "after": after}),
    ))
}

/// A task's `hs_timestamp` as UTC milliseconds: HubSpot answers an ISO date-time, and takes
/// milliseconds.
pub(super) fn timestamp_millis(v: &str) -> Option<i64> {
    v.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

fn due_text(task: &Object) -> Value {
    match timestamp_millis(&task.text("hs_timestamp")) {
        Some(ms) => json!(millis_to_rfc3339(ms)),
        None => Value::Null,
    }
}

async fn create_task(
    c: &HubspotConnector,
    email: &Email,
    subject: &str,
    body: &str,
    due_ms: i64,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, Error> {
    let contact = c
        .api
        .contact_by_email(email.as_str(), &[])
        .await
        .map_err(read)?
        .ok_or_else(|| no_contact(email))?;
    let tasks = c.api.contact_tasks(&contact.id).await.map_err(read)?;
    if let Some(open) = tasks
        .iter()
        .find(|t| t.text("hs_task_subject") == subject && t.text("hs_task_status") != "COMPLETED")
    {
        let mut out = Map::new();
        out.insert("task_id".into(), json!(open.id));
        out.insert("contact_id".into(), json!(contact.id));
        out.insert("contact_email".into(), json!(email.as_str()));
        out.insert("due".into(), due_text(open));
        let mut pre = out.clone();
        pre.insert("already_done".into(), json!("created"));
        before(log, Value::Object(pre))?;
        return Ok(ActionOutcome::already_done(out, "created"));
    }
    let mut props = Map::new();
    props.insert("hs_timestamp".into(), json!(due_ms.to_string()));
    props.insert("hs_task_subject".into(), json!(subject));
    props.insert("hs_task_body".into(), json!(body));
    props.insert("hs_task_status".into(), json!("NOT_STARTED"));
    props.insert("hs_task_type".into(), json!("TODO"));
    if let Some(owner) = c.task_owner_id {
        props.insert("hubspot_owner_id".into(), json!(owner.to_string()));
    }
    before(
        log,
        json!({"contact_id": contact.id, "contact_email": email.as_str(), "subject": subject,
               "body": body, "due": millis_to_rfc3339(due_ms), "status": "NOT_STARTED"}),
    )?;
    let task = c.api.create_task(props, &contact.id).await.map_err(write)?;
    Ok(ActionOutcome::ok(
        json!({"task_id": task.id, "contact_id": contact.id, "contact_email": email.as_str(),
               "due": due_text(&task), "already_done": false}),
        json!({"task_id": task.id, "contact_id": contact.id, "subject": task.text("hs_task_subject"),
               "body": task.text("hs_task_body"), "due": due_text(&task),
               "status": task.text("hs_task_status")}),
    ))
}
