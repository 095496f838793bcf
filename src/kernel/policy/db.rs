//! Postgres policies (SPEC §4): `no_delete_row`, `no_delete_without_where`,
//! `no_update_without_where`, `protect_tables`, `contractor_cannot_write_pii`.
//!
//! Table and column names compare case-insensitively, `"quoted"` parts included: Postgres
//! would tell `"Users"` from `users`, but a protection list should not be sidestepped by
//! quoting or capitalising a name, so both count as the listed one.

use super::Outcome;
use super::plan_view::{join_unique, plain_list, postgres, quoted_list, unique};
use crate::kernel::action::ActionName;
use crate::kernel::context::Context;
use crate::kernel::typed::PostgresAction;

const ALL_ACTIONS: &[ActionName] = &[
    ActionName::SelectRows,
    ActionName::InsertRow,
    ActionName::UpdateRow,
    ActionName::DeleteRow,
];

/// Blocks any planned `delete_row`.
pub fn no_delete_row(ctx: &Context<'_>) -> Result<Outcome, String> {
    let tables: Vec<&str> = postgres(ctx.plan, &[ActionName::DeleteRow])
        .map(|(_, a)| a.table().as_str())
        .collect();
    if tables.is_empty() {
        return Ok(Outcome::pass(format!(
            "No {} in this plan",
            ActionName::DeleteRow
        )));
    }
    Ok(Outcome::block(join_unique(
        tables
            .iter()
            .map(|t| format!("Deleting rows from '{t}' is blocked")),
    )))
}

/// Blocks a `delete_row` whose `where` is missing or empty (it would delete every row).
pub fn no_delete_without_where(ctx: &Context<'_>) -> Result<Outcome, String> {
    require_where(ctx, ActionName::DeleteRow, "delete")
}

/// Blocks an `update_row` whose `where` is missing or empty (it would update every row).
pub fn no_update_without_where(ctx: &Context<'_>) -> Result<Outcome, String> {
    require_where(ctx, ActionName::UpdateRow, "update")
}

fn require_where(ctx: &Context<'_>, action: ActionName, verb: &str) -> Result<Outcome, String> {
    let mut tables = Vec::new();
    let mut unbounded = Vec::new();
    let actions = [action];
    for (_, a) in postgres(ctx.plan, &actions) {
        let table = a.table().as_str();
        let filter = match a {
            PostgresAction::UpdateRow { filter, .. }
            | PostgresAction::DeleteRow { filter, .. }
            | PostgresAction::SelectRows { filter, .. } => Some(filter),
            PostgresAction::InsertRow { .. } => None,
        };
        if filter.is_none_or(|w| w.is_empty()) {
            unbounded.push(format!(
                "{action} on '{table}' has no WHERE condition (it would {verb} every row)"
            ));
        }
        tables.push(table);
    }
    if !unbounded.is_empty() {
        return Ok(Outcome::block(join_unique(unbounded.into_iter())));
    }
    Ok(Outcome::pass(match tables.as_slice() {
        [] => format!("No {action} in this plan"),
        [table] => format!("{action} on '{table}' has a WHERE condition"),
        _ => format!("Every {action} has a WHERE condition"),
    }))
}

/// Blocks any Postgres action (reads included) on a listed table.
pub fn protect_tables(tables: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let listed: Vec<TableName> = tables.iter().filter_map(|t| TableName::parse(t)).collect();
    let mut planned = Vec::new();
    let mut hits = Vec::new();
    for (p, a) in postgres(ctx.plan, ALL_ACTIONS) {
        let raw = a.table().as_str();
        let name = TableName::parse(raw)
            .ok_or_else(|| format!("{}: table name '{raw}' is malformed", p.label()))?;
        if listed.iter().any(|l| name.matches(l)) {
            hits.push(format!("Table '{raw}' is protected"));
        }
        planned.push(raw);
    }
    if !hits.is_empty() {
        return Ok(Outcome::block(join_unique(hits.into_iter())));
    }
    let planned = unique(planned);
    Ok(Outcome::pass(match planned.as_slice() {
        [] => "No Postgres tables in this plan".to_string(),
        [one] => format!("Table '{one}' is not protected ({})", plain_list(tables)),
        _ => format!(
            "Tables {} are not protected ({})",
            quoted_list(&planned),
            plain_list(tables)
        ),
    }))
}

