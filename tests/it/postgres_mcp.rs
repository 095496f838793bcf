//! Issue 6's "done means" at the MCP level: the real `enact serve` binary over stdio, its
//! Postgres system pointed at the throwaway PostgreSQL of [`crate::postgres::test_dsn`], the
//! DSN handed over in the env var named by `dsn_env` (`TEST_PG_DSN`).
//!
//! Each test tells one story in a schema of its own (so tests run in parallel): the agent's
//! calls, the decision and result it reads, the receipts on disk, and the table itself,
//! compared as PostgreSQL's own JSON text of every row (`to_jsonb(t)::text … ORDER BY pk`).

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::engine::SECRET;
use crate::mcp::enact_bin;
use crate::mcp::{
    Client, Folder, assert_block, assert_failed_action_on, assert_shape, call, connect,
    connect_with_stderr, fail, is_error, read_json, results, signature_recomputes, structured,
    texts,
};
use crate::postgres::{config, dump, schema_with, test_dsn, test_password};

/// `enact serve` over [`config`] (workflows `select`, `insert`, `update`, `delete` and the
/// built-in `safe_insert`, rollback on) with `extra` TOML appended.
struct Pg {
    folder: Folder,
    client: Client,
}

async fn start(max_rows: u64, extra: &str) -> Pg {
    start_with(max_rows, extra, &[]).await
}

async fn start_with(max_rows: u64, extra: &str, env: &[(&str, &str)]) -> Pg {
    let folder = Folder::new(&config(max_rows, extra));
    let dsn = test_dsn();
    let mut env = env.to_vec();
    env.push(("TEST_PG_DSN", &dsn));
    let client = connect(&folder, &env).await;
    Pg { folder, client }
}

impl Pg {
    async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        call(&self.client, tool, args).await
    }

    /// A workflow call that must pass and succeed: returns `structuredContent`.
    async fn ok(&self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args).await;
        assert!(!is_error(&r), "{:?}", texts(&r));
        let s = assert_shape(&r);
        assert_eq!(
            (&s["decision"], &s["success"]),
            (&json!("PASS"), &json!(true))
        );
        s
    }

    /// A workflow call whose last action fails: returns that action's error.
    async fn failed(&self, tool: &str, action: &str, args: Value) -> String {
        assert_failed_action_on(&self.call(tool, args).await, "db", action)
    }

    async fn rollback(&self, run: &Value) -> CallToolResult {
        self.call("enact_rollback", json!({"run_id": run["run_id"]}))
            .await
    }

    /// Stops the server; the folder (config, receipts) stays for a look.
    async fn finish(self) -> Folder {
        self.client.cancel().await.unwrap();
        self.folder
    }
}

/// The output of a run's last action.
fn output(s: &Value) -> &Value {
    &s["actions"].as_array().unwrap().last().unwrap()["output"]
}

/// Whether `schema.table` exists.
async fn exists(c: &tokio_postgres::Client, table: &str) -> bool {
    c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_runs_as_a_declared_workflow_and_reports_its_output() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text, \
         active boolean NOT NULL DEFAULT true);",
    )
    .await;
    let t = format!("{s}.users");
    let pg = start(100, "").await;

    let ins = pg
        .ok(
            "insert",
            json!({"table": t, "data": {"email": "a@b.c", "name": "Ann"}}),
        )
        .await;
    assert_eq!(
        ins["actions"],
        json!([{"action": "insert_row", "system": "db", "success": true,
                "output": {"row": {"id": 1, "email": "a@b.c", "name": "Ann", "active": true},
                           "already_done": false}}])
    );
    pg.ok("insert", json!({"table": t, "data": {"email": "b@b.c"}}))
        .await;

    let sel = pg.ok("select", json!({"table": t})).await;
    assert_eq!(
        output(&sel),
        &json!({"rows": [
            {"id": 1, "email": "a@b.c", "name": "Ann", "active": true},
            {"id": 2, "email": "b@b.c", "name": null, "active": true}
        ]})
    );
    let sel = pg
        .ok(
            "select",
            json!({"table": t, "where": {"name": null}, "limit": 5}),
        )
        .await;
    assert_eq!(
        output(&sel)["rows"],
        json!([{"id": 2, "email": "b@b.c", "name": null, "active": true}])
    );
    let sel = pg.ok("select", json!({"table": t, "limit": 1})).await;
    assert_eq!(output(&sel)["rows"].as_array().unwrap().len(), 1);

    let upd = pg
        .ok(
            "update",
            json!({"table": t, "data": {"name": "Bo", "active": false}, "where": {"id": 2}}),
        )
        .await;
    assert_eq!(
        output(&upd),
        &json!({"rows_updated": 1, "already_done": false})
    );
    let del = pg
        .ok("delete", json!({"table": t, "where": {"email": "a@b.c"}}))
        .await;
    assert_eq!(
        output(&del),
        &json!({"rows_deleted": 1, "already_done": false})
    );
    // Deleting what is already gone changes nothing and says so.
    let again = pg
        .ok("delete", json!({"table": t, "where": {"email": "a@b.c"}}))
        .await;
    assert_eq!(
        output(&again),
        &json!({"rows_deleted": 0, "already_done": "deleted"})
    );
    assert_eq!(
        dump(&c, &t, "id").await,
        [r#"{"id": 2, "name": "Bo", "email": "b@b.c", "active": false}"#]
    );

    // One signed receipt per call; over MCP the deleted row is only a hash, on disk it is whole.
    let receipts = pg.folder.receipt_files();
    assert_eq!(receipts.len(), 8);
    assert!(receipts.iter().all(signature_recomputes));
    let on_disk = &receipts[6]["actions_taken"][0];
    assert_eq!(on_disk["rollback_data"]["rows"][0]["email"], "a@b.c");
    assert_eq!(
        on_disk["target"]["type"], "postgres",
        "the receipt names the database it acted on"
    );
    let r = pg
        .call("enact_get_receipt", json!({"run_id": del["run_id"]}))
        .await;
    let shown = &structured(&r)["receipt"]["actions_taken"][0]["rollback_data"];
    assert_eq!(
        shown.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["bytes", "sha256"]
    );
    assert_eq!(structured(&r)["signature_valid"], true);
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_safe_insert_inserts_once_then_refuses_the_duplicate() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.users (id serial PRIMARY KEY, email text NOT NULL, name text);",
    )
    .await;
    let t = format!("{s}.users");
    let pg = start(100, "").await;
    let args =
        json!({"table": t, "data": {"email": "ann@acme.io", "name": "Ann"}, "unique_key": "email"});

    let first = pg.ok("safe_insert", args.clone()).await;
    assert_eq!(
        first["actions"],
        json!([
            {"action": "select_rows", "system": "db", "success": true, "output": {"rows": []}},
            {"action": "insert_row", "system": "db", "success": true,
             "output": {"row": {"id": 1, "email": "ann@acme.io", "name": "Ann"}, "already_done": false}}
        ])
    );

    let r = pg.call("safe_insert", args).await;
    assert_eq!(
        assert_failed_action_on(&r, "db", "insert_row"),
        "Row with email=ann@acme.io already exists"
    );
    let s2 = structured(&r);
    assert_eq!(s2["actions"][0]["output"]["rows"][0]["id"], 1);
    assert_eq!(s2["actions"].as_array().unwrap().len(), 2);
    assert_eq!(
        dump(&c, &t, "id").await,
        [r#"{"id": 1, "name": "Ann", "email": "ann@acme.io"}"#],
        "nothing inserted"
    );
    // The refused run has nothing to undo: its rollback is a PASS over the read step only.
    let rb = pg.rollback(&s2).await;
    assert!(!is_error(&rb), "{:?}", texts(&rb));
    assert_eq!(dump(&c, &t, "id").await.len(), 1);
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_where_policies_block_real_plans_and_change_nothing() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.users (id int PRIMARY KEY, name text); \
         INSERT INTO {s}.users VALUES (1, 'a'), (2, 'b');",
    )
    .await;
    let t = format!("{s}.users");
    let before = dump(&c, &t, "id").await;
    // `purge` deletes through the same action under another name: the policies judge the
    // plan, so renaming inputs or workflows does not get around them.
    let extra = r#"
