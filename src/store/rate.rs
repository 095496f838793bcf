//! Rate limiting (SPEC §4 `rate_limit`): counting an actor's recent PASS runs and reserving a
//! slot for the call being judged, both under the folder lock.
//!
//! A run that passed the gate has no receipt until it finishes, so it leaves a reservation,
//! `.pending/<run_id>.json`:
//!
//! ```json
//! {"run_id": "…", "actor_email": "…", "workflow": "…", "timestamp": "…", "payload": {…}}
//! ```
//!
//! (`payload` as a receipt would store it), removed when its receipt is appended or the call
//! is released. Reservations count like receipts. Ones left by a crashed process are garbage
//! once older than the largest window being counted (and at least a day, since another
//! policy may count over a longer window than the current call's).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{RateCounts, Store, StoreError, file, index::Entry, receipt_file_id};
use crate::kernel::jcs::canonicalize;
use crate::kernel::policy::RateQuery;
use crate::kernel::receipt::{self, stored_payload};

pub(super) const PENDING_DIR: &str = ".pending";
/// Reservations younger than this are never collected.
const MIN_RESERVATION_SECS: u64 = 24 * 3600;

/// The call being judged.
pub(super) struct Call<'a> {
    pub actor_email: &'a str,
    pub workflow: &'a str,
    pub payload: &'a Map<String, Value>,
    pub now: DateTime<Utc>,
    pub run_id: &'a str,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reservation {
    run_id: String,
    actor_email: String,
    workflow: String,
    timestamp: String,
    payload: Value,
}

/// The count for each query, keyed by the query's policy index. Must run under the folder lock.
pub(super) fn count(
    store: &Store,
    queries: &[RateQuery],
    call: &Call<'_>,
) -> Result<RateCounts, StoreError> {
    let entries = store.entries()?;
    let largest = queries
        .iter()
        .map(|q| q.window_secs)
        .max()
        .unwrap_or(0)
        .max(MIN_RESERVATION_SECS);
    let reservations = live_reservations(&store.dir, call, window_start(call.now, largest))?;
    let mut receipts = ReceiptCache {
        store,
        verified: HashMap::new(),
    };
    Ok(queries
        .iter()
        .map(|q| {
            (
                q.index,
                count_one(q, call, &entries, &reservations, &mut receipts),
            )
        })
        .collect())
}

fn count_one(
    query: &RateQuery,
    call: &Call<'_>,
    entries: &[Entry],
    reservations: &[Reservation],
    receipts: &mut ReceiptCache<'_>,
) -> Result<u64, String> {
    let since = window_start(call.now, query.window_secs);
    let mut n = 0;
    // The index narrows the candidates; each is then judged on the receipt itself.
    for entry in entries.iter().filter(|e| {
        e.actor_email == call.actor_email
            && e.decision == "PASS"
            && e.rollback_of.is_none()
            && in_scope(query, &e.workflow)
            && in_window(&e.timestamp, since)
    }) {
        if let Some(value) = receipts.verified(&entry.run_id)?
            && receipt_counts(value, query, call.actor_email, since)
        {
            n += 1;
        }
    }
    for r in reservations {
        if r.actor_email == call.actor_email
            && in_scope(query, &r.workflow)
            && in_window(&r.timestamp, since)
            && per_matches(query, &r.payload)
        {
            n += 1;
        }
    }
    Ok(n)
}

/// Whether a validly signed receipt counts against `query`.
fn receipt_counts(
    value: &Value,
    query: &RateQuery,
    actor_email: &str,
    since: DateTime<Utc>,
) -> bool {
    let text = |field: &str| value.get(field).and_then(Value::as_str);
    text("actor_email") == Some(actor_email)
        && text("decision") == Some("PASS")
        && value.get("rollback_of").is_none_or(Value::is_null)
        && text("workflow").is_some_and(|w| in_scope(query, w))
        && text("timestamp").is_some_and(|t| in_window(t, since))
        // `inputs` holds the arguments after defaults (SPEC: `per` is compared "after
        // defaults"); receipts without it fall back to the verbatim payload.
        && per_matches(
            query,
            value
                .get("inputs")
                .or_else(|| value.get("payload"))
                .unwrap_or(&Value::Null),
        )
}

/// Receipts read and verified once per count.
struct ReceiptCache<'a> {
    store: &'a Store,
    verified: HashMap<String, Option<Value>>,
}

