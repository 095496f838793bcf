//! Integration tests: the config file (SPEC §2) — a full config loads with the expected values,
//! every rule reports its exact message at its location, all errors come at once, and no
//! secret is ever printed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use enact::config::{self, Config, ConfigErrors, SystemSettings};
use enact::kernel::action::SystemKind;
use enact::kernel::workflow::{Builtin, InputType, WorkflowBody};
use serde_json::json;

const SECRET: &str = "0123456789abcdef0123456789abcdef-long-enough";
const TOKEN: &str = "ghp_tokenvalue-never-printed";
const DSN: &str = "postgresql://app:hunter2@localhost/app";

/// A throwaway folder holding a config, a `workspace/` and a `.enact/secret`.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("workspace")).unwrap();
        std::fs::create_dir(tmp.path().join(".enact")).unwrap();
        std::fs::write(tmp.path().join(".enact/secret"), format!("{SECRET}\n")).unwrap();
        Dir { tmp }
    }

    /// The folder, with symlinks resolved (as the config reports paths).
    fn root(&self) -> PathBuf {
        self.tmp.path().canonicalize().unwrap()
    }

    fn config_path(&self) -> PathBuf {
        self.tmp.path().join("enact.toml")
    }

    fn load(&self, text: &str, env: &Env) -> Result<Config, ConfigErrors> {
        config::load_str(text, &self.config_path(), &|k| env.get(k))
    }

    fn fixture(&self, name: &str, env: &Env) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/config")
                .join(name),
        )
        .unwrap();
        std::fs::write(self.config_path(), text).unwrap();
        config::load(&self.config_path(), &|k| env.get(k))
    }

    /// (location, message) of every error, for a config expected to be invalid.
    fn errors(&self, text: &str, env: &Env) -> Vec<(String, String)> {
        match self.load(text, env) {
            Ok(_) => panic!("config unexpectedly valid:\n{text}"),
            Err(e) => e
                .errors
                .into_iter()
                .map(|e| (e.location, e.message))
                .collect(),
        }
    }

    /// The single error of an invalid config, with its hint.
    fn error(&self, text: &str, env: &Env) -> (String, String, Option<String>) {
        let errors = self.load(text, env).unwrap_err();
        assert_eq!(errors.errors.len(), 1, "{errors}");
        let e = errors.errors.into_iter().next().unwrap();
        (e.location, e.message, e.hint)
    }
}

/// An injected environment.
#[derive(Clone)]
struct Env(HashMap<String, String>);

impl Env {
    /// The credentials every test config needs.
    fn standard() -> Env {
        Env::empty()
            .with("ENACT_SECRET", SECRET)
            .with("GITHUB_TOKEN", TOKEN)
            .with("DATABASE_URL", DSN)
    }
    fn empty() -> Env {
        Env(HashMap::new())
    }
    fn with(mut self, k: &str, v: &str) -> Env {
        self.0.insert(k.into(), v.into());
        self
    }
    fn without(mut self, k: &str) -> Env {
        self.0.remove(k);
        self
    }
    fn get(&self, k: &str) -> Option<String> {
        self.0.get(k).cloned()
    }
}

const ACTOR: &str = "[actor]\nemail = \"agent@company.com\"\n";

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(l, m)| (l.to_string(), m.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Valid configs

#[test]
fn a_full_config_loads_with_the_expected_values() {
    let dir = Dir::new();
    let env = Env::standard().without("ENACT_SECRET").with("APP_DSN", DSN);
    let config = dir
        .fixture("good.toml", &env)
        .unwrap_or_else(|e| panic!("{e}"));
    let root = dir.root();

    assert_eq!(config.path, root.join("enact.toml"));
    assert_eq!(config.actor.email, "agent@company.com");
    assert_eq!(config.actor.role, "engineer");
    assert_eq!(config.secret.expose(), SECRET);
    assert_eq!(config.secret_file, Some(root.join(".enact/secret")));
    assert_eq!(config.receipts_dir, root.join("state/receipts"));
    assert!(!config.fsync);
    assert!(config.rollback_enabled);

    let names: Vec<&str> = config.systems.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "files", "gh"]);
    let db = &config.systems[0];
    assert_eq!(db.kind, SystemKind::Postgres);
    assert_eq!(
        db.allowed_actions,
        ["select_rows", "insert_row", "update_row", "delete_row"]
    );
    match &db.settings {
        SystemSettings::Postgres {
            dsn_env,
            dsn,
            max_rows,
            statement_timeout,
        } => {
            assert_eq!(dsn_env, "APP_DSN");
            assert_eq!(dsn.expose(), DSN);
            assert_eq!(*max_rows, 25);
            assert_eq!(*statement_timeout, std::time::Duration::from_millis(2500));
        }
        other => panic!("{other:?}"),
    }
    let files = &config.systems[1];
    assert_eq!(
        files.allowed_actions,
        ["read_file", "write_file", "list_dir"]
    );
    match &files.settings {
        SystemSettings::Filesystem { root: r } => assert_eq!(r, &root.join("workspace")),
        other => panic!("{other:?}"),
    }
    let gh = &config.systems[2];
    assert_eq!(
        gh.allowed_actions,
        ["create_branch", "push_commit", "create_pr", "merge_pr"]
    );
    match &gh.settings {
        SystemSettings::Github {
            token_env,
            token,
            base_url,
            repos,
        } => {
            assert_eq!(token_env, "GITHUB_TOKEN");
            assert_eq!(token.expose(), TOKEN);
            assert_eq!(base_url, "http://127.0.0.1:8099/api");
            assert_eq!(repos, &["acme/app", "acme-labs/*"]);
        }
        other => panic!("{other:?}"),
    }

    let policies: Vec<(&str, Option<Vec<String>>)> = config
        .policies
        .iter()
        .map(|p| (p.name(), p.scope.clone()))
        .collect();
    assert_eq!(
        policies,
        [
            ("require_branch_prefix", Some(vec!["open_pr".to_string()])),
            ("no_push_to_main", None),
            (
                "protect_tables",
                Some(vec!["db_safe_insert".to_string(), "save_note".to_string()])
            ),
        ]
    );

    let names: Vec<&str> = config.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["open_pr", "db_safe_insert", "save_note"]);
    let open_pr = &config.workflows[0];
    assert_eq!(
        open_pr.body,
        WorkflowBody::Builtin {
            builtin: Builtin::AgentPrWorkflow,
            system: "gh".into()
        }
    );
    assert_eq!(open_pr.inputs, Builtin::AgentPrWorkflow.inputs());
    assert_eq!(open_pr.description, Builtin::AgentPrWorkflow.description());
    assert_eq!(
        config.workflows[1].body,
        WorkflowBody::Builtin {
            builtin: Builtin::DbSafeInsert,
            system: "db".into()
        }
    );

    let note = &config.workflows[2];
    assert_eq!(note.description, "Write a note into the workspace");
    let inputs: Vec<(&str, InputType, Option<serde_json::Value>, bool)> = note
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i.ty, i.default.clone(), i.required()))
        .collect();
    assert_eq!(
        inputs,
        [
            ("path", InputType::String, None, true),
            ("content", InputType::String, Some(json!("")), false),
            ("mode", InputType::String, Some(json!("replace")), false),
            (
                "when",
                InputType::String,
                Some(json!("1979-05-27T07:32:00Z")),
                false
            ),
        ]
    );
    assert_eq!(
        note.inputs[2].enum_values,
        Some(vec![json!("append"), json!("replace")])
    );
    assert_eq!(
        note.inputs[0].description.as_deref(),
        Some("Path relative to the workspace")
    );
    let WorkflowBody::Declared { steps } = &note.body else {
        panic!("{:?}", note.body)
    };
    assert_eq!(steps.len(), 2);
    assert_eq!(
        (steps[0].system.as_str(), steps[0].action.as_str()),
        ("files", "write_file")
    );
    assert_eq!(
        serde_json::Value::Object(steps[0].args.clone()),
        json!({"path": "notes/{{path}}", "content": "{{content}} ({{mode}}, {{when}})"})
    );
}

