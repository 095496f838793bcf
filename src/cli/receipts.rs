//! `enact receipts list|show|verify`: the operator's view of the receipts folder. Receipts are
//! shown whole here (the MCP view redacts `rollback_data`).

use serde_json::json;

use super::{
    ConfigArg, EXIT_FAILED, EXIT_OK, EXIT_USAGE, ReceiptsCommand, load_config_with, open_store,
};
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
        ReceiptsCommand::Verify { run_id, config } => {
            with_store(&config, |store| verify(store, run_id.as_deref()))
        }
    }
}

fn with_store(arg: &ConfigArg, f: impl FnOnce(&Store) -> u8) -> u8 {
    // Reading receipts touches no system: the operator need not hold the agent's tokens.
    let config = match load_config_with(arg, crate::config::Credentials::Optional) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match open_store(&config) {
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
        && Decision::parse(d).is_none()
    {
        eprintln!("error: invalid --decision `{d}`: expected PASS, BLOCK or PARTIAL");
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

fn verify(store: &Store, run_id: Option<&str>) -> u8 {
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
    match store.verify_all() {
        Ok(problems) if problems.is_empty() => {
            let count = store
                .list(&crate::store::ListFilter {
                    limit: usize::MAX,
                    ..Default::default()
                })
                .map(|l| l.len())
                .unwrap_or(0);
            println!(
                "ok: {count} receipt(s) in {}: signatures and chain verify",
                store.dir().display()
            );
            EXIT_OK
        }
        Ok(problems) => {
            for p in &problems {
                println!("{}: {}: {}", p.subject, p.kind, p.message);
            }
            println!(
                "{} problem(s) found in {}",
                problems.len(),
                store.dir().display()
            );
            EXIT_FAILED
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}
