//! The receipts journal in PostgreSQL (SPEC §10) through the real binary: several processes on
//! one chain, rate limits across processes, one PASS rollback per run, the SELECT+INSERT-only
//! role, fail-closed when the database goes away, `receipts copy` both ways, and the DSN's
//! password never shown.

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::engine::{FILES_CONFIG, SECRET};
use crate::mcp::{Folder, enact_bin, is_error, structured, texts};
use crate::postgres::{client, test_dsn, test_password};

/// A fresh schema name (the journal creates it).
pub fn fresh_schema() -> String {
    format!("j_{}", uuid::Uuid::new_v4().simple())
}

pub fn pg_config(schema: &str, extra: &str) -> String {
    format!(
        "{FILES_CONFIG}{extra}\n[receipts]\nbackend = \"postgres\"\ndsn_env = \"ENACT_RECEIPTS_DSN\"\nschema = \"{schema}\"\n"
    )
}

fn enact(f: &Folder, args: &[&str], dsn: &str) -> Output {
    std::process::Command::new(enact_bin())
        .args(args)
        .arg("--config")
        .arg(f.config())
        .env("ENACT_SECRET", SECRET)
        .env("ENACT_RECEIPTS_DSN", dsn)
        .env("RUST_LOG", "trace")
        .env_remove("ENACT_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn save(path: &str) -> Value {
    json!({"path": path, "content": "x"})
}

async fn call(client: &crate::mcp::Client, args: Value) -> rmcp::model::CallToolResult {
    crate::mcp::call(client, "save", args).await
}

/// Every receipt in the database journal, in `pos` order.
async fn db_receipts(schema: &str) -> Vec<Value> {
    let c = client().await;
    c.query(
        &format!("SELECT body FROM \"{schema}\".records WHERE kind = 'receipt' ORDER BY pos"),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
    .collect()
}

fn assert_verifies(f: &Folder, dsn: &str) {
    let o = enact(f, &["receipts", "verify"], dsn);
    assert!(o.status.success(), "verify: {}", out(&o));
}

fn assert_no_password(text: &str) {
    let password = test_password();
    if !password.is_empty() {
        assert!(
            !text.contains(&password),
            "the DSN password leaked:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_with_concurrent_calls_append_to_one_contiguous_chain() {
    let dsn = test_dsn();
    let schema = fresh_schema();
    let f = Folder::new(&pg_config(&schema, ""));
    let env = [("ENACT_RECEIPTS_DSN", dsn.as_str())];
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(Arc::new(crate::mcp::connect(&f, &env).await));
    }
    let mut calls = Vec::new();
    for (p, server) in servers.iter().enumerate() {
        for k in 0..6 {
            let server = server.clone();
            calls.push(tokio::spawn(async move {
                call(&server, save(&format!("notes/p{p}-{k}.md"))).await
            }));
        }
    }
    for c in calls {
        let r = c.await.unwrap();
        assert!(!is_error(&r), "{:?}", texts(&r));
    }
    let receipts = db_receipts(&schema).await;
    assert_eq!(receipts.len(), 18);
    for (i, r) in receipts.iter().enumerate() {
        assert_eq!(r["seq"], i as u64, "one chain, no gaps: {r}");
    }
    assert_verifies(&f, &dsn);
    // `list` sees every process's receipts.
    let o = enact(&f, &["receipts", "list", "--json", "--limit", "100"], &dsn);
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed["receipts"].as_array().unwrap().len(), 18);
    assert_no_password(&out(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_max_5_holds_under_20_concurrent_calls_across_processes() {
    let dsn = test_dsn();
    let schema = fresh_schema();
    let f = Folder::new(&pg_config(
        &schema,
        "\n[[policies]]\npolicy = \"rate_limit\"\nmax = 5\nwindow = \"1h\"\n",
    ));
    let env = [("ENACT_RECEIPTS_DSN", dsn.as_str())];
    let a = Arc::new(crate::mcp::connect(&f, &env).await);
    let b = Arc::new(crate::mcp::connect(&f, &env).await);
    let mut calls = Vec::new();
    for k in 0..20 {
        let server = if k % 2 == 0 { a.clone() } else { b.clone() };
        calls.push(tokio::spawn(async move {
            call(&server, save(&format!("notes/r{k}.md"))).await
        }));
    }
    let mut pass = 0;
    for c in calls {
        let r = c.await.unwrap();
        if structured(&r)["decision"] == "PASS" {
            pass += 1;
        }
    }
    assert_eq!(pass, 5);
    let receipts = db_receipts(&schema).await;
    assert_eq!(receipts.len(), 20);
    assert_eq!(
        receipts.iter().filter(|r| r["decision"] == "PASS").count(),
        5
    );
    assert_verifies(&f, &dsn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cli_rollbacks_of_one_run_give_exactly_one_pass() {
    let dsn = test_dsn();
    let schema = fresh_schema();
    let f = Folder::new(&pg_config(&schema, ""));
    let env = [("ENACT_RECEIPTS_DSN", dsn.as_str())];
    let server = crate::mcp::connect(&f, &env).await;
    let r = call(&server, save("notes/a.md")).await;
    let run_id = structured(&r)["run_id"].as_str().unwrap().to_string();
    server.cancel().await.unwrap();

    let mut rollbacks = Vec::new();
    for _ in 0..3 {
        let f_config = f.config();
        let dsn = dsn.clone();
        let run_id = run_id.clone();
        rollbacks.push(tokio::task::spawn_blocking(move || {
            std::process::Command::new(enact_bin())
                .args(["rollback", &run_id, "--config"])
                .arg(&f_config)
                .env("ENACT_SECRET", SECRET)
                .env("ENACT_RECEIPTS_DSN", &dsn)
                .env_remove("ENACT_CONFIG")
                .output()
                .unwrap()
        }));
    }
    let mut outputs = Vec::new();
    for r in rollbacks {
        outputs.push(r.await.unwrap());
    }
    let winners: Vec<&Output> = outputs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        outputs.iter().map(out).collect::<Vec<_>>()
    );
    let rollbacks: Vec<Value> = db_receipts(&schema)
        .await
        .into_iter()
        .filter(|r| r["rollback_of"] == run_id.as_str())
        .collect();
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(rollbacks[0]["decision"], "PASS");
    let winner = rollbacks[0]["run_id"].as_str().unwrap();
    for o in outputs.iter().filter(|o| !o.status.success()) {
        assert_eq!(o.status.code(), Some(1));
        assert!(out(o).contains(winner), "names the winner: {}", out(o));
    }
    assert!(!f.workspace().join("notes/a.md").exists());
    assert_verifies(&f, &dsn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_roles_work_end_to_end_the_agent_role_only_reads_and_appends() {
    let dsn = test_dsn();
    let schema = fresh_schema();
    let f = Folder::new(&pg_config(&schema, ""));
    // The README's SQL, as a superuser, for roles and a schema of this test's own (roles are
    // cluster-wide).
    let owner = format!("o_{}", uuid::Uuid::new_v4().simple());
    let agent = format!("a_{}", uuid::Uuid::new_v4().simple());
    let (owner_pw, password) = (
        format!("pw-{}", uuid::Uuid::new_v4().simple()),
        format!("pw-{}", uuid::Uuid::new_v4().simple()),
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let teams = &readme[readme.find("## Teams").expect("README has a Teams section")..];
    let sql = teams
        .split("```sql\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the Teams section has an SQL block");
    let sql = sql
        .replace("enact_owner", &owner)
        .replace("enact_agent", &agent)
        .replace("'owner-password'", &format!("'{owner_pw}'"))
        .replace("'agent-password'", &format!("'{password}'"))
        .replace("SCHEMA enact ", &format!("SCHEMA \"{schema}\" "));
    client().await.batch_execute(&sql).await.unwrap();
    let role_dsn = |role: &str, password: &str| {
        let config: tokio_postgres::Config = dsn.parse().unwrap();
        let host = match config.get_hosts().first().unwrap() {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            other => panic!("{other:?}"),
        };
        format!(
            "host={host} port={} user={role} password={password} dbname={} sslmode=disable",
            config.get_ports()[0],
            config.get_dbname().unwrap_or("postgres")
        )
    };
    // The owner creates the journal.
    let owner_dsn = role_dsn(&owner, &owner_pw);
    let o = enact(&f, &["receipts", "init-db"], &owner_dsn);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("created"), "{}", out(&o));
    let o = enact(&f, &["receipts", "init-db"], &owner_dsn);
    assert!(out(&o).contains("already exist"), "{}", out(&o));
    assert!(!out(&o).contains(&owner_pw), "{}", out(&o));
    // Every Enact server runs as the agents' role.
    let role_dsn = role_dsn(&agent, &password);
    let env = [("ENACT_RECEIPTS_DSN", role_dsn.as_str())];
    let (server, log) = crate::mcp::connect_with_stderr(&f, &env).await;
    let r = call(&server, save("notes/a.md")).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    let run_id = structured(&r)["run_id"].as_str().unwrap().to_string();
    let r = crate::mcp::call(&server, "enact_rollback", json!({"run_id": run_id})).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    server.cancel().await.unwrap();
    let log = log.await.unwrap();
    assert!(
        !log.contains(&password),
        "the role's password leaked:\n{log}"
    );
    for args in [vec!["receipts", "verify"], vec!["receipts", "list"]] {
        let o = enact(&f, &args, &role_dsn);
        assert!(o.status.success(), "{args:?}: {}", out(&o));
        assert!(!out(&o).contains(&password));
    }
    // The role cannot rewrite history.
    let (c, conn) = tokio_postgres::connect(&role_dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let edit = c
        .execute(&format!("UPDATE \"{schema}\".records SET body = body"), &[])
        .await;
    assert!(edit.is_err());
}

/// A TCP proxy to the test server that can be cut (the database "goes away") and restored.
struct Proxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(port: u16, target: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                links.spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { port, task }
    }

    /// Closes the listener and every connection through it.
    async fn cut(self) -> u16 {
        self.task.abort();
        let _ = self.task.await;
        self.port
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_gone_calls_run_nothing_and_say_so_then_recover() {
    let dsn = test_dsn();
    let schema = fresh_schema();
    let f = Folder::new(&pg_config(&schema, ""));
    let config: tokio_postgres::Config = dsn.parse().unwrap();
    let target = config.get_ports()[0];
    let proxy = Proxy::start(0, target).await;
    let proxied = format!(
        "host=127.0.0.1 port={} user={} password={} dbname={} sslmode=disable connect_timeout=3",
        proxy.port,
        config.get_user().unwrap(),
        test_password(),
        config.get_dbname().unwrap_or("postgres")
    );
    let env = [
        ("ENACT_RECEIPTS_DSN", proxied.as_str()),
        ("RUST_LOG", "trace"),
    ];
    let (server, log) = crate::mcp::connect_with_stderr(&f, &env).await;
    let r = call(&server, save("notes/before.md")).await;
    assert!(!is_error(&r), "{:?}", texts(&r));

    let port = proxy.cut().await;
    let r = call(&server, save("notes/during.md")).await;
    assert!(is_error(&r));
    let text = texts(&r).join("\n");
    assert!(
        text.contains("the receipts journal cannot be written")
            && text.contains("nothing was done"),
        "{text}"
    );
    assert!(!f.workspace().join("notes/during.md").exists());
    assert_no_password(&text);

    // The database is back: calls run again.
    let _proxy = Proxy::start(port, target).await;
    let r = call(&server, save("notes/after.md")).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    server.cancel().await.unwrap();
    let log = log.await.unwrap();
    assert_no_password(&log);
    let receipts = db_receipts(&schema).await;
    assert_eq!(
        receipts.len(),
        2,
        "no receipt for the call that ran nothing"
    );
    assert_verifies(&f, &dsn);

    // A server cannot start without its journal.
    let gone = Proxy::start(0, target).await;
    let gone_dsn = proxied.replace(&format!("port={port}"), &format!("port={}", gone.port));
    gone.cut().await;
    let o = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking({
            let f_config = f.config();
            move || {
                std::process::Command::new(enact_bin())
                    .args(["serve", "--config"])
                    .arg(&f_config)
                    .env("ENACT_SECRET", SECRET)
                    .env("ENACT_RECEIPTS_DSN", &gone_dsn)
                    .env("RUST_LOG", "trace")
                    .env_remove("ENACT_CONFIG")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap()
            }
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("receipts database"), "{}", out(&o));
    assert_no_password(&out(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_copy_moves_a_journal_between_backends_keeping_every_signature() {
    let dsn = test_dsn();
    let schema = fresh_schema();
    // A folder journal first.
    let f = Folder::new(FILES_CONFIG);
    let server = crate::mcp::connect(&f, &[]).await;
    for k in 0..3 {
        call(&server, save(&format!("notes/c{k}.md"))).await;
    }
    server.cancel().await.unwrap();
    let folder_receipts = f.receipt_files();
    // Into the database.
    std::fs::write(f.config(), pg_config(&schema, "")).unwrap();
    let o = enact(&f, &["receipts", "copy", "--to", "postgres"], &dsn);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(db_receipts(&schema).await, folder_receipts);
    assert_verifies(&f, &dsn);
    // Not twice.
    let o = enact(&f, &["receipts", "copy", "--to", "postgres"], &dsn);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    // The database journal goes on, then back into an empty folder.
    let env = [("ENACT_RECEIPTS_DSN", dsn.as_str())];
    let server = crate::mcp::connect(&f, &env).await;
    call(&server, save("notes/c3.md")).await;
    server.cancel().await.unwrap();
    std::fs::remove_dir_all(f.receipts()).unwrap();
    let o = enact(&f, &["receipts", "copy", "--to", "files"], &dsn);
    assert!(o.status.success(), "{}", out(&o));
    let back = f.receipt_files();
    assert_eq!(back.len(), 4);
    assert_eq!(back, db_receipts(&schema).await);
    std::fs::write(f.config(), FILES_CONFIG).unwrap();
    assert_verifies(&f, &dsn);
    assert_no_password(&out(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_process_died_is_recovered_once_while_live_owners_are_left_alone() {
    let dsn = test_dsn();
    let schema = fresh_schema();
    let f = Folder::new(&pg_config(&schema, ""));
    // A live server holds its owner lock for its whole life.
    let env = [("ENACT_RECEIPTS_DSN", dsn.as_str())];
    let live = crate::mcp::connect(&f, &env).await;
    call(&live, save("notes/live.md")).await;
    // A server that dies after acting, before its receipt.
    let crash = [
        ("ENACT_RECEIPTS_DSN", dsn.as_str()),
        ("ENACT_TEST_CRASH_AT", "action"),
    ];
    let dying = crate::mcp::connect(&f, &crash).await;
    let params = rmcp::model::CallToolRequestParams::new("save")
        .with_arguments(save("notes/crashed.md").as_object().cloned().unwrap());
    assert!(
        dying.call_tool(params).await.is_err(),
        "the server was meant to abort"
    );
    assert!(f.workspace().join("notes/crashed.md").exists());
    // Two recoveries at once: one receipt.
    let a = tokio::task::spawn_blocking({
        let (f_config, dsn) = (f.config(), dsn.clone());
        move || recover(&f_config, &dsn)
    });
    let b = tokio::task::spawn_blocking({
        let (f_config, dsn) = (f.config(), dsn.clone());
        move || recover(&f_config, &dsn)
    });
    for o in [a.await.unwrap(), b.await.unwrap()] {
        assert!(o.status.success(), "{}", out(&o));
    }
    let receipts = db_receipts(&schema).await;
    let crashed: Vec<&Value> = receipts
        .iter()
        .filter(|r| r["payload"]["path"] == "notes/crashed.md")
        .collect();
    assert_eq!(crashed.len(), 1, "one receipt per run, ever");
    assert_eq!(crashed[0]["interrupted"], true);
    assert_eq!(
        crashed[0]["actions_taken"][0]["output"]["recovered"],
        "done"
    );
    // The live server still works and its run was not touched by recovery.
    let r = call(&live, save("notes/live2.md")).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    live.cancel().await.unwrap();
    assert_verifies(&f, &dsn);
}

fn recover(config: &std::path::Path, dsn: &str) -> Output {
    std::process::Command::new(enact_bin())
        .args(["recover", "--config"])
        .arg(config)
        .env("ENACT_SECRET", SECRET)
        .env("ENACT_RECEIPTS_DSN", dsn)
        .env_remove("ENACT_CONFIG")
        .output()
        .unwrap()
}
