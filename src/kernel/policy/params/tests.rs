//! Tests of the `[[policies]]` parameter parser.

use super::*;

fn params(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn ok(name: &str, v: Value) -> PolicyKind {
    match parse(name, &params(v)) {
        Ok(kind) => kind,
        Err(e) => panic!("{name}: {e:?}"),
    }
}

fn errors(name: &str, v: Value) -> Vec<String> {
    match parse(name, &params(v)) {
        Ok(kind) => panic!("{name}: expected errors, got {kind:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_follow_the_spec() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ok("no_push_to_main", json!({})),
        PolicyKind::NoPushToMain {
            branches: s(&["main", "master"])
        }
    );
    assert_eq!(
        ok("require_branch_prefix", json!({})),
        PolicyKind::RequireBranchPrefix {
            prefix: "agent/".into()
        }
    );
    assert_eq!(
        ok("max_files_per_commit", json!({})),
        PolicyKind::MaxFilesPerCommit { max: 50 }
    );
    assert_eq!(
        ok("no_merge_to_main", json!({})),
        PolicyKind::NoMergeToMain {
            branches: s(&["main", "master"])
        }
    );
    assert_eq!(
        ok("block_extensions", json!({})),
        PolicyKind::BlockExtensions {
            extensions: s(&[".env", ".key", ".pem"])
        }
    );
    assert_eq!(
        ok("rate_limit", json!({"max": 5})),
        PolicyKind::RateLimit {
            max: 5,
            window: 3600,
            per: None
        }
    );
    for name in [
        "no_delete_branch",
        "no_delete_row",
        "no_delete_without_where",
        "no_update_without_where",
        "no_delete_file",
    ] {
        assert_eq!(ok(name, json!({})).name(), name);
    }
}

#[test]
fn given_values_are_parsed() {
    assert_eq!(
        ok(
            "rate_limit",
            json!({"max": 3.0, "window": "90m", "per": "repo"})
        ),
        PolicyKind::RateLimit {
            max: 3,
            window: 5400,
            per: Some("repo".into())
        }
    );
    assert_eq!(
        ok(
            "within_maintenance_window",
            json!({"start": "22:00", "end": "6:05"})
        ),
        PolicyKind::WithinMaintenanceWindow {
            start: 1320,
            end: 365
        }
    );
    assert_eq!(
        ok("block_extensions", json!({"extensions": ["pem", ".Env"]})),
        PolicyKind::BlockExtensions {
            extensions: vec![".pem".into(), ".Env".into()]
        }
    );
    assert_eq!(
        ok(
            "restrict_paths",
            json!({"paths": [".", "", "notes/./a", "a/../b"]})
        ),
        PolicyKind::RestrictPaths {
            paths: vec![".".into(), "".into(), "notes/./a".into(), "a/../b".into()]
        }
    );
    assert_eq!(
        ok("restrict_paths", json!({"paths": []})),
        PolicyKind::RestrictPaths { paths: vec![] }
    );
    assert_eq!(
        ok(
            "protect_tables",
            json!({"tables": ["users", "billing.\"Invoices\""]})
        ),
        PolicyKind::ProtectTables {
            tables: vec!["users".into(), "billing.\"Invoices\"".into()]
        }
    );
    assert_eq!(
        ok("max_files_per_commit", json!({"max": 0})),
        PolicyKind::MaxFilesPerCommit { max: 0 }
    );
}

#[test]
fn unknown_policy_lists_the_built_ins() {
    assert_eq!(
        errors("no_such", json!({})),
        vec![format!(
            "unknown policy `no_such` (built-in policies: {})",
            POLICY_NAMES.join(", ")
        )]
    );
}

#[test]
fn unknown_parameters_are_named() {
    assert_eq!(
        errors("no_delete_row", json!({"foo": 1})),
        vec!["unknown parameter foo (it takes no parameters)"]
    );
    assert_eq!(
        errors("rate_limit", json!({"max": 1, "windows": "1h"})),
        vec!["unknown parameter windows (its parameters are max, window, per)"]
    );
}

#[test]
fn missing_required_parameters_are_named() {
    let cases = [
        ("protect_tables", "tables"),
        ("restrict_paths", "paths"),
        ("contractor_cannot_write_pii", "fields"),
        ("require_actor_role", "roles"),
        ("rate_limit", "max"),
    ];
    for (name, key) in cases {
        assert_eq!(
            errors(name, json!({})),
            vec![format!("missing parameter {key}")]
        );
    }
    assert_eq!(
        errors("within_maintenance_window", json!({})),
        vec!["missing parameter start", "missing parameter end",]
    );
}

#[test]
fn wrong_types_are_named_with_the_value() {
    assert_eq!(
        errors("rate_limit", json!({"max": "5"})),
        vec!["parameter max must be a non-negative integer, got \"5\""]
    );
    assert_eq!(
        errors("max_files_per_commit", json!({"max": -1})),
        vec!["parameter max must be a non-negative integer, got -1"]
    );
    assert_eq!(
        errors("max_files_per_commit", json!({"max": 2.5})),
        vec!["parameter max must be a non-negative integer, got 2.5"]
    );
    assert_eq!(
        errors("require_branch_prefix", json!({"prefix": 1})),
        vec!["parameter prefix must be a string, got 1"]
    );
    assert_eq!(
        errors("no_push_to_main", json!({"branches": "main"})),
        vec!["parameter branches must be an array of strings, got \"main\""]
    );
    assert_eq!(
        errors("no_merge_to_main", json!({"branches": ["main", 1]})),
        vec!["parameter branches must be an array of strings, got [\"main\",1]"]
    );
    assert_eq!(
        errors("rate_limit", json!({"max": 1, "per": false})),
        vec!["parameter per must be a string, got false"]
    );
}

#[test]
fn every_problem_of_an_entry_is_reported() {
    assert_eq!(
        errors(
            "rate_limit",
            json!({"window": "1w", "per": 3, "extra": true})
        ),
        vec![
            "missing parameter max",
            "parameter window must be a duration such as \"30s\", \"5m\", \"1h\" or \"2d\", got \"1w\"",
            "parameter per must be a string, got 3",
            "unknown parameter extra (its parameters are max, window, per)",
        ]
    );
}

#[test]
fn times_are_checked() {
    for bad in [
        "24:00", "12:60", "1200", "12:0", "123:00", "-1:00", "12:00 ", "ab:cd", "",
    ] {
        assert_eq!(
            errors(
                "within_maintenance_window",
                json!({"start": bad, "end": "01:00"})
            ),
            vec![format!(
                "parameter start must be a time \"HH:MM\" from 00:00 to 23:59, got {}",
                json!(bad)
            )],
            "{bad}"
        );
    }
    assert_eq!(
        errors(
            "within_maintenance_window",
            json!({"start": "00:00", "end": 600})
        ),
        vec!["parameter end must be a time \"HH:MM\" from 00:00 to 23:59, got 600"]
    );
    assert_eq!(
        ok(
            "within_maintenance_window",
            json!({"start": "00:00", "end": "23:59"})
        ),
        PolicyKind::WithinMaintenanceWindow {
            start: 0,
            end: 1439
        }
    );
}

#[test]
fn windows_parse_to_seconds() {
    assert_eq!(parse_window("30s"), Ok(30));
    assert_eq!(parse_window("5m"), Ok(300));
    assert_eq!(parse_window("1h"), Ok(3600));
    assert_eq!(parse_window("2d"), Ok(172_800));
    assert_eq!(parse_window("01h"), Ok(3600));
    for bad in [
        "",
        "h",
        "0h",
        "+1h",
        "-1h",
        "1.5h",
        "1w",
        "1H",
        " 1h",
        "1 h",
        "99999999999999999999d",
        "213503982334602d",
    ] {
        assert_eq!(
            parse_window(bad),
            Err(format!(
                "invalid window {bad:?}: expected a positive whole number followed by s, m, h or d"
            )),
            "{bad}"
        );
    }
    assert_eq!(
        errors("rate_limit", json!({"max": 1, "window": 3600})),
        vec![
            "parameter window must be a duration such as \"30s\", \"5m\", \"1h\" or \"2d\", got 3600"
        ]
    );
}

#[test]
fn require_approval_parameters() {
    assert_eq!(
        ok("require_approval", json!({})),
        PolicyKind::RequireApproval {
            actions: None,
            irreversible: false
        }
    );
    assert_eq!(
        ok(
            "require_approval",
            json!({"actions": ["merge_pr"], "irreversible": true})
        ),
        PolicyKind::RequireApproval {
            actions: Some(vec!["merge_pr".into()]),
            irreversible: true
        }
    );
    assert_eq!(
        errors(
            "require_approval",
            json!({"actions": ["merge", "delete_row"]})
        ),
        vec!["parameter actions: entry \"merge\" is not an action of any connector"]
    );
    assert_eq!(
        errors("require_approval", json!({"actions": []})),
        vec!["parameter actions must name at least one action (leave it out to hold every plan)"]
    );
    assert_eq!(
        errors("require_approval", json!({"irreversible": "yes"})),
        vec!["parameter irreversible must be true or false, got \"yes\""]
    );
    assert_eq!(
        errors("require_approval", json!({"max": 1})),
        vec!["unknown parameter max (its parameters are actions, irreversible)"]
    );
}

#[test]
fn list_entries_are_checked() {
    assert_eq!(
        errors("no_push_to_main", json!({"branches": [" "]})),
        vec!["parameter branches: entry \" \" is empty"]
    );
    assert_eq!(
        errors("require_actor_role", json!({"roles": [""]})),
        vec!["parameter roles: entry \"\" is empty"]
    );
    assert_eq!(
        errors(
            "contractor_cannot_write_pii",
            json!({"fields": ["email", ""]})
        ),
        vec!["parameter fields: entry \"\" is empty"]
    );
    assert_eq!(
        errors(
            "restrict_paths",
            json!({"paths": ["/etc", "../x", "a/../../b"]})
        ),
        vec![
            "parameter paths: entry \"/etc\" must be relative to the system root",
            "parameter paths: entry \"../x\" leads outside the system root",
            "parameter paths: entry \"a/../../b\" leads outside the system root",
        ]
    );
    assert_eq!(
        errors(
            "block_extensions",
            json!({"extensions": [".tar.gz", ".", "", "a/b"]})
        ),
        vec![
            "parameter extensions: entry \".tar.gz\" is not a single extension such as '.pem'",
            "parameter extensions: entry \".\" is not a single extension such as '.pem'",
            "parameter extensions: entry \"\" is not a single extension such as '.pem'",
            "parameter extensions: entry \"a/b\" is not a single extension such as '.pem'",
        ]
    );
    assert_eq!(
        errors("protect_tables", json!({"tables": ["", "a.", "\"open"]})),
        vec![
            "parameter tables: entry \"\" is not a valid table name",
            "parameter tables: entry \"a.\" is not a valid table name",
            "parameter tables: entry \"\\\"open\" is not a valid table name",
        ]
    );
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "x".repeat(100);
    let msg = errors("rate_limit", json!({"max": long})).join("");
    assert_eq!(
        msg,
        format!(
            "parameter max must be a non-negative integer, got \"{}…",
            "x".repeat(59)
        )
    );
}

#[test]
fn to_json_shows_defaults_applied() {
    assert_eq!(
        ok("no_push_to_main", json!({})).params_json(),
        json!({"branches": ["main", "master"]})
    );
    assert_eq!(
        ok("require_branch_prefix", json!({})).params_json(),
        json!({"prefix": "agent/"})
    );
    assert_eq!(
        ok("max_files_per_commit", json!({})).params_json(),
        json!({"max": 50})
    );
    assert_eq!(ok("no_delete_row", json!({})).params_json(), json!({}));
    assert_eq!(
        ok("block_extensions", json!({"extensions": ["pem"]})).params_json(),
        json!({"extensions": [".pem"]})
    );
    assert_eq!(
        ok("protect_tables", json!({"tables": ["users"]})).params_json(),
        json!({"tables": ["users"]})
    );
    assert_eq!(
        ok("restrict_paths", json!({"paths": ["notes"]})).params_json(),
        json!({"paths": ["notes"]})
    );
    assert_eq!(
        ok("contractor_cannot_write_pii", json!({"fields": ["ssn"]})).params_json(),
        json!({"fields": ["ssn"]})
    );
    assert_eq!(
        ok("require_actor_role", json!({"roles": ["admin"]})).params_json(),
        json!({"roles": ["admin"]})
    );
    assert_eq!(
        ok(
            "within_maintenance_window",
            json!({"start": "2:00", "end": "06:30"})
        )
        .params_json(),
        json!({"start": "02:00", "end": "06:30"})
    );
    assert_eq!(
        ok("rate_limit", json!({"max": 5})).params_json(),
        json!({"max": 5, "window": "1h", "per": ""})
    );
    assert_eq!(
        ok(
            "rate_limit",
            json!({"max": 5, "window": "5400s", "per": "repo"})
        )
        .params_json(),
        json!({"max": 5, "window": "90m", "per": "repo"})
    );
}

#[test]
fn windows_format_in_the_largest_exact_unit() {
    assert_eq!(format_window(30), "30s");
    assert_eq!(format_window(90), "90s");
    assert_eq!(format_window(300), "5m");
    assert_eq!(format_window(3600), "1h");
    assert_eq!(format_window(172_800), "2d");
    assert_eq!(format_window(0), "0s");
}
