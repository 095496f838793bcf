//! The demo's `enact.toml`: a GitHub system on the fake, a Postgres system (when there is a
//! database) and a filesystem workspace, with the policies the three acts exercise.

/// The repository the agent works on in the fake GitHub.
pub const REPO: &str = "acme/app";
/// The env var the demo config reads the fake GitHub token from.
pub const TOKEN_ENV: &str = "ENACT_DEMO_GITHUB_TOKEN";
/// The env var the demo config reads the database DSN from.
pub const DSN_ENV: &str = "ENACT_DEMO_DATABASE_URL";

/// The config text. `table`: the Postgres table of act 4, or `None` for the files story.
pub fn demo_config(github_url: &str, table: Option<&str>) -> String {
    let mut text = format!(
        r#"# enact.toml written by `enact demo`.
[actor]
email = "demo-agent@example.com"
role = "engineer"

[secret]
file = ".enact/secret"

[receipts]
dir = "receipts"

[rollback]
enabled = true

[systems.gh]
type = "github"
token_env = "{TOKEN_ENV}"
base_url = "{github_url}"
repos = ["acme/*"]

[systems.files]
type = "filesystem"
root = "workspace"

[[policies]]
policy = "no_push_to_main"
workflows = ["open_pr"]

[[policies]]
policy = "require_branch_prefix"
prefix = "agent/"
workflows = ["open_pr"]

[[policies]]
policy = "max_files_per_commit"
max = 20
workflows = ["open_pr"]

[[workflows]]
name = "open_pr"
builtin = "agent_pr_workflow"
system = "gh"

# A merge cannot be undone: a human approves each one (enact approvals approve RUN_ID).
[[policies]]
policy = "require_approval"
actions = ["merge_pr"]
workflows = ["merge_pr"]

[[workflows]]
name = "merge_pr"
description = "Merge one of the agent's pull requests (held for a human's approval)"
[workflows.inputs.pr_number]
type = "integer"
[[workflows.steps]]
system = "gh"
action = "merge_pr"
args = {{ repo = "{REPO}", pr_number = "{{{{pr_number}}}}" }}
"#
    );
    match table {
        Some(table) => text.push_str(&format!(
            r#"
[systems.db]
type = "postgres"
dsn_env = "{DSN_ENV}"
max_rows = 100

[[policies]]
policy = "protect_tables"
tables = ["audit_log", "payments"]
workflows = ["wipe_customers"]

[[policies]]
policy = "no_delete_without_where"
workflows = ["wipe_customers"]

[[workflows]]
name = "wipe_customers"
description = "Delete the customers matching `where`"
[workflows.inputs.where]
type = "object"
[[workflows.steps]]
system = "db"
action = "delete_row"
args = {{ table = "{table}", where = "{{{{where}}}}" }}
"#
        )),
        None => text.push_str(
            r#"
[[policies]]
policy = "restrict_paths"
paths = ["notes"]
workflows = ["clear_notes"]

[[workflows]]
name = "clear_notes"
description = "Delete the three notes in workspace/notes"
[[workflows.steps]]
system = "files"
action = "delete_file"
args = { path = "notes/plan.md" }
[[workflows.steps]]
system = "files"
action = "delete_file"
args = { path = "notes/todo.md" }
[[workflows.steps]]
system = "files"
action = "delete_file"
args = { path = "notes/ideas.md" }
"#,
        ),
    }
    text
}
