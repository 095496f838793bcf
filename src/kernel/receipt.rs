//! Receipts (SPEC §5.1–5.2): the signed record of one run. Pure: building, canonical bytes,
//! HMAC-SHA256 signing, constant-time verification, chain hashes and the MCP (redacted) view.

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::context::Actor;
use super::jcs::{self, canonicalize};
use super::policy::{Decision, PolicyResult, Verdict};

pub type HmacSha256 = Hmac<Sha256>;

/// Payloads larger than this (as JSON) are stored as `{sha256, bytes}`.
pub const MAX_VERBATIM_PAYLOAD: usize = 64 * 1024;
/// `prev_hash` of the first receipt in a folder.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One executed (or undone) connector action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub action: String,
    pub system: String,
    pub success: bool,
    pub output: Value,
    pub rollback_data: Value,
    /// The identity of the system it ran against (type plus root / API and repo / host and db).
    pub target: Value,
    /// The resolved arguments the action ran with.
    #[serde(default)]
    pub args: Map<String, Value>,
}

/// A receipt. Field names are fixed by SPEC §5.1; extra fields are signed like the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The journal record kind (SPEC §5.3): always `receipt` for receipts written now; absent
    /// on receipts of the earlier layout (which were signed without it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    pub run_id: String,
    pub workflow: String,
    pub actor_email: String,
    pub actor_role: String,
    pub payload: Value,
    /// The arguments after defaults were applied (stored like `payload`); absent on rollback
    /// receipts and input-schema BLOCKs. `rate_limit`'s `per` compares against these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Value>,
    pub policy_results: Vec<PolicyResult>,
    pub decision: Decision,
    pub actions_taken: Vec<ActionRecord>,
    pub timestamp: String,
    pub rollback_of: Option<String>,
    /// The resolved plan the gate judged (`[]` for an input-schema BLOCK).
    pub plan: Value,
    /// SHA-256 of the active policy set (JCS), so an auditor can tell which rules applied.
    pub policy_set_hash: String,
    /// Set on a receipt written by recovery for a run a crash interrupted (SPEC §5.5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The fields of approval records and resumed runs (SPEC §9); absent elsewhere.
    #[serde(flatten)]
    pub approvals: ApprovalFields,
    pub seq: u64,
    pub prev_hash: String,
    pub signature: String,
}

/// The fields SPEC §9 adds to receipts. Each is present only on the records it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApprovalFields {
    /// PENDING: `{plan_digest, expires_at, plan}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Value>,
    /// APPROVE / DENY: the PENDING run id answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_of: Option<String>,
    /// APPROVE / DENY / GRANT / REVOKE: the human's reason, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// APPROVE / DENY: `cli` or `elicitation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// GRANT: the actor the grant is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_for: Option<String>,
    /// GRANT: `{workflow, action}` (`action` null: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Value>,
    /// GRANT: when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// REVOKE: the GRANT's run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revokes: Option<String>,
    /// A resumed run: the PENDING run id it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumes: Option<String>,
    /// A resumed run: `{run_id, actor_email, via}` of the APPROVE record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<Value>,
}

/// What a run's receipt records besides its verdict and actions.
#[derive(Debug, Clone, Copy)]
pub struct RunHeader<'a> {
    pub run_id: &'a str,
    pub workflow: &'a str,
    pub actor: &'a Actor,
    /// The call's raw arguments.
    pub payload: &'a Value,
    /// The arguments after defaults (absent for an input-schema BLOCK).
    pub inputs: Option<&'a Map<String, Value>>,
    /// The resolved plan as JSON (`[]` for an input-schema BLOCK).
    pub plan: &'a Value,
    pub now: DateTime<Utc>,
    pub policy_set_hash: &'a str,
}

impl Receipt {
    /// A run's receipt, not yet chained or signed (the store does both on append).
    pub fn for_run(run: &RunHeader<'_>, verdict: Verdict, actions: Vec<ActionRecord>) -> Receipt {
        Receipt {
            kind: "receipt".into(),
            run_id: run.run_id.into(),
            workflow: run.workflow.into(),
            actor_email: run.actor.email.clone(),
            actor_role: run.actor.role.clone(),
            payload: stored_payload(run.payload),
            inputs: run
                .inputs
                .map(|i| stored_payload(&Value::Object(i.clone()))),
            policy_results: verdict.results,
            decision: verdict.decision,
            actions_taken: actions,
            timestamp: timestamp(run.now),
            rollback_of: None,
            plan: run.plan.clone(),
            policy_set_hash: run.policy_set_hash.into(),
            interrupted: false,
            approvals: ApprovalFields::default(),
            seq: 0,
            prev_hash: GENESIS_HASH.into(),
            signature: String::new(),
        }
    }

