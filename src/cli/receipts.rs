//! `enact receipts list|show|verify`: the operator's view of the receipts folder. Receipts are
//! shown whole here (the MCP view redacts `rollback_data`).

use serde_json::json;

use super::{ConfigArg, EXIT_FAILED, EXIT_OK, EXIT_USAGE, ReceiptsCommand, load_config_with};
use crate::kernel::policy::Decision;
use crate::store::{ListFilter, Store};

pub fn run(cmd: ReceiptsCommand) -> u8 {
    match cmd {
        ReceiptsCommand::List {
            limit,
            workflow,
            decision,
            json,
            config,
        } => with_store(&config, |store| {
            list(store, limit, workflow, decision, json)
        }),
        ReceiptsCommand::Show { run_id, config } => {
            with_store(&config, |store| show(store, &run_id))
        }
        // A whole-journal audit reads every line itself: no index is loaded for it.
        ReceiptsCommand::Verify {
            run_id: None,
            expect_head,
            config,
        } => with_store_opened(&config, Store::open_for_audit, |store| {
            verify(store, None, expect_head.as_deref())
        }),
        ReceiptsCommand::Verify {
            run_id,
            expect_head,
            config,
        } => with_store(&config, |store| {
            verify(store, run_id.as_deref(), expect_head.as_deref())
        }),
        ReceiptsCommand::Export { dir, config } => with_store(&config, |store| export(store, &dir)),
        ReceiptsCommand::Migrate { config } => migrate(&config),
        ReceiptsCommand::Repair {
            accept_truncation,
            operator,
            config,
        } => {
            if !accept_truncation {
                eprintln!(
                    "error: `enact receipts repair` needs --accept-truncation: it records that the lost receipts are gone for good"
                );
                return EXIT_USAGE;
            }
            with_store(&config, |store| repair(store, operator))
        }
        ReceiptsCommand::InitDb { config } => init_db(&config),
        ReceiptsCommand::Copy { to, config } => copy(&config, to),
    }
}

/// The config, with the database journal's DSN set (for `init-db` and `copy`).
fn config_with_receipts_db(arg: &ConfigArg) -> Result<crate::config::Config, u8> {
    let config = load_config_with(arg, crate::config::Credentials::Optional)?;
    let db = &config.receipts_db;
    if db.dsn.expose().is_empty() {
        eprintln!(
            "error: [receipts] dsn_env: environment variable `{}` is unset or empty",
            db.dsn_env
        );
        return Err(EXIT_USAGE);
    }
    Ok(config)
}

