//! Approvals (SPEC §9), the pure part: the digest that binds an approval to exactly one plan,
//! and the HMAC-protected `requestState` a 2026-07-28 client echoes back.

use chrono::{DateTime, Utc};
use hmac::Mac;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::jcs::canonicalize;
use super::receipt::MacKey;

/// `plan_digest` = hex SHA-256 of the JCS of `{workflow, actor_email, plan}`, with `plan` as
/// `enact_preview` shows it (`[{system, action, args}]`).
pub fn plan_digest(workflow: &str, actor_email: &str, plan: &Value) -> String {
    let bound = json!({"workflow": workflow, "actor_email": actor_email, "plan": plan});
    hex::encode(Sha256::digest(canonicalize(&bound)))
}

/// What a `requestState` carries. It leaves the server and comes back from the client
/// verbatim, so it is authenticated, never trusted as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestState {
    pub run_id: String,
    pub plan_digest: String,
    /// Makes every state issued unique (the engine draws it).
    pub nonce: String,
    /// RFC 3339: the request's expiry.
    pub expires_at: String,
}

/// Why a `requestState` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the requestState is not one this server issued (malformed)")]
    Malformed,
    #[error("the requestState was altered or forged (its MAC does not verify)")]
    Forged,
    #[error("the requestState expired at {0}")]
    Expired(String),
}

/// The MAC is taken over this prefix and the state's bytes, so no other signed value of
/// Enact (a receipt, a journal record) can be passed off as a request state.
const DOMAIN: &[u8] = b"enact/requestState/v1\n";

impl RequestState {
    /// `hex(JSON).hex(HMAC-SHA256(key, DOMAIN || JSON))`.
    pub fn seal(&self, key: &MacKey) -> String {
        let body = serde_json::to_vec(self).unwrap_or_default();
        format!("{}.{}", hex::encode(&body), hex::encode(mac(key, &body)))
    }

    /// Checks the MAC (constant time) and the expiry against `now`.
    pub fn open(
        sealed: &str,
        key: &MacKey,
        now: DateTime<Utc>,
    ) -> Result<RequestState, StateError> {
        let (body, tag) = sealed.split_once('.').ok_or(StateError::Malformed)?;
        let body = hex::decode(body).map_err(|_| StateError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| StateError::Malformed)?;
        let mut m = key.mac();
        m.update(DOMAIN);
        m.update(&body);
        m.verify_slice(&tag).map_err(|_| StateError::Forged)?;
        let state: RequestState =
            serde_json::from_slice(&body).map_err(|_| StateError::Malformed)?;
        let expires =
            DateTime::parse_from_rfc3339(&state.expires_at).map_err(|_| StateError::Malformed)?;
        if now >= expires {
            return Err(StateError::Expired(state.expires_at));
        }
        Ok(state)
    }
}

fn mac(key: &MacKey, body: &[u8]) -> Vec<u8> {
    let mut m = key.mac();
    m.update(DOMAIN);
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(s: &str) -> MacKey {
        MacKey::new(s.as_bytes()).unwrap()
    }

    fn state() -> RequestState {
        RequestState {
            run_id: "0b6f0000-0000-4000-8000-000000000001".into(),
            plan_digest: "ab".repeat(32),
            nonce: "n1".into(),
            expires_at: "2026-01-01T13:00:00.000000Z".into(),
        }
    }

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, h, 0, 0).single().unwrap()
    }

    #[test]
    fn digest_binds_workflow_actor_and_plan() {
        let plan = json!([{"system": "gh", "action": "merge_pr", "args": {"pr_number": 7}}]);
        let d = plan_digest("ship", "a@x", &plan);
        assert_eq!(d.len(), 64);
        assert_eq!(d, plan_digest("ship", "a@x", &plan));
        assert_ne!(d, plan_digest("ship2", "a@x", &plan));
        assert_ne!(d, plan_digest("ship", "b@x", &plan));
        let other = json!([{"system": "gh", "action": "merge_pr", "args": {"pr_number": 8}}]);
        assert_ne!(d, plan_digest("ship", "a@x", &other));
        // JCS: key order does not matter.
        let reordered = json!([{"args": {"pr_number": 7}, "action": "merge_pr", "system": "gh"}]);
        assert_eq!(d, plan_digest("ship", "a@x", &reordered));
    }

    #[test]
    fn a_sealed_state_opens_with_its_key_only_and_before_expiry() {
        let sealed = state().seal(&key("k1"));
        assert_eq!(RequestState::open(&sealed, &key("k1"), at(12)), Ok(state()));
        assert_eq!(
            RequestState::open(&sealed, &key("k2"), at(12)),
            Err(StateError::Forged)
        );
        assert_eq!(
            RequestState::open(&sealed, &key("k1"), at(13)),
            Err(StateError::Expired("2026-01-01T13:00:00.000000Z".into()))
        );
    }

    #[test]
    fn an_altered_or_forged_state_is_refused() {
        let sealed = state().seal(&key("k1"));
        let (body, tag) = sealed.split_once('.').unwrap();
        // Another run id under the old MAC.
        let mut other = state();
        other.run_id = "0b6f0000-0000-4000-8000-000000000002".into();
        let other_body = hex::encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            RequestState::open(&format!("{other_body}.{tag}"), &key("k1"), at(12)),
            Err(StateError::Forged)
        );
        // A later expiry under the old MAC.
        let mut later = state();
        later.expires_at = "2027-01-01T13:00:00.000000Z".into();
        let later_body = hex::encode(serde_json::to_vec(&later).unwrap());
        assert_eq!(
            RequestState::open(&format!("{later_body}.{tag}"), &key("k1"), at(12)),
            Err(StateError::Forged)
        );
        for bad in [
            "",
            "x",
            "zz.zz",
            &format!("{body}."),
            &format!("{body}.{tag}00"),
        ] {
            assert!(
                RequestState::open(bad, &key("k1"), at(12)).is_err(),
                "{bad}"
            );
        }
    }
}
