//! Integration tests: the Postgres connector against a real server, through the library
//! Engine (SPEC §6, §7 postgres, §8 `db_safe_insert`).
//!
//! One throwaway cluster serves the whole test binary ([`test_dsn`]), or the server named by
//! `ENACT_TEST_DATABASE_URL`. Each test works in its own uniquely named schema, so tests run
//! in parallel. The cluster is stopped by its guardian when the test process exits (a
//! static is never dropped; see `enact::sandbox::postgres`).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use enact::engine::{CallResult, Engine, Requester};
use enact::kernel::policy::Decision;
use enact::mcp::summary::Summarise;
use enact::registry::Registry;
use enact::sandbox::TempPostgres;
use enact::store::Store;
use serde_json::{Value, json};

use crate::engine::{SECRET, args};

/// The shared server: started on first use, stopped by its guardian when the test process
/// exits.
static SERVER: OnceLock<Result<TempPostgres, String>> = OnceLock::new();

/// The DSN of the test server: `$ENACT_TEST_DATABASE_URL`, else the shared throwaway cluster.
pub fn test_dsn() -> String {
    if let Ok(url) = std::env::var("ENACT_TEST_DATABASE_URL") {
        return url;
    }
    match SERVER.get_or_init(TempPostgres::start) {
        Ok(pg) => pg.dsn(),
        Err(e) => panic!("cannot start the throwaway PostgreSQL: {e}"),
    }
}

/// The shared throwaway cluster, unless `ENACT_TEST_DATABASE_URL` names another server.
pub fn sandbox() -> Option<&'static TempPostgres> {
    test_dsn();
    SERVER.get().and_then(|r| r.as_ref().ok())
}

/// The password in [`test_dsn`] (tests check it never leaks).
pub fn test_password() -> String {
    let config: tokio_postgres::Config = test_dsn().parse().unwrap();
    String::from_utf8(config.get_password().unwrap_or_default().to_vec()).unwrap()
}

/// A plain client for setting up and inspecting test data.
pub async fn client() -> tokio_postgres::Client {
    let dsn = test_dsn();
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
    tokio::spawn(conn);
    client
}

/// A fresh schema of its own for one test, created with `sql` run inside it (`{s}` in `sql`
/// is replaced by the schema name).
pub async fn schema_with(sql: &str) -> (tokio_postgres::Client, String) {
    let c = client().await;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    c.batch_execute(&format!(
        "CREATE SCHEMA {schema}; {}",
        sql.replace("{s}", &schema)
    ))
    .await
    .unwrap_or_else(|e| panic!("test setup failed: {e:?}"));
    (c, schema)
}

/// Generic row workflows over `db` plus `db_safe_insert`, and `extra` TOML (policies).
pub fn config(max_rows: u64, extra: &str) -> String {
    format!(
        r#"
[actor]
email = "agent@company.com"
role = "engineer"

[rollback]
enabled = true

[systems.db]
type = "postgres"
dsn_env = "TEST_PG_DSN"
max_rows = {max_rows}

[[workflows]]
name = "select"
[workflows.inputs.table]
type = "string"
[workflows.inputs.where]
type = "object"
default = {{}}
[workflows.inputs.limit]
type = "integer"
default = 100
[[workflows.steps]]
system = "db"
action = "select_rows"
args = {{ table = "{{{{table}}}}", where = "{{{{where}}}}", limit = "{{{{limit}}}}" }}

[[workflows]]
name = "insert"
[workflows.inputs.table]
type = "string"
[workflows.inputs.data]
type = "object"
[[workflows.steps]]
system = "db"
action = "insert_row"
args = {{ table = "{{{{table}}}}", data = "{{{{data}}}}" }}

[[workflows]]
name = "update"
[workflows.inputs.table]
type = "string"
[workflows.inputs.data]
type = "object"
[workflows.inputs.where]
type = "object"
default = {{}}
[[workflows.steps]]
system = "db"
action = "update_row"
args = {{ table = "{{{{table}}}}", data = "{{{{data}}}}", where = "{{{{where}}}}" }}

[[workflows]]
name = "delete"
[workflows.inputs.table]
type = "string"
[workflows.inputs.where]
type = "object"
default = {{}}
[[workflows.steps]]
system = "db"
action = "delete_row"
args = {{ table = "{{{{table}}}}", where = "{{{{where}}}}" }}

[[workflows]]
name = "safe_insert"
builtin = "db_safe_insert"
system = "db"
{extra}
"#
    )
}

pub struct PgSetup {
    pub dir: tempfile::TempDir,
    pub engine: Arc<Engine>,
}

impl PgSetup {
    async fn call(&self, workflow: &str, a: Value) -> CallResult {
        self.engine.call(workflow, args(a), &[]).await.unwrap()
    }

    fn receipts(&self) -> std::path::PathBuf {
        self.dir.path().join("receipts")
    }

    /// An operator rollback that must not be refused.
    async fn rollback(&self, run_id: &str) -> enact::engine::RollbackResult {
        self.engine
            .rollback(run_id, Requester::Operator)
            .await
            .unwrap_or_else(|e| panic!("rollback of {run_id} refused: {e}"))
    }
}

/// An engine over [`config`] with `dsn` as the database.
pub fn setup_dsn(dsn: &str, max_rows: u64, extra: &str) -> PgSetup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enact.toml");
    std::fs::write(&path, config(max_rows, extra)).unwrap();
    let dsn = dsn.to_string();
    let env = move |name: &str| match name {
        "ENACT_SECRET" => Some(SECRET.to_string()),
        "TEST_PG_DSN" => Some(dsn.clone()),
        _ => None,
    };
    let config = enact::config::load(&path, &env).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&config.receipts_dir, config.fsync, config.secret.clone()).unwrap();
    let registry = Registry::build(config).unwrap_or_else(|e| panic!("{e}"));
    PgSetup {
        dir,
        engine: Arc::new(Engine::new(registry, store)),
    }
}

fn setup(max_rows: u64, extra: &str) -> PgSetup {
    setup_dsn(&test_dsn(), max_rows, extra)
}

/// The output of the run's last action.
fn output(r: &CallResult) -> &Value {
    &r.actions.last().unwrap().output
}