/// Blocks a contractor's `insert_row` / `update_row` that writes a listed column, or a
/// `create_contact` / `update_contact` that writes a listed property.
pub fn contractor_cannot_write_pii(
    fields: &[String],
    ctx: &Context<'_>,
) -> Result<Outcome, String> {
    let role = ctx.actor.role.as_str();
    // The role comes from the operator's config, never the agent; matching it loosely
    // (`Contractor`, ` contractor `) can only apply the restriction more often.
    if role.trim().to_lowercase() != "contractor" {
        return Ok(Outcome::pass(format!(
            "Actor role '{role}' is not contractor"
        )));
    }
    let pii: Vec<String> = fields.iter().map(|f| column_key(f)).collect();
    let mut tables = Vec::new();
    let mut hits = Vec::new();
    for (_, a) in postgres(ctx.plan, &[ActionName::InsertRow, ActionName::UpdateRow]) {
        let (PostgresAction::InsertRow { table, data }
        | PostgresAction::UpdateRow { table, data, .. }) = a
        else {
            continue;
        };
        let table = table.as_str();
        for column in data.keys() {
            if pii.contains(&column_key(column)) {
                hits.push(format!(
                    "Contractor cannot write PII column '{column}' in '{table}'"
                ));
            }
        }
        tables.push(table);
    }
    let (contact_hits, contacts) = super::crm::pii_properties(fields, ctx);
    hits.extend(contact_hits);
    if !hits.is_empty() {
        return Ok(Outcome::block(join_unique(hits.into_iter())));
    }
    let mut passes = Vec::new();
    if !tables.is_empty() {
        passes.push(format!(
            "Writes to {} touch no PII column ({})",
            quoted_list(&tables),
            plain_list(fields)
        ));
    }
    if !contacts.is_empty() {
        passes.push(format!(
            "Writes to contact {} touch no PII property ({})",
            unique(contacts.iter().map(String::as_str)).join(", "),
            plain_list(fields)
        ));
    }
    if passes.is_empty() {
        return Ok(Outcome::pass("No insert_row or update_row in this plan"));
    }
    Ok(Outcome::pass(passes.join("; ")))
}

/// A column name as compared: trimmed, unquoted, lowercased.
fn column_key(column: &str) -> String {
    let c = column.trim();
    let c = c
        .strip_prefix('"')
        .and_then(|c| c.strip_suffix('"'))
        .unwrap_or(c);
    c.to_lowercase()
}

/// A table name split into its parts, each unquoted and lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TableName {
    schema: Option<String>,
    table: String,
}

impl TableName {
    /// `table`, `schema.table` or `catalog.schema.table`, parts optionally `"quoted"` (with
    /// `""` for a quote inside). `None` when malformed: an empty part, a stray quote, more
    /// than three parts.
    pub fn parse(s: &str) -> Option<TableName> {
        let mut parts = Vec::new();
        let mut rest = s;
        loop {
            let (part, after) = Self::part(rest)?;
            parts.push(part);
            match after.strip_prefix('.') {
                Some(next) => rest = next,
                None if after.is_empty() => break,
                None => return None,
            }
        }
        let table = parts.pop()?;
        let schema = parts.pop();
        (parts.len() <= 1).then_some(TableName { schema, table })
    }

