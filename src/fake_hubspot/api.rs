//! The fake HubSpot's routes: exactly the endpoints of SPEC-hubspot-slack §7.4, with
//! HubSpot's shapes and its `Error` body (`status`, `message`, `correlationId`, `category`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::state::{CONTACT_PROPERTIES, READ_ONLY, State, TASK_PROPERTIES, Task};
use crate::fake_http::{Reply, Request};
use crate::kernel::hubspot::millis_to_rfc3339;

pub(super) fn handle(state: &mut State, req: &Request) -> Reply {
    let path = req.path().to_string();
    let query = query_map(req.query());
    let token_sent = req.header("authorization").is_some();
    let reply = match authenticate(state, req.header("authorization")) {
        Some(denied) => denied,
        None => match state.take_injection(&req.method, &path) {
            Some(injected) => injected,
            None => route(state, &req.method, &path, &query, &req.body),
        },
    };
    state.log(&req.method, &path, req.query(), reply.status, token_sent);
    reply
}

fn authenticate(state: &mut State, header: Option<&str>) -> Option<Reply> {
    let token = header.and_then(|h| h.strip_prefix("Bearer "));
    match (token, &state.required_token) {
        (None, _) => Some(state.error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        )),
        (Some(t), Some(required)) if t != required => Some(state.error(
            401,
            "INVALID_AUTHENTICATION",
            "The access token provided is invalid or expired.",
        )),
        _ => None,
    }
}

fn query_map(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .to_string();
            (k.to_string(), v)
        })
        .collect()
}

fn route(
    state: &mut State,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Reply {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return state.error(400, "VALIDATION_ERROR", &format!("Invalid input JSON: {e}"));
            }
        }
    };
    let archived = query.get("archived").is_some_and(|v| v == "true");
    match (method, parts.as_slice()) {
        ("GET", ["account-info", "v3", "details"]) => Reply::json(
            200,
            json!({"portalId": state.portal_id, "accountType": "STANDARD", "timeZone": "US/Eastern",
                   "companyCurrency": "USD", "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1"}),
        ),
        ("POST", ["crm", "v3", "objects", "contacts"]) => create_contact(state, &body),
        ("GET", ["crm", "v3", "objects", "contacts", key]) => {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .to_string();
            let by_email = query.get("idProperty").is_some_and(|p| p == "email");
            let id = if by_email {
                state.contact_by_email(&key, archived)
            } else {
                key.parse()
                    .ok()
                    .and_then(|id| state.resolve_contact(id, archived))
            };
            match id {
                Some(id) => Reply::json(200, contact_json(state, id, query.get("properties"))),
                None => state.not_found(),
            }
        }
        ("PATCH", ["crm", "v3", "objects", "contacts", id]) => match id
            .parse()
            .ok()
            .and_then(|id| state.resolve_contact(id, false))
        {
            Some(id) => update_contact(state, id, &body),
            None => state.not_found(),
        },
        ("DELETE", ["crm", "v3", "objects", "contacts", id]) => {
            if let Some(c) = id
                .parse()
                .ok()
                .and_then(|id: u64| state.contacts.get_mut(&id))
            {
                c.archived = true;
            }
            Reply::no_content()
        }
        ("POST", ["crm", "v3", "objects", "tasks"]) => create_task(state, &body),
        ("POST", ["crm", "v3", "objects", "tasks", "batch", "read"]) => batch_read(state, &body),
        ("GET", ["crm", "v3", "objects", "tasks", id]) => {
            match id
                .parse()
                .ok()
                .filter(|id| state.tasks.get(id).is_some_and(|t| t.archived == archived))
            {
                Some(id) => Reply::json(200, task_json(state, id)),
                None => state.not_found(),
            }
        }
        ("DELETE", ["crm", "v3", "objects", "tasks", id]) => {
            if let Some(t) = id.parse().ok().and_then(|id: u64| state.tasks.get_mut(&id)) {
                t.archived = true;
            }
            Reply::no_content()
        }
        (
            "GET",
            [
                "crm",
                "v4",
                "objects",
                "contacts",
                id,
                "associations",
                "tasks",
            ],
        ) => {
            match id
                .parse()
                .ok()
                .and_then(|id| state.resolve_contact(id, false))
            {
                Some(id) => associations(state, id, query),
                None => state.not_found(),
            }
        }
        _ => state.not_found(),
    }
}

/// Checks property names and values of a write; `Err` is HubSpot's 400.
fn check_properties(
    state: &mut State,
    props: &Map<String, Value>,
    schema: &[&str],
) -> Result<BTreeMap<String, String>, Reply> {
    let mut out = BTreeMap::new();
    for (k, v) in props {
        if READ_ONLY.contains(&k.as_str()) {
            return Err(state.error(
                400,
                "VALIDATION_ERROR",
                &format!("Property \"{k}\" is read-only"),
            ));
        }
        if !schema.contains(&k.as_str()) {
            return Err(state.error(
                400,
                "VALIDATION_ERROR",
                &format!("Property \"{k}\" does not exist"),
            ));
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            Value::Null => String::new(),
            _ => {
                return Err(state.error(
                    400,
                    "VALIDATION_ERROR",
                    &format!("Property \"{k}\" has an invalid value"),
                ));
            }
        };
        out.insert(k.clone(), text);
    }
    Ok(out)
}

