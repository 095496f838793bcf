//! `enact recover`: finishes the records of runs a crash interrupted (SPEC §5.5).

use super::{ConfigArg, EXIT_FAILED, EXIT_OK, build_engine, load_config};

pub async fn run(arg: &ConfigArg) -> u8 {
    let config = match load_config(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = match build_engine(config) {
        Ok(e) => e,
        Err(code) => return code,
    };
    match engine.recover().await {
        Ok(report) => {
            if report.runs.is_empty() {
                println!("nothing to recover");
            }
            for run in &report.runs {
                let steps: Vec<String> = run
                    .steps
                    .iter()
                    .map(|(action, system, status)| format!("{action} on {system}: {status}"))
                    .collect();
                let what = match &run.rollback_of {
                    Some(original) => format!("rollback of {original}"),
                    None => format!("run of `{}`", run.workflow),
                };
                println!(
                    "recovered {} ({what}): {}",
                    run.run_id,
                    if steps.is_empty() {
                        "no step had started".to_string()
                    } else {
                        steps.join("; ")
                    }
                );
            }
            if report.has_unknown() {
                println!(
                    "some steps stay unknown: check those systems by hand before rolling back"
                );
                EXIT_FAILED
            } else {
                EXIT_OK
            }
        }
        Err(e) => {
            eprintln!("error: recovery failed: {e}");
            EXIT_FAILED
        }
    }
}
