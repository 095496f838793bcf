//! The typed HubSpot actions (SPEC-hubspot-slack §7.4) and the plan checks of their arguments
//! (§3.1): emails, property names and values, due times.
//!
//! Agents address contacts by email only; the email is the one agent string that reaches a
//! URL, so it is validated here and normalised (trimmed, lower-cased) once, when the plan is
//! built: policies and the connector see the same address.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::action::ActionName;
use super::plan::json_type_name;

/// A contact email: `local@domain`, lower case, checked so that it cannot reshape a URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    /// Trims and lower-cases `s`, then checks it (one `@`, a dot in the domain, at most 254
    /// bytes, no whitespace, control characters or `/\?#%`).
    pub fn parse(s: &str) -> Result<Email, String> {
        let e = s.trim().to_lowercase();
        let bad = |why: &str| Err(format!("invalid email '{s}': {why}"));
        if e.len() > 254 {
            return bad("it is longer than 254 bytes");
        }
        if e.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '?' | '#' | '%')
        }) {
            return bad("it contains whitespace, a control character or one of / \\ ? # %");
        }
        let mut parts = e.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return bad("it must hold exactly one '@'");
        };
        if local.is_empty() {
            return bad("nothing before the '@'");
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return bad("the domain has no dot between names");
        }
        Ok(Email(e))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a string is a valid HubSpot property name for a system's `properties`.
pub fn is_property_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && s.len() <= 100
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks a `properties` argument against a system's `properties` (SPEC §3.1): every name
/// listed, `email` never, every value a string, number or boolean.
pub fn check_properties(
    system: &str,
    allowed: &[String],
    value: &Value,
) -> Result<Map<String, Value>, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "must be an object of property → value, got {}",
            json_type_name(value)
        ));
    };
    for (name, v) in map {
        if name == "email" {
            return Err(
                "property 'email' cannot be set through properties: give it as the `email` argument (update_contact cannot change it)"
                    .to_string(),
            );
        }
        if !allowed.iter().any(|a| a == name) {
            return Err(format!(
                "property '{name}' is not in the properties of system `{system}`"
            ));
        }
        if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            return Err(format!(
                "property '{name}' must be a string, number or boolean, got {}",
                json_type_name(v)
            ));
        }
    }
    Ok(map.clone())
}

/// A property value as HubSpot stores it: a string (a number as its JSON text, a boolean as
/// `true`/`false`, `null` as `""`).
pub fn property_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A task's due time as given: RFC 3339, or `YYYY-MM-DD` meaning 00:00 UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due(String);

impl Due {
    pub fn parse(s: &str) -> Result<Due, String> {
        match due_millis(s) {
            Some(_) => Ok(Due(s.to_string())),
            None => Err(format!(
                "invalid due '{s}': use RFC 3339 (2026-05-01T09:00:00Z) or YYYY-MM-DD"
            )),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// UTC milliseconds since the epoch (HubSpot's `hs_timestamp`).
    pub fn millis(&self) -> i64 {
        due_millis(&self.0).unwrap_or_default()
    }
}

fn due_millis(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    // `%Y-%m-%d` also takes `2026-5-1`; only the zero-padded form is YYYY-MM-DD.
    (d.format("%Y-%m-%d").to_string() == s)
        .then(|| d.and_hms_opt(0, 0, 0))
        .flatten()
        .map(|t| t.and_utc().timestamp_millis())
}

/// RFC 3339 UTC with milliseconds, as HubSpot answers `hs_timestamp`.
pub fn millis_to_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// A HubSpot action with its checked arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum HubspotAction {
    FindContact {
        email: Email,
    },
    CreateContact {
        email: Email,
        properties: Map<String, Value>,
    },
    UpdateContact {
        email: Email,
        properties: Map<String, Value>,
    },
    CreateTask {
        contact_email: Email,
        subject: String,
        body: String,
        due: Option<Due>,
    },
}

impl HubspotAction {
    pub fn name(&self) -> ActionName {
        match self {
            HubspotAction::FindContact { .. } => ActionName::FindContact,
            HubspotAction::CreateContact { .. } => ActionName::CreateContact,
            HubspotAction::UpdateContact { .. } => ActionName::UpdateContact,
            HubspotAction::CreateTask { .. } => ActionName::CreateTask,
        }
    }

    /// The contact the action addresses.
    pub fn email(&self) -> &Email {
        match self {
            HubspotAction::FindContact { email }
            | HubspotAction::CreateContact { email, .. }
            | HubspotAction::UpdateContact { email, .. } => email,
            HubspotAction::CreateTask { contact_email, .. } => contact_email,
        }
    }

