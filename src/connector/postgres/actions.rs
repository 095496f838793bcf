//! The four actions. Each mutating one is a single transaction: resolve the table, lock the
//! affected rows (`SELECT … FOR UPDATE`, all columns), check them against `max_rows`, change
//! exactly those rows (by primary key, so a row inserted meanwhile is never touched), and
//! capture what was written (`RETURNING`) for the receipt.

use serde_json::{Map, Value, json};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Transaction};

use super::catalog::{Table, ident};
use super::rows::{TextRow, key_match, keys_json, read_row, record_of, select_list, where_sql};
use super::{Failure, db_error};
use crate::connector::{ActionOutcome, StepLog};

/// `select_rows {table, where, limit}` → `{rows}`; works on any relation, ordered by the
/// primary key when there is one.
pub async fn select_rows(
    db: &Client,
    table: &str,
    filter: &Map<String, Value>,
    limit: i64,
) -> Result<ActionOutcome, Failure> {
    let table = Table::load(db, table).await?;
    table.check_columns(filter.keys())?;
    let order = order_by(&table);
    let sql = format!(
        "SELECT {} FROM {} AS t, {} AS w WHERE {} {order} LIMIT $2",
        select_list(&table),
        table.sql(),
        record_of(&table, 1),
        where_sql(filter)
    );
    let rows = db
        .query(&sql, &[&Value::Object(filter.clone()), &limit])
        .await
        .map_err(|e| db_error("cannot select", &e))?;
    let rows = rows
        .iter()
        .map(|r| read_row(&table, r, 0).map(|(json, _)| json))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ActionOutcome::ok(json!({"rows": rows}), json!({})))
}

