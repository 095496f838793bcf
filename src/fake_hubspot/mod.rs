//! An in-process fake HubSpot CRM API (feature `fake-hubspot`) for the tests and `enact demo`:
//! a stateful server on `127.0.0.1` (random port) answering exactly the endpoints the HubSpot
//! connector calls (SPEC-hubspot-slack §7.4), with HubSpot's shapes and `Error` bodies.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use enact::fake_hubspot::{FakeHubspot, Injected};
//! let fake = FakeHubspot::start().await?;            // serves until dropped; portalId 12345678
//! let id = fake.add_contact("bob@acme.com", &[("firstname", "Bob")]);
//! fake.inject("POST", "/crm/v3/objects/tasks", Injected::rate_limited(10));
//! fake.set_contact_property(&id, "phone", "555");    // act as a person
//! for line in fake.request_lines() { println!("{line}"); }  // "GET /account-info/v3/details 200"
//! # Ok(()) }
//! ```
//!
//! State: contacts (decimal-string ids from a counter, a fixed property schema, archived,
//! merged into), tasks, and task ↔ contact associations (type 204). Strict like HubSpot: no or
//! a wrong bearer → 401 `INVALID_AUTHENTICATION`; unknown or read-only property → 400
//! `VALIDATION_ERROR`; a second live contact with one email → 409 `CONFLICT` `Contact already
//! exists. Existing ID: <id>`; a task without `hs_timestamp` or with a bad association → 400;
//! unknown ids and routes → 404 `OBJECT_NOT_FOUND`; archived objects 404 except with
//! `?archived=true`; a merged-away contact id answers with the surviving record.

mod api;
mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};

use crate::fake_http::{self, Handler, Reply};
pub use state::RequestRecord;
use state::{State, Task};

/// A running fake HubSpot. Dropping it stops the server.
pub struct FakeHubspot {
    server: fake_http::Running<State>,
}

/// A canned answer for the next matching request (see [`FakeHubspot::inject`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Injected(Reply);

impl Injected {
    /// A HubSpot error answer (`Error` body with this category and message).
    pub fn error(status: u16, category: &str, message: &str) -> Injected {
        Injected(Reply::json(
            status,
            json!({"status": "error", "message": message, "correlationId": "aaaaaaaa-0000-4000-8000-000000000001", "category": category}),
        ))
    }

    /// Adds HubSpot's `context` object to an error answer (e.g. the scopes a 403 lacks).
    pub fn with_context(mut self, context: Value) -> Injected {
        if let Some(Value::Object(body)) = self.0.body.as_mut() {
            body.insert("context".into(), context);
        }
        self
    }

    /// A 429 with `Retry-After` and HubSpot's `RATE_LIMITS` body.
    pub fn rate_limited(retry_after_secs: u64) -> Injected {
        Injected(
            Reply::json(
                429,
                json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                       "errorType": "RATE_LIMIT", "correlationId": "aaaaaaaa-0000-4000-8000-000000000429",
                       "policyName": "TEN_SECONDLY_ROLLING", "category": "RATE_LIMITS"}),
            )
            .with_header("retry-after", &retry_after_secs.to_string()),
        )
    }

    /// Reads the request, then closes the connection without answering.
    pub fn disconnect() -> Injected {
        Injected(Reply::disconnect())
    }
}

/// A task as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTask {
    pub id: String,
    pub subject: String,
    pub body: String,
    pub status: String,
    /// UTC milliseconds.
    pub timestamp: i64,
    pub owner: Option<String>,
    pub archived: bool,
    /// The contacts it is associated with.
    pub contacts: Vec<String>,
}

struct Server(Arc<Mutex<State>>);

impl Handler for Server {
    fn handle(&self, req: &fake_http::Request) -> Reply {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        api::handle(&mut state, req)
    }
    fn malformed(&self, message: &str) -> Reply {
        Reply::json(
            400,
            json!({"status": "error", "message": message, "correlationId": "malformed", "category": "VALIDATION_ERROR"}),
        )
    }
}

fn id_of(id: &str) -> u64 {
    id.parse().unwrap_or(u64::MAX)
}

impl FakeHubspot {
    /// Starts the server on `127.0.0.1`, a free port, in the current Tokio runtime.
    pub async fn start() -> std::io::Result<FakeHubspot> {
        let server = fake_http::Running::start("", State::default(), |s, _| Server(s)).await?;
        Ok(FakeHubspot { server })
    }