[[workflows]]
name = "purge"
[workflows.inputs.target]
type = "string"
[workflows.inputs.filter]
type = "object"
default = {}
[[workflows.steps]]
system = "db"
action = "delete_row"
args = { table = "{{target}}", where = "{{filter}}" }

[[policies]]
policy = "no_delete_row"
workflows = ["delete"]

[[policies]]
policy = "no_delete_without_where"

[[policies]]
policy = "no_update_without_where"
"#;
    let pg = start(100, extra).await;

    let r = pg
        .call("delete", json!({"table": t, "where": {"id": 1}}))
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "no_delete_row",
            &format!("Deleting rows from '{t}' is blocked")
        )]
    );
    let r = pg.call("purge", json!({"target": t})).await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "no_delete_without_where",
            &format!("delete_row on '{t}' has no WHERE condition (it would delete every row)")
        )]
    );
    let r = pg.call("purge", json!({"target": t, "filter": {}})).await;
    assert_eq!(assert_block(&r).len(), 1);
    let r = pg
        .call("update", json!({"table": t, "data": {"name": "x"}}))
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "no_update_without_where",
            &format!("update_row on '{t}' has no WHERE condition (it would update every row)")
        )]
    );
    assert_eq!(dump(&c, &t, "id").await, before);

    // With a WHERE the same calls pass every policy and run.
    let s_upd = pg
        .ok(
            "update",
            json!({"table": t, "data": {"name": "x"}, "where": {"id": 1}}),
        )
        .await;
    assert!(results(&s_upd).contains(&(
        "no_update_without_where".into(),
        true,
        format!("update_row on '{t}' has a WHERE condition")
    )));
    let s_del = pg
        .ok("purge", json!({"target": t, "filter": {"id": 2}}))
        .await;
    assert_eq!(
        results(&s_del),
        [
            (
                "no_delete_without_where".into(),
                true,
                format!("delete_row on '{t}' has a WHERE condition")
            ),
            (
                "no_update_without_where".into(),
                true,
                "No update_row in this plan".into()
            )
        ],
        "no_delete_row is scoped to `delete`"
    );
    assert_eq!(dump(&c, &t, "id").await, [r#"{"id": 1, "name": "x"}"#]);
    let receipts = pg.folder.receipt_files();
    assert_eq!(
        receipts
            .iter()
            .map(|r| r["decision"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["BLOCK", "BLOCK", "BLOCK", "BLOCK", "PASS", "PASS"]
    );
    assert!(receipts.iter().all(signature_recomputes));
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_tables_matches_schema_qualified_quoted_and_any_case_names() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.payroll (id int PRIMARY KEY, salary numeric); \
         INSERT INTO {s}.payroll VALUES (1, 100); \
         CREATE TABLE {s}.notes (id int PRIMARY KEY, body text);",
    )
    .await;
    let t = format!("{s}.payroll");
    let before = dump(&c, &t, "id").await;
    let pg = start(
        100,
        "[[policies]]\npolicy = \"protect_tables\"\ntables = [\"Payroll\"]\n",
    )
    .await;

    let upper = format!("{}.PAYROLL", s.to_uppercase());
    let quoted = format!("\"{s}\".\"payroll\"");
    for (tool, args, shown) in [
        (
            "update",
            json!({"table": t, "data": {"salary": 1}, "where": {"id": 1}}),
            t.clone(),
        ),
        (
            "delete",
            json!({"table": upper, "where": {"id": 1}}),
            upper.clone(),
        ),
        (
            "insert",
            json!({"table": quoted, "data": {"id": 2, "salary": 1}}),
            quoted.clone(),
        ),
        ("select", json!({"table": "payroll"}), "payroll".into()),
    ] {
        let r = pg.call(tool, args).await;
        assert_eq!(
            assert_block(&r),
            [fail(
                "protect_tables",
                &format!("Table '{shown}' is protected")
            )],
            "{tool} {shown}"
        );
    }
    // A name the policy cannot parse fails it closed (a policy error is a BLOCK).
    let escaped = format!("{s}.U&\"\\0070ayroll\"");
    let r = pg
        .call("delete", json!({"table": escaped, "where": {"id": 1}}))
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "protect_tables",
            &format!("policy error: step 1 (db.delete_row): table name '{escaped}' is malformed")
        )]
    );
    assert_eq!(dump(&c, &t, "id").await, before);

    let notes = format!("{s}.notes");
    let ok = pg
        .ok("insert", json!({"table": notes, "data": {"id": 1}}))
        .await;
    assert_eq!(
        results(&ok),
        [(
            "protect_tables".into(),
            true,
            format!("Table '{notes}' is not protected (Payroll)")
        )]
    );
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contractor_cannot_write_pii_columns() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.people (id int PRIMARY KEY, name text, ssn text, email text); \
         INSERT INTO {s}.people VALUES (1, 'Ann', '111-22-3333', 'ann@acme.io');",
    )
    .await;
    let t = format!("{s}.people");
    let before = dump(&c, &t, "id").await;
    let policy =
        "[[policies]]\npolicy = \"contractor_cannot_write_pii\"\nfields = [\"ssn\", \"email\"]\n";
    let pg = start_with(100, policy, &[("ENACT_ACTOR_ROLE", "contractor")]).await;

    let r = pg
        .call(
            "insert",
            json!({"table": t, "data": {"id": 2, "name": "Bo", "ssn": "999-00-1111"}}),
        )
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "contractor_cannot_write_pii",
            &format!("Contractor cannot write PII column 'ssn' in '{t}'")
        )]
    );
    let r = pg
        .call(
            "update",
            json!({"table": t, "data": {"EMAIL": "x@evil.io"}, "where": {"id": 1}}),
        )
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "contractor_cannot_write_pii",
            &format!("Contractor cannot write PII column 'EMAIL' in '{t}'")
        )]
    );
    let r = pg
        .call(
            "safe_insert",
            json!({"table": t, "data": {"id": 3, "email": "c@acme.io"}, "unique_key": "email"}),
        )
        .await;
    assert_eq!(
        assert_block(&r).len(),
        1,
        "the built-in's plan is judged too"
    );
    assert_eq!(dump(&c, &t, "id").await, before);

    // Reads, and writes of other columns, are fine.
    let ok = pg
        .ok(
            "update",
            json!({"table": t, "data": {"name": "Annie"}, "where": {"ssn": "111-22-3333"}}),
        )
        .await;
    assert_eq!(
        results(&ok),
        [(
            "contractor_cannot_write_pii".into(),
            true,
            format!("Writes to '{t}' touch no PII column (ssn, email)")
        )]
    );
    let receipts = pg.folder.receipt_files();
    assert_eq!(receipts.len(), 4);
    pg.finish().await;

    // The same write by an engineer (the config's role) passes.
    let pg = start(100, policy).await;
    let ok = pg
        .ok(
            "update",
            json!({"table": t, "data": {"email": "ann@new.io"}, "where": {"id": 1}}),
        )
        .await;
    assert_eq!(
        results(&ok),
        [(
            "contractor_cannot_write_pii".into(),
            true,
            "Actor role 'engineer' is not contractor".into()
        )]
    );
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_table_is_restored_exactly_by_enact_rollback() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.orders (id serial PRIMARY KEY, customer text NOT NULL, \
            total numeric(12,2), ratio numeric, big bigint, placed timestamptz, \
            meta jsonb, tags text[], qtys int[], shipped boolean NOT NULL DEFAULT false); \
         INSERT INTO {s}.orders (customer, total, ratio, big, placed, meta, tags, qtys) \
         SELECT 'customer ' || g, g * 10.05, g::numeric / 3, 9007199254740993 + g, \
                timestamptz '2024-03-01 09:00:00.123456+01' + g * interval '1 hour 0.000001 second', \
                jsonb_build_object('n', g, 'big', 12345678901234567890.5, 'nested', jsonb_build_array(g, 'x', null, 0.10)), \
                ARRAY['t' || g, NULL, 'with \"quote\"'], ARRAY[g, -g] \
         FROM generate_series(1, 150) g; \
         DELETE FROM {s}.orders WHERE id % 10 = 0;",
    )
    .await;
    let t = format!("{s}.orders");
    let before = dump(&c, &t, "id").await;
    assert_eq!(before.len(), 135);
    let pg = start(1000, "").await;

    let wipe = pg
        .ok("delete", json!({"table": t, "where": {"shipped": false}}))
        .await;
    assert_eq!(
        output(&wipe),
        &json!({"rows_deleted": 135, "already_done": false})
    );
    assert!(dump(&c, &t, "id").await.is_empty());

    let r = pg.rollback(&wipe).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    let rb = assert_shape(&r);
    assert_eq!(
        (&rb["decision"], &rb["success"], &rb["rollback_of"]),
        (&json!("PASS"), &json!(true), &wipe["run_id"])
    );
    assert_eq!(
        rb["actions"],
        json!([{"action": "delete_row", "system": "db", "success": true,
                "output": {"table": t, "undone": "re-inserted 135 row(s)"}}])
    );
    assert!(
        texts(&r)[0].starts_with(&format!(
            "ROLLBACK PASS: run {} undone, 1 step(s)",
            wipe["run_id"].as_str().unwrap()
        )),
        "{}",
        texts(&r)[0]
    );
    assert_eq!(dump(&c, &t, "id").await, before);
    // The sequence was not moved by re-inserting explicit keys: a new row gets the next id.
    let fresh = pg
        .ok("insert", json!({"table": t, "data": {"customer": "new"}}))
        .await;
    assert_eq!(output(&fresh)["row"]["id"], 151);

    // A second rollback is refused, naming the first; nothing is inserted twice.
    let again = pg.rollback(&wipe).await;
    assert!(is_error(&again));
    assert_eq!(
        texts(&again)[0],
        format!(
            "Run {} was already rolled back by {}",
            wipe["run_id"].as_str().unwrap(),
            rb["run_id"].as_str().unwrap()
        )
    );
    assert_eq!(dump(&c, &t, "id").await.len(), 136);

    let receipts = pg.folder.receipt_files();
    let rb_receipt = receipts
        .iter()
        .find(|r| r["run_id"] == rb["run_id"])
        .unwrap();
    assert_eq!(rb_receipt["workflow"], "rollback:delete");
    assert_eq!(rb_receipt["rollback_of"], wipe["run_id"]);
    assert_eq!(
        rb_receipt["payload"],
        json!({"original_run_id": wipe["run_id"]})
    );
    assert!(signature_recomputes(rb_receipt));
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_is_partial_and_overwrites_nothing_when_a_row_changed_after_the_run() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.acct (id int PRIMARY KEY, owner text, balance numeric); \
         INSERT INTO {s}.acct VALUES (1, 'a', 10.00), (2, 'b', 20.00), (3, 'c', 30.00);",
    )
    .await;
    let t = format!("{s}.acct");
    let pg = start(100, "").await;
    let upd = pg
        .ok(
            "update",
            json!({"table": t, "data": {"owner": "agent"}, "where": {"owner": "b"}}),
        )
        .await;
    let del = pg
        .ok("delete", json!({"table": t, "where": {"id": 3}}))
        .await;

    // Someone else edits the updated row and re-creates the deleted one.
    c.batch_execute(&format!(
        "UPDATE {t} SET balance = 25 WHERE id = 2; INSERT INTO {t} VALUES (3, 'someone', 0);"
    ))
    .await
    .unwrap();
    let drifted = dump(&c, &t, "id").await;

    for (run, action, error) in [
        (
            &upd,
            "update_row",
            format!(
                "undo update_row on `{t}`: row (id=2) changed (column(s) balance) after the run — nothing restored"
            ),
        ),
        (
            &del,
            "delete_row",
            format!(
                "undo delete_row on `{t}`: a row with id=3 exists again after the run — nothing re-inserted"
            ),
        ),
    ] {
        let r = pg.rollback(run).await;
        assert!(is_error(&r));
        let rb = assert_shape(&r);
        assert_eq!(
            (&rb["decision"], &rb["success"]),
            (&json!("PARTIAL"), &json!(false))
        );
        assert_eq!(
            rb["actions"],
            json!([{"action": action, "system": "db", "success": false, "output": {"error": error}}])
        );
        assert!(
            texts(&r)[0].starts_with(&format!(
                "ROLLBACK PARTIAL: run {} — failed: {action}: {error}",
                run["run_id"].as_str().unwrap()
            )),
            "{}",
            texts(&r)[0]
        );
        assert_eq!(dump(&c, &t, "id").await, drifted, "nothing overwritten");
    }
    let receipts = pg.folder.receipt_files();
    assert_eq!(
        receipts
            .iter()
            .map(|r| r["decision"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["PASS", "PASS", "PARTIAL", "PARTIAL"]
    );
    assert!(receipts.iter().all(signature_recomputes));

    // Once the row is as the run left it, the rollback is retried and completes.
    c.execute(&format!("UPDATE {t} SET balance = 20.00 WHERE id = 2"), &[])
        .await
        .unwrap();
    let r = pg.rollback(&upd).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    assert_eq!(structured(&r)["decision"], "PASS");
    assert_eq!(
        dump(&c, &t, "id").await,
        [
            r#"{"id": 1, "owner": "a", "balance": 10.00}"#,
            r#"{"id": 2, "owner": "b", "balance": 20.00}"#,
            r#"{"id": 3, "owner": "someone", "balance": 0}"#
        ]
    );
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rows_missing_keys_and_cascades_are_refused_with_nothing_changed() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.items (id int PRIMARY KEY, grp int); \
         INSERT INTO {s}.items SELECT g, g % 2 FROM generate_series(1, 9) g; \
         CREATE TABLE {s}.log (msg text); INSERT INTO {s}.log VALUES ('hello'); \
         CREATE TABLE {s}.customers (id int PRIMARY KEY); INSERT INTO {s}.customers VALUES (1); \
         CREATE TABLE {s}.orders (id int PRIMARY KEY, \
            customer int REFERENCES {s}.customers ON DELETE CASCADE); \
         INSERT INTO {s}.orders VALUES (1, 1);",
    )
    .await;
    let items = format!("{s}.items");
    let log = format!("{s}.log");
    let customers = format!("{s}.customers");
    let snapshot = async || {
        let mut all = Vec::new();
        for (t, pk) in [
            (&items, "id"),
            (&log, "msg"),
            (&customers, "id"),
            (&format!("{s}.orders"), "id"),
        ] {
            all.extend(dump(&c, t, pk).await);
        }
        all
    };
    let before = snapshot().await;
    let pg = start(4, "").await;

    assert_eq!(
        pg.failed(
            "update",
            "update_row",
            json!({"table": items, "data": {"grp": 7}, "where": {"grp": 1}})
        )
        .await,
        format!(
            "update_row on `{items}`: 5 rows match, more than max_rows (4) — refused, nothing was updated"
        )
    );
    assert_eq!(
        pg.failed(
            "delete",
            "delete_row",
            json!({"table": items, "where": {"grp": 1}})
        )
        .await,
        format!(
            "delete_row on `{items}`: 5 rows match, more than max_rows (4) — refused, nothing was deleted"
        )
    );
    let refused = format!(
        "table `{log}` has no primary key — changes to it are refused because they could not be undone exactly"
    );
    assert_eq!(
        pg.failed(
            "update",
            "update_row",
            json!({"table": log, "data": {"msg": "x"}, "where": {"msg": "hello"}})
        )
        .await,
        format!("update_row on `{log}`: {refused}")
    );
    assert_eq!(
        pg.failed(
            "insert",
            "insert_row",
            json!({"table": log, "data": {"msg": "x"}})
        )
        .await,
        format!("insert_row on `{log}`: {refused}")
    );
    assert_eq!(
        pg.failed(
            "delete",
            "delete_row",
            json!({"table": customers, "where": {"id": 1}})
        )
        .await,
        format!(
            "delete_row on `{customers}`: table `{s}.orders` references `{customers}` with ON DELETE CASCADE (constraint `orders_customer_fkey`) — deleting rows here would also change rows there, which rollback could not restore; refused"
        )
    );
    assert_eq!(snapshot().await, before);

    // Reading a keyless table is fine, and exactly max_rows rows may change.
    let sel = pg.ok("select", json!({"table": log})).await;
    assert_eq!(output(&sel)["rows"], json!([{"msg": "hello"}]));
    let del = pg
        .ok("delete", json!({"table": items, "where": {"grp": 0}}))
        .await;
    assert_eq!(output(&del)["rows_deleted"], 4);
    let receipts = pg.folder.receipt_files();
    assert_eq!(receipts.len(), 7, "refused actions are recorded too");
    assert!(
        receipts[..5]
            .iter()
            .all(|r| r["decision"] == "PASS" && r["actions_taken"][0]["success"] == false)
    );
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifier_injection_is_refused_and_the_database_is_unchanged() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.users (id int PRIMARY KEY, name text); \
         INSERT INTO {s}.users VALUES (1, 'a'); \
         CREATE TABLE {s}.canary (id int PRIMARY KEY); INSERT INTO {s}.canary VALUES (1);",
    )
    .await;
    let users = format!("{s}.users");
    let canary = format!("{s}.canary");
    let before = dump(&c, &users, "id").await;
    let pg = start(100, "").await;

    // Table names: never spliced into SQL, only resolved through the catalog.
    for table in [
        format!("{users}; DROP TABLE {canary}"),
        format!("{users}; DROP TABLE {canary}; --"),
        format!("{s}.\"users\"\"; DROP TABLE {canary}; --\""),
        format!("{s}.\"users; DROP TABLE {canary}\""),
        format!("{s}.U&\"\\0075sers\""),
        format!("U&\"{s}\".users"),
        format!("{users} WHERE 1=1"),
        format!("({users})"),
    ] {
        for (tool, action, args) in [
            ("select", "select_rows", json!({"table": table})),
            (
                "delete",
                "delete_row",
                json!({"table": table, "where": {"id": 1}}),
            ),
        ] {
            let e = pg.failed(tool, action, args).await;
            assert!(
                e.starts_with(&format!(
                    "{action} on `{table}`: table `{table}` does not exist"
                )),
                "{table}: {e}"
            );
        }
    }
    // A quoted name is an identifier like any other: it resolves to the table it names.
    let sel = pg
        .ok("select", json!({"table": format!("\"{s}\".\"users\"")}))
        .await;
    assert_eq!(output(&sel)["rows"], json!([{"id": 1, "name": "a"}]));

    // Column names in `data` and `where`: compared with the catalog's, never spliced.
    let bad_columns = [
        format!("name\"; DROP TABLE {canary}; --"),
        format!("name = 'x'; DROP TABLE {canary}; --"),
        "\"name\"".to_string(),
        "id) OR (1=1".to_string(),
        "name\" = 'x' OR \"id".to_string(),
        "NAME".to_string(),
    ];
    for column in &bad_columns {
        let missing =
            format!("column `{column}` does not exist in table `{users}` (columns: id, name)");
        let e = pg
            .failed(
                "update",
                "update_row",
                json!({"table": users, "data": {column: "x"}, "where": {"id": 1}}),
            )
            .await;
        assert_eq!(e, format!("update_row on `{users}`: {missing}"));
        let e = pg
            .failed(
                "update",
                "update_row",
                json!({"table": users, "data": {"name": "x"}, "where": {column: 1}}),
            )
            .await;
        assert_eq!(e, format!("update_row on `{users}`: {missing}"));
        let e = pg
            .failed(
                "delete",
                "delete_row",
                json!({"table": users, "where": {column: 1}}),
            )
            .await;
        assert_eq!(e, format!("delete_row on `{users}`: {missing}"));
        let e = pg
            .failed(
                "insert",
                "insert_row",
                json!({"table": users, "data": {"id": 2, column: "x"}}),
            )
            .await;
        assert_eq!(e, format!("insert_row on `{users}`: {missing}"));
    }

    // Arguments of the wrong shape never reach the connector: an input_schema BLOCK.
    for (tool, args, reason) in [
        (
            "select",
            json!({"table": users, "limit": "1; DROP TABLE canary"}),
            "argument `limit` must be an integer, got a string \"1; DROP TABLE canary\""
                .to_string(),
        ),
        (
            "select",
            json!({"table": {"name": users}}),
            format!("argument `table` must be a string, got an object {{\"name\":\"{users}\"}}"),
        ),
        (
            "select",
            json!({"table": format!("{users}\u{0}")}),
            format!("db.select_rows: argument `table`: invalid table name '{users}\u{0}'"),
        ),
        (
            "delete",
            json!({"table": users, "where": "id = 1 OR 1=1"}),
            "argument `where` must be an object, got a string \"id = 1 OR 1=1\"".to_string(),
        ),
    ] {
        let r = pg.call(tool, args.clone()).await;
        assert_eq!(assert_block(&r), [fail("input_schema", &reason)], "{args}");
    }

    // Values are bound as parameters: SQL in a value is stored as text.
    let text = format!("x'); DROP TABLE {canary}; --");
    pg.ok(
        "insert",
        json!({"table": users, "data": {"id": 2, "name": text}}),
    )
    .await;
    let sel = pg
        .ok("select", json!({"table": users, "where": {"name": text}}))
        .await;
    assert_eq!(output(&sel)["rows"], json!([{"id": 2, "name": text}]));

    assert!(exists(&c, &canary).await, "the canary table survived");
    assert_eq!(dump(&c, &canary, "id").await, [r#"{"id": 1}"#]);
    let after = dump(&c, &users, "id").await;
    assert_eq!((&after[..1], after.len()), (&before[..], 2));
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_numerics_and_bigints_round_trip_exactly_through_rollback() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.ledger (id bigint PRIMARY KEY, amount numeric(30,9), n bigint);",
    )
    .await;
    let t = format!("{s}.ledger");
    let pg = start(100, "").await;
    let row = json!({
        "id": "9007199254740993",
        "amount": "123456789012345678901.123456789",
        "n": "-9223372036854775808"
    });
    let ins = pg.ok("insert", json!({"table": t, "data": row})).await;
    assert_eq!(output(&ins)["row"], row);
    let exact = async || {
        let r = c
            .query_one(
                &format!("SELECT id::text, amount::text, n::text FROM {t}"),
                &[],
            )
            .await
            .unwrap();
        (
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2),
        )
    };
    let stored = (
        "9007199254740993".to_string(),
        "123456789012345678901.123456789".to_string(),
        "-9223372036854775808".to_string(),
    );
    assert_eq!(exact().await, stored);

    let sel = pg
        .ok(
            "select",
            json!({"table": t, "where": {"id": "9007199254740993", "amount": "123456789012345678901.123456789"}}),
        )
        .await;
    assert_eq!(output(&sel)["rows"], json!([row]));
    // The neighbouring key, which a double would confuse it with, matches nothing.
    let sel = pg
        .ok(
            "select",
            json!({"table": t, "where": {"id": "9007199254740992"}}),
        )
        .await;
    assert_eq!(output(&sel)["rows"], json!([]));
    // As a JSON number the argument is refused: it is not the double it would become.
    let r = pg
        .call(
            "select",
            json!({"table": t, "where": {"id": 9007199254740993u64}}),
        )
        .await;
    let failed = assert_block(&r);
    assert_eq!(failed[0].0, "input_schema");
    assert!(failed[0].1.contains("9007199254740993"), "{failed:?}");

    let before = dump(&c, &t, "id").await;
    let del = pg
        .ok(
            "delete",
            json!({"table": t, "where": {"id": "9007199254740993"}}),
        )
        .await;
    assert_eq!(output(&del)["rows_deleted"], 1);
    assert!(dump(&c, &t, "id").await.is_empty());
    let r = pg.rollback(&del).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    assert_eq!(dump(&c, &t, "id").await, before);
    assert_eq!(exact().await, stored);

    // Receipts hold the exact text, and still verify (no inexact JSON number was signed).
    let receipts = pg.folder.receipt_files();
    for r in &receipts {
        if !signature_recomputes(r) {
            eprintln!("BAD {}", serde_json::to_string_pretty(r).unwrap());
        }
    }
    assert!(receipts.iter().all(signature_recomputes));
    assert_eq!(
        receipts[0]["payload"]["data"]["amount"],
        "123456789012345678901.123456789"
    );
    let deleted = receipts
        .iter()
        .find(|r| r["run_id"] == del["run_id"])
        .unwrap();
    assert_eq!(
        deleted["actions_taken"][0]["rollback_data"]["rows"][0]["id"],
        "9007199254740993"
    );
    let folder = pg.finish().await;

    // The BLOCK receipt keeps the refused number as the string of its digits (SPEC §5.2), and
    // its signature covers exactly that text: rewriting it to the double it would round to is
    // detected.
    let blocked = receipts.iter().find(|r| r["decision"] == "BLOCK").unwrap();
    assert_eq!(blocked["payload"]["where"]["id"], "9007199254740993");
    let id = blocked["run_id"].as_str().unwrap();
    let verify = || {
        std::process::Command::new(enact_bin())
            .args(["receipts", "verify", id, "--config"])
            .arg(folder.config())
            .env("ENACT_SECRET", SECRET)
            .env("TEST_PG_DSN", test_dsn())
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let number = "\"id\":\"9007199254740993\"";
    crate::journal::edit_receipt(&folder.receipts(), id, |line| {
        assert_eq!(line.matches(number).count(), 1, "{line}");
        line.replace(number, "\"id\":\"9007199254740992\"")
    });
    let out = verify();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dsn_password_never_appears_in_results_logs_receipts_or_resources() {
    let (_c, s) = schema_with(
        "CREATE TABLE {s}.p (id int PRIMARY KEY, v text); INSERT INTO {s}.p VALUES (1, 'a');",
    )
    .await;
    let t = format!("{s}.p");
    let password = test_password();
    assert!(
        password.len() >= 8,
        "the test DSN has a password to look for"
    );
    let dsn = test_dsn();
    let folder = Folder::new(&config(100, ""));
    let (client, log) =
        connect_with_stderr(&folder, &[("TEST_PG_DSN", &dsn), ("RUST_LOG", "trace")]).await;
    let mut seen: Vec<String> = Vec::new();

    let mut run_ids = Vec::new();
    for (tool, args) in [
        ("insert", json!({"table": t, "data": {"id": 2, "v": "b"}})),
        ("insert", json!({"table": t, "data": {"id": 2}})),
        ("select", json!({"table": "missing_table"})),
        ("select", json!({"table": t, "where": {"id": "abc"}})),
        (
            "update",
            json!({"table": t, "data": {"v": "c"}, "where": {"id": 1}}),
        ),
        ("delete", json!({"table": t, "where": {"id": 2}})),
        (
            "safe_insert",
            json!({"table": t, "data": {"id": 1, "v": "x"}, "unique_key": "id"}),
        ),
        ("select", json!({"table": 5})),
    ] {
        let r = call(&client, tool, args).await;
        run_ids.push(structured(&r)["run_id"].as_str().unwrap().to_string());
        seen.push(serde_json::to_string(&r).unwrap());
    }
    for (tool, args) in [
        ("enact_rollback", json!({"run_id": run_ids[5]})),
        ("enact_rollback", json!({"run_id": run_ids[4]})),
        (
            "enact_preview",
            json!({"workflow": "select", "arguments": {"table": t}}),
        ),
        ("enact_list_receipts", json!({"limit": 500})),
    ] {
        let r = call(&client, tool, args).await;
        assert!(!is_error(&r), "{tool}: {:?}", texts(&r));
        seen.push(serde_json::to_string(&r).unwrap());
    }
    let mut uris = vec![
        "enact://receipts".to_string(),
        "enact://policies".into(),
        "enact://workflows".into(),
    ];
    for r in folder.receipt_files() {
        let id = r["run_id"].as_str().unwrap();
        let got = call(&client, "enact_get_receipt", json!({"run_id": id})).await;
        seen.push(serde_json::to_string(&got).unwrap());
        uris.push(format!("enact://receipts/{id}"));
    }
    for uri in &uris {
        seen.push(read_json(&client, uri).await.to_string());
    }
    client.cancel().await.unwrap();
    let stderr = log.await.unwrap();
    assert!(
        stderr.contains("run recorded"),
        "the log was captured: {stderr}"
    );

    // A database nothing listens on, with a password in the DSN: clear failures, no password.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed_pw = "Cl0sed-Port-Pw-9f3e1a";
    let closed = format!("host=127.0.0.1 port={port} user=enact password={closed_pw} dbname=shop");
    let (client, log) =
        connect_with_stderr(&folder, &[("TEST_PG_DSN", &closed), ("RUST_LOG", "trace")]).await;
    let r = call(&client, "select", json!({"table": t})).await;
    let e = assert_failed_action_on(&r, "db", "select_rows");
    assert!(
        e.starts_with(&format!(
            "select_rows on `{t}`: cannot connect to the database at 127.0.0.1:{port}/shop: "
        )),
        "{e}"
    );
    seen.push(serde_json::to_string(&r).unwrap());
    let r = call(&client, "insert", json!({"table": t, "data": {"id": 9}})).await;
    assert!(assert_failed_action_on(&r, "db", "insert_row").contains("cannot connect"));
    seen.push(serde_json::to_string(&r).unwrap());
    seen.push(read_json(&client, "enact://receipts").await.to_string());
    client.cancel().await.unwrap();
    let closed_stderr = log.await.unwrap();
    assert!(!closed_stderr.is_empty());

    let receipts: Vec<String> = folder
        .receipt_files()
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(receipts.len(), 12);
    for (what, text) in [
        ("tool results and resources", seen.join("\n")),
        ("stderr", stderr),
        ("stderr (closed port)", closed_stderr),
        ("receipts", receipts.join("\n")),
    ] {
        assert!(!text.contains(&password), "the password leaked into {what}");
        assert!(
            !text.contains(closed_pw),
            "the closed-port password leaked into {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_least_privilege_role_can_run_and_roll_back_every_action() {
    let Some(server) = crate::postgres::sandbox() else {
        return; // needs a superuser to create the role
    };
    // The README's grants, for a schema and a role of this test's own (roles are cluster-wide).
    let (c, s) = schema_with(
        "CREATE TABLE {s}.customers (id serial PRIMARY KEY, email text UNIQUE NOT NULL, \
            plan text, seats int); \
         INSERT INTO {s}.customers (email, plan, seats) VALUES ('a@x.io', 'free', 1), \
            ('b@x.io', 'pro', 5);",
    )
    .await;
    let role = format!("enact_agent_{}", &s[2..14]);
    let password = format!("pw-{}", &s[14..30]);
    c.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}'; \
         GRANT USAGE ON SCHEMA {s} TO {role}; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {role}; \
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {role};"
    ))
    .await
    .unwrap();
    let t = format!("{s}.customers");
    let before = dump(&c, &t, "id").await;
    let dsn = format!(
        "host=127.0.0.1 port={} user={role} password={password} dbname=postgres sslmode=disable",
        server.port()
    );
    let folder = Folder::new(&config(100, ""));
    let client = connect(&folder, &[("TEST_PG_DSN", &dsn)]).await;
    let pg = Pg { folder, client };

    let ins = pg
        .ok(
            "insert",
            json!({"table": t, "data": {"email": "c@x.io", "seats": 2}}),
        )
        .await;
    assert_eq!(output(&ins)["row"]["id"], 3);
    let upd = pg
        .ok(
            "update",
            json!({"table": t, "data": {"plan": "pro"}, "where": {"email": "a@x.io"}}),
        )
        .await;
    let del = pg
        .ok("delete", json!({"table": t, "where": {"plan": "pro"}}))
        .await;
    assert_eq!(output(&del)["rows_deleted"], 2);
    let sel = pg.ok("select", json!({"table": t})).await;
    assert_eq!(output(&sel)["rows"].as_array().unwrap().len(), 1);
    for run in [&del, &upd, &ins] {
        let r = pg.rollback(run).await;
        assert!(!is_error(&r), "{:?}", texts(&r));
    }
    assert_eq!(dump(&c, &t, "id").await, before);

    // No DDL and no other schema: the grants are all it has.
    let other = c
        .query_one(
            "SELECT has_schema_privilege($1, 'public', 'CREATE') \
                 OR has_database_privilege($1, 'postgres', 'CREATE'), \
                 (SELECT rolsuper FROM pg_roles WHERE rolname = $1)",
            &[&role],
        )
        .await
        .unwrap();
    assert_eq!(
        (other.get::<_, bool>(0), other.get::<_, bool>(1)),
        (false, false)
    );
    pg.finish().await;
    c.batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .await
        .unwrap();
}

