//! HubSpot's REST endpoints as the connector uses them (SPEC-hubspot-slack §7.4), and the text
//! of its errors. Every URL is assembled here from validated parts only: the email
//! percent-encoded as one path segment, property names already checked against the system's
//! `properties`, ids that match `^[0-9]{1,20}$`.

use serde_json::{Map, Value, json};

use crate::connector::http::{HttpError, JsonClient, Request, Response, segment_encode};

/// The properties read for a task (guards, idempotency, recovery).
pub(super) const TASK_PROPERTIES: [&str; 4] = [
    "hs_task_subject",
    "hs_task_body",
    "hs_task_status",
    "hs_timestamp",
];

/// Why a request did not give the answer the connector needed.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub text: String,
    /// The request may have reached HubSpot without an answer coming back.
    pub maybe_sent: bool,
}

impl Failure {
    fn new(text: String) -> Failure {
        Failure {
            text,
            maybe_sent: false,
        }
    }
}

/// A CRM object as HubSpot answers it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Object {
    pub id: String,
    pub properties: Map<String, Value>,
}

impl Object {
    fn from(v: &Value) -> Result<Object, Failure> {
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(Failure::new("HubSpot's answer has no object id".into())),
        };
        check_id(&id).map_err(Failure::new)?;
        let properties = v
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Ok(Object { id, properties })
    }

    /// A property as a string (`null` or missing as `""`).
    pub fn text(&self, name: &str) -> String {
        crate::kernel::hubspot::property_text(self.properties.get(name).unwrap_or(&Value::Null))
    }
}

/// An id from HubSpot or from signed rollback data must be decimal digits before it goes into
/// a URL.
pub(super) fn check_id(id: &str) -> Result<(), String> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("unexpected id '{id}' from HubSpot"))
    }
}

pub(super) struct Api {
    pub client: JsonClient,
}

impl Api {
    async fn send(&self, req: Request) -> Result<Response, Failure> {
        tracing::debug!(method = %req.method, path = %req.path, "hubspot request");
        self.client.send(&req).await.map_err(|e| Failure {
            text: e.message().to_string(),
            maybe_sent: matches!(e, HttpError::NoAnswer(_)),
        })
    }

    /// Sends a request and returns the answer when its status is one of `ok` (else the error
    /// text HubSpot's answer gives).
    async fn expect(&self, req: Request, ok: &[u16]) -> Result<Response, Failure> {
        let resp = self.send(req).await?;
        if ok.contains(&resp.status) {
            Ok(resp)
        } else {
            Err(Failure::new(said(&resp)))
        }
    }

    /// `GET /account-info/v3/details` → `portalId`.
    pub async fn portal_id(&self) -> Result<u64, Failure> {
        let resp = self
            .expect(Request::get("/account-info/v3/details"), &[200])
            .await?;
        resp.body
            .get("portalId")
            .and_then(Value::as_u64)
            .ok_or_else(|| Failure::new("HubSpot's account details have no portalId".into()))
    }

    /// A contact by email (`idProperty=email`), with `email` and `names`; `None` on 404.
    pub async fn contact_by_email(
        &self,
        email: &str,
        names: &[String],
    ) -> Result<Option<Object>, Failure> {
        let path = format!(
            "/crm/v3/objects/contacts/{}?idProperty=email&properties={}",
            segment_encode(email),
            property_list(names)
        );
        self.read_object(Request::get(path)).await
    }

    /// A contact by id; `archived` looks in the archive. `None` on 404.
    pub async fn contact_by_id(
        &self,
        id: &str,
        names: &[String],
        archived: bool,
    ) -> Result<Option<Object>, Failure> {
        check_id(id).map_err(Failure::new)?;
        let mut path = format!(
            "/crm/v3/objects/contacts/{id}?properties={}",
            property_list(names)
        );
        if archived {
            path.push_str("&archived=true");
        }
        self.read_object(Request::get(path)).await
    }

