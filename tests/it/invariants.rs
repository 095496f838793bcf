//! Architectural invariants that a test can check (ARCHITECTURE.md, "Invariants").

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), text));
        }
    }
}

/// Code before the first `#[cfg(test)]` (tests may use what they like), without comments.
fn non_test(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_kernel_does_no_io_reads_no_clock_and_draws_no_randomness() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kernel"),
        &mut files,
    );
    assert!(files.len() > 10, "found the kernel sources");
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "std::io::stdin",
        "std::time::SystemTime",
        "std::time::Instant",
        "Instant::now",
        "SystemTime::now",
        "Utc::now",
        "Local::now",
        "tokio",
        "rand::",
        "getrandom",
        "Uuid::new_v4",
        "octocrab",
        "tokio_postgres",
        "rmcp",
        "println!",
        "eprintln!",
        "File::",
    ];
    for (path, text) in &files {
        let code = non_test(text);
        for word in forbidden {
            assert!(
                !code.contains(word),
                "{path} uses `{word}`: the kernel must stay pure"
            );
        }
    }
}

#[test]
fn only_the_mcp_adapter_imports_rmcp() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    for (path, text) in &files {
        if path.contains("/src/mcp/") {
            continue;
        }
        assert!(
            !text.contains("rmcp"),
            "{path} mentions rmcp outside src/mcp/"
        );
    }
}

#[test]
fn library_code_never_prints_to_stdout_in_serve() {
    // `serve` owns stdout for JSON-RPC: only the CLI, init and the demo may print.
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    for (path, text) in &files {
        let allowed = ["/src/cli/", "/src/init.rs", "/src/demo/", "/src/main.rs"];
        if allowed.iter().any(|a| path.contains(a)) {
            continue;
        }
        let code = non_test(text);
        for word in ["println!", "print!(", "std::io::stdout"] {
            assert!(!code.contains(word), "{path} writes to stdout (`{word}`)");
        }
    }
}
