//! How rows travel, and the SQL fragments that read and match them.
//!
//! A row has two forms:
//! - **JSON** (action outputs): `to_jsonb(t.*)` as PostgreSQL writes it, where every number
//!   whose text a double cannot hold exactly (`numeric` 12345678901234567890.123, `bigint`
//!   9007199254740993, anywhere in the row, inside `jsonb` too) becomes a string — serde_json
//!   here has no arbitrary precision, so the text is scanned before it is parsed.
//! - **Text** (rollback data): column → PostgreSQL's own text form of the value (`t.c::text`)
//!   or `null`. Casting that text back to the column's type gives exactly the same value —
//!   numeric scale, timestamptz microseconds, jsonb, arrays — so undo restores and compares
//!   rows exactly. Session settings that shape text output are pinned on connect.
//!
//! Values from an agent are never spliced into SQL: a `data` or `where` object is bound as
//! one `jsonb` parameter and converted by PostgreSQL with the table's own column types
//! (`jsonb_populate_record(NULL::table, $n)`); recorded keys and rows are bound as `jsonb`
//! arrays of text and cast with the catalog's type names.

use serde_json::{Map, Value};
use tokio_postgres::Row;

use super::Failure;
use super::catalog::{Table, ident};
use crate::kernel::schema::quote_inexact_numbers;

/// A row in text form: column → text (or null).
pub type TextRow = Map<String, Value>;

/// The select list giving both forms of alias `t`'s row: `(json text, text[])`.
pub fn select_list(table: &Table) -> String {
    let texts: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("t.{}::text", ident(&c.name)))
        .collect();
    format!(
        "pg_catalog.to_jsonb(t.*)::text, ARRAY[{}]::text[]",
        texts.join(", ")
    )
}

/// Reads a row selected with [`select_list`] at `offset`.
pub fn read_row(table: &Table, row: &Row, offset: usize) -> Result<(Value, TextRow), Failure> {
    let json: String = row
        .try_get(offset)
        .map_err(|e| Failure::new(format!("cannot read a row: {e}")))?;
    let texts: Vec<Option<String>> = row
        .try_get(offset + 1)
        .map_err(|e| Failure::new(format!("cannot read a row: {e}")))?;
    let mut text = Map::new();
    for (column, value) in table.columns.iter().zip(texts) {
        text.insert(
            column.name.clone(),
            value.map(Value::String).unwrap_or(Value::Null),
        );
    }
    Ok((json_value(&json)?, text))
}

/// Parses JSON from PostgreSQL, turning every inexact number into a string of its text.
pub fn json_value(text: &str) -> Result<Value, Failure> {
    serde_json::from_str(&quote_inexact_numbers(text))
        .map_err(|e| Failure::new(format!("cannot read a row from PostgreSQL's JSON: {e}")))
}

/// `t."a" = w."a" AND t."b" IS NULL …` for a `where` object bound as record `w`
/// (`null` means `IS NULL`). Columns must have been checked against the catalog.
pub fn where_sql(filter: &Map<String, Value>) -> String {
    if filter.is_empty() {
        return "TRUE".into();
    }
    filter
        .iter()
        .map(|(k, v)| match v {
            Value::Null => format!("t.{} IS NULL", ident(k)),
            _ => format!("t.{0} = w.{0}", ident(k)),
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `jsonb_populate_record(NULL::"s"."t", $n::jsonb)`: a JSON object as a row of the table,
/// each value converted with its column's type.
pub fn record_of(table: &Table, param: usize) -> String {
    format!(
        "pg_catalog.jsonb_populate_record(NULL::{}, ${param}::jsonb)",
        table.sql()
    )
}

/// Matches alias `t` against a bound jsonb array of primary keys in text form
/// (`[["1"], ["2"]]`), each part cast back with its column's type.
pub fn key_match(table: &Table, param: usize) -> String {
    let cols: Vec<String> = table
        .primary_key
        .iter()
        .map(|k| format!("t.{}", ident(k)))
        .collect();
    let casts: Vec<String> = table
        .primary_key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("(k.v->>{i})::{}", column_type(table, k)))
        .collect();
    format!(
        "({}) IN (SELECT {} FROM pg_catalog.jsonb_array_elements(${param}::jsonb) AS k(v))",
        cols.join(", "),
        casts.join(", ")
    )
}

/// The type expression of a column (the catalog's; columns are checked before this is used).
pub fn column_type<'a>(table: &'a Table, name: &str) -> &'a str {
    table.column(name).map(|c| c.ty.as_str()).unwrap_or("text")
}

/// A row's primary key in text form, as bound for [`key_match`].
pub fn key_of(table: &Table, row: &TextRow) -> Result<Vec<Value>, Failure> {
    table
        .primary_key
        .iter()
        .map(|k| match row.get(k) {
            Some(v @ Value::String(_)) => Ok(v.clone()),
            _ => Err(Failure::new(format!(
                "the recorded row has no value for primary key column `{k}`"
            ))),
        })
        .collect()
}

/// The primary keys of rows, as bound for [`key_match`].
pub fn keys_json(table: &Table, rows: &[TextRow]) -> Result<Value, Failure> {
    rows.iter()
        .map(|r| key_of(table, r).map(Value::Array))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// `id=5` or `a=1, b=x`: how a row is named in messages.
pub fn key_label(table: &Table, row: &TextRow) -> String {
    table
        .primary_key
        .iter()
        .map(|k| {
            let v = match row.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "?".into(),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inexact_numbers_become_strings_everywhere() {
        let v = json_value(
            r#"{"a": 12345678901234567890.123, "b": 9007199254740993, "c": 1.5, "d": -2,
                "e": {"n": [9007199254740993, 0.1, 1e400]}, "s": "9007199254740993 \"x\" 1"}"#,
        );
        assert_eq!(
            v.ok(),
            Some(json!({
                "a": "12345678901234567890.123", "b": "9007199254740993", "c": 1.5, "d": -2,
                "e": {"n": ["9007199254740993", 0.1, "1e400"]}, "s": "9007199254740993 \"x\" 1"
            }))
        );
    }

    #[test]
    fn exact_numbers_stay_numbers() {
        let v = json_value(r#"[0, -0.5, 9007199254740992, 1.0, 2.50, 1e3]"#);
        assert_eq!(
            v.ok(),
            Some(json!([0, -0.5, 9007199254740992u64, 1.0, 2.5, 1000.0]))
        );
    }
}
