//! What the benches share: the secret, the config every measured call runs under (seven
//! policies in front of a filesystem system, and the read-only workflow `read`), and its
//! workspace.

use std::path::Path;

pub const SECRET: &str = "bench-secret-0123456789abcdef-0123456789";

pub const CONFIG: &str = r#"
[actor]
email = "bench@example.com"
role = "engineer"

[systems.files]
type = "filesystem"
root = "workspace"

[[policies]]
policy = "restrict_paths"
paths = ["notes", "docs"]

[[policies]]
policy = "block_extensions"

[[policies]]
policy = "no_delete_file"

[[policies]]
policy = "require_actor_role"
roles = ["engineer", "admin"]

[[policies]]
policy = "within_maintenance_window"
start = "00:00"
end = "23:59"

[[policies]]
policy = "no_push_to_main"

[[policies]]
policy = "protect_tables"
tables = ["payments"]

[[workflows]]
name = "read"
[[workflows.steps]]
system = "files"
action = "read_file"
args = { path = "notes/read-me.md" }
"#;

/// The workspace `read` reads, under `dir`.
pub fn workspace(dir: &Path) {
    std::fs::create_dir_all(dir.join("workspace/notes")).unwrap();
    std::fs::write(dir.join("workspace/notes/read-me.md"), "a small note").unwrap();
}