    /// `http://127.0.0.1:<port>`: the `base_url` for a HubSpot system.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.server.lock()
    }

    /// Only `Authorization: Bearer <token>` is accepted from now on.
    pub fn require_token(&self, token: &str) {
        self.lock().required_token = Some(token.to_string());
    }

    /// The account `/account-info/v3/details` reports (default 12345678).
    pub fn set_portal_id(&self, portal_id: u64) {
        self.lock().portal_id = portal_id;
    }

    /// Seeds a contact (email stored lower case); returns its id.
    pub fn add_contact(&self, email: &str, properties: &[(&str, &str)]) -> String {
        let mut props: BTreeMap<String, String> = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        props.insert("email".into(), email.trim().to_lowercase());
        self.lock().insert_contact(props).to_string()
    }

    /// Seeds a task associated with a contact; returns its id.
    pub fn add_task(&self, contact_id: &str, subject: &str, status: &str) -> String {
        let mut state = self.lock();
        let mut properties = BTreeMap::new();
        properties.insert("hs_task_subject".into(), subject.to_string());
        properties.insert("hs_task_body".into(), String::new());
        properties.insert("hs_task_status".into(), status.to_string());
        properties.insert("hs_timestamp".into(), "1767225600000".into());
        let id = state.insert_task(Task {
            properties,
            archived: false,
        });
        state.associations.insert((id_of(contact_id), id));
        id.to_string()
    }

    /// Sets a contact property as a person would in the HubSpot UI.
    pub fn set_contact_property(&self, id: &str, name: &str, value: &str) {
        let mut props = BTreeMap::new();
        props.insert(name.to_string(), value.to_string());
        self.lock().set_contact(id_of(id), props);
    }

    /// Archives a contact as a person would.
    pub fn archive_contact(&self, id: &str) {
        if let Some(c) = self.lock().contacts.get_mut(&id_of(id)) {
            c.archived = true;
        }
    }

    /// Removes a contact for good (GDPR delete): neither live nor archived.
    pub fn purge_contact(&self, id: &str) {
        self.lock().contacts.remove(&id_of(id));
    }

    /// Merges `secondary` into `primary`: the secondary id answers with the primary record.
    pub fn merge_contacts(&self, primary: &str, secondary: &str) {
        let mut state = self.lock();
        let moved: Vec<(u64, u64)> = state
            .associations
            .iter()
            .filter(|(c, _)| *c == id_of(secondary))
            .copied()
            .collect();
        for (_, t) in moved {
            state.associations.insert((id_of(primary), t));
        }
        if let Some(c) = state.contacts.get_mut(&id_of(secondary)) {
            c.merged_into = Some(id_of(primary));
        }
    }

    /// Sets a task property as a person would (`hs_task_subject`, `hs_task_status`, …).
    pub fn set_task_property(&self, id: &str, name: &str, value: &str) {
        if let Some(t) = self.lock().tasks.get_mut(&id_of(id)) {
            t.properties.insert(name.to_string(), value.to_string());
        }
    }

    /// Marks a task `COMPLETED`.
    pub fn complete_task(&self, id: &str) {
        self.set_task_property(id, "hs_task_status", "COMPLETED");
    }

    /// Archives a task as a person would.
    pub fn archive_task(&self, id: &str) {
        if let Some(t) = self.lock().tasks.get_mut(&id_of(id)) {
            t.archived = true;
        }
    }

    /// A contact's properties and whether it is archived (`None`: unknown id).
    pub fn contact(&self, id: &str) -> Option<(BTreeMap<String, String>, bool)> {
        self.lock()
            .contacts
            .get(&id_of(id))
            .map(|c| (c.properties.clone(), c.archived))
    }

    /// The id of the live contact with this email.
    pub fn contact_id(&self, email: &str) -> Option<String> {
        self.lock()
            .contact_by_email(email, false)
            .map(|i| i.to_string())
    }

    /// Every task, by id.
    pub fn tasks(&self) -> Vec<FakeTask> {
        let state = self.lock();
        state
            .tasks
            .iter()
            .map(|(id, t)| {
                let p = |k: &str| t.properties.get(k).cloned().unwrap_or_default();
                FakeTask {
                    id: id.to_string(),
                    subject: p("hs_task_subject"),
                    body: p("hs_task_body"),
                    status: p("hs_task_status"),
                    timestamp: p("hs_timestamp").parse().unwrap_or_default(),
                    owner: t.properties.get("hubspot_owner_id").cloned(),
                    archived: t.archived,
                    contacts: state
                        .associations
                        .iter()
                        .filter(|(_, tid)| tid == id)
                        .map(|(c, _)| c.to_string())
                        .collect(),
                }
            })
            .collect()
    }

    pub fn task(&self, id: &str) -> Option<FakeTask> {
        self.tasks().into_iter().find(|t| t.id == id)
    }

    /// Answers the next request with this method and path (no query) with `response`, once.
    /// Authentication is checked first.
    pub fn inject(&self, method: &str, path: &str, response: Injected) {
        self.lock()
            .injections
            .push_back((method.to_string(), path.to_string(), response.0));
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// `method path status` per request, oldest first.
    pub fn request_lines(&self) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// The whole state, for before/after comparisons.
    pub fn snapshot(&self) -> Value {
        let state = self.lock();
        let contacts: BTreeMap<String, Value> = state
            .contacts
            .iter()
            .map(|(id, c)| (id.to_string(), json!({"properties": c.properties, "archived": c.archived, "merged_into": c.merged_into})))
            .collect();
        let tasks: BTreeMap<String, Value> = state
            .tasks
            .iter()
            .map(|(id, t)| {
                (
                    id.to_string(),
                    json!({"properties": t.properties, "archived": t.archived}),
                )
            })
            .collect();
        json!({"contacts": contacts, "tasks": tasks})
    }
}
