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

/// The top-level modules of `src/` each non-test source file names through `crate::…`
/// (`use crate::{a, b}` included).
fn crate_refs(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

/// Top-level module → the other top-level modules its non-test code uses.
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph = std::collections::BTreeMap::new();
    for (path, text) in &files {
        let rel = Path::new(path).strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let deps: &mut std::collections::BTreeSet<String> =
            graph.entry(module.clone()).or_default();
        for r in crate_refs(&non_test(text)) {
            if r != module {
                deps.insert(r);
            }
        }
    }
    graph
}

#[test]
fn top_level_modules_have_no_cycles() {
    let graph = module_graph();
    assert!(graph.len() > 8, "found the modules: {graph:?}");
    // Depth-first search; a module met again while on the stack closes a cycle.
    fn visit(
        m: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == m) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for m in graph.keys() {
        let cycle = visit(m, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "a cycle between top-level modules: {}",
            cycle.unwrap().join(" → ")
        );
    }
}

#[test]
fn the_kernel_uses_nothing_outside_itself() {
    let graph = module_graph();
    let used = graph.get("kernel").cloned().unwrap_or_default();
    assert!(used.is_empty(), "src/kernel/ uses {used:?}");
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let long: Vec<String> = files
        .iter()
        .filter(|(_, text)| text.lines().count() > 800)
        .map(|(path, text)| format!("{path}: {} lines", text.lines().count()))
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}
