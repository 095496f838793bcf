//! What the connector knows about a table, read from the catalog on every action: its
//! columns (name, type, identity, generated), its primary key, and the foreign keys that would
//! change other tables when one of its rows is deleted.
//!
//! Every identifier that reaches SQL comes from here — an agent's table or column name is
//! only ever *compared* with catalog names — and is quoted with [`ident`].

use tokio_postgres::GenericClient;

use super::{Failure, db_error};

/// One column of a table.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// `format_type(atttypid, atttypmod)`: a type expression usable in a cast (`numeric(10,2)`,
    /// `timestamp with time zone`, `integer[]`), so text read from the column converts back
    /// to exactly the same value.
    pub ty: String,
    /// `GENERATED ALWAYS AS IDENTITY`: re-inserting its value needs `OVERRIDING SYSTEM VALUE`.
    pub identity_always: bool,
    /// `GENERATED ALWAYS AS (…) STORED`: computed, never written.
    pub generated: bool,
}

/// A table (or any relation with columns, for `select_rows`).
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: String,
    pub name: String,
    oid: u32,
    /// `pg_class.relkind`: `r` table, `p` partitioned table, `v` view, …
    kind: String,
    pub columns: Vec<Column>,
    /// Primary key columns in key order; empty when the table has none.
    pub primary_key: Vec<String>,
}

impl Table {
    /// Resolves a table name as PostgreSQL would (`t` through `search_path`, `schema.t`,
    /// quoted parts allowed) and reads its columns and primary key.
    pub async fn load(db: &impl GenericClient, name: &str) -> Result<Table, Failure> {
        let missing = || Failure::new(format!("table `{name}` does not exist"));
        let row = db
            .query_opt(
                "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text \
                 FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = pg_catalog.to_regclass($1)",
                &[&name],
            )
            .await
            // `to_regclass` raises on names that do not even parse (`a.b.c.d`, `"x`).
            .map_err(|e| match e.as_db_error() {
                Some(db) => {
                    Failure::new(format!("table `{name}` does not exist ({})", db.message()))
                }
                None => db_error("cannot read the catalog", &e),
            })?
            .ok_or_else(missing)?;
        let oid: u32 = row.get(0);
        let schema: String = row.get(1);
        // The system catalogs hold role password hashes and every other table's definition:
        // never an agent's business, whatever the database user may read.
        if matches!(
            schema.as_str(),
            "pg_catalog" | "information_schema" | "pg_toast"
        ) {
            let relname: String = row.get(2);
            return Err(Failure::new(format!(
                "`{schema}.{relname}` is a system catalog — refused"
            )));
        }
        let columns = db
            .query(
                "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                        a.attidentity = 'a', a.attgenerated <> '' \
                 FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&oid],
            )
            .await
            .map_err(|e| db_error("cannot read the columns", &e))?
            .into_iter()
            .map(|r| Column {
                name: r.get(0),
                ty: r.get(1),
                identity_always: r.get(2),
                generated: r.get(3),
            })
            .collect();
        let primary_key = db
            .query(
                "SELECT a.attname::text \
                 FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_attribute a \
                   ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = $1 AND i.indisprimary \
                 ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)",
                &[&oid],
            )
            .await
            .map_err(|e| db_error("cannot read the primary key", &e))?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        Ok(Table {
            schema,
            name: row.get(2),
            oid,
            kind: row.get(3),
            columns,
            primary_key,
        })
    }

    /// `schema.table`, for messages and receipts.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// `"schema"."table"`, for SQL (and for `to_regclass` when the undo looks it up again).
    pub fn sql(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Every key must name a column: an unknown `where` key that were ignored would widen the
    /// match to every row, an unknown `data` key would drop a value silently.
    pub fn check_columns<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), Failure> {
        for key in keys {
            if self.column(key).is_none() {
                let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
                return Err(Failure::new(format!(
                    "column `{key}` does not exist in table `{}` (columns: {})",
                    self.display(),
                    names.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Mutating actions need an ordinary table with a primary key: rows are captured and
    /// restored by key, and a table without one has no exact undo.
    pub fn check_writable(&self) -> Result<(), Failure> {
        if self.kind != "r" && self.kind != "p" {
            return Err(Failure::new(format!(
                "`{}` is not a table — only tables can be changed",
                self.display()
            )));
        }
        if self.primary_key.is_empty() {
            return Err(Failure::new(format!(
                "table `{}` has no primary key — changes to it are refused because they could not be undone exactly",
                self.display()
            )));
        }
        Ok(())
    }

    /// Refuses a delete from a table that other tables reference with `ON DELETE CASCADE`,
    /// `SET NULL` or `SET DEFAULT`: the delete would change rows the receipt does not hold.
    pub async fn check_no_cascading_references(
        &self,
        db: &impl GenericClient,
    ) -> Result<(), Failure> {
        let row = db
            .query_opt(
                "SELECT con.conrelid::regclass::text, con.conname::text, con.confdeltype::text \
                 FROM pg_catalog.pg_constraint con \
                 WHERE con.contype = 'f' AND con.confrelid = $1 \
                   AND con.confdeltype IN ('c', 'n', 'd') \
                 ORDER BY 1, 2 LIMIT 1",
                &[&self.oid],
            )
            .await
            .map_err(|e| db_error("cannot read the foreign keys", &e))?;
        let Some(row) = row else { return Ok(()) };
        let (other, constraint, rule): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let rule = match rule.as_str() {
            "c" => "ON DELETE CASCADE",
            "n" => "ON DELETE SET NULL",
            _ => "ON DELETE SET DEFAULT",
        };
        Err(Failure::new(format!(
            "table `{other}` references `{}` with {rule} (constraint `{constraint}`) — deleting rows here would also change rows there, which rollback could not restore; refused",
            self.display()
        )))
    }
}

/// Quotes an identifier for SQL: `"name"`, inner quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::ident;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("users"), "\"users\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(ident("Mixed Case"), "\"Mixed Case\"");
    }
}
