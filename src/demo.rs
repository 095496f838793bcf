//! STUB: `enact demo`.
pub async fn run(_keep: bool) -> u8 {
    eprintln!("error: `enact demo` is not implemented yet");
    1
}