fn properties_of(body: &Value) -> Map<String, Value> {
    body.get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn create_contact(state: &mut State, body: &Value) -> Reply {
    let mut props = match check_properties(state, &properties_of(body), CONTACT_PROPERTIES) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Some(email) = props.get_mut("email") {
        *email = email.trim().to_lowercase();
        if let Some(existing) = state.contact_by_email(email, false) {
            return state.error(
                409,
                "CONFLICT",
                &format!("Contact already exists. Existing ID: {existing}"),
            );
        }
    }
    let names: Vec<String> = props.keys().cloned().collect();
    let id = state.insert_contact(props);
    Reply::json(201, contact_json(state, id, Some(&names.join(","))))
}

fn update_contact(state: &mut State, id: u64, body: &Value) -> Reply {
    let props = match check_properties(state, &properties_of(body), CONTACT_PROPERTIES) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Some(email) = props.get("email")
        && state
            .contact_by_email(email, false)
            .is_some_and(|other| other != id)
    {
        return state.error(409, "CONFLICT", "A contact with the email already exists");
    }
    let names: Vec<String> = props.keys().cloned().collect();
    state.set_contact(id, props);
    Reply::json(200, contact_json(state, id, Some(&names.join(","))))
}

fn create_task(state: &mut State, body: &Value) -> Reply {
    let mut props = match check_properties(state, &properties_of(body), TASK_PROPERTIES) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(ts) = props.get("hs_timestamp").cloned() else {
        return state.error(
            400,
            "VALIDATION_ERROR",
            "Property values were not valid: hs_timestamp is required",
        );
    };
    let Some(ms) = ts.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(&ts)
            .ok()
            .map(|t| t.timestamp_millis())
    }) else {
        return state.error(
            400,
            "VALIDATION_ERROR",
            &format!("Property \"hs_timestamp\" has an invalid value: {ts}"),
        );
    };
    props.insert("hs_timestamp".into(), ms.to_string());
    let mut contacts = Vec::new();
    for a in body
        .get("associations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let types = a
            .get("types")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let ok_type = types.len() == 1
            && types[0].get("associationCategory").and_then(Value::as_str)
                == Some("HUBSPOT_DEFINED")
            && types[0].get("associationTypeId").and_then(Value::as_u64) == Some(204);
        let to = match a.pointer("/to/id") {
            Some(Value::String(s)) => s.parse().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        match to.filter(|id| {
            state
                .contacts
                .get(id)
                .is_some_and(|c| !c.archived && c.merged_into.is_none())
        }) {
            Some(id) if ok_type => contacts.push(id),
            _ => {
                return state.error(
                    400,
                    "VALIDATION_ERROR",
                    "One or more associations are invalid",
                );
            }
        }
    }
    props
        .entry("hs_task_status".into())
        .or_insert_with(|| "NOT_STARTED".into());
    let id = state.insert_task(Task {
        properties: props,
        archived: false,
    });
    for c in contacts {
        state.associations.insert((c, id));
    }
    Reply::json(201, task_json(state, id))
}

fn batch_read(state: &mut State, body: &Value) -> Reply {
    let mut results = Vec::new();
    for input in body
        .get("inputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = match input.get("id") {
            Some(Value::String(s)) => s.parse::<u64>().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        if let Some(id) = id.filter(|id| state.tasks.get(id).is_some_and(|t| !t.archived)) {
            results.push(task_json(state, id));
        }
    }
    Reply::json(
        200,
        json!({"status": "COMPLETE", "results": results,
        "startedAt": "2026-01-01T00:00:00.000Z", "completedAt": "2026-01-01T00:00:00.001Z"}),
    )
}

fn associations(state: &mut State, contact: u64, query: &BTreeMap<String, String>) -> Reply {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(500)
        .clamp(1, 500);
    let after = query
        .get("after")
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(0);
    let ids: Vec<u64> = state
        .associations
        .iter()
        .filter(|(c, t)| {
            *c == contact && *t > after && state.tasks.get(t).is_some_and(|t| !t.archived)
        })
        .map(|(_, t)| *t)
        .collect();
    let page: Vec<Value> = ids
        .iter()
        .take(limit)
        .map(|t| json!({"toObjectId": t, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 204, "label": null}]}))
        .collect();
    let mut out = json!({"results": page});
    if ids.len() > limit
        && let Some(last) = ids.get(limit - 1)
    {
        out["paging"] = json!({"next": {"after": last.to_string(), "link": null}});
    }
    Reply::json(200, out)
}

fn contact_json(state: &State, id: u64, names: Option<&String>) -> Value {
    let Some(c) = state.contacts.get(&id) else {
        return Value::Null;
    };
    let mut props = Map::new();
    let default = "email,firstname,lastname".to_string();
    for name in names
        .unwrap_or(&default)
        .split(',')
        .filter(|n| !n.is_empty())
    {
        let v = c
            .properties
            .get(name)
            .filter(|v| !v.is_empty())
            .map_or(Value::Null, |v| json!(v));
        props.insert(name.to_string(), v);
    }
    props.insert("hs_object_id".into(), json!(id.to_string()));
    props.insert("createdate".into(), json!(millis_to_rfc3339(c.created)));
    props.insert(
        "lastmodifieddate".into(),
        json!(millis_to_rfc3339(c.modified)),
    );
    json!({"id": id.to_string(), "properties": props, "createdAt": millis_to_rfc3339(c.created),
           "updatedAt": millis_to_rfc3339(c.modified), "archived": c.archived})
}

fn task_json(state: &State, id: u64) -> Value {
    let Some(t) = state.tasks.get(&id) else {
        return Value::Null;
    };
    let mut props = Map::new();
    for (k, v) in &t.properties {
        let v = if k == "hs_timestamp" {
            v.parse::<i64>()
                .map_or_else(|_| json!(v), |ms| json!(millis_to_rfc3339(ms)))
        } else {
            json!(v)
        };
        props.insert(k.clone(), v);
    }
    props.insert("hs_object_id".into(), json!(id.to_string()));
    json!({"id": id.to_string(), "properties": props, "archived": t.archived,
           "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z"})
}