#[test]
fn a_minimal_config_takes_every_default() {
    let dir = Dir::new();
    let config = dir.fixture("minimal.toml", &Env::standard()).unwrap();
    let root = dir.root();
    assert_eq!(config.actor.role, "unknown");
    assert_eq!(config.secret.expose(), SECRET);
    assert_eq!(config.secret_file, None);
    assert_eq!(config.receipts_dir, root.join("receipts"));
    assert!(config.fsync);
    assert!(!config.rollback_enabled);
    assert!(config.systems.is_empty() && config.policies.is_empty() && config.workflows.is_empty());
}

#[test]
fn system_defaults_apply() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}[systems.gh]\ntype = \"github\"\nrepos = [\"acme/app\"]\n\
         [systems.db]\ntype = \"postgres\"\n[systems.files]\ntype = \"filesystem\"\nroot = \"./workspace/\"\n"
    );
    let config = dir.load(&text, &Env::standard()).unwrap();
    let [db, files, gh] = &config.systems[..] else {
        panic!()
    };
    assert_eq!(gh.allowed_actions, SystemKind::Github.actions());
    assert_eq!(db.allowed_actions, SystemKind::Postgres.actions());
    assert_eq!(files.allowed_actions, SystemKind::Filesystem.actions());
    match &gh.settings {
        SystemSettings::Github {
            token_env,
            base_url,
            ..
        } => {
            assert_eq!(
                (token_env.as_str(), base_url.as_str()),
                ("GITHUB_TOKEN", "https://api.github.com")
            )
        }
        other => panic!("{other:?}"),
    }
    match &db.settings {
        SystemSettings::Postgres {
            dsn_env,
            max_rows,
            statement_timeout,
            ..
        } => assert_eq!(
            (dsn_env.as_str(), *max_rows, statement_timeout.as_secs()),
            ("DATABASE_URL", 100, 30)
        ),
        other => panic!("{other:?}"),
    }
    match &files.settings {
        SystemSettings::Filesystem { root } => assert_eq!(root, &dir.root().join("workspace")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_allowlist_allows_nothing() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}[systems.files]\ntype = \"filesystem\"\nroot = \"workspace\"\nallowed_actions = []\n"
    );
    let config = dir.load(&text, &Env::standard()).unwrap();
    assert!(config.systems[0].allowed_actions.is_empty());
}

#[test]
fn a_declared_workflow_without_description_gets_one() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}[systems.files]\ntype = \"filesystem\"\nroot = \"workspace\"\n\
         [[workflows]]\nname = \"ls\"\n[[workflows.steps]]\nsystem = \"files\"\naction = \"list_dir\"\n\
         [[workflows.steps]]\nsystem = \"files\"\naction = \"read_file\"\nargs = {{ path = \"a.txt\" }}\n"
    );
    let config = dir.load(&text, &Env::standard()).unwrap();
    assert_eq!(
        config.workflows[0].description,
        "Runs files.list_dir, then files.read_file."
    );
    assert!(config.workflows[0].inputs.is_empty());
}

#[test]
fn input_defaults_and_enums_of_every_type() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}[systems.files]\ntype = \"filesystem\"\nroot = \"workspace\"\n\
         [[workflows]]\nname = \"w\"\n\
         [workflows.inputs.n]\ntype = \"integer\"\ndefault = 5.0\nenum = [1, 5]\n\
         [workflows.inputs.x]\ntype = \"number\"\ndefault = 1\n\
         [workflows.inputs.b]\ntype = \"boolean\"\ndefault = false\n\
         [workflows.inputs.o]\ntype = \"object\"\ndefault = {{ a = [1, 2] }}\n\
         [workflows.inputs.a]\ntype = \"array\"\ndefault = []\n\
         [[workflows.steps]]\nsystem = \"files\"\naction = \"read_file\"\nargs = {{ path = \"{{{{n}}}}-{{{{x}}}}-{{{{b}}}}\" }}\n"
    );
    let config = dir
        .load(&text, &Env::standard())
        .unwrap_or_else(|e| panic!("{e}"));
    let defaults: Vec<(String, serde_json::Value)> = config.workflows[0]
        .inputs
        .iter()
        .map(|i| (i.name.clone(), i.default.clone().unwrap()))
        .collect();
    assert_eq!(
        defaults,
        [
            ("n".to_string(), json!(5.0)),
            ("x".to_string(), json!(1)),
            ("b".to_string(), json!(false)),
            ("o".to_string(), json!({"a": [1, 2]})),
            ("a".to_string(), json!([])),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Syntax, unknown keys, wrong types

#[test]
fn a_syntax_error_is_reported_alone_at_its_line_and_column() {
    let dir = Dir::new();
    let text = "[actor]\nemail = \"a@b.c\"\ncolour = \n[systems.x]\ntype = 5\n";
    assert_eq!(
        dir.error(text, &Env::standard()),
        (
            "line 3, column 10".into(),
            "string values must be quoted, expected literal string".into(),
            None
        )
    );
}

#[test]
fn unknown_keys_are_named_with_their_section_and_the_valid_keys() {
    let dir = Dir::new();
    let text = format!(
        "colour = 1\n{ACTOR}role2 = \"x\"\n[secret]\nfiles = \"x\"\n[receipts]\nfolder = \"r\"\n[rollback]\nenable = true\n\
         [systems.files]\ntype = \"filesystem\"\nroot = \"workspace\"\nrepos = []\n"
    );
    let errors = dir.load(&text, &Env::standard()).unwrap_err().errors;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "top level: unknown key `colour` (hint: valid keys: actor, secret, receipts, rollback, approvals, http, systems, policies, workflows)",
            "actor: unknown key `role2` (hint: valid keys: email, role)",
            "secret: unknown key `files` (hint: valid keys: env, file, allow_insecure)",
            "receipts: unknown key `folder` (hint: valid keys: dir, fsync, backend, dsn_env, schema)",
            "rollback: unknown key `enable` (hint: valid keys: enabled)",
            "systems.files: unknown key `repos` (hint: valid keys: type, allowed_actions, root)",
        ]
    );

    // Workflows, their inputs and steps.
    let text = format!(
        "{ACTOR}[systems.files]\ntype = \"filesystem\"\nroot = \"workspace\"\n\
         [[workflows]]\nname = \"w\"\nsteps_ = 1\n[workflows.inputs.p]\ntype = \"string\"\nrequired = true\n\
         [[workflows.steps]]\nsystem = \"files\"\naction = \"read_file\"\narg = {{}}\nargs = {{ path = \"{{{{p}}}}\" }}\n"
    );
    let errors = dir.load(&text, &Env::standard()).unwrap_err().errors;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "workflows[0]: unknown key `steps_` (hint: valid keys: name, description, builtin, system, inputs, steps)",
            "workflows[0].inputs.p: unknown key `required` (hint: valid keys: type, description, default, enum)",
            "workflows[0].steps[0]: unknown key `arg` (hint: valid keys: system, action, args)",
        ]
    );
}