impl ReceiptCache<'_> {
    /// The receipt if it exists, is valid and its signature verifies; `Err` if it cannot be read.
    fn verified(&mut self, run_id: &str) -> Result<Option<&Value>, String> {
        if !self.verified.contains_key(run_id) {
            let value = match self.store.read_receipt(run_id) {
                Ok(value) if receipt::verify(&value, self.store.key()) => Some(value),
                Ok(_) => {
                    tracing::warn!(
                        run_id,
                        "not counting a receipt whose signature does not verify"
                    );
                    None
                }
                Err(StoreError::NotFound(_) | StoreError::Invalid { .. }) => None,
                Err(e) => return Err(format!("could not read receipt `{run_id}`: {e}")),
            };
            self.verified.insert(run_id.to_owned(), value);
        }
        Ok(self.verified.get(run_id).and_then(Option::as_ref))
    }
}

fn in_scope(query: &RateQuery, workflow: &str) -> bool {
    query
        .workflows
        .as_ref()
        .is_none_or(|scope| scope.iter().any(|w| w == workflow))
}

/// After `since`. An unreadable timestamp counts: the gate fails closed.
fn in_window(timestamp: &str, since: DateTime<Utc>) -> bool {
    DateTime::parse_from_rfc3339(timestamp).map_or(true, |t| t.with_timezone(&Utc) > since)
}

fn window_start(now: DateTime<Utc>, window_secs: u64) -> DateTime<Utc> {
    i64::try_from(window_secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|window| now.checked_sub_signed(window))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether a payload's `per` argument equals the query's value (as JCS, so `5` equals `5.0`;
/// a missing argument is `null`).
fn per_matches(query: &RateQuery, payload: &Value) -> bool {
    let Some((arg, wanted)) = &query.per else {
        return true;
    };
    canonicalize(payload.get(arg).unwrap_or(&Value::Null)) == canonicalize(wanted)
}

fn pending_dir(dir: &Path) -> PathBuf {
    dir.join(PENDING_DIR)
}

/// The reservations that may still count, except the call's own; removes garbage: unreadable
/// ones, ones whose receipt exists, and ones older than `oldest`.
fn live_reservations(
    dir: &Path,
    call: &Call<'_>,
    oldest: DateTime<Utc>,
) -> Result<Vec<Reservation>, StoreError> {
    let pending = pending_dir(dir);
    let names = match super::file_names(&pending) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(StoreError::io(&pending)(e)),
    };
    let mut live = Vec::new();
    for run_id in names.iter().filter_map(|n| receipt_file_id(n)) {
        if run_id == call.run_id {
            continue;
        }
        let path = pending.join(format!("{run_id}.json"));
        let reservation = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Reservation>(&bytes).ok(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&path)(e)),
        };
        let garbage = match &reservation {
            None => true,
            Some(r) => {
                r.run_id != run_id
                    || dir.join(format!("{run_id}.json")).exists()
                    || !in_window(&r.timestamp, oldest)
            }
        };
        match reservation {
            Some(r) if !garbage => live.push(r),
            _ => remove_reservation(dir, run_id),
        }
    }
    Ok(live)
}

/// Records the call's reservation. Must run under the folder lock.
pub(super) fn reserve(dir: &Path, call: &Call<'_>) -> Result<(), StoreError> {
    let pending = pending_dir(dir);
    fs::create_dir_all(&pending).map_err(StoreError::io(&pending))?;
    let reservation = Reservation {
        run_id: call.run_id.to_owned(),
        actor_email: call.actor_email.to_owned(),
        workflow: call.workflow.to_owned(),
        timestamp: call
            .now
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        payload: stored_payload(&Value::Object(call.payload.clone())),
    };
    let path = pending.join(format!("{}.json", call.run_id));
    let bytes =
        serde_json::to_vec(&reservation).map_err(|e| StoreError::io(&path)(io::Error::other(e)))?;
    // Not synced: a reservation only matters while its run is in flight in a live process.
    file::write_atomic(&pending, &format!("{}.json", call.run_id), &bytes, false)
        .map_err(StoreError::io(&path))
}

/// Removes a run's reservation, if any.
pub(super) fn remove_reservation(dir: &Path, run_id: &str) {
    let path = pending_dir(dir).join(format!("{run_id}.json"));
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), "could not remove a rate-limit reservation: {e}")
        }
    }
}