fn error(r: &CallResult) -> String {
    output(r)["error"].as_str().unwrap_or_default().to_string()
}

fn passed(r: &CallResult) {
    assert_eq!(
        (r.decision, r.success),
        (Decision::Pass, true),
        "{}",
        r.summary()
    );
}

/// Every row of a table as PostgreSQL's own JSON text, in key order.
pub async fn dump(c: &tokio_postgres::Client, table: &str, order: &str) -> Vec<String> {
    c.query(
        &format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY {order}"),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Every receipt file's text, concatenated.
fn all_receipts(dir: &Path) -> String {
    crate::journal::text(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_works_and_reports_its_result() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text, \
         active boolean NOT NULL DEFAULT true);",
    )
    .await;
    let t = format!("{s}.users");
    let pg = setup(100, "");

    let r = pg
        .call(
            "insert",
            json!({"table": t, "data": {"email": "a@b.c", "name": "Ann"}}),
        )
        .await;
    passed(&r);
    assert_eq!(
        output(&r),
        &json!({"row": {"id": 1, "email": "a@b.c", "name": "Ann", "active": true}, "already_done": false})
    );
    pg.call("insert", json!({"table": t, "data": {"email": "b@b.c"}}))
        .await;

    let r = pg.call("select", json!({"table": t})).await;
    passed(&r);
    assert_eq!(
        output(&r)["rows"],
        json!([
            {"id": 1, "email": "a@b.c", "name": "Ann", "active": true},
            {"id": 2, "email": "b@b.c", "name": null, "active": true}
        ])
    );
    let r = pg
        .call(
            "select",
            json!({"table": t, "where": {"email": "b@b.c"}, "limit": 5}),
        )
        .await;
    assert_eq!(output(&r)["rows"].as_array().unwrap().len(), 1);
    let r = pg.call("select", json!({"table": t, "limit": 1})).await;
    assert_eq!(output(&r)["rows"].as_array().unwrap().len(), 1);

    let r = pg
        .call(
            "update",
            json!({"table": t, "data": {"name": "Bo"}, "where": {"id": 2}}),
        )
        .await;
    passed(&r);
    assert_eq!(
        output(&r),
        &json!({"rows_updated": 1, "already_done": false})
    );

    let r = pg
        .call("delete", json!({"table": t, "where": {"email": "a@b.c"}}))
        .await;
    passed(&r);
    assert_eq!(
        output(&r),
        &json!({"rows_deleted": 1, "already_done": false})
    );
    // Deleting again: nothing matches, the desired state holds.
    let r = pg
        .call("delete", json!({"table": t, "where": {"email": "a@b.c"}}))
        .await;
    passed(&r);
    assert_eq!(
        output(&r),
        &json!({"rows_deleted": 0, "already_done": "deleted"})
    );

    assert_eq!(
        dump(&c, &t, "id").await,
        vec![r#"{"id": 2, "name": "Bo", "email": "b@b.c", "active": true}"#]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_type_round_trips_exactly() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.v (id bigint PRIMARY KEY, i int, b bigint, t text, ok boolean, \
         n numeric, money numeric(12,2), at timestamptz, d date, doc jsonb, u uuid, \
         ints int[], tags text[], nothing text);",
    )
    .await;
    let t = format!("{s}.v");
    let pg = setup(100, "");
    let data = json!({
        "id": 1, "i": -7, "b": "9007199254740993", "t": "it's \"quoted\" ; DROP TABLE x; --",
        "ok": false, "n": "12345678901234567890.123", "money": "10.50",
        "at": "2024-02-29T23:59:59.123456+02:00", "d": "2024-02-29",
        "doc": {"k": [1, 2.5, "x"], "nested": {"big": "9007199254740993"}},
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "ints": [1, 2, 3],
        "tags": ["a", "b c"], "nothing": null
    });
    let r = pg.call("insert", json!({"table": t, "data": data})).await;
    passed(&r);
    let row = &output(&r)["row"];
    let expected = json!({
        "id": 1, "i": -7, "b": "9007199254740993", "t": "it's \"quoted\" ; DROP TABLE x; --",
        "ok": false, "n": "12345678901234567890.123", "money": 10.5,
        "at": "2024-02-29T21:59:59.123456+00:00", "d": "2024-02-29",
        "doc": {"k": [1, 2.5, "x"], "nested": {"big": "9007199254740993"}},
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "ints": [1, 2, 3],
        "tags": ["a", "b c"], "nothing": null
    });
    assert_eq!(row, &expected);

    // Read back through select_rows, matching on several typed columns at once.
    let r = pg
        .call(
            "select",
            json!({"table": t, "where": {"b": "9007199254740993", "n": "12345678901234567890.123",
                                         "ok": false, "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}}),
        )
        .await;
    passed(&r);
    assert_eq!(output(&r)["rows"], json!([expected]));

    // Big values stored exactly, not rounded through a double.
    let exact = c
        .query_one(
            &format!("SELECT b::text, n::text, money::text FROM {t}"),
            &[],
        )
        .await
        .unwrap();
    let got: (String, String, String) = (exact.get(0), exact.get(1), exact.get(2));
    assert_eq!(
        got,
        (
            "9007199254740993".into(),
            "12345678901234567890.123".into(),
            "10.50".into()
        )
    );

    // Inserting back what was read (strings for the big ones) gives the same row.
    let mut again = row.clone();
    again["id"] = json!(2);
    let r = pg.call("insert", json!({"table": t, "data": again})).await;
    passed(&r);
    assert_eq!(output(&r)["row"], again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tables_and_columns_are_named() {
    let (_c, s) = schema_with("CREATE TABLE {s}.users (id int PRIMARY KEY, email text);").await;
    let t = format!("{s}.users");
    let pg = setup(100, "");

    let r = pg
        .call("select", json!({"table": format!("{s}.nope")}))
        .await;
    assert!(!r.success);
    assert_eq!(
        error(&r),
        format!("select_rows on `{s}.nope`: table `{s}.nope` does not exist")
    );

    let r = pg
        .call("select", json!({"table": t, "where": {"emial": "x"}}))
        .await;
    assert_eq!(
        error(&r),
        format!(
            "select_rows on `{t}`: column `emial` does not exist in table `{t}` (columns: id, email)"
        )
    );
    let r = pg
        .call(
            "insert",
            json!({"table": t, "data": {"id": 1, "nmae": "x"}}),
        )
        .await;
    assert_eq!(
        error(&r),
        format!(
            "insert_row on `{t}`: column `nmae` does not exist in table `{t}` (columns: id, email)"
        )
    );
    // An unknown WHERE key must not widen a delete to every row.
    pg.call("insert", json!({"table": t, "data": {"id": 1}}))
        .await;
    let r = pg
        .call("delete", json!({"table": t, "where": {"idd": 1}}))
        .await;
    assert!(
        error(&r).contains("column `idd` does not exist"),
        "{}",
        error(&r)
    );
    let r = pg.call("select", json!({"table": t})).await;
    assert_eq!(output(&r)["rows"].as_array().unwrap().len(), 1);

    // A value of the wrong type is PostgreSQL's clear error, not a crash.
    let r = pg
        .call("select", json!({"table": t, "where": {"id": "abc"}}))
        .await;
    assert_eq!(
        error(&r),
        format!(
            "select_rows on `{t}`: cannot select: invalid input syntax for type integer: \"abc\""
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_in_where_means_is_null() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.p (id int PRIMARY KEY, note text); \
         INSERT INTO {s}.p VALUES (1, NULL), (2, 'x'), (3, NULL);",
    )
    .await;
    let t = format!("{s}.p");
    let pg = setup(100, "");
    let r = pg
        .call("select", json!({"table": t, "where": {"note": null}}))
        .await;
    assert_eq!(
        output(&r)["rows"],
        json!([{"id": 1, "note": null}, {"id": 3, "note": null}])
    );
    let r = pg
        .call(
            "update",
            json!({"table": t, "data": {"note": "filled"}, "where": {"note": null}}),
        )
        .await;
    passed(&r);
    assert_eq!(output(&r)["rows_updated"], json!(2));
    assert_eq!(
        dump(&c, &t, "id").await,
        vec![
            r#"{"id": 1, "note": "filled"}"#,
            r#"{"id": 2, "note": "x"}"#,
            r#"{"id": 3, "note": "filled"}"#
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_where_is_refused_by_the_connector() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.p (id int PRIMARY KEY, note text); INSERT INTO {s}.p VALUES (1, 'a');",
    )
    .await;
    let t = format!("{s}.p");
    let pg = setup(100, "");
    let r = pg
        .call("update", json!({"table": t, "data": {"note": "b"}}))
        .await;
    assert_eq!(r.decision, Decision::Pass);
    assert_eq!(
        error(&r),
        format!("update_row on `{t}`: an empty `where` would update every row — refused")
    );
    let r = pg.call("delete", json!({"table": t, "where": {}})).await;
    assert_eq!(
        error(&r),
        format!("delete_row on `{t}`: an empty `where` would delete every row — refused")
    );
    assert_eq!(dump(&c, &t, "id").await, vec![r#"{"id": 1, "note": "a"}"#]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_max_rows_changes_nothing() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.p (id int PRIMARY KEY, grp int, note text); \
         INSERT INTO {s}.p SELECT g, g % 2, 'n' FROM generate_series(1, 10) g;",
    )
    .await;
    let t = format!("{s}.p");
    let before = dump(&c, &t, "id").await;
    let pg = setup(4, "");
    let r = pg
        .call(
            "update",
            json!({"table": t, "data": {"note": "x"}, "where": {"grp": 1}}),
        )
        .await;
    assert_eq!(
        error(&r),
        format!(
            "update_row on `{t}`: 5 rows match, more than max_rows (4) — refused, nothing was updated"
        )
    );
    let r = pg
        .call("delete", json!({"table": t, "where": {"grp": 0}}))
        .await;
    assert_eq!(
        error(&r),
        format!(
            "delete_row on `{t}`: 5 rows match, more than max_rows (4) — refused, nothing was deleted"
        )
    );
    assert_eq!(dump(&c, &t, "id").await, before);
    // The limit is inclusive.
    let pg = setup(5, "");
    let r = pg
        .call("delete", json!({"table": t, "where": {"grp": 0}}))
        .await;
    passed(&r);
    assert_eq!(output(&r)["rows_deleted"], json!(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_without_a_key_and_cascading_deletes_are_refused() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.log (msg text); INSERT INTO {s}.log VALUES ('hello'); \
         CREATE TABLE {s}.customers (id int PRIMARY KEY, name text); \
         CREATE TABLE {s}.orders (id int PRIMARY KEY, \
            customer int REFERENCES {s}.customers ON DELETE CASCADE); \
         CREATE TABLE {s}.teams (id int PRIMARY KEY); \
         CREATE TABLE {s}.members (id int PRIMARY KEY, \
            team int REFERENCES {s}.teams ON DELETE SET NULL); \
         CREATE TABLE {s}.plain (id int PRIMARY KEY); \
         CREATE TABLE {s}.refs (id int PRIMARY KEY, p int REFERENCES {s}.plain); \
         INSERT INTO {s}.customers VALUES (1, 'a'); INSERT INTO {s}.orders VALUES (1, 1); \
         INSERT INTO {s}.teams VALUES (1); INSERT INTO {s}.plain VALUES (1), (2); \
         INSERT INTO {s}.refs VALUES (1, 1);",
    )
    .await;
    let pg = setup(100, "");
    let log = format!("{s}.log");
    let r = pg.call("select", json!({"table": log})).await;
    passed(&r);
    assert_eq!(output(&r)["rows"], json!([{"msg": "hello"}]));
    let refused = format!(
        "table `{log}` has no primary key — changes to it are refused because they could not be undone exactly"
    );
    let r = pg
        .call("insert", json!({"table": log, "data": {"msg": "x"}}))
        .await;
    assert_eq!(error(&r), format!("insert_row on `{log}`: {refused}"));
    let r = pg
        .call("delete", json!({"table": log, "where": {"msg": "hello"}}))
        .await;
    assert_eq!(error(&r), format!("delete_row on `{log}`: {refused}"));

    let r = pg
        .call(
            "delete",
            json!({"table": format!("{s}.customers"), "where": {"id": 1}}),
        )
        .await;
    assert_eq!(
        error(&r),
        format!(
            "delete_row on `{s}.customers`: table `{s}.orders` references `{s}.customers` with ON DELETE CASCADE (constraint `orders_customer_fkey`) — deleting rows here would also change rows there, which rollback could not restore; refused"
        )
    );
    let r = pg
        .call(
            "delete",
            json!({"table": format!("{s}.teams"), "where": {"id": 1}}),
        )
        .await;
    assert!(
        error(&r).contains("with ON DELETE SET NULL"),
        "{}",
        error(&r)
    );
    // A plain (NO ACTION) reference is fine: PostgreSQL itself refuses orphaning a row.
    let r = pg
        .call(
            "delete",
            json!({"table": format!("{s}.plain"), "where": {"id": 2}}),
        )
        .await;
    passed(&r);
    let r = pg
        .call(
            "delete",
            json!({"table": format!("{s}.plain"), "where": {"id": 1}}),
        )
        .await;
    assert!(
        error(&r).contains("violates foreign key constraint"),
        "{}",
        error(&r)
    );
    assert_eq!(dump(&c, &format!("{s}.orders"), "id").await.len(), 1);
    assert_eq!(dump(&c, &format!("{s}.plain"), "id").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_safe_insert_refuses_a_duplicate() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.users (id serial PRIMARY KEY, email text NOT NULL, name text);",
    )
    .await;
    let t = format!("{s}.users");
    let pg = setup(100, "");
    let call =
        json!({"table": t, "data": {"email": "a@b.c", "name": "Ann"}, "unique_key": "email"});
    let r = pg.call("safe_insert", call.clone()).await;
    passed(&r);
    assert_eq!(r.actions.len(), 2);
    assert_eq!(r.actions[0].output, json!({"rows": []}));
    assert_eq!(output(&r)["row"]["email"], json!("a@b.c"));

    let r = pg.call("safe_insert", call).await;
    assert_eq!((r.decision, r.success), (Decision::Pass, false));
    assert_eq!(error(&r), "Row with email=a@b.c already exists");
    assert_eq!(dump(&c, &t, "id").await.len(), 1);

    // Without unique_key it is a plain insert.
    let r = pg
        .call(
            "safe_insert",
            json!({"table": t, "data": {"email": "a@b.c"}}),
        )
        .await;
    passed(&r);
    assert_eq!(r.actions.len(), 1);
    assert_eq!(dump(&c, &t, "id").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_policies_judge_real_plans() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.users (id int PRIMARY KEY, name text); \
         CREATE TABLE {s}.secrets (id int PRIMARY KEY, v text); \
         INSERT INTO {s}.users VALUES (1, 'a'); INSERT INTO {s}.secrets VALUES (1, 's');",
    )
    .await;
    let policies = r#"
[[policies]]
policy = "no_delete_row"
workflows = ["delete"]

[[policies]]
policy = "protect_tables"
tables = ["secrets"]

[[policies]]
policy = "no_update_without_where"
"#;
    let pg = setup(100, policies);
    let users = format!("{s}.users");
    let r = pg
        .call("delete", json!({"table": users, "where": {"id": 1}}))
        .await;
    assert_eq!(r.decision, Decision::Block);
    assert!(r.actions.is_empty());
    let failed: Vec<(&str, &str)> = r
        .policy_results
        .iter()
        .filter(|p| !p.passed)
        .map(|p| (p.policy.as_str(), p.reason.as_str()))
        .collect();
    assert_eq!(
        failed,
        vec![(
            "no_delete_row",
            format!("Deleting rows from '{users}' is blocked").as_str()
        )]
    );

    let r = pg
        .call(
            "update",
            json!({"table": format!("{s}.secrets"), "data": {"v": "x"}, "where": {"id": 1}}),
        )
        .await;
    assert_eq!(r.decision, Decision::Block);
    let reason = &r
        .policy_results
        .iter()
        .find(|p| p.policy == "protect_tables")
        .unwrap()
        .reason;
    assert_eq!(reason, &format!("Table '{s}.secrets' is protected"));

    let r = pg
        .call("update", json!({"table": users, "data": {"name": "x"}}))
        .await;
    assert_eq!(r.decision, Decision::Block);
    let reason = &r
        .policy_results
        .iter()
        .find(|p| p.policy == "no_update_without_where")
        .unwrap()
        .reason;
    assert_eq!(
        reason,
        &format!("update_row on '{users}' has no WHERE condition (it would update every row)")
    );

    // The same update with a WHERE passes every policy and runs.
    let r = pg
        .call(
            "update",
            json!({"table": users, "data": {"name": "b"}, "where": {"id": 1}}),
        )
        .await;
    passed(&r);
    assert_eq!(
        dump(&c, &users, "id").await,
        vec![r#"{"id": 1, "name": "b"}"#]
    );
    assert_eq!(
        dump(&c, &format!("{s}.secrets"), "id").await,
        vec![r#"{"v": "s", "id": 1}"#]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_table_is_restored_exactly_by_rollback() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.customers (id serial PRIMARY KEY, name text NOT NULL, \
            balance numeric(14,4), score numeric, big bigint, signed_up timestamptz, \
            born date, prefs jsonb, tags text[], active boolean NOT NULL DEFAULT true); \
         INSERT INTO {s}.customers (name, balance, score, big, signed_up, born, prefs, tags) \
         SELECT 'customer ' || g, g * 1000.1234, (g::numeric / 7), 9007199254740993 + g, \
                timestamptz '2024-01-01 00:00:00.000001+00' + g * interval '1 day 1.000001 second', \
                date '1990-01-01' + g, \
                jsonb_build_object('n', g, 'price', 12345678901234567890.5, 'list', jsonb_build_array(g, 'x', 0.10)), \
                ARRAY['t' || g, NULL] \
         FROM generate_series(1, 30) g;",
    )
    .await;
    let t = format!("{s}.customers");
    let before = dump(&c, &t, "id").await;
    assert_eq!(before.len(), 30);
    let pg = setup(100, "");

    let r = pg
        .call("delete", json!({"table": t, "where": {"active": true}}))
        .await;
    passed(&r);
    assert_eq!(
        output(&r),
        &json!({"rows_deleted": 30, "already_done": false})
    );
    assert!(dump(&c, &t, "id").await.is_empty());

    let rb = pg.rollback(&r.run_id).await;
    assert_eq!(rb.decision, Decision::Pass, "{}", rb.summary());
    assert_eq!(
        rb.actions[0].output,
        json!({"table": t, "undone": "re-inserted 30 row(s)"})
    );
    assert_eq!(dump(&c, &t, "id").await, before);

    // A second rollback of the same run is refused; the rows are not inserted twice.
    let again = pg.engine.rollback(&r.run_id, Requester::Operator).await;
    assert!(again.is_err());
    assert_eq!(dump(&c, &t, "id").await, before);

    assert!(!all_receipts(&pg.receipts()).contains(&test_password()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_and_update_are_undone_and_identity_keys_come_back() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
            label text, qty int, price numeric, total numeric GENERATED ALWAYS AS (qty * price) STORED); \
         INSERT INTO {s}.items (label, qty, price) VALUES ('a', 1, 1.50), ('b', 2, 2.25), ('c', 3, 0.10);",
    )
    .await;
    let t = format!("{s}.items");
    let before = dump(&c, &t, "id").await;
    let pg = setup(100, "");

    let ins = pg
        .call(
            "insert",
            json!({"table": t, "data": {"label": "d", "qty": 4, "price": "1.00"}}),
        )
        .await;
    passed(&ins);
    assert_eq!(output(&ins)["row"]["id"], json!(4));
    let upd = pg
        .call(
            "update",
            json!({"table": t, "data": {"qty": 10, "price": "9.990"}, "where": {"label": "b"}}),
        )
        .await;
    passed(&upd);
    let del = pg
        .call("delete", json!({"table": t, "where": {"label": "c"}}))
        .await;
    passed(&del);

    for run in [&del, &upd, &ins] {
        let rb = pg.rollback(&run.run_id).await;
        assert_eq!(rb.decision, Decision::Pass, "{}", rb.summary());
    }
    assert_eq!(dump(&c, &t, "id").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_refuses_rows_that_changed_after_the_run() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.acct (id int PRIMARY KEY, owner text, balance numeric); \
         INSERT INTO {s}.acct VALUES (1, 'a', 10.00), (2, 'b', 20.00), (3, 'c', 30.00);",
    )
    .await;
    let t = format!("{s}.acct");
    let pg = setup(100, "");

    // update_row: one of the rows the run wrote is changed by someone else.
    let upd = pg
        .call(
            "update",
            json!({"table": t, "data": {"owner": "z"}, "where": {"balance": "20.00"}}),
        )
        .await;
    passed(&upd);
    let upd2 = pg
        .call(
            "update",
            json!({"table": t, "data": {"owner": "y"}, "where": {"id": 3}}),
        )
        .await;
    passed(&upd2);
    c.execute(
        &format!("UPDATE {t} SET balance = 20.000 WHERE id = 2"),
        &[],
    )
    .await
    .unwrap();
    let after_drift = dump(&c, &t, "id").await;
    let rb = pg.rollback(&upd.run_id).await;
    assert_eq!(rb.decision, Decision::Partial);
    assert_eq!(
        rb.actions[0].output["error"],
        json!(format!(
            "undo update_row on `{t}`: row (id=2) changed (column(s) balance) after the run — nothing restored"
        ))
    );
    assert_eq!(dump(&c, &t, "id").await, after_drift);

    // insert_row: the inserted row was edited.
    let ins = pg
        .call(
            "insert",
            json!({"table": t, "data": {"id": 4, "owner": "d", "balance": 1}}),
        )
        .await;
    c.execute(&format!("UPDATE {t} SET owner = 'dd' WHERE id = 4"), &[])
        .await
        .unwrap();
    let rb = pg.rollback(&ins.run_id).await;
    assert_eq!(
        rb.actions[0].output["error"],
        json!(format!(
            "undo insert_row on `{t}`: row (id=4) changed after the run (column(s) owner) — not deleted"
        ))
    );

    // delete_row: a row with the deleted key exists again.
    let del = pg
        .call("delete", json!({"table": t, "where": {"id": 1}}))
        .await;
    passed(&del);
    c.execute(&format!("INSERT INTO {t} VALUES (1, 'new', 0)"), &[])
        .await
        .unwrap();
    let rb = pg.rollback(&del.run_id).await;
    assert_eq!(
        rb.actions[0].output["error"],
        json!(format!(
            "undo delete_row on `{t}`: a row with id=1 exists again after the run — nothing re-inserted"
        ))
    );
    let owner: String = c
        .query_one(&format!("SELECT owner FROM {t} WHERE id = 1"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "new");

    // Once the drift is put back, the PARTIAL rollback can be retried and passes.
    c.execute(&format!("UPDATE {t} SET balance = 20.00 WHERE id = 2"), &[])
        .await
        .unwrap();
    let rb = pg.rollback(&upd.run_id).await;
    assert_eq!(rb.decision, Decision::Pass, "{}", rb.summary());
    let owner: String = c
        .query_one(&format!("SELECT owner FROM {t} WHERE id = 2"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_are_clear_and_never_show_the_password() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let password = "S3cret-pw-that-must-not-leak";
    let dsn = format!("host=127.0.0.1 port={port} user=enact password={password} dbname=shop");
    let pg = setup_dsn(&dsn, 100, "");
    let r = pg.call("select", json!({"table": "users"})).await;
    assert_eq!((r.decision, r.success), (Decision::Pass, false));
    let e = error(&r);
    assert!(
        e.starts_with(&format!(
            "select_rows on `users`: cannot connect to the database at 127.0.0.1:{port}/shop: error connecting to server:"
        )),
        "{e}"
    );
    assert!(!e.contains(password));
    let r = pg
        .call("insert", json!({"table": "users", "data": {"id": 1}}))
        .await;
    assert!(error(&r).contains("cannot connect to the database"));
    assert_eq!(
        r.actions[0].output,
        json!({"error": error(&r)}),
        "a failed action carries only its error"
    );
    let receipts = all_receipts(&pg.receipts());
    assert!(receipts.contains("cannot connect to the database"));
    assert!(!receipts.contains(password));

    // A wrong password against the real server: PostgreSQL's message, no password.
    let wrong = test_dsn().replace(&test_password(), password);
    if wrong != test_dsn() {
        let pg = setup_dsn(&wrong, 100, "");
        let r = pg.call("select", json!({"table": "users"})).await;
        let e = error(&r);
        assert!(e.contains("password authentication failed"), "{e}");
        assert!(!e.contains(password), "{e}");
        assert!(!all_receipts(&pg.receipts()).contains(password));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_is_replaced_on_the_next_call() {
    let (c, s) = schema_with("CREATE TABLE {s}.p (id int PRIMARY KEY);").await;
    let t = format!("{s}.p");
    let app = format!("enact_{s}");
    let dsn = format!("{} application_name={app}", test_dsn());
    if test_dsn().starts_with("postgres") {
        return; // a URL DSN: this test needs the key=value form to add a name
    }
    let pg = setup_dsn(&dsn, 100, "");
    passed(&pg.call("select", json!({"table": t})).await);
    c.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        &[&app],
    )
    .await
    .unwrap();
    // pg_terminate_backend only signals: wait until the backend is gone, or the next call may
    // still be served by it and the one after it be the first to find the connection dead.
    for _ in 0..500 {
        let left: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The call that finds the connection dead may fail (clearly); the next one reconnects.
    let r = pg.call("select", json!({"table": t})).await;
    if !r.success {
        assert!(
            error(&r).starts_with(&format!("select_rows on `{t}`: ")),
            "{}",
            error(&r)
        );
    }
    passed(&pg.call("select", json!({"table": t})).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_reaches_receipts_outputs_or_errors() {
    let (_c, s) = schema_with("CREATE TABLE {s}.p (id int PRIMARY KEY, v text);").await;
    let t = format!("{s}.p");
    let pg = setup(100, "");
    let runs = [
        pg.call("insert", json!({"table": t, "data": {"id": 1, "v": "x"}}))
            .await,
        pg.call("insert", json!({"table": t, "data": {"id": 1}}))
            .await,
        pg.call("select", json!({"table": "missing"})).await,
        pg.call(
            "update",
            json!({"table": t, "data": {"v": "y"}, "where": {"id": 1}}),
        )
        .await,
    ];
    assert_eq!(
        error(&runs[1]),
        format!(
            "insert_row on `{t}`: cannot insert: duplicate key value violates unique constraint \"p_pkey\" (Key (id)=(1) already exists.)"
        )
    );
    let rb = pg.rollback(&runs[3].run_id).await;
    assert_eq!(rb.decision, Decision::Pass, "{}", rb.summary());
    let password = test_password();
    for r in &runs {
        assert!(
            !serde_json::to_string(&r.actions)
                .unwrap()
                .contains(&password)
        );
    }
    let receipts = all_receipts(&pg.receipts());
    assert!(receipts.contains("\"type\":\"postgres\""));
    assert!(!receipts.contains(&password));
    let target = &pg.engine.registry().systems["db"].connector.target();
    assert_eq!(
        target.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["dbname", "host", "port", "type"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_views_and_system_catalogs_are_guarded() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.users (id int PRIMARY KEY, name text); \
         INSERT INTO {s}.users VALUES (1, 'a'); \
         CREATE VIEW {s}.names AS SELECT name FROM {s}.users;",
    )
    .await;
    let t = format!("{s}.users");
    let pg = setup(100, "");
    let r = pg
        .call(
            "update",
            json!({"table": t, "data": {"id": 2}, "where": {"id": 1}}),
        )
        .await;
    assert_eq!(
        error(&r),
        format!(
            "update_row on `{t}`: `data` sets primary key column `id` of `{t}` — changing a key is refused (rows are restored by key)"
        )
    );
    let view = format!("{s}.names");
    let r = pg.call("select", json!({"table": view})).await;
    passed(&r);
    assert_eq!(output(&r)["rows"], json!([{"name": "a"}]));
    let r = pg
        .call("delete", json!({"table": view, "where": {"name": "a"}}))
        .await;
    assert_eq!(
        error(&r),
        format!("delete_row on `{view}`: `{view}` is not a table — only tables can be changed")
    );
    for name in [
        "pg_authid",
        "pg_catalog.pg_class",
        "information_schema.tables",
    ] {
        let r = pg.call("select", json!({"table": name})).await;
        assert!(
            error(&r).ends_with("is a system catalog — refused"),
            "{name}: {}",
            error(&r)
        );
    }
    // Quoted and mixed-case names resolve as PostgreSQL resolves them.
    c.batch_execute(&format!(
        r#"CREATE TABLE {s}."Odd ""Name""" (id int PRIMARY KEY)"#
    ))
    .await
    .unwrap();
    let r = pg
        .call(
            "insert",
            json!({"table": format!(r#"{s}."Odd ""Name""""#), "data": {"id": 1}}),
        )
        .await;
    passed(&r);
    let r = pg
        .call("select", json!({"table": format!("{s}.Odd")}))
        .await;
    assert_eq!(
        error(&r),
        format!("select_rows on `{s}.Odd`: table `{s}.Odd` does not exist")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_connects_over_tls() {
    let Some(server) = sandbox() else { return };
    let (c, s) = schema_with("CREATE TABLE {s}.p (id int PRIMARY KEY);").await;
    let app = format!("enact_tls_{s}");
    let dsn = server.dsn().replace(
        "sslmode=disable",
        &format!("sslmode=require application_name={app}"),
    );
    let pg = setup_dsn(&dsn, 100, "");
    let r = pg.call("select", json!({"table": format!("{s}.p")})).await;
    // As root with Debian's snakeoil pair present, the sandbox must have turned TLS on.
    if rustix::process::geteuid().is_root()
        && Path::new("/etc/ssl/private/ssl-cert-snakeoil.key").exists()
    {
        assert!(server.tls());
    }
    if server.tls() {
        passed(&r);
        let ssl: bool = c
            .query_one(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        assert!(ssl, "the connector's session is not encrypted");
    } else {
        assert!(
            error(&r).contains("cannot connect to the database"),
            "{}",
            error(&r)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_dsns_composite_keys_and_what_the_receipt_records() {
    let Some(server) = sandbox() else { return };
    let (c, s) = schema_with(
        "CREATE TABLE {s}.stock (shop text, sku int, qty int, seen timestamptz, \
            PRIMARY KEY (shop, sku)); \
         INSERT INTO {s}.stock VALUES ('north', 1, 5, '2024-05-01 12:00:00.5+00'), \
            ('north', 2, 0, NULL), ('south', 1, 7, '2024-05-02 08:30:00+02');",
    )
    .await;
    let t = format!("{s}.stock");
    let before = dump(&c, &t, "shop, sku").await;
    let pg = setup_dsn(&server.url(), 100, "");

    let ins = pg
        .call(
            "insert",
            json!({"table": t, "data": {"shop": "east", "sku": 9, "qty": 1}}),
        )
        .await;
    passed(&ins);
    let receipt = pg.engine.store().load(&ins.run_id).unwrap().value;
    assert_eq!(
        receipt["actions_taken"][0]["rollback_data"],
        json!({"schema": s, "table": "stock", "primary_key": ["shop", "sku"],
               "row": {"shop": "east", "sku": "9", "qty": "1", "seen": null}})
    );
    assert_eq!(
        receipt["actions_taken"][0]["target"],
        json!({"type": "postgres", "host": "127.0.0.1", "port": server.port(), "dbname": "postgres"})
    );

    let upd = pg
        .call(
            "update",
            json!({"table": t, "data": {"qty": 99}, "where": {"sku": 1}}),
        )
        .await;
    passed(&upd);
    assert_eq!(output(&upd)["rows_updated"], json!(2));
    let receipt = pg.engine.store().load(&upd.run_id).unwrap().value;
    let data = &receipt["actions_taken"][0]["rollback_data"];
    assert_eq!(
        data["old_rows"][1],
        json!({"shop": "south", "sku": "1", "qty": "7", "seen": "2024-05-02 06:30:00+00"})
    );
    assert_eq!(data["new_rows"][1]["qty"], json!("99"));

    let del = pg
        .call("delete", json!({"table": t, "where": {"shop": "north"}}))
        .await;
    passed(&del);
    for run in [&del, &upd, &ins] {
        let rb = pg.rollback(&run.run_id).await;
        assert_eq!(rb.decision, Decision::Pass, "{}", rb.summary());
    }
    assert_eq!(dump(&c, &t, "shop, sku").await, before);
}

// --- Write-ahead step records (SPEC §5.5) and recovery, on the connector itself ---

mod write_ahead {
    use std::sync::Arc;

    use enact::connector::postgres::PgConnector;
    use enact::connector::{ActionOutcome, Recovered};
    use enact::kernel::receipt::ActionRecord;
    use enact::secret::Secret;
    use serde_json::{Map, Value, json};

    use super::{schema_with, test_dsn};
    use crate::steplog::{Probe, block_on};

    fn connector() -> PgConnector {
        PgConnector::new(
            &Secret::new(test_dsn()),
            100,
            std::time::Duration::from_secs(30),
        )
        .unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    async fn values(c: &tokio_postgres::Client, table: &str) -> Vec<String> {
        c.query(
            &format!("SELECT id || '=' || v FROM {table} ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    fn record(pg: &PgConnector, action: &str, args: &Value, out: &ActionOutcome) -> ActionRecord {
        ActionRecord {
            action: action.into(),
            system: "db".into(),
            success: out.success,
            output: out.output.clone(),
            rollback_data: out.rollback_data.clone(),
            target: pg.target(),
            args: obj(args.clone()),
        }
    }

    /// The step record without its transaction id: the action's rollback data.
    fn without_txid(pre: &Value) -> Value {
        let mut pre = obj(pre.clone());
        let txid = pre.remove("txid").unwrap();
        let txid = txid.as_str().unwrap();
        assert!(
            !txid.is_empty() && txid.bytes().all(|b| b.is_ascii_digit()),
            "{txid}"
        );
        Value::Object(pre)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn step_record_is_written_inside_the_transaction_before_commit() {
        let (c, s) = schema_with(
            "CREATE TABLE {s}.t (id int PRIMARY KEY, v text); INSERT INTO {s}.t VALUES (1, 'old'), (2, 'two');",
        )
        .await;
        let t = format!("{s}.t");
        let pg = connector();
        let other = Arc::new(c);
        let unchanged = |other: &Arc<tokio_postgres::Client>, t: &str| {
            let (other, t) = (Arc::clone(other), t.to_string());
            move |_: &Value| {
                // Another session still sees the rows as they were: nothing is committed yet.
                let seen = block_on(values(&other, &t));
                assert_eq!(seen, ["1=old", "2=two"]);
            }
        };
        let cases = [
            (
                "insert_row",
                json!({"table": t, "data": {"id": 3, "v": "new"}}),
            ),
            (
                "update_row",
                json!({"table": t, "data": {"v": "changed"}, "where": {"id": 1}}),
            ),
            ("delete_row", json!({"table": t, "where": {"id": 2}})),
        ];
        let mut done = Vec::new();
        for (action, args) in cases {
            let mut log = Probe::checking(unchanged(&other, &t));
            let out = pg.execute(action, &obj(args.clone()), &mut log).await;
            assert!(out.success, "{action}: {out:?}");
            assert_eq!(without_txid(log.pre()), out.rollback_data, "{action}");
            // Undo the change, so the next action sees the starting rows again.
            let undone = pg
                .undo(
                    &record(&pg, action, &args, &out),
                    enact::connector::UndoMode::Guarded,
                )
                .await;
            assert!(undone.success, "{undone:?}");
            done.push(action);
        }
        assert_eq!(values(&other, &t).await, ["1=old", "2=two"]);

        let mut log = Probe::ok();
        let out = pg
            .execute(
                "select_rows",
                &obj(json!({"table": t, "where": {}})),
                &mut log,
            )
            .await;
        assert!(out.success);
        assert_eq!(log.pre(), &json!({}));

        let mut log = Probe::ok();
        let out = pg
            .execute(
                "delete_row",
                &obj(json!({"table": t, "where": {"id": 99}})),
                &mut log,
            )
            .await;
        assert_eq!(out.output["already_done"], "deleted");
        assert_eq!(
            log.pre(),
            &json!({"rows_deleted": 0, "already_done": "deleted"})
        );
        assert_eq!(done.len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_step_log_rolls_the_transaction_back() {
        let (c, s) = schema_with(
            "CREATE TABLE {s}.t (id int PRIMARY KEY, v text); INSERT INTO {s}.t VALUES (1, 'old'), (2, 'two');",
        )
        .await;
        let t = format!("{s}.t");
        let pg = connector();
        let journal_down = "the receipts journal cannot be written: read-only folder";
        for (action, args) in [
            (
                "insert_row",
                json!({"table": t, "data": {"id": 3, "v": "new"}}),
            ),
            (
                "update_row",
                json!({"table": t, "data": {"v": "changed"}, "where": {"id": 1}}),
            ),
            ("delete_row", json!({"table": t, "where": {"id": 2}})),
            ("delete_row", json!({"table": t, "where": {"id": 99}})),
            ("select_rows", json!({"table": t})),
        ] {
            let mut log = Probe::failing(journal_down);
            let out = pg.execute(action, &obj(args), &mut log).await;
            assert_eq!(out, ActionOutcome::failed(journal_down), "{action}");
            assert_eq!(log.calls.len(), 1, "{action}");
            assert_eq!(values(&c, &t).await, ["1=old", "2=two"], "{action}");
        }
        // The connection is still usable, and no lock is left behind.
        c.batch_execute("SET lock_timeout = '2s'").await.unwrap();
        c.execute(&format!("UPDATE {t} SET v = 'free' WHERE id = 1"), &[])
            .await
            .unwrap();
        let out = pg
            .execute("select_rows", &obj(json!({"table": t})), &mut Probe::ok())
            .await;
        assert_eq!(
            out.output["rows"].as_array().map(Vec::len),
            Some(2),
            "{out:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recovery_asks_the_transaction_status() {
        let (c, s) = schema_with(
            "CREATE TABLE {s}.t (id int PRIMARY KEY, v text); INSERT INTO {s}.t VALUES (1, 'old');",
        )
        .await;
        let t = format!("{s}.t");
        let pg = connector();
        let args = json!({"table": t, "data": {"v": "changed"}, "where": {"id": 1}});

        // Stopped by the log: the transaction was rolled back.
        let mut log = Probe::failing("journal down");
        pg.execute("update_row", &obj(args.clone()), &mut log).await;
        let (status, out) = pg
            .recover("update_row", &obj(args.clone()), log.pre())
            .await;
        assert_eq!(status, Recovered::NotDone, "{out:?}");
        assert!(out.success);
        assert_eq!(out.rollback_data, json!({}));
        assert!(
            out.output["not_done"]
                .as_str()
                .unwrap()
                .contains("rolled back"),
            "{out:?}"
        );

        // Committed: Done, with the action's output and what undo needs.
        let mut log = Probe::ok();
        let done = pg.execute("update_row", &obj(args.clone()), &mut log).await;
        let (status, out) = pg
            .recover("update_row", &obj(args.clone()), log.pre())
            .await;
        assert_eq!(status, Recovered::Done, "{out:?}");
        assert_eq!(out.output, done.output);
        assert_eq!(out.rollback_data, *log.pre());

        // Changed by someone else since: still Done (it committed), and undo refuses.
        c.execute(&format!("UPDATE {t} SET v = 'someone' WHERE id = 1"), &[])
            .await
            .unwrap();
        let undone = pg
            .undo(
                &record(&pg, "update_row", &args, &out),
                enact::connector::UndoMode::Guarded,
            )
            .await;
        assert!(!undone.success, "{undone:?}");
        assert_eq!(values(&c, &t).await, ["1=someone"]);

        // A transaction the server cannot tell about: Unknown, the recorded data kept.
        let mut pre = obj(log.pre().clone());
        pre.insert("txid".into(), json!("99999999999"));
        let pre = Value::Object(pre);
        let (status, out) = pg.recover("update_row", &obj(args.clone()), &pre).await;
        assert_eq!(status, Recovered::Unknown, "{out:?}");
        assert_eq!(out.rollback_data, pre);
        assert_eq!(out.output["already_done"], false);
        let (status, _) = pg
            .recover("update_row", &obj(args.clone()), &json!({}))
            .await;
        assert_eq!(status, Recovered::Unknown);

        // Read-only and already-done steps need no question.
        let (status, out) = pg
            .recover("select_rows", &obj(json!({"table": t})), &json!({}))
            .await;
        assert_eq!(
            (status, out.output),
            (Recovered::Done, json!({"skipped": "read-only action"}))
        );
        let (status, out) = pg
            .recover(
                "delete_row",
                &obj(args),
                &json!({"rows_deleted": 0, "already_done": "deleted"}),
            )
            .await;
        assert_eq!(status, Recovered::Done);
        assert_eq!(
            out.output,
            json!({"rows_deleted": 0, "already_done": "deleted"})
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_left_open_by_a_dead_client_is_ended_and_not_done() {
        let (c, s) = schema_with(
            "CREATE TABLE {s}.t (id int PRIMARY KEY, v text); INSERT INTO {s}.t VALUES (1, 'old');",
        )
        .await;
        let t = format!("{s}.t");
        // A session that changed the row and then went silent before COMMIT.
        let orphan = super::client().await;
        orphan.batch_execute("BEGIN").await.unwrap();
        orphan
            .execute(&format!("UPDATE {t} SET v = 'half' WHERE id = 1"), &[])
            .await
            .unwrap();
        let txid: String = orphan
            .query_one("SELECT pg_current_xact_id()::text", &[])
            .await
            .unwrap()
            .get(0);
        let pg = connector();
        let pre = json!({"schema": s, "table": "t", "primary_key": ["id"], "old_rows": [], "new_rows": [], "txid": txid});
        let args = obj(json!({"table": t, "data": {"v": "half"}, "where": {"id": 1}}));
        let (status, out) = pg.recover("update_row", &args, &pre).await;
        assert_eq!(status, Recovered::NotDone, "{out:?}");
        assert_eq!(values(&c, &t).await, ["1=old"]);
        assert!(orphan.is_closed() || orphan.simple_query("SELECT 1").await.is_err());
    }
}