#[test]
fn wrong_types_name_the_expected_and_the_actual_value() {
    let dir = Dir::new();
    let text = "[actor]\nemail = 5\nrole = true\n[secret]\nallow_insecure = \"yes\"\n[receipts]\ndir = [\"a\"]\nfsync = 1\n\
                [rollback]\nenabled = 1.5\n[systems]\nfiles = \"workspace\"\n[[workflows]]\nname = \"w\"\nsteps = {}\n";
    assert_eq!(
        dir.errors(text, &Env::standard()),
        pairs(&[
            ("actor.email", "expected a string, got integer 5"),
            ("actor.role", "expected a string, got boolean true"),
            (
                "secret.allow_insecure",
                "expected a boolean, got string \"yes\""
            ),
            ("receipts.dir", "expected a string, got an array"),
            ("receipts.fsync", "expected a boolean, got integer 1"),
            ("rollback.enabled", "expected a boolean, got float 1.5"),
            (
                "systems.files",
                "expected a table, got string \"workspace\""
            ),
            (
                "workflows[0].steps",
                "expected an array of tables, got a table"
            ),
        ])
    );
}

#[test]
fn sections_of_the_wrong_shape_are_reported() {
    let dir = Dir::new();
    let text = "actor = \"me\"\npolicies = { policy = \"no_delete_row\" }\nworkflows = [1]\n";
    let errors = dir.load(text, &Env::standard()).unwrap_err().errors;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "actor: expected a table, got string \"me\"",
            "policies: expected an array of tables, got a table (hint: write each entry as [[policies]])",
            "workflows[0]: expected a table, got integer 1",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Actor

#[test]
fn the_actor_email_is_required() {
    let dir = Dir::new();
    let expected = (
        "actor".to_string(),
        "missing required key `email`".to_string(),
        Some("set [actor] email, or $ENACT_ACTOR_EMAIL".to_string()),
    );
    assert_eq!(
        dir.error("[actor]\nrole = \"dev\"\n", &Env::standard()),
        expected
    );
    assert_eq!(dir.error("", &Env::standard()), expected);
    assert_eq!(
        dir.errors("[actor]\nemail = \"\"\n", &Env::standard()),
        pairs(&[("actor.email", "`email` must not be empty")])
    );
}

#[test]
fn env_overrides_the_actor() {
    let dir = Dir::new();
    let env = Env::standard()
        .with("ENACT_ACTOR_EMAIL", "ops@company.com")
        .with("ENACT_ACTOR_ROLE", "contractor");
    let config = dir
        .load(
            "[actor]\nemail = \"agent@company.com\"\nrole = \"engineer\"\n",
            &env,
        )
        .unwrap();
    assert_eq!(
        (config.actor.email.as_str(), config.actor.role.as_str()),
        ("ops@company.com", "contractor")
    );
    // The env alone is enough; an empty env var does not override.
    let config = dir
        .load("", &env.clone().with("ENACT_ACTOR_ROLE", ""))
        .unwrap();
    assert_eq!(
        (config.actor.email.as_str(), config.actor.role.as_str()),
        ("ops@company.com", "unknown")
    );
}

// ---------------------------------------------------------------------------------------------
// Secret

#[test]
fn a_missing_or_empty_secret_is_refused_with_the_fixed_message() {
    let dir = Dir::new();
    let message = "no signing secret: set ENACT_SECRET or [secret] file";
    assert_eq!(
        dir.errors(ACTOR, &Env::standard().without("ENACT_SECRET")),
        pairs(&[("secret", message)])
    );
    assert_eq!(
        dir.errors(ACTOR, &Env::standard().with("ENACT_SECRET", "")),
        pairs(&[("secret", message)])
    );
    let (_, _, hint) = dir.error(ACTOR, &Env::empty());
    assert_eq!(
        hint.as_deref(),
        Some("`enact init` writes a random secret to .enact/secret")
    );
    // A customised variable is named instead.
    let text = format!("{ACTOR}[secret]\nenv = \"MY_KEY\"\n");
    assert_eq!(
        dir.errors(&text, &Env::standard()),
        pairs(&[("secret", "no signing secret: set MY_KEY or [secret] file")])
    );
    let config = dir
        .load(&text, &Env::standard().with("MY_KEY", &SECRET.repeat(2)))
        .unwrap();
    assert_eq!(config.secret.expose(), SECRET.repeat(2));
    // An empty file is no secret either.
    std::fs::write(dir.tmp.path().join("empty"), "\n").unwrap();
    let text = format!("{ACTOR}[secret]\nfile = \"empty\"\n");
    assert_eq!(
        dir.errors(&text, &Env::standard()),
        pairs(&[("secret", message)])
    );
}

#[test]
fn a_secret_file_is_read_without_its_trailing_newline_and_wins_over_the_env() {
    let dir = Dir::new();
    let text = format!("{ACTOR}[secret]\nfile = \".enact/secret\"\n");
    let config = dir
        .load(
            &text,
            &Env::standard().with("ENACT_SECRET", "other-secret-from-the-environment-xyz"),
        )
        .unwrap();
    assert_eq!(config.secret.expose(), SECRET);
    assert_eq!(config.secret_file, Some(dir.root().join(".enact/secret")));
    // CRLF too.
    std::fs::write(
        dir.tmp.path().join(".enact/secret"),
        format!("{SECRET}\r\n"),
    )
    .unwrap();
    assert_eq!(
        dir.load(&text, &Env::empty().with("ENACT_ACTOR_EMAIL", "a@b.c"))
            .unwrap()
            .secret
            .expose(),
        SECRET
    );
}

#[test]
fn an_unreadable_secret_file_is_named() {
    let dir = Dir::new();
    let text = format!("{ACTOR}[secret]\nfile = \"nope/secret\"\n");
    let expected = format!(
        "cannot read secret file `{}`: No such file or directory (os error 2)",
        dir.root().join("nope/secret").display()
    );
    assert_eq!(
        dir.errors(&text, &Env::standard()),
        vec![("secret.file".to_string(), expected)]
    );
}

#[test]
fn a_short_secret_needs_allow_insecure() {
    let dir = Dir::new();
    let env = Env::standard().with("ENACT_SECRET", "dev-secret-31-characters-long!!");
    assert_eq!("dev-secret-31-characters-long!!".len(), 31);
    let (location, message, hint) = dir.error(ACTOR, &env);
    assert_eq!(
        (location.as_str(), message.as_str()),
        ("secret", "the signing secret is shorter than 32 characters")
    );
    assert_eq!(
        hint.as_deref(),
        Some(
            "use a longer secret (`enact init` writes 64 hex characters), or set [secret] allow_insecure = true (development only)"
        )
    );
    let config = dir
        .load(&format!("{ACTOR}[secret]\nallow_insecure = true\n"), &env)
        .unwrap();
    assert_eq!(config.secret.expose(), "dev-secret-31-characters-long!!");
    // Exactly 32 characters is enough.
    assert!(
        dir.load(ACTOR, &env.with("ENACT_SECRET", &"é".repeat(32)))
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------------
// Systems

fn system(kind_and_settings: &str) -> String {
    format!("{ACTOR}[systems.s]\n{kind_and_settings}\n")
}

#[test]
fn system_types_are_checked() {
    let dir = Dir::new();
    let env = Env::standard();
    assert_eq!(
        dir.error(&system("type = \"gitlab\""), &env),
        (
            "systems.s.type".into(),
            "unknown system type `gitlab`".into(),
            Some("valid types: github, postgres, filesystem, hubspot, slack".into())
        )
    );
    assert_eq!(
        dir.error(&system("root = \"workspace\""), &env),
        (
            "systems.s".into(),
            "missing required key `type`".into(),
            Some("type is one of: github, postgres, filesystem, hubspot, slack".into())
        )
    );
    assert_eq!(
        dir.errors(
            &format!(
                "{ACTOR}[systems.\"my files\"]\ntype = \"filesystem\"\nroot = \"workspace\"\n"
            ),
            &env
        ),
        pairs(&[("systems.my files", "invalid system name `my files`")])
    );
}

#[test]
fn allowed_actions_must_be_actions_of_the_type() {
    let dir = Dir::new();
    assert_eq!(
        dir.error(&system("type = \"filesystem\"\nroot = \"workspace\"\nallowed_actions = [\"read_file\", \"create_pr\"]"), &Env::standard()),
        (
            "systems.s.allowed_actions".into(),
            "`create_pr` is not a filesystem action".into(),
            Some("filesystem actions: read_file, write_file, delete_file, list_dir".into())
        )
    );
    assert_eq!(
        dir.errors(
            &system("type = \"postgres\"\nallowed_actions = [\"select_rows\", 3]"),
            &Env::standard()
        ),
        pairs(&[(
            "systems.s.allowed_actions[1]",
            "expected a string, got integer 3"
        )])
    );
}

#[test]
fn an_unset_github_token_names_the_variable_never_a_value() {
    let dir = Dir::new();
    let gh = system("type = \"github\"\nrepos = [\"acme/app\"]");
    assert_eq!(
        dir.error(&gh, &Env::standard().without("GITHUB_TOKEN")),
        (
            "systems.s.token_env".into(),
            "environment variable `GITHUB_TOKEN` is unset or empty".into(),
            Some("set it to the credential of system `s` before starting enact".into())
        )
    );
    let custom = system("type = \"github\"\ntoken_env = \"ACME_TOKEN\"\nrepos = [\"acme/app\"]");
    assert_eq!(
        dir.errors(&custom, &Env::standard().with("ACME_TOKEN", "")),
        pairs(&[(
            "systems.s.token_env",
            "environment variable `ACME_TOKEN` is unset or empty"
        )])
    );
    let errors = dir.load(&custom, &Env::standard()).unwrap_err().to_string();
    assert!(!errors.contains(TOKEN), "{errors}");
    let config = dir
        .load(&custom, &Env::standard().with("ACME_TOKEN", "t"))
        .unwrap();
    let SystemSettings::Github { token, .. } = &config.systems[0].settings else {
        panic!()
    };
    assert_eq!(token.expose(), "t");
}

#[test]
fn github_base_url_and_repos_are_checked() {
    let dir = Dir::new();
    let env = Env::standard();
    assert_eq!(
        dir.error(
            &system("type = \"github\"\nbase_url = \"ftp://example.com\"\nrepos = [\"acme/app\"]"),
            &env
        ),
        (
            "systems.s.base_url".into(),
            "`base_url` must be an http(s) URL, got \"ftp://example.com\"".into(),
            Some("e.g. https://api.github.com, or https://github.example.com/api/v3".into())
        )
    );
    assert_eq!(
        dir.errors(
            &system("type = \"github\"\nbase_url = \"https://\"\nrepos = [\"acme/app\"]"),
            &env
        ),
        pairs(&[(
            "systems.s.base_url",
            "`base_url` must be an http(s) URL, got \"https://\""
        )])
    );
    assert_eq!(
        dir.error(&system("type = \"github\""), &env),
        (
            "systems.s".into(),
            "missing required key `repos`".into(),
            Some("list the repos this system may touch, e.g. repos = [\"acme/app\", \"acme-labs/*\"]".into())
        )
    );
    assert_eq!(
        dir.errors(&system("type = \"github\"\nrepos = []"), &env),
        pairs(&[("systems.s.repos", "`repos` must not be empty")])
    );
    assert_eq!(
        dir.errors(&system("type = \"github\"\nrepos = [\"acme\", \"acme/app?x\", \"-bad/*\", \"ok/*\", \"a/b/c\"]"), &env),
        pairs(&[
            ("systems.s.repos", "repo `acme` is not of the form owner/name or owner/*"),
            ("systems.s.repos", "repo `acme/app?x` is not of the form owner/name or owner/*"),
            ("systems.s.repos", "repo `-bad/*` is not of the form owner/name or owner/*"),
            ("systems.s.repos", "repo `a/b/c` is not of the form owner/name or owner/*"),
        ])
    );
}

#[test]
fn postgres_dsn_and_max_rows_are_checked() {
    let dir = Dir::new();
    let pg = system("type = \"postgres\"");
    let errors = dir
        .load(&pg, &Env::standard().without("DATABASE_URL"))
        .unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert_eq!(errors.errors[0].location, "systems.s.dsn_env");
    assert_eq!(
        errors.errors[0].message,
        "environment variable `DATABASE_URL` is unset or empty"
    );
    assert_eq!(
        dir.errors(
            &system("type = \"postgres\"\nmax_rows = 0"),
            &Env::standard()
        ),
        pairs(&[(
            "systems.s.max_rows",
            "`max_rows` must be a positive integer, got 0"
        )])
    );
    assert_eq!(
        dir.errors(
            &system("type = \"postgres\"\nmax_rows = \"10\""),
            &Env::standard()
        ),
        pairs(&[(
            "systems.s.max_rows",
            "expected a positive integer, got string \"10\""
        )])
    );
    let errors = dir
        .load(&pg, &Env::standard().without("DATABASE_URL"))
        .unwrap_err()
        .to_string();
    assert!(!errors.contains("hunter2"), "{errors}");
}

#[test]
fn postgres_statement_timeout_is_a_duration() {
    let dir = Dir::new();
    let timeout = |value: &str| {
        let text = system(&format!("type = \"postgres\"\nstatement_timeout = {value}"));
        dir.load(&text, &Env::standard())
    };
    for (value, ms) in [
        ("\"500ms\"", 500),
        ("\"30s\"", 30_000),
        ("\"2m\"", 120_000),
        ("\"1h\"", 3_600_000),
    ] {
        let config = timeout(value).unwrap_or_else(|e| panic!("{value}: {e}"));
        match &config.systems[0].settings {
            SystemSettings::Postgres {
                statement_timeout, ..
            } => assert_eq!(statement_timeout.as_millis(), ms, "{value}"),
            other => panic!("{other:?}"),
        }
    }
    let expected = "`statement_timeout` must be a duration such as \"500ms\", \"30s\" or \"2m\"";
    for value in [
        "\"soon\"", "\"30\"", "\"0s\"", "\"-1s\"", "\"1.5s\"", "\"2d\"", "30",
    ] {
        let errors = timeout(value).unwrap_err().errors;
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [format!(
                "systems.s.statement_timeout: {expected}, got {value} (hint: a positive whole number followed by ms, s, m or h)"
            )],
            "{value}"
        );
    }
    let errors = timeout("\"25h\"").unwrap_err().errors;
    assert_eq!(
        errors[0].to_string(),
        "systems.s.statement_timeout: `statement_timeout` must be at most 24h, got \"25h\""
    );
}

#[test]
fn a_filesystem_root_must_be_an_existing_folder() {
    let dir = Dir::new();
    let env = Env::standard();
    assert_eq!(
        dir.error(&system("type = \"filesystem\""), &env),
        (
            "systems.s".into(),
            "missing required key `root`".into(),
            Some("the folder this system is confined to, e.g. root = \"workspace\"".into())
        )
    );
    let missing = dir.root().join("nowhere");
    assert_eq!(
        dir.error(&system("type = \"filesystem\"\nroot = \"nowhere\""), &env),
        (
            "systems.s.root".into(),
            format!("root `{}` does not exist", missing.display()),
            Some("create the folder first".into())
        )
    );
    std::fs::write(dir.tmp.path().join("plain"), "x").unwrap();
    assert_eq!(
        dir.errors(&system("type = \"filesystem\"\nroot = \"plain\""), &env),
        vec![(
            "systems.s.root".to_string(),
            format!(
                "root `{}` is not a directory",
                dir.root().join("plain").display()
            )
        )]
    );
}

#[test]
fn a_filesystem_root_cannot_reach_the_receipts_the_secret_or_the_config() {
    let dir = Dir::new();
    let env = Env::standard();
    let root = dir.root();
    let shown = |p: &str| root.join(p).display().to_string();

    // The config folder itself contains the default receipts folder and the config file.
    let text = format!(
        "{ACTOR}[secret]\nfile = \".enact/secret\"\n[systems.s]\ntype = \"filesystem\"\nroot = \".\"\n"
    );
    let r = root.display().to_string();
    assert_eq!(
        dir.errors(&text, &env),
        vec![
            (
                "systems.s.root".to_string(),
                format!(
                    "root `{r}` contains the receipts folder `{}`",
                    shown("receipts")
                )
            ),
            (
                "systems.s.root".to_string(),
                format!(
                    "root `{r}` contains the secret file `{}`",
                    shown(".enact/secret")
                )
            ),
            (
                "systems.s.root".to_string(),
                format!(
                    "root `{r}` contains the config file `{}`",
                    shown("enact.toml")
                )
            ),
        ]
    );

    // Receipts inside the workspace (spelled with `..`).
    let text = format!(
        "{ACTOR}[receipts]\ndir = \"workspace/../workspace/r\"\n{}",
        &system("type = \"filesystem\"\nroot = \"workspace\"")[ACTOR.len()..]
    );
    assert_eq!(
        dir.errors(&text, &env),
        vec![(
            "systems.s.root".to_string(),
            format!(
                "root `{}` contains the receipts folder `{}`",
                shown("workspace"),
                shown("workspace/r")
            )
        )]
    );

    // A root inside the receipts folder.
    std::fs::create_dir_all(dir.tmp.path().join("receipts/ws")).unwrap();
    assert_eq!(
        dir.errors(
            &system("type = \"filesystem\"\nroot = \"receipts/ws\""),
            &env
        ),
        vec![(
            "systems.s.root".to_string(),
            format!(
                "root `{}` lies inside the receipts folder `{}`",
                shown("receipts/ws"),
                shown("receipts")
            )
        )]
    );

    // The secret file inside the workspace.
    std::fs::write(dir.tmp.path().join("workspace/key"), SECRET).unwrap();
    let text = format!(
        "{ACTOR}[secret]\nfile = \"workspace/key\"\n[systems.s]\ntype = \"filesystem\"\nroot = \"workspace\"\n"
    );
    let (location, message, hint) = dir.error(&text, &env);
    assert_eq!(location, "systems.s.root");
    assert_eq!(
        message,
        format!(
            "root `{}` contains the secret file `{}`",
            shown("workspace"),
            shown("workspace/key")
        )
    );
    assert_eq!(
        hint.as_deref(),
        Some("keep the secret file outside every filesystem root")
    );

    // A symlink to the config folder is seen through.
    std::os::unix::fs::symlink(dir.tmp.path(), dir.tmp.path().join("workspace/up")).unwrap();
    let errors = dir.errors(
        &system("type = \"filesystem\"\nroot = \"workspace/up\""),
        &env,
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[1].1,
        format!(
            "root `{r}` contains the config file `{}`",
            shown("enact.toml")
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Policies

const FILES: &str = "[systems.files]\ntype = \"filesystem\"\nroot = \"workspace\"\n";
const LS: &str = "[[workflows]]\nname = \"ls\"\n[[workflows.steps]]\nsystem = \"files\"\naction = \"list_dir\"\n";

#[test]
fn policies_must_be_built_ins_with_an_existing_scope() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}{FILES}[[policies]]\npolicy = \"no_rm_rf\"\n[[policies]]\nprefix = \"x\"\n\
         [[policies]]\npolicy = \"no_delete_file\"\nworkflows = [\"ls\", \"gone\"]\n{LS}"
    );
    let errors = dir.load(&text, &Env::standard()).unwrap_err().errors;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let builtins = enact::kernel::policy::POLICY_NAMES.join(", ");
    assert_eq!(
        got,
        [
            format!(
                "policies[0].policy: unknown policy `no_rm_rf` (hint: built-in policies: {builtins})"
            ),
            format!(
                "policies[1]: missing required key `policy` (hint: built-in policies: {builtins})"
            ),
            "policies[2].workflows: unknown workflow `gone` (hint: workflows in this config: ls)"
                .to_string(),
        ]
    );
}

#[test]
fn a_scope_may_name_a_built_in_by_its_default_name() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}[systems.db]\ntype = \"postgres\"\n[[policies]]\npolicy = \"no_delete_row\"\nworkflows = [\"db_safe_insert\"]\n\
         [[workflows]]\nbuiltin = \"db_safe_insert\"\nsystem = \"db\"\n"
    );
    let config = dir
        .load(&text, &Env::standard())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.policies[0].scope,
        Some(vec!["db_safe_insert".to_string()])
    );
}