    /// A task by id, with [`TASK_PROPERTIES`]; `archived` looks in the archive. `None` on 404.
    pub async fn task_by_id(&self, id: &str, archived: bool) -> Result<Option<Object>, Failure> {
        check_id(id).map_err(Failure::new)?;
        let mut path = format!(
            "/crm/v3/objects/tasks/{id}?properties={}",
            TASK_PROPERTIES.join(",")
        );
        if archived {
            path.push_str("&archived=true");
        }
        self.read_object(Request::get(path)).await
    }

    async fn read_object(&self, req: Request) -> Result<Option<Object>, Failure> {
        let resp = self.send(req).await?;
        match resp.status {
            200 => Object::from(&resp.body).map(Some),
            404 => Ok(None),
            _ => Err(Failure::new(said(&resp))),
        }
    }

    /// `POST /crm/v3/objects/contacts`: `Ok(Err(existing id))` on 409 CONFLICT.
    pub async fn create_contact(
        &self,
        properties: Map<String, Value>,
    ) -> Result<Result<Object, Option<String>>, Failure> {
        let req = Request::post_json(
            "/crm/v3/objects/contacts",
            json!({ "properties": properties }),
        );
        let resp = self.send(req).await?;
        match resp.status {
            201 | 200 => Object::from(&resp.body).map(Ok),
            409 => Ok(Err(existing_id(&resp.body))),
            _ => Err(Failure::new(said(&resp))),
        }
    }

    /// `PATCH /crm/v3/objects/contacts/{id}`.
    pub async fn update_contact(
        &self,
        id: &str,
        properties: Map<String, Value>,
    ) -> Result<Object, Failure> {
        check_id(id).map_err(Failure::new)?;
        let req = Request::post_json(
            format!("/crm/v3/objects/contacts/{id}"),
            json!({ "properties": properties }),
        )
        .with_method(http::Method::PATCH);
        let resp = self.expect(req, &[200]).await?;
        Object::from(&resp.body)
    }

    /// `DELETE /crm/v3/objects/{contacts|tasks}/{id}` (archive).
    pub async fn archive(&self, object_type: &str, id: &str) -> Result<(), Failure> {
        check_id(id).map_err(Failure::new)?;
        let req = Request::get(format!("/crm/v3/objects/{object_type}/{id}"))
            .with_method(http::Method::DELETE);
        self.expect(req, &[204, 200]).await.map(|_| ())
    }

    /// `POST /crm/v3/objects/tasks`, associated with the contact (type 204).
    pub async fn create_task(
        &self,
        properties: Map<String, Value>,
        contact_id: &str,
    ) -> Result<Object, Failure> {
        check_id(contact_id).map_err(Failure::new)?;
        let body = json!({
            "properties": properties,
            "associations": [{
                "to": {"id": contact_id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]
            }]
        });
        let resp = self
            .expect(
                Request::post_json("/crm/v3/objects/tasks", body),
                &[201, 200],
            )
            .await?;
        Object::from(&resp.body)
    }

    /// The tasks associated with a contact (v4 association list, paged; then a batch read).
    pub async fn contact_tasks(&self, contact_id: &str) -> Result<Vec<Object>, Failure> {
        check_id(contact_id).map_err(Failure::new)?;
        let mut ids: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path =
                format!("/crm/v4/objects/contacts/{contact_id}/associations/tasks?limit=500");
            if let Some(a) = &after {
                path.push_str(&format!(
                    "&after={}",
                    crate::connector::http::query_encode(a)
                ));
            }
            let resp = self.expect(Request::get(path), &[200]).await?;
            for r in resp
                .body
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = match r.get("toObjectId") {
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::String(s)) => s.clone(),
                    _ => continue,
                };
                check_id(&id).map_err(Failure::new)?;
                ids.push(id);
            }
            after = resp
                .body
                .pointer("/paging/next/after")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if after.is_none() || ids.len() > 100_000 {
                break;
            }
        }
        let mut tasks = Vec::new();
        for chunk in ids.chunks(100) {
            let inputs: Vec<Value> = chunk.iter().map(|id| json!({"id": id})).collect();
            let body = json!({"inputs": inputs, "properties": TASK_PROPERTIES});
            let resp = self
                .expect(
                    Request::post_json("/crm/v3/objects/tasks/batch/read", body),
                    &[200, 207],
                )
                .await?;
            for r in resp
                .body
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                tasks.push(Object::from(r)?);
            }
        }
        Ok(tasks)
    }
}

