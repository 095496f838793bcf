//! Undo of the three mutating actions (SPEC §6), each one transaction, all rows or none.
//!
//! Before writing, every row the run left is locked and compared, in text form, with what
//! the receipt recorded; any difference fails the undo naming the row by primary key (and the
//! columns that changed, not their values — a rollback result is shown to the agent), and
//! nothing is overwritten.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tokio_postgres::{Client, Transaction};

use super::Failure;
use super::actions::{begin, commit};
use super::catalog::{Table, ident};
use super::db_error;
use super::rows::{TextRow, key_label, key_match, key_of, keys_json, read_row, select_list};
use crate::connector::ActionOutcome;

/// Rows named in one drift message, at most.
const SHOWN: usize = 5;

pub async fn run(
    db: &mut Client,
    action: &str,
    data: &Map<String, Value>,
    tolerate: bool,
) -> Result<ActionOutcome, Failure> {
    let tx = begin(db).await?;
    let table = recorded_table(&tx, data).await?;
    let outcome = match action {
        "insert_row" => undo_insert(&tx, &table, data, tolerate).await?,
        "update_row" => undo_update(&tx, &table, data, tolerate).await?,
        "delete_row" => undo_delete(&tx, &table, data, tolerate).await?,
        other => {
            return Err(Failure::new(format!(
                "cannot undo unknown postgres action `{other}`"
            )));
        }
    };
    commit(tx).await?;
    Ok(outcome)
}

/// The table the run changed, looked up again; its primary key must still be the recorded one.
async fn recorded_table(tx: &Transaction<'_>, data: &Map<String, Value>) -> Result<Table, Failure> {
    let (Some(schema), Some(name)) = (
        data.get("schema").and_then(Value::as_str),
        data.get("table").and_then(Value::as_str),
    ) else {
        return Err(Failure::new("the rollback data names no table"));
    };
    let table = Table::load(tx, &format!("{}.{}", ident(schema), ident(name)))
        .await
        .map_err(|_| Failure::new(format!("table `{schema}.{name}` no longer exists")))?;
    table.check_writable()?;
    let recorded: Vec<&str> = data
        .get("primary_key")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if recorded != table.primary_key {
        return Err(Failure::new(format!(
            "the primary key of `{}` changed after the run (was {}, now {})",
            table.display(),
            recorded.join(", "),
            table.primary_key.join(", ")
        )));
    }
    Ok(table)
}

/// Deletes the inserted row — only if it still holds what was written.
async fn undo_insert(
    tx: &Transaction<'_>,
    table: &Table,
    data: &Map<String, Value>,
    tolerate: bool,
) -> Result<ActionOutcome, Failure> {
    let written = text_row(data.get("row"))?;
    let label = key_label(table, &written);
    let current = lock_by_key(tx, table, std::slice::from_ref(&written)).await?;
    match current.get(&label) {
        None if tolerate => return Ok(already_undone(table)),
        None => {
            return Err(Failure::new(format!(
                "row ({label}) was deleted after the run — nothing deleted"
            )));
        }
        Some(now) => {
            if let Some(cols) = changed_columns(&written, now) {
                return Err(Failure::new(format!(
                    "row ({label}) changed after the run ({cols}) — not deleted"
                )));
            }
        }
    }
    let sql = format!(
        "DELETE FROM {} AS t WHERE {}",
        table.sql(),
        key_match(table, 1)
    );
    tx.execute(&sql, &[&keys_json(table, std::slice::from_ref(&written))?])
        .await
        .map_err(|e| db_error("cannot delete the inserted row", &e))?;
    Ok(ActionOutcome::ok(
        json!({"table": table.display(), "undone": format!("deleted the inserted row ({label})")}),
        json!({}),
    ))
}