#[test]
fn policy_parameter_errors_are_reported_at_the_policy() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}[[policies]]\npolicy = \"max_files_per_commit\"\nmax = \"many\"\nmaximum = 3\n\
         [[policies]]\npolicy = \"protect_tables\"\n[[policies]]\npolicy = \"no_delete_row\"\n"
    );
    assert_eq!(
        dir.errors(&text, &Env::standard()),
        pairs(&[
            (
                "policies[0] (max_files_per_commit)",
                "parameter max must be a non-negative integer, got \"many\""
            ),
            (
                "policies[0] (max_files_per_commit)",
                "unknown parameter maximum (its parameters are max)"
            ),
            ("policies[1] (protect_tables)", "missing parameter tables"),
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Workflows

#[test]
fn workflow_names_are_valid_unique_and_not_reserved() {
    let dir = Dir::new();
    let wf = |name: &str| {
        format!(
            "[[workflows]]\nname = \"{name}\"\n[[workflows.steps]]\nsystem = \"files\"\naction = \"list_dir\"\n"
        )
    };
    let text = format!(
        "{ACTOR}{FILES}{}{}{}{}{}",
        wf("a b"),
        wf("enact_x"),
        wf("ls"),
        wf("ls"),
        wf(&"x".repeat(65))
    );
    let errors = dir.load(&text, &Env::standard()).unwrap_err().errors;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "workflows[0].name: invalid workflow name `a b` (hint: use 1 to 64 letters, digits, `_`, `.` or `-`)".to_string(),
            "workflows[1].name: workflow name `enact_x` uses the reserved prefix `enact_` (hint: Enact's own tools use that prefix; choose another name)".to_string(),
            "workflows[3].name: duplicate workflow name `ls` (hint: workflows[2] already uses it)".to_string(),
            format!("workflows[4].name: invalid workflow name `{}` (hint: use 1 to 64 letters, digits, `_`, `.` or `-`)", "x".repeat(65)),
        ]
    );
    // A built-in's default name counts for uniqueness.
    let text = format!(
        "{ACTOR}[systems.db]\ntype = \"postgres\"\n[[workflows]]\nbuiltin = \"db_safe_insert\"\nsystem = \"db\"\n\
         [[workflows]]\nbuiltin = \"db_safe_insert\"\nsystem = \"db\"\n"
    );
    assert_eq!(
        dir.errors(&text, &Env::standard()),
        pairs(&[(
            "workflows[1].name",
            "duplicate workflow name `db_safe_insert`"
        )])
    );
    // A declared workflow needs a name.
    let text = format!(
        "{ACTOR}{FILES}[[workflows]]\n[[workflows.steps]]\nsystem = \"files\"\naction = \"list_dir\"\n"
    );
    assert_eq!(
        dir.errors(&text, &Env::standard()),
        pairs(&[("workflows[0]", "missing required key `name`")])
    );
}

#[test]
fn a_workflow_has_exactly_one_of_builtin_or_steps() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}{FILES}[[workflows]]\nname = \"both\"\nbuiltin = \"agent_pr_workflow\"\nsystem = \"x\"\n\
         [[workflows.steps]]\nsystem = \"files\"\naction = \"list_dir\"\n[[workflows]]\nname = \"neither\"\n\
         [[workflows]]\nname = \"empty\"\nsteps = []\n"
    );
    assert_eq!(
        dir.errors(&text, &Env::standard()),
        pairs(&[
            (
                "workflows[0]",
                "a workflow has either `builtin` or `steps`, not both"
            ),
            (
                "workflows[1]",
                "a workflow needs either `builtin` or `steps`"
            ),
            ("workflows[2].steps", "`steps` must not be empty"),
        ])
    );
}