    /// Builds the action from arguments with their defaults filled in.
    pub fn from_args(name: ActionName, args: &Map<String, Value>) -> Result<HubspotAction, String> {
        let get = |k: &str| args.get(k).ok_or_else(|| format!("missing argument `{k}`"));
        let text = |k: &str| -> Result<String, String> {
            let v = get(k)?;
            v.as_str().map(str::to_string).ok_or_else(|| {
                format!("argument `{k}` must be a string, got {}", json_type_name(v))
            })
        };
        let email = |k: &str| Email::parse(&text(k)?);
        let props = |k: &str| match get(k)? {
            Value::Object(m) => Ok(m.clone()),
            other => Err(format!(
                "argument `{k}` must be an object, got {}",
                json_type_name(other)
            )),
        };
        Ok(match name {
            ActionName::FindContact => HubspotAction::FindContact {
                email: email("email")?,
            },
            ActionName::CreateContact => HubspotAction::CreateContact {
                email: email("email")?,
                properties: props("properties")?,
            },
            ActionName::UpdateContact => HubspotAction::UpdateContact {
                email: email("email")?,
                properties: props("properties")?,
            },
            ActionName::CreateTask => HubspotAction::CreateTask {
                contact_email: email("contact_email")?,
                subject: text("subject")?,
                body: text("body")?,
                due: match args.get("due") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(Due::parse(&text("due")?)?),
                },
            },
            other => return Err(format!("`{other}` is not a hubspot action")),
        })
    }

    /// The arguments as JSON; `due` is left out when there is none.
    pub fn args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let s = |x: &str| Value::String(x.to_string());
        match self {
            HubspotAction::FindContact { email } => {
                m.insert("email".into(), s(email.as_str()));
            }
            HubspotAction::CreateContact { email, properties }
            | HubspotAction::UpdateContact { email, properties } => {
                m.insert("email".into(), s(email.as_str()));
                m.insert("properties".into(), Value::Object(properties.clone()));
            }
            HubspotAction::CreateTask {
                contact_email,
                subject,
                body,
                due,
            } => {
                m.insert("contact_email".into(), s(contact_email.as_str()));
                m.insert("subject".into(), s(subject));
                m.insert("body".into(), s(body));
                if let Some(due) = due {
                    m.insert("due".into(), s(due.as_str()));
                }
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Bob@Acme.COM ").map(|e| e.0),
            Ok("bob@acme.com".to_string())
        );
        for bad in [
            "bob",
            "a@b@c.com",
            "@acme.com",
            "bob@acme",
            "bob@.com",
            "bob smith@acme.com",
            "bob/x@acme.com",
            "bob?@acme.com",
            "b%40@acme.com",
            "b#@acme.com",
            "b\\@acme.com",
            "b\u{7}@acme.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}@acme.com", "a".repeat(250));
        assert_eq!(
            Email::parse(&long).err(),
            Some(format!(
                "invalid email '{long}': it is longer than 254 bytes"
            ))
        );
    }

    #[test]
    fn properties_are_checked_against_the_system() {
        let allowed = vec!["firstname".to_string(), "phone".to_string()];
        assert!(check_properties("crm", &allowed, &json!({"firstname": "A", "phone": 5})).is_ok());
        assert_eq!(
            check_properties("crm", &allowed, &json!({"hs_email_optout": true})).err(),
            Some("property 'hs_email_optout' is not in the properties of system `crm`".into())
        );
        assert!(
            check_properties("crm", &allowed, &json!({"email": "x@y.z"}))
                .err()
                .unwrap_or_default()
                .starts_with("property 'email' cannot be set through properties")
        );
        assert_eq!(
            check_properties("crm", &allowed, &json!({"phone": [1]})).err(),
            Some("property 'phone' must be a string, number or boolean, got an array".into())
        );
        assert!(is_property_name("hs_x1") && !is_property_name("1x") && !is_property_name("a,b"));
    }

    #[test]
    fn due_takes_rfc3339_or_a_date() {
        assert_eq!(
            Due::parse("2026-05-01").map(|d| d.millis()),
            Ok(1_777_593_600_000)
        );
        assert_eq!(
            Due::parse("2026-05-01T02:00:00+02:00").map(|d| d.millis()),
            Ok(1_777_593_600_000)
        );
        assert_eq!(
            millis_to_rfc3339(1_777_593_600_000),
            "2026-05-01T00:00:00.000Z"
        );
        for bad in ["", "tomorrow", "2026-5-1", "2026-13-01"] {
            assert!(Due::parse(bad).is_err(), "{bad}");
        }
    }
}