/// Restores every old row — only if each row still holds what the update wrote.
async fn undo_update(
    tx: &Transaction<'_>,
    table: &Table,
    data: &Map<String, Value>,
    tolerate: bool,
) -> Result<ActionOutcome, Failure> {
    let old = text_rows(data.get("old_rows"))?;
    let new = text_rows(data.get("new_rows"))?;
    let old_by_key: BTreeMap<String, &TextRow> =
        old.iter().map(|r| (key_label(table, r), r)).collect();
    let current = lock_by_key(tx, table, &new).await?;
    let mut drift = Vec::new();
    for row in &new {
        let label = key_label(table, row);
        match current.get(&label) {
            None => drift.push(format!("row ({label}) was deleted")),
            Some(now) => {
                if let Some(cols) = changed_columns(row, now) {
                    drift.push(format!("row ({label}) changed ({cols})"));
                }
            }
        }
    }
    if !drift.is_empty() {
        let restored = old.iter().all(|row| {
            current
                .get(&key_label(table, row))
                .is_some_and(|now| changed_columns(row, now).is_none())
        });
        if tolerate && restored {
            return Ok(already_undone(table));
        }
        return Err(drifted(drift, "nothing restored"));
    }
    // Only the columns the update changed are written back: identity and generated columns
    // cannot be set, and every other column already holds its old value.
    let mut columns: Vec<&str> = Vec::new();
    for row in &new {
        let Some(before) = old_by_key.get(&key_label(table, row)) else {
            return Err(Failure::new(format!(
                "the rollback data has no old row for ({})",
                key_label(table, row)
            )));
        };
        for column in &table.columns {
            let name = column.name.as_str();
            if !column.generated && before.get(name) != row.get(name) && !columns.contains(&name) {
                columns.push(name);
            }
        }
    }
    if columns.is_empty() {
        return Ok(ActionOutcome::ok(
            json!({"table": table.display(), "undone": "nothing to restore: the update changed no value"}),
            json!({}),
        ));
    }
    let n = table.primary_key.len();
    let set: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} = (r.v->>{})::{}", ident(c), n + i, type_of(table, c)))
        .collect();
    let keys: Vec<String> = table
        .primary_key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("t.{} = (r.v->>{i})::{}", ident(k), type_of(table, k)))
        .collect();
    let values: Vec<Value> = new
        .iter()
        .filter_map(|row| old_by_key.get(&key_label(table, row)))
        .map(|before| {
            let mut v = key_of(table, before)?;
            v.extend(
                columns
                    .iter()
                    .map(|c| before.get(*c).cloned().unwrap_or(Value::Null)),
            );
            Ok(Value::Array(v))
        })
        .collect::<Result<_, Failure>>()?;
    let sql = format!(
        "UPDATE {} AS t SET {} FROM pg_catalog.jsonb_array_elements($1::jsonb) AS r(v) WHERE {}",
        table.sql(),
        set.join(", "),
        keys.join(" AND ")
    );
    let updated = tx
        .execute(&sql, &[&Value::Array(values)])
        .await
        .map_err(|e| db_error("cannot restore the old rows", &e))?;
    Ok(ActionOutcome::ok(
        json!({"table": table.display(), "undone": format!("restored {updated} row(s)")}),
        json!({}),
    ))
}