#[test]
fn built_in_workflows_are_bound_to_a_system_of_their_kind_that_allows_their_actions() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}{FILES}[systems.gh]\ntype = \"github\"\nrepos = [\"acme/app\"]\nallowed_actions = [\"create_branch\"]\n\
         [[workflows]]\nbuiltin = \"agent_pr\"\nsystem = \"gh\"\n\
         [[workflows]]\nname = \"a\"\nbuiltin = \"agent_pr_workflow\"\n\
         [[workflows]]\nname = \"b\"\nbuiltin = \"agent_pr_workflow\"\nsystem = \"nope\"\n\
         [[workflows]]\nname = \"c\"\nbuiltin = \"db_safe_insert\"\nsystem = \"gh\"\n\
         [[workflows]]\nname = \"d\"\nbuiltin = \"agent_pr_workflow\"\nsystem = \"gh\"\n\
         [[workflows]]\nname = \"e\"\nbuiltin = \"agent_pr_workflow\"\nsystem = \"files\"\n[workflows.inputs.x]\ntype = \"string\"\n"
    );
    let errors = dir.load(&text, &Env::standard()).unwrap_err().errors;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "workflows[0].builtin: unknown built-in workflow `agent_pr` (hint: built-in workflows: agent_pr_workflow, db_safe_insert, hubspot_new_contact, post_slack_message)",
            "workflows[1]: missing required key `system` (hint: the github system this built-in runs on)",
            "workflows[2].system: unknown system `nope` (hint: systems in this config: files, gh)",
            "workflows[3].system: system `gh` is a github system, but `db_safe_insert` needs a postgres system",
            "workflows[4].system: `agent_pr_workflow` needs action `push_commit`, which is not in the allowed_actions of system `gh` (hint: add `push_commit` to [systems.gh] allowed_actions)",
            "workflows[4].system: `agent_pr_workflow` needs action `create_pr`, which is not in the allowed_actions of system `gh` (hint: add `create_pr` to [systems.gh] allowed_actions)",
            "workflows[5].inputs: a built-in workflow's inputs are fixed (hint: remove `inputs`)",
            "workflows[5].system: system `files` is a filesystem system, but `agent_pr_workflow` needs a github system",
        ]
    );
}