    /// The receipt of rollback `run_id` of `original`, not yet chained or signed: the
    /// original's actor, workflow `rollback:<workflow>`, PASS or PARTIAL.
    pub fn for_rollback(
        run_id: &str,
        original: &Receipt,
        plan: Value,
        decision: Decision,
        actions: Vec<ActionRecord>,
        now: DateTime<Utc>,
        policy_set_hash: &str,
    ) -> Receipt {
        Receipt {
            kind: "receipt".into(),
            run_id: run_id.into(),
            workflow: format!("rollback:{}", original.workflow),
            actor_email: original.actor_email.clone(),
            actor_role: original.actor_role.clone(),
            payload: json!({"original_run_id": original.run_id}),
            inputs: None,
            policy_results: vec![],
            decision,
            actions_taken: actions,
            timestamp: timestamp(now),
            rollback_of: Some(original.run_id.clone()),
            plan,
            policy_set_hash: policy_set_hash.into(),
            interrupted: false,
            approvals: ApprovalFields::default(),
            seq: 0,
            prev_hash: GENESIS_HASH.into(),
            signature: String::new(),
        }
    }
}

/// The payload as stored: verbatim, or `{sha256, bytes}` when larger than 64 KiB. A number a
/// double cannot hold exactly (only in the payload of the BLOCK that refused it) is stored as
/// the string of its digits, so every RFC 8785 implementation verifies the receipt (SPEC §5.2);
/// the transport has already turned such literals into strings of their exact text.
pub fn stored_payload(payload: &Value) -> Value {
    let payload = super::schema::exact_numbers(payload);
    let bytes = serde_json::to_vec(&payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if bytes > MAX_VERBATIM_PAYLOAD {
        digest_summary(&payload)
    } else {
        payload
    }
}

/// `{"sha256": hex(SHA-256(JCS(v))), "bytes": len(JCS(v))}`.
pub fn digest_summary(v: &Value) -> Value {
    let canon = canonicalize(v);
    json!({"sha256": hex::encode(Sha256::digest(&canon)), "bytes": canon.len()})
}

/// Hex SHA-256 of JCS(value): the chain link to a receipt (signature included).
pub fn chain_hash(receipt: &Value) -> String {
    hex::encode(Sha256::digest(canonicalize(receipt)))
}

/// Why a record cannot be signed. Never replaced by a default: a receipt is signed with the
/// configured key over its exact contents, or not written at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("the signing key cannot be used: {0}")]
    Key(String),
    #[error("the record cannot be serialised for signing: {0}")]
    Serialise(String),
}

/// The HMAC-SHA256 key receipts and journal records are signed with, keyed once (at config
/// load, or when a store is opened) and cloned for each signature.
#[derive(Clone)]
pub struct MacKey(HmacSha256);

impl MacKey {
    pub fn new(secret: &[u8]) -> Result<MacKey, SigningError> {
        HmacSha256::new_from_slice(secret)
            .map(MacKey)
            .map_err(|e| SigningError::Key(e.to_string()))
    }
}

impl MacKey {
    /// A fresh MAC keyed with this key (for MACs other than receipt signatures, which add
    /// their own domain prefix).
    pub fn mac(&self) -> HmacSha256 {
        self.0.clone()
    }
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey([redacted])")
    }
}

/// A record's canonical bytes whole (what its chain hash covers) and without its
/// `signature` field (what the signature covers), from one pass.
fn canonical_forms(record: &Value) -> (Vec<u8>, Vec<u8>) {
    let (whole, unsigned) = jcs::canonicalize_with_and_without(record, "signature");
    let unsigned = unsigned.unwrap_or_else(|| whole.clone());
    (whole, unsigned)
}