/// `insert_row {table, data}` → `{row}`; rollback data: the key columns and the row written.
pub async fn insert_row(
    db: &mut Client,
    table: &str,
    data: &Map<String, Value>,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, Failure> {
    let tx = begin(db).await?;
    let table = Table::load(&tx, table).await?;
    table.check_writable()?;
    table.check_columns(data.keys())?;
    let sql = if data.is_empty() {
        format!(
            "INSERT INTO {} AS t DEFAULT VALUES RETURNING {}",
            table.sql(),
            select_list(&table)
        )
    } else {
        let cols: Vec<String> = data.keys().map(|k| ident(k)).collect();
        let values: Vec<String> = cols.iter().map(|c| format!("w.{c}")).collect();
        format!(
            "INSERT INTO {} AS t ({}) SELECT {} FROM {} AS w RETURNING {}",
            table.sql(),
            cols.join(", "),
            values.join(", "),
            record_of(&table, 1),
            select_list(&table)
        )
    };
    let data_value = Value::Object(data.clone());
    let params: Vec<&(dyn ToSql + Sync)> = if data.is_empty() {
        vec![]
    } else {
        vec![&data_value]
    };
    let row = tx
        .query_one(&sql, &params)
        .await
        .map_err(|e| db_error("cannot insert", &e))?;
    let (json, text) = read_row(&table, &row, 0)?;
    let undo_data = json!({"schema": table.schema, "table": table.name, "primary_key": table.primary_key, "row": text});
    if let Some(refused) = log_then_commit(tx, &undo_data, log).await? {
        return Ok(refused);
    }
    Ok(ActionOutcome::ok(
        json!({"row": json, "already_done": false}),
        undo_data,
    ))
}

/// `update_row {table, data, where}` → `{rows_updated}`; rollback data: every old row and
/// every new row (paired by primary key, which the update may not change).
pub async fn update_row(
    db: &mut Client,
    table: &str,
    data: &Map<String, Value>,
    filter: &Map<String, Value>,
    max_rows: u64,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, Failure> {
    if filter.is_empty() {
        return Err(Failure::new(
            "an empty `where` would update every row — refused",
        ));
    }
    if data.is_empty() {
        return Err(Failure::new("`data` is empty: there is nothing to update"));
    }
    let tx = begin(db).await?;
    let table = Table::load(&tx, table).await?;
    table.check_writable()?;
    table.check_columns(data.keys().chain(filter.keys()))?;
    if let Some(k) = data.keys().find(|k| table.primary_key.contains(k)) {
        return Err(Failure::new(format!(
            "`data` sets primary key column `{k}` of `{}` — changing a key is refused (rows are restored by key)",
            table.display()
        )));
    }
    let old = lock_rows(&tx, &table, filter, max_rows, "update").await?;
    let keys = keys_json(&table, &old)?;
    let set: Vec<String> = data
        .keys()
        .map(|k| format!("{0} = d.{0}", ident(k)))
        .collect();
    let sql = format!(
        "UPDATE {} AS t SET {} FROM {} AS d WHERE {} RETURNING {}",
        table.sql(),
        set.join(", "),
        record_of(&table, 1),
        key_match(&table, 2),
        select_list(&table)
    );
    let rows = tx
        .query(&sql, &[&Value::Object(data.clone()), &keys])
        .await
        .map_err(|e| db_error("cannot update", &e))?;
    let new = rows
        .iter()
        .map(|r| read_row(&table, r, 0).map(|(_, text)| text))
        .collect::<Result<Vec<_>, _>>()?;
    let count = new.len();
    let undo_data = json!({
        "schema": table.schema,
        "table": table.name,
        "primary_key": table.primary_key,
        "old_rows": old,
        "new_rows": new,
    });
    if let Some(refused) = log_then_commit(tx, &undo_data, log).await? {
        return Ok(refused);
    }
    Ok(ActionOutcome::ok(
        json!({"rows_updated": count, "already_done": false}),
        undo_data,
    ))
}

/// `delete_row {table, where}` → `{rows_deleted}`; rollback data: every deleted row. Nothing
/// matching is the idempotent case: `already_done: "deleted"`, nothing to undo.
pub async fn delete_row(
    db: &mut Client,
    table: &str,
    filter: &Map<String, Value>,
    max_rows: u64,
    log: &mut dyn StepLog,
) -> Result<ActionOutcome, Failure> {
    if filter.is_empty() {
        return Err(Failure::new(
            "an empty `where` would delete every row — refused",
        ));
    }
    let tx = begin(db).await?;
    let table = Table::load(&tx, table).await?;
    table.check_writable()?;
    table.check_columns(filter.keys())?;
    table.check_no_cascading_references(&tx).await?;
    let old = lock_rows(&tx, &table, filter, max_rows, "delete").await?;
    if old.is_empty() {
        let mut output = Map::new();
        output.insert("rows_deleted".into(), json!(0));
        let mut pre = output.clone();
        pre.insert("already_done".into(), json!("deleted"));
        if let Err(e) = log.before(Value::Object(pre)) {
            rollback(tx).await;
            return Ok(ActionOutcome::failed(e));
        }
        commit(tx).await?;
        return Ok(ActionOutcome::already_done(output, "deleted"));
    }
    let sql = format!(
        "DELETE FROM {} AS t WHERE {} RETURNING {}",
        table.sql(),
        key_match(&table, 1),
        select_list(&table)
    );
    let rows = tx
        .query(&sql, &[&keys_json(&table, &old)?])
        .await
        .map_err(|e| db_error("cannot delete", &e))?;
    let deleted = rows
        .iter()
        .map(|r| read_row(&table, r, 0).map(|(_, text)| text))
        .collect::<Result<Vec<_>, _>>()?;
    let count = deleted.len();
    let undo_data = json!({"schema": table.schema, "table": table.name, "primary_key": table.primary_key, "rows": deleted});
    if let Some(refused) = log_then_commit(tx, &undo_data, log).await? {
        return Ok(refused);
    }
    Ok(ActionOutcome::ok(
        json!({"rows_deleted": count, "already_done": false}),
        undo_data,
    ))
}

/// Locks the rows a `where` matches (at most `max_rows` + 1 are read); more than `max_rows`
/// → refused, and the caller's transaction rolls back unchanged.
async fn lock_rows(
    tx: &Transaction<'_>,
    table: &Table,
    filter: &Map<String, Value>,
    max_rows: u64,
    verb: &str,
) -> Result<Vec<TextRow>, Failure> {
    let sql = format!(
        "SELECT {} FROM {} AS t, {} AS w WHERE {} {} LIMIT $2 FOR UPDATE OF t",
        select_list(table),
        table.sql(),
        record_of(table, 1),
        where_sql(filter),
        order_by(table)
    );
    let probe = i64::try_from(max_rows.saturating_add(1)).unwrap_or(i64::MAX);
    let filter_value = Value::Object(filter.clone());
    let rows = tx
        .query(&sql, &[&filter_value, &probe])
        .await
        .map_err(|e| db_error("cannot select the rows to change", &e))?;
    if rows.len() as u64 > max_rows {
        let count_sql = format!(
            "SELECT count(*) FROM {} AS t, {} AS w WHERE {}",
            table.sql(),
            record_of(table, 1),
            where_sql(filter)
        );
        let count: i64 = tx
            .query_one(&count_sql, &[&filter_value])
            .await
            .map(|r| r.get(0))
            .map_err(|e| db_error("cannot count the matching rows", &e))?;
        return Err(Failure::new(format!(
            "{count} rows match, more than max_rows ({max_rows}) — refused, nothing was {verb}d"
        )));
    }
    rows.iter()
        .map(|r| read_row(table, r, 0).map(|(_, text)| text))
        .collect()
}

fn order_by(table: &Table) -> String {
    if table.primary_key.is_empty() {
        return String::new();
    }
    let cols: Vec<String> = table
        .primary_key
        .iter()
        .map(|k| format!("t.{}", ident(k)))
        .collect();
    format!("ORDER BY {}", cols.join(", "))
}

/// The end of a mutating action whose change is made but not committed: writes the step
/// record (the rollback data plus the transaction's id, `txid`, by which recovery asks
/// `pg_xact_status`) and only then commits. When the record cannot be written, the transaction
/// is rolled back and the failed outcome carrying the log's message is returned as `Some`.
async fn log_then_commit(
    tx: Transaction<'_>,
    rollback_data: &Value,
    log: &mut dyn StepLog,
) -> Result<Option<ActionOutcome>, Failure> {
    let txid: String = tx
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .map(|r| r.get(0))
        .map_err(|e| db_error("cannot read the transaction id", &e))?;
    let mut pre = rollback_data.as_object().cloned().unwrap_or_default();
    pre.insert("txid".into(), json!(txid));
    if let Err(e) = log.before(Value::Object(pre)) {
        rollback(tx).await;
        return Ok(Some(ActionOutcome::failed(e)));
    }
    commit(tx).await?;
    Ok(None)
}

/// Rolls back explicitly (dropping the transaction would too, but later). A failure leaves
/// the transaction uncommitted all the same; the connection is then checked on next use.
async fn rollback(tx: Transaction<'_>) {
    if let Err(e) = tx.rollback().await {
        tracing::warn!(error = %e, "rollback after a refused step record failed");
    }
}

pub(super) async fn begin(db: &mut Client) -> Result<Transaction<'_>, Failure> {
    db.transaction()
        .await
        .map_err(|e| db_error("cannot begin a transaction", &e))
}

pub(super) async fn commit(tx: Transaction<'_>) -> Result<(), Failure> {
    tx.commit().await.map_err(|e| db_error("cannot commit", &e))
}