#[test]
fn inputs_are_typed_and_their_defaults_and_enums_match() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}{FILES}[[workflows]]\nname = \"w\"\n\
         [workflows.inputs.\"9lives\"]\ntype = \"string\"\n\
         [workflows.inputs.a]\ndescription = \"no type\"\n\
         [workflows.inputs.b]\ntype = \"str\"\n\
         [workflows.inputs.c]\ntype = \"string\"\ndefault = 5\n\
         [workflows.inputs.d]\ntype = \"integer\"\nenum = [1, \"two\", 2.5]\n\
         [workflows.inputs.e]\ntype = \"string\"\nenum = [\"x\", \"y\"]\ndefault = \"z\"\n\
         [workflows.inputs.f]\ntype = \"boolean\"\nenum = []\n\
         [workflows.inputs.g]\ntype = \"array\"\nenum = \"x\"\n\
         [workflows.inputs.h]\ntype = \"object\"\ndefault = \"{{}}\"\n\
         [[workflows.steps]]\nsystem = \"files\"\naction = \"list_dir\"\n"
    );
    let errors = dir.load(&text, &Env::standard()).unwrap_err().errors;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "workflows[0].inputs.9lives: invalid input name `9lives` (hint: start with a letter or `_`, then up to 63 letters, digits or `_`)",
            "workflows[0].inputs.a: missing required key `type` (hint: type is one of: string, integer, number, boolean, object, array)",
            "workflows[0].inputs.b.type: unknown input type `str` (hint: valid types: string, integer, number, boolean, object, array)",
            "workflows[0].inputs.c.default: `default` must be a string, got integer 5",
            "workflows[0].inputs.d.enum: `enum` value must be an integer, got string \"two\"",
            "workflows[0].inputs.d.enum: `enum` value must be an integer, got float 2.5",
            "workflows[0].inputs.e.default: `default` \"z\" is not one of the `enum` values",
            "workflows[0].inputs.f.enum: `enum` must not be empty",
            "workflows[0].inputs.g.enum: expected an array, got string \"x\"",
            "workflows[0].inputs.h.default: `default` must be an object, got string \"{}\"",
        ]
    );
}

