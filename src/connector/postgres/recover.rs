//! Recovery of an interrupted mutating action (SPEC §5.5): its step record holds the id of the
//! action's transaction, written just before `COMMIT`; the server says whether it committed.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio_postgres::Client;

use super::{Failure, db_error};
use crate::connector::{ActionOutcome, Recovered};

/// How long a transaction still in progress is waited for (each time) before acting on it.
const SETTLE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(100);

/// The transaction's status as `{"status": "committed" | "aborted" | "in progress" | null}`.
/// A transaction in progress is waited for; if its session is idle in it — waiting for a
/// `COMMIT` from a client that is gone — the session is terminated (which aborts it) and the
/// status read again.
pub(super) async fn status(db: &mut Client, txid: &str) -> Result<ActionOutcome, Failure> {
    let mut now = settle(db, txid).await?;
    if now.as_deref() == Some("in progress") && terminate_idle_owner(db, txid).await? {
        now = settle(db, txid).await?;
    }
    Ok(ActionOutcome::ok(json!({"status": now}), json!({})))
}

async fn xact_status(db: &Client, txid: &str) -> Result<Option<String>, Failure> {
    db.query_one("SELECT pg_xact_status($1::text::xid8)::text", &[&txid])
        .await
        .map(|r| r.get(0))
        .map_err(|e| db_error(&format!("cannot read the status of transaction {txid}"), &e))
}

/// The status, once it is no longer `in progress` or [`SETTLE`] has passed.
async fn settle(db: &Client, txid: &str) -> Result<Option<String>, Failure> {
    let start = std::time::Instant::now();
    loop {
        let now = xact_status(db, txid).await?;
        if now.as_deref() != Some("in progress") || start.elapsed() >= SETTLE {
            return Ok(now);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Terminates the session that holds `txid` if it is idle in that transaction; whether it did.
/// `backend_xid` is the 32-bit form of the 64-bit id the step record holds.
async fn terminate_idle_owner(db: &Client, txid: &str) -> Result<bool, Failure> {
    let Ok(full) = txid.parse::<u64>() else {
        return Ok(false);
    };
    let short = (full & 0xffff_ffff).to_string();
    let rows = db
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE backend_xid::text = $1 AND state IN ('idle in transaction', 'idle in transaction (aborted)') \
             AND pid <> pg_backend_pid()",
            &[&short],
        )
        .await
        .map_err(|e| {
            db_error(
                &format!("cannot end the abandoned session of transaction {txid}"),
                &e,
            )
        })?;
    Ok(rows.iter().any(|r| r.get::<_, bool>(0)))
}

/// Turns the status into what recovery records.
pub(super) fn judge(
    action: &str,
    pre: &Value,
    txid: &str,
    found: ActionOutcome,
) -> (Recovered, ActionOutcome) {
    let status = found.output.get("status").and_then(Value::as_str);
    match status {
        Some("committed") => (Recovered::Done, done(action, pre)),
        Some("aborted") => (
            Recovered::NotDone,
            ActionOutcome::ok(
                json!({"not_done": format!("transaction {txid} was rolled back: nothing was changed")}),
                json!({}),
            ),
        ),
        Some("in progress") => unknown(
            pre,
            &format!("transaction {txid} is still in progress in a session that was not ended"),
        ),
        Some(other) => unknown(
            pre,
            &format!("transaction {txid} has the unexpected status '{other}'"),
        ),
        None => unknown(
            pre,
            &format!(
                "the database does not know transaction {txid} (too old, or another database)"
            ),
        ),
    }
}

/// The outcome the action would have returned, from its step record.
fn done(action: &str, pre: &Value) -> ActionOutcome {
    let count = |field: &str| pre.get(field).and_then(Value::as_array).map_or(0, Vec::len);
    let output = match action {
        "insert_row" => {
            json!({"row": pre.get("row").cloned().unwrap_or(Value::Null), "already_done": false})
        }
        "update_row" => json!({"rows_updated": count("new_rows"), "already_done": false}),
        "delete_row" => json!({"rows_deleted": count("rows"), "already_done": false}),
        _ => json!({"already_done": false}),
    };
    ActionOutcome::ok(output, rollback_data(pre))
}

/// Neither committed nor rolled back as far as we can tell: the recorded undo data is kept, so
/// an undo runs with its usual guard (rows equal to what the action wrote) and refuses otherwise.
pub(super) fn unknown(pre: &Value, why: &str) -> (Recovered, ActionOutcome) {
    (
        Recovered::Unknown,
        ActionOutcome::ok(
            json!({"already_done": false, "unknown": why}),
            rollback_data(pre),
        ),
    )
}

/// The step record is the rollback data plus `txid`, kept as evidence.
fn rollback_data(pre: &Value) -> Value {
    Value::Object(pre.as_object().cloned().unwrap_or_else(Map::new))
}
