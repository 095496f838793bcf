//! STUB: `enact init`.
pub fn run(dir: &std::path::Path) -> u8 {
    eprintln!(
        "error: `enact init {}` is not implemented yet",
        dir.display()
    );
    1
}