#[test]
fn steps_use_existing_systems_and_allowed_actions() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}[systems.files]\ntype = \"filesystem\"\nroot = \"workspace\"\nallowed_actions = [\"read_file\", \"list_dir\"]\n\
         [systems.broken]\ntype = \"ftp\"\n\
         [[workflows]]\nname = \"w\"\nsystem = \"files\"\n\
         [[workflows.steps]]\nsystem = \"disk\"\naction = \"read_file\"\n\
         [[workflows.steps]]\nsystem = \"files\"\naction = \"create_pr\"\n\
         [[workflows.steps]]\nsystem = \"files\"\naction = \"delete_file\"\nargs = {{ path = \"x\" }}\n\
         [[workflows.steps]]\naction = \"list_dir\"\n\
         [[workflows.steps]]\nsystem = \"broken\"\naction = \"get\"\n"
    );
    let errors = dir.load(&text, &Env::standard()).unwrap_err().errors;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "systems.broken.type: unknown system type `ftp` (hint: valid types: github, postgres, filesystem, hubspot, slack)",
            "workflows[0].system: `system` is only for built-in workflows (hint: each step names its own system)",
            "workflows[0].steps[0].system: unknown system `disk` (hint: systems in this config: files, broken)",
            "workflows[0].steps[1].action: `create_pr` is not a filesystem action (hint: filesystem actions: read_file, write_file, delete_file, list_dir)",
            "workflows[0].steps[2].action: action `delete_file` is not in the allowed_actions of system `files` (hint: add it to [systems.files] allowed_actions)",
            "workflows[0].steps[3]: missing required key `system`",
        ]
    );
}

#[test]
fn step_arguments_fit_the_action_and_name_declared_inputs() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}{FILES}[[workflows]]\nname = \"w\"\n[workflows.inputs.path]\ntype = \"string\"\n\
         [[workflows.steps]]\nsystem = \"files\"\naction = \"write_file\"\nargs = {{ path = \"{{{{pth}}}}/{{{{pth}}}}\", contents = \"{{{{ body }}}}\" }}\n\
         [[workflows.steps]]\nsystem = \"files\"\naction = \"read_file\"\nargs = {{ \"{{{{path}}}}\" = \"x\" }}\n"
    );
    let errors = dir.load(&text, &Env::standard()).unwrap_err().errors;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "workflows[0].steps[0].args: unknown argument `contents` for write_file (hint: write_file takes: path, content)",
            "workflows[0].steps[0].args: missing argument `content` for write_file (hint: write_file takes: path, content)",
            "workflows[0].steps[0].args: `{{body}}` does not name an input of this workflow (hint: declared inputs: path)",
            "workflows[0].steps[0].args: `{{pth}}` does not name an input of this workflow (hint: declared inputs: path)",
        ]
    );
    let text = format!(
        "{ACTOR}{FILES}[[workflows]]\nname = \"w\"\n[[workflows.steps]]\nsystem = \"files\"\naction = \"read_file\"\nargs = {{ path = \"{{{{p}}}}\" }}\n"
    );
    let (_, message, hint) = dir.error(&text, &Env::standard());
    assert_eq!(
        (message.as_str(), hint.as_deref()),
        (
            "`{{p}}` does not name an input of this workflow",
            Some("this workflow declares no inputs")
        )
    );
}

// ---------------------------------------------------------------------------------------------
// All errors at once