/// Re-inserts every deleted row with all its values (keys included) — only if no row with
/// any of those keys exists now.
async fn undo_delete(
    tx: &Transaction<'_>,
    table: &Table,
    data: &Map<String, Value>,
    tolerate: bool,
) -> Result<ActionOutcome, Failure> {
    let rows = text_rows(data.get("rows"))?;
    if rows.is_empty() {
        return Ok(ActionOutcome::ok(
            json!({"table": table.display(), "undone": "nothing to re-insert"}),
            json!({}),
        ));
    }
    let current = lock_by_key(tx, table, &rows).await?;
    let taken: Vec<String> = rows
        .iter()
        .map(|r| key_label(table, r))
        .filter(|label| current.contains_key(label))
        .map(|label| format!("a row with {label} exists again"))
        .collect();
    if !taken.is_empty() {
        let back = rows.iter().all(|row| {
            current
                .get(&key_label(table, row))
                .is_some_and(|now| changed_columns(row, now).is_none())
        });
        if tolerate && back {
            return Ok(already_undone(table));
        }
        return Err(drifted(taken, "nothing re-inserted"));
    }
    if let Some(gone) = rows
        .iter()
        .flat_map(|r| r.keys())
        .find(|c| table.column(c).is_none())
    {
        return Err(Failure::new(format!(
            "column `{gone}` of `{}` no longer exists — nothing re-inserted",
            table.display()
        )));
    }
    let columns: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| !c.generated && rows.iter().any(|r| r.contains_key(&c.name)))
        .map(|c| c.name.as_str())
        .collect();
    let names: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let casts: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("(r.v->>{i})::{}", type_of(table, c)))
        .collect();
    // Identity columns `GENERATED ALWAYS` accept the recorded keys only when told to.
    let overriding = if table.columns.iter().any(|c| c.identity_always) {
        "OVERRIDING SYSTEM VALUE "
    } else {
        ""
    };
    let values: Vec<Value> = rows
        .iter()
        .map(|r| {
            Value::Array(
                columns
                    .iter()
                    .map(|c| r.get(*c).cloned().unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} AS t ({}) {overriding}SELECT {} FROM pg_catalog.jsonb_array_elements($1::jsonb) AS r(v)",
        table.sql(),
        names.join(", "),
        casts.join(", ")
    );
    let inserted = tx
        .execute(&sql, &[&Value::Array(values)])
        .await
        .map_err(|e| db_error("cannot re-insert the deleted rows", &e))?;
    Ok(ActionOutcome::ok(
        json!({"table": table.display(), "undone": format!("re-inserted {inserted} row(s)")}),
        json!({}),
    ))
}

/// The outcome of a retried undo whose target is already back in its state from before the run.
fn already_undone(table: &Table) -> ActionOutcome {
    ActionOutcome::ok(
        json!({"table": table.display(), "undone": "already undone: the rows already hold their state from before the run"}),
        json!({}),
    )
}

/// Locks the rows with the keys of `rows` that exist now, by key label.
async fn lock_by_key(
    tx: &Transaction<'_>,
    table: &Table,
    rows: &[TextRow],
) -> Result<BTreeMap<String, TextRow>, Failure> {
    let sql = format!(
        "SELECT {} FROM {} AS t WHERE {} FOR UPDATE OF t",
        select_list(table),
        table.sql(),
        key_match(table, 1)
    );
    let found = tx
        .query(&sql, &[&keys_json(table, rows)?])
        .await
        .map_err(|e| db_error("cannot read the current rows", &e))?;
    found
        .iter()
        .map(|r| read_row(table, r, 0).map(|(_, text)| (key_label(table, &text), text)))
        .collect()
}

/// `None` if `now` holds every recorded value; else the changed columns, named.
fn changed_columns(recorded: &TextRow, now: &TextRow) -> Option<String> {
    let changed: Vec<&str> = recorded
        .iter()
        .filter(|(k, v)| now.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    if changed.is_empty() {
        None
    } else {
        Some(format!("column(s) {}", changed.join(", ")))
    }
}

fn drifted(mut problems: Vec<String>, consequence: &str) -> Failure {
    let more = problems.len().saturating_sub(SHOWN);
    problems.truncate(SHOWN);
    let mut message = format!("{} after the run", problems.join("; "));
    if more > 0 {
        message.push_str(&format!(" (and {more} more)"));
    }
    Failure::new(format!("{message} — {consequence}"))
}

fn type_of<'a>(table: &'a Table, column: &str) -> &'a str {
    super::rows::column_type(table, column)
}

fn text_row(v: Option<&Value>) -> Result<TextRow, Failure> {
    v.and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| Failure::new("the rollback data holds no row"))
}

fn text_rows(v: Option<&Value>) -> Result<Vec<TextRow>, Failure> {
    v.and_then(Value::as_array)
        .ok_or_else(|| Failure::new("the rollback data holds no rows"))?
        .iter()
        .map(|r| text_row(Some(r)))
        .collect()
}