/// The signature of a receipt value (its `signature` field, if any, is left out).
pub fn sign(receipt: &Value, key: &MacKey) -> String {
    let mut mac = key.0.clone();
    mac.update(&canonical_forms(receipt).1);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a receipt value's `signature` in constant time; anything but exactly 64 lowercase
/// hex characters is rejected.
pub fn verify(receipt: &Value, key: &MacKey) -> bool {
    verify_and_hash(receipt, key).0
}

/// [`verify`] and [`chain_hash`] of one record together, canonicalizing it once: what
/// opening and auditing a journal need for every line.
pub fn verify_and_hash(receipt: &Value, key: &MacKey) -> (bool, String) {
    let (whole, unsigned) = canonical_forms(receipt);
    let hash = hex::encode(Sha256::digest(&whole));
    let Some(sig) = receipt.get("signature").and_then(Value::as_str) else {
        return (false, hash);
    };
    if sig.len() != 64
        || !sig
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return (false, hash);
    }
    let Ok(expected) = hex::decode(sig) else {
        return (false, hash);
    };
    let mut mac = key.0.clone();
    mac.update(&unsigned);
    (mac.verify_slice(&expected).is_ok(), hash)
}

impl Receipt {
    /// The receipt as a JSON value (what is signed and stored).
    pub fn to_value(&self) -> Result<Value, SigningError> {
        serde_json::to_value(self).map_err(|e| SigningError::Serialise(e.to_string()))
    }

    /// Fills in `signature` for the current contents.
    pub fn sign(&mut self, key: &MacKey) -> Result<(), SigningError> {
        self.signature = String::new();
        self.signature = sign(&self.to_value()?, key);
        Ok(())
    }
}

/// The view of a receipt shown over MCP: each action's `rollback_data` replaced by its digest,
/// so an agent cannot read through a receipt what its tools would not show it.
pub fn redacted(receipt: &Value) -> Value {
    let mut out = receipt.clone();
    if let Some(Value::Array(actions)) = out.get_mut("actions_taken") {
        for action in actions {
            if let Some(data) = action.get_mut("rollback_data") {
                *data = digest_summary(data);
            }
        }
    }
    out
}