/// `enact receipts init-db`.
fn init_db(arg: &ConfigArg) -> u8 {
    let config = match config_with_receipts_db(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let db = &config.receipts_db;
    match Store::init_db(&db.dsn, &db.schema) {
        Ok(true) => {
            println!(
                "created the receipts journal tables in schema {}",
                db.schema
            );
            EXIT_OK
        }
        Ok(false) => {
            println!(
                "the receipts journal tables already exist in schema {}",
                db.schema
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

/// `enact receipts copy --to postgres|files`: every record, verbatim, into an empty target.
fn copy(arg: &ConfigArg, to: super::CopyTarget) -> u8 {
    let config = match config_with_receipts_db(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let db = &config.receipts_db;
    let files = || Store::open(&config.receipts_dir, config.fsync, config.secret.clone());
    let database = || Store::open_postgres(&db.dsn, &db.schema, config.secret.clone());
    let opened = match to {
        super::CopyTarget::Postgres => files().and_then(|f| Ok((f, database()?))),
        super::CopyTarget::Files => database().and_then(|d| Ok((d, files()?))),
    };
    let (from, into) = match opened {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let result = (|| {
        if !into.all_records().map_err(|e| e.to_string())?.is_empty() {
            return Err(format!(
                "{} already holds records: copy only into an empty journal",
                into.dir().display()
            ));
        }
        let records = from.all_records().map_err(|e| e.to_string())?;
        for record in &records {
            into.append_verbatim(record.clone())
                .map_err(|e| e.to_string())?;
        }
        Ok::<usize, String>(records.len())
    })();
    match result {
        Ok(n) => {
            println!(
                "copied {n} record(s) from {} to {}, every signature kept",
                from.dir().display(),
                into.dir().display()
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

fn with_store(arg: &ConfigArg, f: impl FnOnce(&Store) -> u8) -> u8 {
    with_store_opened(arg, Store::open, f)
}

fn with_store_opened(
    arg: &ConfigArg,
    open_files: super::OpenFiles,
    f: impl FnOnce(&Store) -> u8,
) -> u8 {
    // Reading receipts touches no system: the operator need not hold the agent's tokens.
    let config = match load_config_with(arg, crate::config::Credentials::Optional) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match super::open_store_with(&config, open_files) {
        Ok(store) => f(&store),
        Err(code) => code,
    }
}

fn list(
    store: &Store,
    limit: usize,
    workflow: Option<String>,
    decision: Option<String>,
    as_json: bool,
) -> u8 {
    if let Some(d) = &decision
        && Decision::parse_recorded(d).is_none()
    {
        eprintln!(
            "error: invalid --decision `{d}`: expected one of {}",
            Decision::recorded_names()
        );
        return EXIT_USAGE;
    }
    let filter = ListFilter {
        limit,
        workflow,
        decision,
    };
    let receipts = match store.list(&filter) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"receipts": receipts})).unwrap_or_default()
        );
        return EXIT_OK;
    }
    if receipts.is_empty() {
        println!("no receipts in {}", store.dir().display());
        return EXIT_OK;
    }
    println!(
        "{:<36}  {:<27}  {:<8}  {:<28}  ACTOR",
        "RUN ID", "TIMESTAMP", "DECISION", "WORKFLOW"
    );
    for r in receipts {
        let workflow = match &r.rollback_of {
            Some(orig) => format!("{} (of {})", r.workflow, &orig[..8.min(orig.len())]),
            None => r.workflow.clone(),
        };
        println!(
            "{:<36}  {:<27}  {:<8}  {:<28}  {}",
            r.run_id, r.timestamp, r.decision, workflow, r.actor_email
        );
    }
    EXIT_OK
}

fn show(store: &Store, run_id: &str) -> u8 {
    match store.load(run_id) {
        Ok(loaded) => {
            let out = json!({"receipt": loaded.value, "signature_valid": loaded.signature_valid});
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            if loaded.signature_valid {
                EXIT_OK
            } else {
                EXIT_FAILED
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

fn verify(store: &Store, run_id: Option<&str>, expect_head: Option<&str>) -> u8 {
    if let Some(id) = run_id {
        return match store.load(id) {
            Ok(l) if l.signature_valid => {
                println!("ok: receipt {id} has a valid signature");
                EXIT_OK
            }
            Ok(_) => {
                println!("{id}: bad_signature: the signature does not verify");
                EXIT_FAILED
            }
            Err(e) => {
                println!("{id}: {e}");
                EXIT_FAILED
            }
        };
    }
    let mut audit = match store.verify_all() {
        Ok(audit) => audit,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    if let Some(expected) = expect_head
        && !audit.hashes.contains(expected)
    {
        audit.problems.push(crate::store::Problem {
            subject: "journal".into(),
            kind: crate::store::problem_kind::EXPECTED_HEAD.into(),
            message: format!(
                "no receipt in the chain has the expected head hash {expected}: receipts up to it were removed or rewritten"
            ),
        });
    }
    for note in &audit.notes {
        println!("note: {note}");
    }
    let code = if audit.problems.is_empty() {
        println!(
            "ok: {} receipt(s) in {}: signatures and chain verify",
            audit.receipts,
            store.dir().display()
        );
        EXIT_OK
    } else {
        for p in &audit.problems {
            println!("{}: {}: {}", p.subject, p.kind, p.message);
        }
        println!(
            "{} problem(s) found in {}",
            audit.problems.len(),
            store.dir().display()
        );
        EXIT_FAILED
    };
    println!("head: {}", audit.head_hash);
    code
}

fn export(store: &Store, dir: &std::path::Path) -> u8 {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create `{}`: {e}", dir.display());
        return EXIT_FAILED;
    }
    let mut n = 0usize;
    let result = store.for_each_receipt(|value| {
        let run_id = value
            .get("run_id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if !crate::kernel::receipt::is_valid_run_id(run_id) {
            return Ok(());
        }
        let path = dir.join(format!("{run_id}.json"));
        let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
        text.push('\n');
        std::fs::write(&path, text).map_err(|source| crate::store::StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        n += 1;
        Ok(())
    });
    match result {
        Ok(()) => {
            println!("exported {n} receipt(s) to {}", dir.display());
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

fn migrate(arg: &ConfigArg) -> u8 {
    let config = match load_config_with(arg, crate::config::Credentials::Optional) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match Store::migrate(&config.receipts_dir, config.fsync, config.secret.clone()) {
        Ok(n) => {
            println!(
                "migrated {n} receipt(s) into {}/journal (the files were moved to migrated/)",
                config.receipts_dir.display()
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

fn repair(store: &Store, operator: Option<String>) -> u8 {
    let operator = super::operator_identity(operator);
    let run_id = uuid::Uuid::new_v4().to_string();
    match store.repair_truncation(&operator, chrono::Utc::now(), &run_id) {
        Ok(Some(record)) => {
            println!(
                "acknowledged: {} (record {run_id}); appends resume",
                record
                    .get("lost")
                    .map(|l| l.to_string())
                    .unwrap_or_default()
            );
            EXIT_OK
        }
        Ok(None) => {
            println!("nothing to repair: the chain and its head record agree");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}