    /// One part and what follows it (from the `.` on).
    fn part(s: &str) -> Option<(String, &str)> {
        let trimmed = s.trim_start();
        if let Some(quoted) = trimmed.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                if c != '"' {
                    out.push(c);
                } else if quoted[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                } else {
                    let after = quoted[i + 1..].trim_start();
                    return (!out.is_empty()).then(|| (out.to_lowercase(), after));
                }
            }
            return None;
        }
        let end = trimmed.find('.').unwrap_or(trimmed.len());
        let (part, after) = trimmed.split_at(end);
        let part = part.trim();
        (!part.is_empty() && !part.contains('"')).then(|| (part.to_lowercase(), after))
    }

    /// Whether a planned table is a listed one: same table and, when both name a schema, the
    /// same schema. An unqualified planned name matches a listed `schema.table` too: it
    /// resolves through the search path, so it may well be that table.
    pub fn matches(&self, listed: &TableName) -> bool {
        self.table == listed.table
            && match (&self.schema, &listed.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::context::{Actor, Facts};
    use crate::kernel::plan::Step;
    use chrono::{TimeZone, Utc};
    use serde_json::{Map, Value, json};

    fn pg(action: &str, args: Value) -> Step {
        let Value::Object(args) = args else {
            panic!("args must be an object")
        };
        crate::kernel::plan::test_steps::sample_step(
            "db",
            crate::kernel::action::SystemKind::Postgres,
            action,
            &args,
        )
        .unwrap()
    }

    fn run_as(
        role: &str,
        plan: &[Step],
        f: impl Fn(&Context<'_>) -> Result<Outcome, String>,
    ) -> Result<Outcome, String> {
        let actor = Actor {
            email: "a@b.c".into(),
            role: role.into(),
        };
        let payload = Map::new();
        let facts = Facts::default();
        let now = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).single().unwrap();
        f(&Context {
            workflow: "w",
            actor: &actor,
            payload: &payload,
            plan,
            now,
            facts: &facts,
        })
    }

    fn run(
        plan: &[Step],
        f: impl Fn(&Context<'_>) -> Result<Outcome, String>,
    ) -> Result<Outcome, String> {
        run_as("engineer", plan, f)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_delete_row_blocks_any_delete() {
        let plan = vec![
            pg("select_rows", json!({"table": "users"})),
            pg("delete_row", json!({"table": "users", "where": {"id": 1}})),
        ];
        assert_eq!(
            run(&plan, no_delete_row),
            Ok(Outcome::block("Deleting rows from 'users' is blocked"))
        );
        assert_eq!(
            run(&plan[..1], no_delete_row),
            Ok(Outcome::pass("No delete_row in this plan"))
        );
    }

    #[test]
    fn delete_and_update_need_a_where() {
        let del = |w: Option<Value>| {
            let mut args = json!({"table": "users"});
            if let (Some(w), Value::Object(m)) = (w, &mut args) {
                m.insert("where".into(), w);
            }
            run(&[pg("delete_row", args)], no_delete_without_where)
        };
        let none = "delete_row on 'users' has no WHERE condition (it would delete every row)";
        assert_eq!(del(None), Ok(Outcome::block(none)));
        assert_eq!(del(Some(json!({}))), Ok(Outcome::block(none)));
        assert_eq!(
            del(Some(json!({"id": 3}))),
            Ok(Outcome::pass("delete_row on 'users' has a WHERE condition"))
        );
        assert_eq!(
            del(Some(json!({"deleted_at": null}))),
            Ok(Outcome::pass("delete_row on 'users' has a WHERE condition"))
        );
        assert_eq!(
            run(&[], no_delete_without_where),
            Ok(Outcome::pass("No delete_row in this plan"))
        );

        let upd = |w: Value| {
            run(
                &[pg(
                    "update_row",
                    json!({"table": "t", "data": {"a": 1}, "where": w}),
                )],
                no_update_without_where,
            )
        };
        assert_eq!(
            upd(json!({})),
            Ok(Outcome::block(
                "update_row on 't' has no WHERE condition (it would update every row)"
            ))
        );
        assert_eq!(
            upd(json!({"id": 1})),
            Ok(Outcome::pass("update_row on 't' has a WHERE condition"))
        );
        let two = vec![
            pg(
                "update_row",
                json!({"table": "t", "data": {}, "where": {"id": 1}}),
            ),
            pg(
                "update_row",
                json!({"table": "u", "data": {}, "where": {"id": 2}}),
            ),
        ];
        assert_eq!(
            run(&two, no_update_without_where),
            Ok(Outcome::pass("Every update_row has a WHERE condition"))
        );
        // A delete with no where does not concern the update policy.
        assert_eq!(
            run(
                &[pg("delete_row", json!({"table": "t"}))],
                no_update_without_where
            ),
            Ok(Outcome::pass("No update_row in this plan"))
        );
    }

    #[test]
    fn table_names_parse() {
        let t = |schema: Option<&str>, table: &str| {
            Some(TableName {
                schema: schema.map(str::to_string),
                table: table.into(),
            })
        };
        assert_eq!(TableName::parse("Users"), t(None, "users"));
        assert_eq!(TableName::parse("public.users"), t(Some("public"), "users"));
        assert_eq!(
            TableName::parse("\"Public\".\"Users\""),
            t(Some("public"), "users")
        );
        assert_eq!(TableName::parse("\"a.b\""), t(None, "a.b"));
        assert_eq!(
            TableName::parse("\"say \"\"hi\"\"\""),
            t(None, "say \"hi\"")
        );
        assert_eq!(
            TableName::parse("db.public.users"),
            t(Some("public"), "users")
        );
        assert_eq!(
            TableName::parse(" public . users "),
            t(Some("public"), "users")
        );
        for bad in [
            "", ".", "a.", ".a", "a..b", "\"a", "a\"b", "\"a\"b", "\"\"", "a.b.c.d",
        ] {
            assert_eq!(TableName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn protect_tables_matches_case_insensitively_and_by_schema() {
        let check = |listed: &[&str], table: &str| {
            let plan = vec![pg("select_rows", json!({"table": table}))];
            run(&plan, |c| protect_tables(&strings(listed), c))
        };
        for (listed, table) in [
            (&["users"][..], "users"),
            (&["users"], "USERS"),
            (&["users"], "public.users"),
            (&["users"], "\"Users\""),
            (&["Users"], "audit.\"users\""),
            (&["public.users"], "public.users"),
            (&["public.users"], "PUBLIC.Users"),
            (&["public.users"], "users"),
        ] {
            assert_eq!(
                check(listed, table),
                Ok(Outcome::block(format!("Table '{table}' is protected"))),
                "{listed:?} {table}"
            );
        }
        assert_eq!(
            check(&["public.users"], "audit.users"),
            Ok(Outcome::pass(
                "Table 'audit.users' is not protected (public.users)"
            ))
        );
        assert_eq!(
            check(&["users"], "users_archive"),
            Ok(Outcome::pass(
                "Table 'users_archive' is not protected (users)"
            ))
        );
        assert_eq!(
            check(&[], "users"),
            Ok(Outcome::pass("Table 'users' is not protected ((none))"))
        );
        assert_eq!(
            run(&[], |c| protect_tables(&strings(&["users"]), c)),
            Ok(Outcome::pass("No Postgres tables in this plan"))
        );
        assert_eq!(
            check(&["users"], "\"users"),
            Err("step 1 (db.select_rows): table name '\"users' is malformed".into())
        );
        // Every Postgres action counts, and every planned table is named once.
        let plan = vec![
            pg("insert_row", json!({"table": "orders", "data": {}})),
            pg("delete_row", json!({"table": "users", "where": {"id": 1}})),
            pg(
                "update_row",
                json!({"table": "users", "data": {}, "where": {"id": 1}}),
            ),
        ];
        assert_eq!(
            run(&plan, |c| protect_tables(&strings(&["users"]), c)),
            Ok(Outcome::block("Table 'users' is protected"))
        );
        assert_eq!(
            run(&plan, |c| protect_tables(&strings(&["secrets"]), c)),
            Ok(Outcome::pass(
                "Tables 'orders', 'users' are not protected (secrets)"
            ))
        );
    }

    #[test]
    fn contractors_cannot_write_pii_columns() {
        let fields = strings(&["email", "SSN"]);
        let plan = vec![
            pg(
                "insert_row",
                json!({"table": "users", "data": {"name": "x", "Email": "e@x"}}),
            ),
            pg(
                "update_row",
                json!({"table": "people", "data": {"\"ssn\"": "1"}, "where": {"email": "e@x"}}),
            ),
        ];
        let judge = |role: &str, plan: &[Step]| {
            run_as(role, plan, |c| contractor_cannot_write_pii(&fields, c))
        };
        assert_eq!(
            judge("contractor", &plan),
            Ok(Outcome::block(
                "Contractor cannot write PII column 'Email' in 'users'; Contractor cannot write PII column '\"ssn\"' in 'people'"
            ))
        );
        assert_eq!(
            judge(" Contractor ", &plan[..1]),
            Ok(Outcome::block(
                "Contractor cannot write PII column 'Email' in 'users'"
            ))
        );
        assert_eq!(
            judge("engineer", &plan),
            Ok(Outcome::pass("Actor role 'engineer' is not contractor"))
        );
        // Reading PII, or filtering by it, is not writing it.
        let harmless = vec![
            pg(
                "select_rows",
                json!({"table": "users", "where": {"email": "e@x"}}),
            ),
            pg(
                "update_row",
                json!({"table": "users", "data": {"name": "y"}, "where": {"email": "e@x"}}),
            ),
        ];
        assert_eq!(
            judge("contractor", &harmless),
            Ok(Outcome::pass(
                "Writes to 'users' touch no PII column (email, SSN)"
            ))
        );
        assert_eq!(
            judge("contractor", &harmless[..1]),
            Ok(Outcome::pass("No insert_row or update_row in this plan"))
        );
    }
}
