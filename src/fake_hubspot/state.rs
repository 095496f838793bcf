//! The fake HubSpot's state: contacts, tasks, their associations, injections, the request log.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::json;

use crate::fake_http::Reply;

/// The contact property schema (SPEC-hubspot-slack §7.4, the fake).
pub(super) const CONTACT_PROPERTIES: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "jobtitle",
    "website",
    "lifecyclestage",
];
/// Properties HubSpot sets itself; writing one is a 400.
pub(super) const READ_ONLY: &[&str] = &["createdate", "lastmodifieddate", "hs_object_id"];
pub(super) const TASK_PROPERTIES: &[&str] = &[
    "hs_timestamp",
    "hs_task_subject",
    "hs_task_body",
    "hs_task_status",
    "hs_task_type",
    "hs_task_priority",
    "hubspot_owner_id",
];

#[derive(Debug, Clone)]
pub(super) struct Contact {
    pub properties: BTreeMap<String, String>,
    pub archived: bool,
    /// A merged-away contact answers with the surviving record.
    pub merged_into: Option<u64>,
    pub created: i64,
    pub modified: i64,
}

#[derive(Debug, Clone)]
pub(super) struct Task {
    /// `hs_timestamp` in UTC milliseconds.
    pub properties: BTreeMap<String, String>,
    pub archived: bool,
}

/// A request as logged: never the token, only whether one was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub token_sent: bool,
}

impl std::fmt::Display for RequestRecord {
    /// `POST /crm/v3/objects/contacts 201`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.status)
    }
}

pub(super) struct State {
    pub portal_id: u64,
    pub required_token: Option<String>,
    pub contacts: BTreeMap<u64, Contact>,
    pub tasks: BTreeMap<u64, Task>,
    /// (contact id, task id).
    pub associations: BTreeSet<(u64, u64)>,
    next_id: u64,
    correlations: u64,
    pub injections: VecDeque<(String, String, Reply)>,
    pub requests: Vec<RequestRecord>,
}

impl Default for State {
    fn default() -> Self {
        State {
            portal_id: 12_345_678,
            required_token: None,
            contacts: BTreeMap::new(),
            tasks: BTreeMap::new(),
            associations: BTreeSet::new(),
            next_id: 501,
            correlations: 0,
            injections: VecDeque::new(),
            requests: Vec::new(),
        }
    }
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl State {
    /// HubSpot's `Error` body.
    pub fn error(&mut self, status: u16, category: &str, message: &str) -> Reply {
        self.correlations += 1;
        Reply::json(
            status,
            json!({"status": "error", "message": message,
                   "correlationId": format!("00000000-0000-4000-8000-{:012}", self.correlations),
                   "category": category}),
        )
    }

    pub fn not_found(&mut self) -> Reply {
        self.error(404, "OBJECT_NOT_FOUND", "Object not found.")
    }

    pub fn take_injection(&mut self, method: &str, path: &str) -> Option<Reply> {
        let at = self
            .injections
            .iter()
            .position(|(m, p, _)| m == method && p == path)?;
        self.injections.remove(at).map(|(_, _, r)| r)
    }

    pub fn log(&mut self, method: &str, path: &str, query: &str, status: u16, token_sent: bool) {
        self.requests.push(RequestRecord {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            status,
            token_sent,
        });
    }

    fn next(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn insert_contact(&mut self, properties: BTreeMap<String, String>) -> u64 {
        let id = self.next();
        let t = now_millis();
        self.contacts.insert(
            id,
            Contact {
                properties,
                archived: false,
                merged_into: None,
                created: t,
                modified: t,
            },
        );
        id
    }

    pub fn insert_task(&mut self, task: Task) -> u64 {
        let id = self.next();
        self.tasks.insert(id, task);
        id
    }

    pub fn set_contact(&mut self, id: u64, properties: BTreeMap<String, String>) {
        if let Some(c) = self.contacts.get_mut(&id) {
            for (k, v) in properties {
                c.properties.insert(k, v);
            }
            c.modified = now_millis();
        }
    }

    /// The id answering for `id`: itself, or the contact it was merged into; `archived`
    /// selects the archive instead of live records.
    pub fn resolve_contact(&self, id: u64, archived: bool) -> Option<u64> {
        let mut id = id;
        for _ in 0..16 {
            let c = self.contacts.get(&id)?;
            match c.merged_into {
                Some(next) => id = next,
                None => return (c.archived == archived).then_some(id),
            }
        }
        None
    }

    /// The contact whose (primary) email is `email`, case-insensitively.
    pub fn contact_by_email(&self, email: &str, archived: bool) -> Option<u64> {
        let email = email.trim().to_lowercase();
        self.contacts
            .iter()
            .find(|(_, c)| {
                c.archived == archived
                    && c.merged_into.is_none()
                    && c.properties.get("email").is_some_and(|e| *e == email)
            })
            .map(|(id, _)| *id)
    }
}