/// stdin closing while a call runs must not cut the run short: rmcp stops waiting for its
/// handlers after 5 s, but `serve` waits until every started run has written its receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_still_running_when_stdin_closes_finishes_and_writes_its_receipt() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let (c, s) = schema_with(
        "CREATE TABLE {s}.jobs (id int PRIMARY KEY, state text NOT NULL);
         INSERT INTO {s}.jobs VALUES (1, 'queued');",
    )
    .await;
    let t = format!("{s}.jobs");
    let folder = Folder::new(&config(100, ""));
    let dsn = test_dsn();
    let mut cmd = crate::mcp::serve_command(&folder, &[("TEST_PG_DSN", &dsn)]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    stdin
        .write_all(format!("{init}\n").as_bytes())
        .await
        .unwrap();
    stdout.next_line().await.unwrap().unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await
        .unwrap();

    // Another session holds the row: the agent's update waits on its lock.
    let mut holder = crate::postgres::client().await;
    let tx = holder.transaction().await.unwrap();
    tx.execute(&format!("SELECT * FROM {t} WHERE id = 1 FOR UPDATE"), &[])
        .await
        .unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "update", "arguments": {"table": t, "data": {"state": "done"}, "where": {"id": 1}}}});
    stdin
        .write_all(format!("{call}\n").as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(stdin);
    // Past rmcp's 5 s drain: without the wait in `serve` the process would be gone by now.
    tokio::time::sleep(std::time::Duration::from_millis(6500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve exited with a call still running"
    );
    tx.commit().await.unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waiting for them to finish"), "{stderr}");
    let receipts = folder.receipt_files();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["decision"], "PASS");
    assert_eq!(receipts[0]["actions_taken"][0]["success"], true);
    let state: String = c
        .query_one(&format!("SELECT state FROM {t} WHERE id = 1"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "done");
}

/// SPEC §2 `statement_timeout`: a row lock held by another session fails the action once the
/// timeout expires — the call returns, its error names the timeout, nothing changed — instead
/// of waiting for the lock forever. The connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_lock_held_elsewhere_fails_the_action_at_the_statement_timeout() {
    let (c, s) = schema_with(
        "CREATE TABLE {s}.acct (id int PRIMARY KEY, balance int NOT NULL); \
         INSERT INTO {s}.acct VALUES (1, 100), (2, 200);",
    )
    .await;
    let t = format!("{s}.acct");
    let before = dump(&c, &t, "id").await;
    let text = config(100, "").replace(
        "max_rows = 100\n",
        "max_rows = 100\nstatement_timeout = \"1s\"\n",
    );
    assert!(text.contains("statement_timeout = \"1s\""));
    let folder = Folder::new(&text);
    let dsn = test_dsn();
    let client = connect(&folder, &[("TEST_PG_DSN", &dsn)]).await;
    let pg = Pg { folder, client };

    // Another session holds row 1 locked until it ends its transaction.
    let mut holder = crate::postgres::client().await;
    let tx = holder.transaction().await.unwrap();
    tx.execute(&format!("SELECT 1 FROM {t} WHERE id = 1 FOR UPDATE"), &[])
        .await
        .unwrap();

    let update = json!({"table": t, "data": {"balance": 0}, "where": {"id": 1}});
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        pg.call("update", update.clone()),
    )
    .await
    .expect("the call waited for the lock instead of failing at statement_timeout");
    let waited = started.elapsed();
    let error = assert_failed_action_on(&r, "db", "update_row");
    assert_eq!(
        error,
        format!(
            "update_row on `{t}`: cannot select the rows to change: canceling statement due to \
             statement timeout — statement_timeout (1s) reached, nothing was changed"
        )
    );
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "failed before the timeout: {waited:?}"
    );
    // Row 2 is not locked, but the failed action changed nothing at all.
    assert_eq!(dump(&c, &t, "id").await, before);
    tx.rollback().await.unwrap();
    assert_eq!(dump(&c, &t, "id").await, before);

    // The same connection serves the next call once the lock is gone.
    let ok = pg.ok("update", update).await;
    assert_eq!(output(&ok)["rows_updated"], 1);
    assert_eq!(
        dump(&c, &t, "id").await,
        [
            r#"{"id": 1, "balance": 0}"#.to_string(),
            r#"{"id": 2, "balance": 200}"#.to_string()
        ]
    );
    pg.finish().await;
}