/// Whether a string is a lowercase hyphenated UUID (the only acceptable run id / file name).
pub fn is_valid_run_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-26T01:02:03.456789Z`.
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> MacKey {
        MacKey::new(secret).unwrap()
    }

    /// The one-pass check gives what `verify` and `chain_hash` give separately: for a good
    /// signature, an altered record, a wrong key, a malformed or missing signature.
    #[test]
    fn verify_and_hash_agrees_with_verify_and_chain_hash() {
        let k = key(b"secret");
        let mut r = sample();
        r.sign(&k).unwrap();
        let good = r.to_value().unwrap();
        let mut altered = good.clone();
        altered["workflow"] = json!("other");
        let mut malformed = good.clone();
        malformed["signature"] = json!("ABC");
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("signature");
        for (value, valid) in [
            (&good, true),
            (&altered, false),
            (&malformed, false),
            (&missing, false),
        ] {
            assert_eq!(verify_and_hash(value, &k), (valid, chain_hash(value)));
            assert_eq!(verify(value, &k), valid);
        }
        assert!(!verify_and_hash(&good, &key(b"other")).0);
        assert_eq!(
            verify_and_hash(&json!("x"), &k),
            (false, chain_hash(&json!("x")))
        );
    }

    fn sample() -> Receipt {
        Receipt {
            kind: "receipt".into(),
            run_id: "0b6f1a2c-3d4e-4f50-8a6b-7c8d9e0f1a2b".into(),
            workflow: "save_note".into(),
            actor_email: "agent@company.com".into(),
            actor_role: "engineer".into(),
            payload: json!({"path": "a.txt", "content": "hi"}),
            inputs: None,
            policy_results: vec![PolicyResult::pass(
                "no_delete_file",
                "no delete_file is planned",
            )],
            decision: Decision::Pass,
            actions_taken: vec![ActionRecord {
                action: "write_file".into(),
                system: "files".into(),
                success: true,
                output: json!({"path": "a.txt", "already_done": false}),
                rollback_data: json!({"existed": false}),
                target: json!({"type": "filesystem", "root": "/w"}),
                args: Map::new(),
            }],
            timestamp: "2026-11-26T01:02:03.456789Z".into(),
            rollback_of: None,
            plan: json!([]),
            policy_set_hash: "00".into(),
            interrupted: false,
            approvals: ApprovalFields::default(),
            seq: 0,
            prev_hash: GENESIS_HASH.into(),
            signature: String::new(),
        }
    }

    /// Computed independently with Python:
    /// `hmac.new(b"k"*32, b'{"a":1,"b":"x"}', hashlib.sha256).hexdigest()`
    #[test]
    fn signature_matches_an_independent_hmac() {
        let v = json!({"b": "x", "a": 1, "signature": "ignored"});
        assert_eq!(
            sign(&v, &key(&[b'k'; 32])),
            "17226dafb6001e55a12726bc15c30efe44b49c2183d0a0e85327f462f49c3cd6"
        );
    }

    #[test]
    fn signed_receipt_verifies_and_resists_reformatting() {
        let mut r = sample();
        r.sign(&key(b"0123456789abcdef0123456789abcdef")).unwrap();
        let v = r.to_value().unwrap();
        assert!(verify(&v, &key(b"0123456789abcdef0123456789abcdef")));
        let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
        let reparsed: Value = serde_json::from_str(&pretty).unwrap_or(Value::Null);
        assert!(verify(&reparsed, &key(b"0123456789abcdef0123456789abcdef")));
        assert!(!verify(&v, &key(b"another key that is long enough!!")));
    }

    #[test]
    fn malformed_signatures_are_rejected() {
        let mut r = sample();
        r.sign(&key(b"0123456789abcdef0123456789abcdef")).unwrap();
        for bad in [
            r.signature.to_uppercase(),
            format!("{}0", r.signature),
            r.signature[..63].to_string(),
            String::new(),
        ] {
            let mut v = r.to_value().unwrap();
            v["signature"] = json!(bad);
            assert!(!verify(&v, &key(b"0123456789abcdef0123456789abcdef")));
        }
    }

    #[test]
    fn redaction_replaces_rollback_data_with_its_digest() {
        let v = redacted(&sample().to_value().unwrap());
        assert_eq!(
            v["actions_taken"][0]["rollback_data"],
            digest_summary(&json!({"existed": false}))
        );
        assert_eq!(v["actions_taken"][0]["rollback_data"]["bytes"], json!(17));
    }

    #[test]
    fn big_payloads_are_stored_as_digests() {
        let big = json!({"content": "x".repeat(70 * 1024)});
        let stored = stored_payload(&big);
        assert_eq!(stored["bytes"], json!(70 * 1024 + 14));
        assert!(stored["sha256"].is_string());
        assert_eq!(stored_payload(&json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn run_ids_must_be_lowercase_uuids() {
        assert!(is_valid_run_id("0b6f1a2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"));
        for bad in [
            "",
            "../x",
            "0B6F1A2C-3D4E-4F50-8A6B-7C8D9E0F1A2B",
            "0b6f1a2c3d4e4f508a6b7c8d9e0f1a2b",
            "0b6f1a2c-3d4e-4f50-8a6b-7c8d9e0f1a2/",
        ] {
            assert!(!is_valid_run_id(bad), "{bad}");
        }
    }

    /// Every leaf of a JSON value, as a JSON pointer.
    fn leaves(v: &Value, path: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    leaves(
                        x,
                        format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, x) in a.iter().enumerate() {
                    leaves(x, format!("{path}/{i}"), out);
                }
            }
            _ => out.push(path),
        }
    }

    proptest::proptest! {
        /// Changing any single signed field — anywhere, payload and rollback data included —
        /// breaks verification.
        #[test]
        fn changing_any_single_field_breaks_verification(
            content in ".{0,40}",
            seq in 0u64..1_000_000,
            pick in 0usize..1000,
            replacement in proptest::prop_oneof![
                proptest::strategy::Just(json!(null)),
                proptest::strategy::Just(json!(true)),
                proptest::strategy::Just(json!(7)),
                proptest::strategy::Just(json!("x")),
                proptest::strategy::Just(json!({})),
            ],
        ) {
            let mut r = sample();
            r.payload = json!({"path": "a.txt", "content": content});
            r.actions_taken[0].rollback_data = json!({"existed": true, "content": content});
            r.seq = seq;
            let key = &key(b"0123456789abcdef0123456789abcdef");
            r.sign(key).unwrap();
            let v = r.to_value().unwrap();
            proptest::prop_assert!(verify(&v, key));
            let mut paths = Vec::new();
            leaves(&v, String::new(), &mut paths);
            paths.retain(|p| p != "/signature");
            let path = &paths[pick % paths.len()];
            let mut tampered = v.clone();
            let slot = tampered.pointer_mut(path).unwrap();
            if *slot == replacement {
                *slot = json!("something else");
            } else {
                *slot = replacement.clone();
            }
            proptest::prop_assert!(!verify(&tampered, key), "tampering {path} went unnoticed");
        }
    }
}
