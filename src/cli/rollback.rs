//! `enact rollback RUN_ID [--dry-run]`: the operator's rollback, same rules as the MCP tool.

use super::{ConfigArg, EXIT_FAILED, EXIT_OK, build_engine, load_config};
use crate::engine::Requester;
use crate::kernel::rollback::UndoKind;
use crate::mcp::summary::Summarise;

pub async fn run(arg: &ConfigArg, run_id: &str, dry_run: bool) -> u8 {
    let config = match load_config(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = match build_engine(config) {
        Ok(e) => e,
        Err(code) => return code,
    };
    if !dry_run && let Err(e) = engine.recover().await {
        eprintln!("error: recovery of interrupted runs failed, so the rollback does not run: {e}");
        return EXIT_FAILED;
    }
    if dry_run {
        return match engine.rollback_plan(run_id, Requester::Operator) {
            Ok(steps) if steps.is_empty() => {
                println!("nothing to undo for run {run_id}");
                EXIT_OK
            }
            Ok(steps) => {
                println!("rollback of {run_id} would run, in order:");
                for s in steps {
                    let what = match s.kind {
                        UndoKind::Undo => "undo",
                        UndoKind::SkipReadOnly => "skip (read-only action)",
                        UndoKind::Irreversible => "cannot undo (irreversible action)",
                    };
                    println!(
                        "  {what}: {} on {}, {} (action #{} of the run)",
                        s.action,
                        s.system,
                        s.target,
                        s.index + 1
                    );
                }
                EXIT_OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_FAILED
            }
        };
    }
    match engine.rollback(run_id, Requester::Operator).await {
        Ok(result) => {
            println!("{}", result.summary());
            println!(
                "{}",
                serde_json::to_string_pretty(&result).unwrap_or_default()
            );
            if result.success { EXIT_OK } else { EXIT_FAILED }
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}
