//! `enact init [DIR]`: a commented starter config serving a safe filesystem sandbox, a random
//! signing secret (mode 0600) and the workspace folder. Never overwrites anything.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::exit::{EXIT_FAILED, EXIT_OK};

/// The starter config. Kept in one place so the README and the tests can quote it.
pub const STARTER_CONFIG: &str = r#"# enact.toml — written by `enact init`. Every key is explained in the README.
# Relative paths are relative to this file's folder. Keep this file (and your MCP client's
# server entry) out of the agent's reach: whoever can edit them can change the rules.

[actor]                        # who this server acts for; the agent cannot change it
email = "agent@example.com"    # $ENACT_ACTOR_EMAIL overrides
role = "engineer"              # $ENACT_ACTOR_ROLE overrides

[secret]                       # the HMAC key that signs receipts
file = ".enact/secret"         # 64 random hex characters, mode 0600 (or: env = "ENACT_SECRET")

[receipts]
dir = "receipts"               # one signed JSON file per call, hash-chained
fsync = true                   # a receipt is on disk before the tool answers

[rollback]
enabled = true                 # offers `enact_rollback` to the agent and `enact rollback` to you

[systems.workspace]            # the only place the agent's tools can touch
type = "filesystem"
root = "workspace"
allowed_actions = ["read_file", "write_file", "list_dir"]   # no delete_file at all

# Policies run on every call, in this order; any failure blocks the call.
[[policies]]
policy = "restrict_paths"      # only inside workspace/notes
paths = ["notes"]

[[policies]]
policy = "block_extensions"    # never secrets-looking files
extensions = [".env", ".key", ".pem"]

[[policies]]
policy = "no_delete_file"

# Each workflow is one MCP tool.
[[workflows]]
name = "save_note"
description = "Write a note into workspace/notes (creates or replaces it)"
[workflows.inputs.name]
type = "string"
description = "File name inside notes/, e.g. todo.md"
[workflows.inputs.content]
type = "string"
description = "The note's text"
[[workflows.steps]]
system = "workspace"
action = "write_file"
args = { path = "notes/{{name}}", content = "{{content}}" }

[[workflows]]
name = "read_note"
description = "Read a note from workspace/notes"
[workflows.inputs.name]
type = "string"
description = "File name inside notes/"
[[workflows.steps]]
system = "workspace"
action = "read_file"
args = { path = "notes/{{name}}" }

[[workflows]]
name = "list_notes"
description = "List the notes in workspace/notes"
[[workflows.steps]]
system = "workspace"
action = "list_dir"
args = { path = "notes" }
"#;

/// Runs `enact init` in `dir`; returns the exit code.
pub fn run(dir: &Path) -> u8 {
    match init(dir) {
        Ok(written) => {
            print!("{}", next_steps(&written));
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

/// What `init` wrote.
#[derive(Debug)]
pub struct Written {
    pub config: PathBuf,
    pub secret: PathBuf,
    pub workspace: PathBuf,
}

/// Writes the starter files into `dir`, refusing (before writing anything) if any exists.
pub fn init(dir: &Path) -> Result<Written, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let dir =
        std::fs::canonicalize(dir).map_err(|e| format!("cannot open `{}`: {e}", dir.display()))?;
    let config = dir.join("enact.toml");
    let secret = dir.join(".enact").join("secret");
    let workspace = dir.join("workspace");
    let existing: Vec<String> = [&config, &secret]
        .into_iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| format!("`{}`", p.display()))
        .collect();
    if !existing.is_empty() {
        return Err(format!(
            "refusing to overwrite existing {}",
            existing.join(", ")
        ));
    }
    write_secret(&dir)?;
    write_new(&config, STARTER_CONFIG.as_bytes(), 0o644)?;
    for d in [workspace.join("notes"), dir.join("receipts")] {
        std::fs::create_dir_all(&d).map_err(|e| format!("cannot create `{}`: {e}", d.display()))?;
    }
    Ok(Written {
        config,
        secret,
        workspace,
    })
}

/// Writes a random signing secret (64 hex characters) to `<dir>/.enact/secret`, the folder
/// mode 0700 and the file 0600 from the start; refuses if the file exists. Returns its path.
pub fn write_secret(dir: &Path) -> Result<PathBuf, String> {
    let secret_dir = dir.join(".enact");
    std::fs::create_dir_all(&secret_dir)
        .map_err(|e| format!("cannot create `{}`: {e}", secret_dir.display()))?;
    std::fs::set_permissions(&secret_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot restrict `{}`: {e}", secret_dir.display()))?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("cannot draw a random secret: {e}"))?;
    let secret = secret_dir.join("secret");
    write_new(&secret, format!("{}\n", hex::encode(key)).as_bytes(), 0o600)?;
    Ok(secret)
}

/// Creates a file that must not exist yet, with the given mode from the start.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// The client configuration snippet for this folder's config.
pub fn client_json(config: &Path) -> String {
    let binary = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "enact".into());
    let value = serde_json::json!({
        "mcpServers": {
            "enact": {"command": binary, "args": ["serve", "--config", config.display().to_string()]}
        }
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn next_steps(w: &Written) -> String {
    format!(
        "Wrote {config}\n      {secret} (mode 0600: the receipt signing key)\n      {workspace}/notes/ (the only folder the agent's tools can touch)\n\n\
Next steps:\n  1. Check the config:   enact check --config {config}\n  2. Try the server:     enact serve --config {config}   (MCP over stdio; Ctrl-D to stop)\n  3. Add it to your MCP client (Claude Desktop, Cursor: mcp.json; Claude Code: `claude mcp add`):\n\n{json}\n\n  4. After your agent has run tools: enact receipts list --config {config}\n",
        config = w.config.display(),
        secret = w.secret.display(),
        workspace = w.workspace.display(),
        json = client_json(&w.config),
    )
}