/// `properties=email,<names>`: names are checked against the system's `properties`, so they
/// hold no `,`, `&` or `=`.
fn property_list(names: &[String]) -> String {
    let mut all = vec!["email".to_string()];
    all.extend(names.iter().filter(|n| *n != "email").cloned());
    all.join(",")
}

/// The id in `Contact already exists. Existing ID: <id>`.
fn existing_id(body: &Value) -> Option<String> {
    let message = body.get("message").and_then(Value::as_str)?;
    let id = message.rsplit("Existing ID:").next()?.trim();
    check_id(id).ok().map(|_| id.to_string())
}

/// The text of an error answer: `HubSpot said: <message> (<status> <category>, correlationId
/// <id>)`, naming missing scopes on 401/403, or the rate-limit sentence on 429. Built from the
/// body and status only, never from request headers.
pub(super) fn said(resp: &Response) -> String {
    let body = &resp.body;
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    if resp.status == 429 {
        let policy = match field("policyName") {
            "" => "unknown policy",
            p => p,
        };
        let retry = resp
            .header("retry-after")
            .map(str::to_string)
            .or_else(|| {
                resp.header("x-hubspot-ratelimit-interval-milliseconds")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .map(|ms| ms.div_ceil(1000).to_string())
            })
            .unwrap_or_else(|| "?".into());
        return format!("HubSpot rate limit reached ({policy}); retry after {retry} s");
    }
    let message = match field("message") {
        "" => "no message",
        m => m,
    };
    let category = match field("category") {
        "" => String::new(),
        c => format!(" {c}"),
    };
    let mut text = format!(
        "HubSpot said: {message} ({}{category}, correlationId {})",
        resp.status,
        match field("correlationId") {
            "" => "none",
            c => c,
        }
    );
    if matches!(resp.status, 401 | 403) {
        let scopes = scopes(body);
        if !scopes.is_empty() {
            text.push_str(&format!("; missing scopes: {}", scopes.join(", ")));
        }
    }
    text
}

/// Scope names listed in `context` or `errors[].context` (keys naming scopes).
fn scopes(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut contexts: Vec<&Value> = body.get("context").into_iter().collect();
    for e in body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        contexts.extend(e.get("context"));
    }
    for ctx in contexts {
        for (k, v) in ctx.as_object().into_iter().flatten() {
            if !k.to_ascii_lowercase().contains("scope") {
                continue;
            }
            for s in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: Value, headers: &[(&str, &str)]) -> Response {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (
                http::header::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                map.insert(k, v);
            }
        }
        Response {
            status,
            headers: map,
            body,
        }
    }

    #[test]
    fn error_texts() {
        let r = resp(
            400,
            json!({"status": "error", "message": "Property \"x\" does not exist", "correlationId": "c-1", "category": "VALIDATION_ERROR"}),
            &[],
        );
        assert_eq!(
            said(&r),
            "HubSpot said: Property \"x\" does not exist (400 VALIDATION_ERROR, correlationId c-1)"
        );
        let r = resp(
            403,
            json!({"message": "no", "correlationId": "c", "category": "MISSING_SCOPES", "errors": [{"context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}]}),
            &[],
        );
        assert!(said(&r).ends_with("; missing scopes: crm.objects.contacts.write"));
        let r = resp(
            429,
            json!({"policyName": "TEN_SECONDLY_ROLLING", "category": "RATE_LIMITS"}),
            &[("retry-after", "10")],
        );
        assert_eq!(
            said(&r),
            "HubSpot rate limit reached (TEN_SECONDLY_ROLLING); retry after 10 s"
        );
        assert_eq!(
            existing_id(&json!({"message": "Contact already exists. Existing ID: 512"})),
            Some("512".into())
        );
        assert!(check_id("12a").is_err() && check_id("").is_err() && check_id("42").is_ok());
    }
}