#[test]
fn five_mistakes_give_exactly_five_errors() {
    let dir = Dir::new();
    let errors = dir
        .fixture("five_mistakes.toml", &Env::standard())
        .unwrap_err();
    let got: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "actor: unknown key `colour` (hint: valid keys: email, role)",
            "systems.tracker.type: unknown system type `jira` (hint: valid types: github, postgres, filesystem, hubspot, slack)",
            "workflows[0].name: workflow name `enact_notes` uses the reserved prefix `enact_` (hint: Enact's own tools use that prefix; choose another name)",
            "workflows[0].steps[0].action: action `write_file` is not in the allowed_actions of system `files` (hint: add it to [systems.files] allowed_actions)",
            "workflows[0].steps[0].args: `{{body}}` does not name an input of this workflow (hint: declared inputs: path)",
        ]
    );
    let shown = errors.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: 5 errors\n  - actor: unknown key `colour`",
            dir.config_path().display()
        )),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 6);
}

#[test]
fn an_unreadable_config_file_is_one_error() {
    let dir = Dir::new();
    let errors = config::load(&dir.tmp.path().join("missing.toml"), &|_| None).unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert_eq!(errors.errors[0].location, "file");
    assert!(
        errors.errors[0].message.starts_with("cannot read `"),
        "{}",
        errors.errors[0].message
    );
}

// ---------------------------------------------------------------------------------------------
// describe

#[test]
fn describe_shows_the_config_and_never_a_secret() {
    let dir = Dir::new();
    let env = Env::standard().with("APP_DSN", DSN);
    let config = dir
        .fixture("good.toml", &env)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = config::describe(&config);
    for secret in [SECRET, TOKEN, DSN, "hunter2"] {
        assert!(!text.contains(secret), "{text}");
    }
    let root = dir.root();
    for expected in [
        format!("config:   {}", root.join("enact.toml").display()),
        "actor:    agent@company.com (role: engineer)".to_string(),
        format!("secret:   from the file {}", root.join(".enact/secret").display()),
        format!("receipts: {} (fsync off)", root.join("state/receipts").display()),
        "rollback: on".to_string(),
        "systems (3):".to_string(),
        "  gh (github)".to_string(),
        "    token:           $GITHUB_TOKEN".to_string(),
        "    repos:           acme/app, acme-labs/*".to_string(),
        "    dsn:             $APP_DSN".to_string(),
        "    max_rows:        25".to_string(),
        "    timeout:         2500ms per statement (statement_timeout)".to_string(),
        format!("    root:            {}", root.join("workspace").display()),
        "    allowed actions: read_file, write_file, list_dir".to_string(),
        "policies (3):".to_string(),
        "  require_branch_prefix: prefix = \"bot/\" (only open_pr)".to_string(),
        "  no_push_to_main: branches = [\"main\",\"master\"] (all tools)".to_string(),
        "tools (3):".to_string(),
        "  open_pr: Open a pull request: create a branch from `base`, commit `files` to it (if any), open a PR into `base`.".to_string(),
        "    built-in agent_pr_workflow on system gh".to_string(),
        "  save_note: Write a note into the workspace".to_string(),
        "      1. files.write_file {\"content\":\"{{content}} ({{mode}}, {{when}})\",\"path\":\"notes/{{path}}\"}".to_string(),
        "      mode: string = \"replace\", one of \"append\" | \"replace\"".to_string(),
        "      path: string (required) — Path relative to the workspace".to_string(),
        "      unique_key: string (optional) — Refuse the insert if a row with this column's value exists".to_string(),
        "also served: enact_preview, enact_list_receipts, enact_get_receipt, enact_rollback".to_string(),
        "resources:   enact://receipts, enact://receipts/{run_id}, enact://policies, enact://workflows".to_string(),
    ] {
        assert!(text.lines().any(|l| l.starts_with(&expected)), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn describe_names_the_secret_source_without_the_value() {
    let dir = Dir::new();
    let config = dir.fixture("minimal.toml", &Env::standard()).unwrap();
    let text = config::describe(&config);
    assert!(text.contains("secret:   from the environment\n"), "{text}");
    assert!(text.contains("systems (0):\n  (none)\n"), "{text}");
    assert!(
        text.contains("also served: enact_preview, enact_list_receipts, enact_get_receipt\n"),
        "no enact_rollback when rollback is off: {text}"
    );
    assert!(!text.contains(SECRET));
}

#[test]
fn relative_paths_resolve_against_the_folder_the_config_was_named_in() {
    let dir = Dir::new();
    std::fs::create_dir(dir.tmp.path().join("dotfiles")).unwrap();
    let real = dir.tmp.path().join("dotfiles/enact.toml");
    std::fs::write(&real, format!("{ACTOR}{FILES}")).unwrap();
    let link = dir.tmp.path().join("enact.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let env = Env::standard();
    let config = config::load(&link, &|k| env.get(k)).unwrap();
    let root = dir.root();
    assert_eq!(config.path, root.join("dotfiles/enact.toml"));
    assert_eq!(config.receipts_dir, root.join("receipts"));
    let SystemSettings::Filesystem { root: ws } = &config.systems[0].settings else {
        panic!()
    };
    assert_eq!(ws, &root.join("workspace"));
}

#[test]
fn empty_names_and_unrepresentable_values_are_refused() {
    let dir = Dir::new();
    let text = format!(
        "{ACTOR}role = \" \"\n[secret]\nenv = \"\"\n[receipts]\ndir = \"\"\n\
         [systems.gh]\ntype = \"github\"\ntoken_env = \"\"\nrepos = [\"acme/app\"]\n{FILES}\
         [[workflows]]\nname = \"w\"\n[[workflows.steps]]\nsystem = \"files\"\naction = \"read_file\"\nargs = {{ path = \"a\", n = nan }}\n"
    );
    assert_eq!(
        dir.errors(&text, &Env::standard()),
        pairs(&[
            ("actor.role", "`role` must not be empty"),
            ("secret.env", "`env` must not be empty"),
            ("receipts.dir", "`dir` must not be empty"),
            ("systems.gh.token_env", "`token_env` must not be empty"),
            (
                "workflows[0].steps[0].args",
                "float NaN cannot be represented in JSON"
            ),
        ])
    );
}

#[test]
fn rate_limit_per_must_name_an_input_of_every_scoped_workflow() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ws")).unwrap();
    let text = r#"
[actor]
email = "a@b.c"
[systems.files]
type = "filesystem"
root = "ws"
[[policies]]
policy = "rate_limit"
max = 3
per = "path"
[[workflows]]
name = "list"
[[workflows.steps]]
system = "files"
action = "list_dir"
"#;
    let env = |k: &str| (k == "ENACT_SECRET").then(|| "x".repeat(40));
    let errors = enact::config::load_str(text, &dir.path().join("enact.toml"), &env).unwrap_err();
    let lines: Vec<String> = errors.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            "policies[0] (rate_limit): parameter per must name an input of workflow `list`, got \"path\" (hint: scope the policy with `workflows = [...]` to workflows that have this input)"
        ]
    );
}
