//! Issue 5's "done means" at the MCP level: the real `enact serve` binary over stdio, its
//! GitHub system pointed at the in-process fake GitHub (started in this test process on
//! 127.0.0.1), the token handed over in `GITHUB_TOKEN` and pinned by the fake.
//!
//! Each test tells one story: the agent's calls, the decision and result it reads, the
//! receipts on disk, and what the fake saw (its state and every request it answered).

use enact::fake_github::{FakeGithub, Injected};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::mcp::{
    Client, Folder, assert_block, assert_failed_action_on, assert_shape, call, connect,
    connect_with_stderr, fail, is_error, read_json, results, signature_recomputes, structured,
    texts,
};

const TOKEN: &str = "ghp_EnactMcpTestToken_4b8d2f6a0c71";
const REPO: &str = "acme/app";

/// The config under test: the PR built-in plus declared GitHub workflows, every git policy,
/// scoped where two would otherwise judge the same call, and rollback on.
fn config(base_url: &str) -> String {
    format!(
        r#"
[actor]
email = "agent@company.com"
role = "engineer"

[rollback]
enabled = true

[systems.gh]
type = "github"
base_url = "{base_url}"
repos = ["acme/*"]

[[policies]]
policy = "no_push_to_main"

[[policies]]
policy = "require_branch_prefix"
prefix = "agent/"
workflows = ["open_pr", "push_commit"]

[[policies]]
policy = "max_files_per_commit"
max = 3
workflows = ["open_pr", "push_commit"]

[[policies]]
policy = "no_delete_branch"
workflows = ["delete_branch"]

[[policies]]
policy = "no_merge_to_main"
workflows = ["merge_pr"]

[[workflows]]
name = "open_pr"
builtin = "agent_pr_workflow"
system = "gh"

[[workflows]]
name = "merge_pr"
[workflows.inputs.repo]
type = "string"
[workflows.inputs.pr_number]
type = "integer"
[[workflows.steps]]
system = "gh"
action = "merge_pr"
args = {{ repo = "{{{{repo}}}}", pr_number = "{{{{pr_number}}}}" }}

[[workflows]]
name = "delete_branch"
[workflows.inputs.repo]
type = "string"
[workflows.inputs.branch]
type = "string"
[[workflows.steps]]
system = "gh"
action = "delete_branch"
args = {{ repo = "{{{{repo}}}}", branch = "{{{{branch}}}}" }}

# The same action, vetted for clean-up: outside no_delete_branch's scope.
[[workflows]]
name = "prune_branch"
[workflows.inputs.repo]
type = "string"
[workflows.inputs.branch]
type = "string"
[[workflows.steps]]
system = "gh"
action = "delete_branch"
args = {{ repo = "{{{{repo}}}}", branch = "{{{{branch}}}}" }}

[[workflows]]
name = "create_issue"
[workflows.inputs.repo]
type = "string"
[workflows.inputs.title]
type = "string"
[workflows.inputs.body]
type = "string"
default = ""
[[workflows.steps]]
system = "gh"
action = "create_issue"
args = {{ repo = "{{{{repo}}}}", title = "{{{{title}}}}", body = "{{{{body}}}}" }}

[[workflows]]
name = "push_commit"
[workflows.inputs.repo]
type = "string"
[workflows.inputs.branch]
type = "string"
[workflows.inputs.message]
type = "string"
[workflows.inputs.files]
type = "object"
[[workflows.steps]]
system = "gh"
action = "push_commit"
args = {{ repo = "{{{{repo}}}}", branch = "{{{{branch}}}}", message = "{{{{message}}}}", files = "{{{{files}}}}" }}
"#
    )
}

/// A fake GitHub holding `acme/app`, and `enact serve` connected to it.
struct Gh {
    fake: FakeGithub,
    folder: Folder,
    client: Client,
    /// The sha `main` starts at.
    main: String,
}

async fn start() -> Gh {
    let fake = FakeGithub::start().await.unwrap();
    fake.require_token(TOKEN);
    let main = fake.add_repo(REPO);
    let folder = Folder::new(&config(fake.base_url()));
    let client = connect(&folder, &[("GITHUB_TOKEN", TOKEN)]).await;
    Gh {
        fake,
        folder,
        client,
        main,
    }
}

impl Gh {
    async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        call(&self.client, tool, args).await
    }

    /// A workflow call: checks the SPEC's result shape and returns `structuredContent`.
    async fn run(&self, tool: &str, args: Value) -> Value {
        assert_shape(&self.call(tool, args).await)
    }

    async fn rollback(&self, run_id: &Value) -> CallToolResult {
        self.call("enact_rollback", json!({"run_id": run_id})).await
    }

    /// Every request the fake answered, as `METHOD /path status`.
    fn lines(&self) -> Vec<String> {
        self.fake.request_lines()
    }

    /// The requests that could change something on GitHub.
    fn writes(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| !l.starts_with("GET "))
            .collect()
    }

    /// Opens a PR with one file from `agent/<name>` into `base`; returns the run.
    async fn open_pr(&self, name: &str, base: &str) -> Value {
        let s = self
            .run(
                "open_pr",
                json!({"repo": REPO, "branch": format!("agent/{name}"), "title": format!("Change {name}"),
                       "base": base, "files": {format!("{name}.txt"): "content\n"}}),
            )
            .await;
        assert_eq!(s["success"], true, "{s}");
        s
    }

    async fn finish(self) {
        self.client.cancel().await.unwrap();
    }
}

fn short(sha: &str) -> &str {
    &sha[..7]
}

/// Asserts a failed `gh` action (see [`assert_failed_action_on`]).
fn assert_failed_action(r: &CallToolResult, action: &str) -> String {
    assert_failed_action_on(r, "gh", action)
}

#[tokio::test]
async fn open_pr_with_files_makes_a_branch_one_commit_and_a_pr() {
    let gh = start().await;
    let commits_before = gh.fake.commit_count(REPO);
    let r = gh
        .call(
            "open_pr",
            json!({"repo": REPO, "branch": "agent/fix-typo", "title": "Fix typo",
                   "body": "Found by the agent", "files": {"README.md": "# app\n", "docs/a.md": "A\n"}}),
        )
        .await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    let s = assert_shape(&r);
    assert_eq!(
        (&s["decision"], &s["success"]),
        (&json!("PASS"), &json!(true))
    );
    assert!(texts(&r)[0].starts_with("PASS: `open_pr` ran 3 action(s) successfully"));
    assert_eq!(
        results(&s)
            .iter()
            .map(|(p, passed, _)| (p.as_str(), *passed))
            .collect::<Vec<_>>(),
        [
            ("no_push_to_main", true),
            ("require_branch_prefix", true),
            ("max_files_per_commit", true)
        ]
    );

    let actions = s["actions"].as_array().unwrap();
    let names: Vec<&str> = actions
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["create_branch", "push_commit", "create_pr"]);
    let sha = actions[1]["output"]["sha"].as_str().unwrap().to_string();
    assert_eq!(
        actions[0]["output"],
        json!({"branch": "agent/fix-typo", "sha": gh.main, "already_done": false})
    );
    assert_eq!(
        actions[1]["output"],
        json!({"branch": "agent/fix-typo", "sha": sha, "parent_sha": gh.main, "files": 2, "already_done": false})
    );
    assert_eq!(
        actions[2]["output"],
        json!({"pr_number": 1, "url": format!("{}/acme/app/pull/1", gh.fake.base_url()), "already_done": false})
    );

    // The fake: the branch at one new commit holding every file, parented on main; one PR.
    assert_eq!(gh.fake.commit_count(REPO), commits_before + 1);
    assert_eq!(
        gh.fake.branch_sha(REPO, "agent/fix-typo"),
        Some(sha.clone())
    );
    assert_eq!(gh.fake.branch_sha(REPO, "main"), Some(gh.main.clone()));
    let commit = gh.fake.commit(REPO, &sha).unwrap();
    assert_eq!(
        commit.message, "Fix typo",
        "the message defaults to the title"
    );
    assert_eq!(commit.parents, vec![gh.main.clone()]);
    assert_eq!(
        commit.files.into_iter().collect::<Vec<_>>(),
        [
            ("README.md".to_string(), "# app\n".to_string()),
            ("docs/a.md".to_string(), "A\n".to_string())
        ]
    );
    let pr = gh.fake.pull(REPO, 1).unwrap();
    assert_eq!(
        (
            pr.title.as_str(),
            pr.body.as_str(),
            pr.head.as_str(),
            pr.base.as_str()
        ),
        ("Fix typo", "Found by the agent", "agent/fix-typo", "main")
    );
    assert_eq!(pr.state, "open");
    assert_eq!(gh.fake.pulls(REPO).len(), 1);
    assert_eq!(
        gh.writes(),
        [
            "POST /repos/acme/app/git/refs 201",
            "POST /repos/acme/app/git/trees 201",
            "POST /repos/acme/app/git/commits 201",
            "PATCH /repos/acme/app/git/refs/heads/agent/fix-typo 200",
            "POST /repos/acme/app/pulls 201"
        ]
    );

    // One signed receipt, recording every sha and number and what the undo needs.
    let receipts = gh.folder.receipt_files();
    assert_eq!(receipts.len(), 1);
    let receipt = &receipts[0];
    assert!(signature_recomputes(receipt));
    assert_eq!(receipt["run_id"], s["run_id"]);
    assert_eq!(receipt["decision"], "PASS");
    let taken = receipt["actions_taken"].as_array().unwrap();
    assert_eq!(taken.len(), 3);
    for a in taken {
        assert_eq!(
            a["target"],
            json!({"type": "github", "base_url": gh.fake.base_url()})
        );
    }
    assert_eq!(
        taken[1]["rollback_data"],
        json!({"repo": REPO, "branch": "agent/fix-typo", "sha": sha, "parent_sha": gh.main})
    );
    assert_eq!(
        taken[2]["rollback_data"],
        json!({"repo": REPO, "pr_number": 1})
    );
    gh.finish().await;
}

#[tokio::test]
async fn a_leading_refs_heads_is_dropped_for_every_step() {
    let gh = start().await;
    let s = gh
        .run(
            "open_pr",
            json!({"repo": REPO, "branch": "refs/heads/agent/r", "base": "refs/heads/main",
                   "title": "t", "files": {"r.txt": "r"}}),
        )
        .await;
    assert_eq!(s["success"], true, "{s}");
    assert!(results(&s).contains(&(
        "require_branch_prefix".into(),
        true,
        "Branch 'agent/r' starts with 'agent/'".into()
    )));
    let pr = gh.fake.pull(REPO, 1).unwrap();
    assert_eq!((pr.head.as_str(), pr.base.as_str()), ("agent/r", "main"));
    assert_eq!(
        gh.fake.branches(REPO).into_keys().collect::<Vec<_>>(),
        ["agent/r", "main"]
    );
    let plan = &gh.folder.receipt_files()[0]["plan"];
    assert_eq!(plan[0]["args"]["branch"], "agent/r");
    assert_eq!(plan[0]["args"]["from_branch"], "main");
    assert_eq!(plan[2]["args"]["head"], "agent/r");
    assert_eq!(plan[2]["args"]["base"], "main");
    gh.finish().await;
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it_on_every_request() {
    // GitHub Enterprise Server serves its API under `/api/v3`; the fake serves at the root,
    // so it answers 404 — what matters here is which paths were asked for.
    let fake = FakeGithub::start().await.unwrap();
    fake.require_token(TOKEN);
    fake.add_repo(REPO);
    let folder = Folder::new(&config(&format!("{}/api/v3/", fake.base_url())));
    let client = connect(&folder, &[("GITHUB_TOKEN", TOKEN)]).await;
    let r = call(
        &client,
        "open_pr",
        json!({"repo": REPO, "branch": "agent/ghe", "title": "t"}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(
        fake.request_lines(),
        [
            "GET /api/v3/repos/acme/app/git/ref/heads/agent/ghe 404",
            "GET /api/v3/repos/acme/app/git/ref/heads/main 404",
            "GET /api/v3/repos/acme/app 404"
        ]
    );
    let receipt = &folder.receipt_files()[0];
    assert_eq!(
        receipt["actions_taken"][0]["target"]["base_url"],
        format!("{}/api/v3", fake.base_url())
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn open_pr_without_files_fails_at_create_pr_with_githubs_no_commits_message() {
    let gh = start().await;
    let r = gh
        .call(
            "open_pr",
            json!({"repo": REPO, "branch": "agent/empty", "title": "Nothing yet"}),
        )
        .await;
    let error = assert_failed_action(&r, "create_pr");
    assert_eq!(
        error,
        "create_pr on acme/app: GitHub said: No commits between main and agent/empty (422)"
    );
    let s = structured(&r);
    let names: Vec<&str> = s["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["create_branch", "create_pr"], "no push_commit step");
    assert_eq!(s["actions"][0]["success"], true);
    assert_eq!(
        gh.fake.branch_sha(REPO, "agent/empty"),
        Some(gh.main.clone())
    );
    assert!(gh.fake.pulls(REPO).is_empty());
    assert_eq!(
        gh.writes(),
        [
            "POST /repos/acme/app/git/refs 201",
            "POST /repos/acme/app/pulls 422"
        ]
    );
    let receipts = gh.folder.receipt_files();
    assert_eq!(receipts.len(), 1);
    assert!(signature_recomputes(&receipts[0]));
    assert_eq!(receipts[0]["actions_taken"][1]["success"], false);
    gh.finish().await;
}

#[tokio::test]
async fn pushes_to_protected_branches_are_blocked_before_any_request() {
    let gh = start().await;
    for branch in [
        "main",
        "refs/heads/main",
        "Main",
        "REFS/HEADS/main",
        "master",
    ] {
        let r = gh
            .call(
                "open_pr",
                json!({"repo": REPO, "branch": branch, "title": "t", "files": {"a": "1"}}),
            )
            .await;
        let failed = assert_block(&r);
        // The plan drops one leading `refs/heads/`; reasons name the branch as planned.
        let planned = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        assert_eq!(
            failed,
            [
                fail(
                    "no_push_to_main",
                    &format!("Direct push to '{planned}' is blocked")
                ),
                fail(
                    "require_branch_prefix",
                    &format!("Branch '{planned}' does not start with 'agent/'")
                ),
            ],
            "{branch}"
        );
    }
    let r = gh
        .call(
            "push_commit",
            json!({"repo": REPO, "branch": "main", "message": "m", "files": {"a": "1"}}),
        )
        .await;
    assert_eq!(
        assert_block(&r),
        [
            fail("no_push_to_main", "Direct push to 'main' is blocked"),
            fail(
                "require_branch_prefix",
                "Branch 'main' does not start with 'agent/'"
            ),
        ]
    );
    // Deleting `main` through the vetted clean-up workflow is a write to main too.
    let r = gh
        .call("prune_branch", json!({"repo": REPO, "branch": "MAIN"}))
        .await;
    assert_eq!(
        assert_block(&r),
        [fail("no_push_to_main", "Direct push to 'MAIN' is blocked")]
    );
    // ` Main `: a branch name holding whitespace is not even a valid plan.
    let r = gh
        .call(
            "open_pr",
            json!({"repo": REPO, "branch": " Main ", "title": "t"}),
        )
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "input_schema",
            "gh.create_branch: argument `branch`: invalid branch name ' Main ': it contains whitespace or a control character"
        )]
    );

    assert!(gh.fake.requests().is_empty(), "{:?}", gh.lines());
    assert_eq!(gh.fake.branches(REPO).len(), 1);
    let receipts = gh.folder.receipt_files();
    assert_eq!(receipts.len(), 8, "one receipt per call, pass or block");
    assert!(receipts.iter().all(|r| r["decision"] == "BLOCK"));
    assert!(receipts.iter().all(signature_recomputes));
    gh.finish().await;
}

#[tokio::test]
async fn a_branch_without_the_prefix_is_blocked() {
    let gh = start().await;
    for (tool, args, branch) in [
        (
            "open_pr",
            json!({"repo": REPO, "branch": "feature/x", "title": "t"}),
            "feature/x",
        ),
        (
            "open_pr",
            json!({"repo": REPO, "branch": "Agent/x", "title": "t"}),
            "Agent/x",
        ),
        (
            "push_commit",
            json!({"repo": REPO, "branch": "fix", "message": "m", "files": {"a": "1"}}),
            "fix",
        ),
    ] {
        let r = gh.call(tool, args).await;
        assert_eq!(
            assert_block(&r),
            [fail(
                "require_branch_prefix",
                &format!("Branch '{branch}' does not start with 'agent/'")
            )],
            "{tool} {branch}"
        );
    }
    assert!(gh.fake.requests().is_empty(), "{:?}", gh.lines());
    gh.finish().await;
}

#[tokio::test]
async fn a_commit_with_too_many_files_is_blocked_and_the_limit_is_inclusive() {
    let gh = start().await;
    let four = json!({"a": "1", "b": "2", "c": "3", "d": "4"});
    let r = gh
        .call(
            "open_pr",
            json!({"repo": REPO, "branch": "agent/big", "title": "t", "files": four}),
        )
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "max_files_per_commit",
            "Commit to 'agent/big' changes 4 files (max 3)"
        )]
    );
    let r = gh
        .call(
            "push_commit",
            json!({"repo": REPO, "branch": "agent/big", "message": "m", "files": four}),
        )
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "max_files_per_commit",
            "Commit to 'agent/big' changes 4 files (max 3)"
        )]
    );
    assert!(gh.fake.requests().is_empty(), "{:?}", gh.lines());

    // Exactly the limit passes (previewed: nothing runs, nothing is sent).
    let r = gh
        .call(
            "enact_preview",
            json!({"workflow": "open_pr", "arguments": {"repo": REPO, "branch": "agent/big",
                   "title": "t", "files": {"a": "1", "b": "2", "c": "3"}}}),
        )
        .await;
    let s = structured(&r);
    assert_eq!(s["decision"], "PASS", "{s}");
    assert!(results(&s).contains(&(
        "max_files_per_commit".into(),
        true,
        "Commit to 'agent/big' changes 3 files (max 3)".into()
    )));
    assert!(gh.fake.requests().is_empty(), "{:?}", gh.lines());
    gh.finish().await;
}

#[tokio::test]
async fn any_delete_branch_is_blocked() {
    let gh = start().await;
    gh.fake.set_branch(REPO, "agent/old", Some(&gh.main));
    let r = gh
        .call(
            "delete_branch",
            json!({"repo": REPO, "branch": "agent/old"}),
        )
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "no_delete_branch",
            "Deleting branch 'agent/old' is blocked"
        )]
    );
    assert!(gh.fake.requests().is_empty(), "{:?}", gh.lines());
    assert_eq!(gh.fake.branch_sha(REPO, "agent/old"), Some(gh.main.clone()));
    gh.finish().await;
}

#[tokio::test]
async fn merging_into_main_is_blocked_after_looking_up_the_base() {
    let gh = start().await;
    gh.open_pr("into-main", "main").await;
    gh.fake.clear_requests();
    let r = gh
        .call("merge_pr", json!({"repo": REPO, "pr_number": 1}))
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "no_merge_to_main",
            "Merging PR #1 in 'acme/app' into 'main' is blocked"
        )]
    );
    // Only the lookup of the PR's base reached the fake.
    assert_eq!(gh.lines(), ["GET /repos/acme/app/pulls/1 200"]);
    let pr = gh.fake.pull(REPO, 1).unwrap();
    assert!(!pr.merged);
    assert_eq!(pr.state, "open");
    gh.finish().await;
}

#[tokio::test]
async fn a_failed_base_lookup_blocks_with_a_policy_error() {
    let gh = start().await;
    let r = gh
        .call("merge_pr", json!({"repo": REPO, "pr_number": 99}))
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "no_merge_to_main",
            "policy error: could not look up the base branch of PR #99 in 'acme/app': cannot look up pull request #99 of acme/app: GitHub said: Not Found (404)"
        )]
    );
    assert_eq!(gh.lines(), ["GET /repos/acme/app/pulls/99 404"]);

    // A lookup that gets no answer fails closed the same way.
    gh.fake.clear_requests();
    gh.open_pr("lookup", "main").await;
    gh.fake.clear_requests();
    gh.fake.inject(
        "GET",
        "/repos/acme/app/pulls/1",
        Injected::error(500, "Server Error"),
    );
    let r = gh
        .call("merge_pr", json!({"repo": REPO, "pr_number": 1}))
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "no_merge_to_main",
            "policy error: could not look up the base branch of PR #1 in 'acme/app': cannot look up pull request #1 of acme/app: GitHub said: Server Error (500)"
        )]
    );
    assert!(gh.writes().is_empty(), "{:?}", gh.lines());
    assert!(!gh.fake.pull(REPO, 1).unwrap().merged);
    gh.finish().await;
}

#[tokio::test]
async fn out_of_scope_repos_and_crafted_names_are_input_schema_blocks_without_requests() {
    let gh = start().await;
    gh.fake.add_repo("other/app");
    let pr = |repo: &str, branch: &str| json!({"repo": repo, "branch": branch, "title": "t"});
    let branch_err = |b: &str, why: &str| {
        format!("gh.create_branch: argument `branch`: invalid branch name '{b}': {why}")
    };
    let special = "it contains one of ~ ^ : ? * [ \\ # %";
    let cases = [
        (
            "open_pr",
            pr("other/app", "agent/x"),
            "gh.create_branch: argument `repo`: repo 'other/app' is not in the repos of system `gh`"
                .to_string(),
        ),
        (
            "create_issue",
            json!({"repo": "other/app", "title": "t"}),
            "gh.create_issue: argument `repo`: repo 'other/app' is not in the repos of system `gh`"
                .to_string(),
        ),
        (
            "open_pr",
            pr(REPO, "main?x"),
            branch_err("main?x", special),
        ),
        (
            "open_pr",
            pr("acme/app?", "agent/x"),
            "gh.create_branch: argument `repo`: repo 'acme/app?' is not of the form owner/name"
                .to_string(),
        ),
        ("open_pr", pr(REPO, "../"), branch_err("../", "it contains '..'")),
        (
            "open_pr",
            pr(REPO, "agent/%2e%2e"),
            branch_err("agent/%2e%2e", special),
        ),
        (
            "open_pr",
            pr(REPO, "agent/a b"),
            branch_err("agent/a b", "it contains whitespace or a control character"),
        ),
        (
            "merge_pr",
            json!({"repo": "acme/%2e%2e", "pr_number": 1}),
            "gh.merge_pr: argument `repo`: repo 'acme/%2e%2e' is not of the form owner/name"
                .to_string(),
        ),
        (
            "push_commit",
            json!({"repo": REPO, "branch": "agent/x", "message": "m", "files": {"../etc/passwd": "x"}}),
            "gh.push_commit: argument `files`: invalid file path '../etc/passwd': it must be relative, without '.', '..' or empty components".to_string(),
        ),
    ];
    for (tool, args, reason) in &cases {
        let r = gh.call(tool, args.clone()).await;
        assert_eq!(
            assert_block(&r),
            [fail("input_schema", reason)],
            "{tool} {args}"
        );
    }
    assert!(gh.fake.requests().is_empty(), "{:?}", gh.lines());
    let receipts = gh.folder.receipt_files();
    assert_eq!(receipts.len(), cases.len());
    assert!(receipts.iter().all(signature_recomputes));
    gh.finish().await;
}

#[tokio::test]
async fn the_same_call_twice_reports_already_done_and_duplicates_nothing() {
    let gh = start().await;
    let args =
        json!({"repo": REPO, "branch": "agent/twice", "title": "Twice", "files": {"t.txt": "t"}});
    let first = gh.run("open_pr", args.clone()).await;
    assert_eq!(first["success"], true);
    let branches = gh.fake.branches(REPO).len();

    let second = gh.run("open_pr", args).await;
    assert_eq!(second["success"], true, "{second}");
    let out = |s: &Value, i: usize| s["actions"][i]["output"].clone();
    assert_eq!(
        out(&second, 0),
        json!({"branch": "agent/twice", "sha": out(&first, 1)["sha"], "already_done": "created"})
    );
    // A push always makes a new commit (SPEC §7): never "already done".
    assert_eq!(out(&second, 1)["already_done"], false);
    assert_eq!(out(&second, 1)["parent_sha"], out(&first, 1)["sha"]);
    assert_eq!(
        out(&second, 2),
        json!({"pr_number": 1, "url": out(&first, 2)["url"], "already_done": "created"})
    );
    assert_eq!(gh.fake.branches(REPO).len(), branches);
    assert_eq!(gh.fake.pulls(REPO).len(), 1);

    let issue = json!({"repo": REPO, "title": "Follow up"});
    let a = gh.run("create_issue", issue.clone()).await;
    let b = gh.run("create_issue", issue).await;
    assert_eq!(out(&a, 0)["already_done"], false);
    assert_eq!(
        out(&b, 0),
        json!({"issue_number": 2, "url": out(&a, 0)["url"], "already_done": "created"})
    );
    assert_eq!(gh.fake.issues(REPO).len(), 1);
    // The repeat wrote no refs, pulls or issues; only its own new commit.
    let posts: Vec<String> = gh
        .writes()
        .into_iter()
        .filter(|l| l.contains("/git/refs 2") || l.contains("/pulls 2") || l.contains("/issues 2"))
        .collect();
    assert_eq!(
        posts,
        [
            "POST /repos/acme/app/git/refs 201",
            "POST /repos/acme/app/pulls 201",
            "POST /repos/acme/app/issues 201"
        ]
    );
    gh.finish().await;
}

#[tokio::test]
async fn rollback_over_mcp_restores_the_fakes_state() {
    let gh = start().await;
    let sha = gh
        .fake
        .push_files(REPO, "main", "old work", &[("old.txt", "o")])
        .unwrap();
    gh.fake.set_branch(REPO, "agent/stale", Some(&sha));
    gh.fake.set_branch(REPO, "main", Some(&gh.main));
    let before = gh.fake.snapshot(REPO);

    let pr = gh.open_pr("roll", "main").await;
    let issue = gh
        .run("create_issue", json!({"repo": REPO, "title": "Track it"}))
        .await;
    let pruned = gh
        .run(
            "prune_branch",
            json!({"repo": REPO, "branch": "agent/stale"}),
        )
        .await;
    assert_eq!(pruned["success"], true, "{pruned}");
    assert_eq!(gh.fake.branch_sha(REPO, "agent/stale"), None);

    for run in [&pruned, &issue, &pr] {
        let r = gh.rollback(&run["run_id"]).await;
        assert!(!is_error(&r), "{:?}", texts(&r));
        let s = assert_shape(&r);
        assert_eq!(
            (&s["decision"], &s["success"]),
            (&json!("PASS"), &json!(true))
        );
        assert_eq!(s["rollback_of"], run["run_id"]);
        assert!(texts(&r)[0].starts_with("ROLLBACK PASS: run "));
    }
    // Branches exactly as before (agent/roll gone, agent/stale back at its sha); what was
    // opened is closed, not deleted (GitHub cannot delete a PR or an issue).
    let mut expected = before;
    expected["pulls"] = json!([{"number": 1, "state": "closed", "merged": false, "head": "agent/roll", "base": "main"}]);
    expected["issues"] = json!([{"number": 2, "state": "closed", "title": "Track it"}]);
    assert_eq!(gh.fake.snapshot(REPO), expected);

    let receipts = gh.folder.receipt_files();
    assert_eq!(receipts.len(), 6);
    let rb = &receipts[5];
    assert_eq!(rb["workflow"], "rollback:open_pr");
    assert_eq!(rb["rollback_of"], pr["run_id"]);
    let undone: Vec<&str> = rb["actions_taken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        undone,
        ["create_pr", "push_commit", "create_branch"],
        "reverse order"
    );
    assert!(receipts.iter().all(signature_recomputes));

    let r = gh.rollback(&pr["run_id"]).await;
    assert!(is_error(&r));
    assert!(texts(&r)[0].contains("was already rolled back by"));
    gh.finish().await;
}

#[tokio::test]
async fn rollback_of_a_run_that_merged_is_partial() {
    let gh = start().await;
    gh.fake.set_branch(REPO, "develop", Some(&gh.main));
    gh.open_pr("feature", "develop").await;
    let merged = gh
        .run("merge_pr", json!({"repo": REPO, "pr_number": 1}))
        .await;
    assert_eq!(merged["success"], true, "{merged}");
    assert!(results(&merged).contains(&(
        "no_merge_to_main".into(),
        true,
        "PR #1 in 'acme/app' merges into 'develop', which is not protected".into()
    )));
    let merge_sha = merged["actions"][0]["output"]["sha"].clone();
    assert_eq!(
        gh.fake.branch_sha(REPO, "develop").map(Value::from),
        Some(merge_sha)
    );
    let after_merge = gh.fake.snapshot(REPO);
    gh.fake.clear_requests();

    let r = gh.rollback(&merged["run_id"]).await;
    assert!(is_error(&r));
    let s = assert_shape(&r);
    assert_eq!(
        (&s["decision"], &s["success"]),
        (&json!("PARTIAL"), &json!(false))
    );
    assert_eq!(
        s["actions"],
        json!([{"action": "merge_pr", "system": "gh", "success": false,
                "output": {"error": "'merge_pr' cannot be reversed"}}])
    );
    assert!(
        texts(&r)[0].starts_with(&format!(
            "ROLLBACK PARTIAL: run {} — failed: merge_pr: 'merge_pr' cannot be reversed",
            merged["run_id"].as_str().unwrap()
        )),
        "{}",
        texts(&r)[0]
    );
    assert!(gh.fake.requests().is_empty(), "{:?}", gh.lines());
    assert_eq!(gh.fake.snapshot(REPO), after_merge);
    let receipts = gh.folder.receipt_files();
    assert_eq!(receipts.last().unwrap()["decision"], "PARTIAL");
    assert!(signature_recomputes(receipts.last().unwrap()));
    gh.finish().await;
}

#[tokio::test]
async fn rollback_refuses_a_branch_that_moved_and_retries_once_it_is_back() {
    let gh = start().await;
    let run = gh.open_pr("moved", "main").await;
    let ours = run["actions"][1]["output"]["sha"]
        .as_str()
        .unwrap()
        .to_string();
    // Someone else moves the branch after the run.
    let theirs = gh
        .fake
        .push_files(REPO, "agent/moved", "someone else", &[("b.txt", "b")])
        .unwrap();
    gh.fake.clear_requests();

    let r = gh.rollback(&run["run_id"]).await;
    assert!(is_error(&r));
    let s = assert_shape(&r);
    assert_eq!(s["decision"], "PARTIAL");
    let steps: Vec<(String, bool, Value)> = s["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["success"].as_bool().unwrap(),
                a["output"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                "create_pr".into(),
                true,
                json!({"pr_number": 1, "state": "closed"})
            ),
            (
                "push_commit".into(),
                false,
                json!({"error": format!("branch 'agent/moved' on acme/app moved from {} to {} since the run — not reset", short(&ours), short(&theirs))})
            ),
            (
                "create_branch".into(),
                false,
                json!({"error": format!("branch 'agent/moved' on acme/app moved from {} to {} since the run — not deleted", short(&gh.main), short(&theirs))})
            ),
        ]
    );
    assert_eq!(
        gh.fake.branch_sha(REPO, "agent/moved"),
        Some(theirs),
        "untouched"
    );
    assert_eq!(gh.writes(), ["PATCH /repos/acme/app/pulls/1 200"]);

    // Once the branch is back where the run left it, a second rollback retries only the two
    // failed steps and completes.
    gh.fake.set_branch(REPO, "agent/moved", Some(&ours));
    gh.fake.clear_requests();
    let r = gh.rollback(&run["run_id"]).await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    let s = assert_shape(&r);
    assert_eq!(s["decision"], "PASS");
    let retried: Vec<&str> = s["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(retried, ["push_commit", "create_branch"]);
    assert_eq!(gh.fake.branch_sha(REPO, "agent/moved"), None);
    assert_eq!(
        gh.writes(),
        [
            "PATCH /repos/acme/app/git/refs/heads/agent/moved 200",
            "DELETE /repos/acme/app/git/refs/heads/agent/moved 204"
        ]
    );
    gh.finish().await;
}

#[tokio::test]
async fn github_errors_are_failed_actions_with_exactly_one_request_per_write() {
    let gh = start().await;

    // 404: a repo in scope that GitHub does not have (or the token cannot see).
    let r = gh
        .call(
            "open_pr",
            json!({"repo": "acme/missing", "branch": "agent/x", "title": "t"}),
        )
        .await;
    assert_eq!(
        assert_failed_action(&r, "create_branch"),
        "create_branch on acme/missing: repository not found: GitHub said: Not Found (404) — it does not exist or the token cannot see it"
    );
    assert_eq!(structured(&r)["actions"].as_array().unwrap().len(), 1);
    assert!(gh.writes().is_empty(), "{:?}", gh.lines());

    // 422 on the branch creation: the run stops there, no PR is attempted.
    gh.fake.clear_requests();
    gh.fake.inject(
        "POST",
        "/repos/acme/app/git/refs",
        Injected::error(422, "Reference update failed"),
    );
    let r = gh
        .call(
            "open_pr",
            json!({"repo": REPO, "branch": "agent/x", "title": "t", "files": {"a": "1"}}),
        )
        .await;
    assert_eq!(
        assert_failed_action(&r, "create_branch"),
        format!(
            "create_branch on acme/app: cannot create branch 'agent/x' at {}: GitHub said: Reference update failed (422)",
            short(&gh.main)
        )
    );
    assert_eq!(gh.writes(), ["POST /repos/acme/app/git/refs 422"]);
    assert_eq!(gh.fake.branch_sha(REPO, "agent/x"), None);

    // 500 on the pull request: branch and commit exist, the PR is not re-sent.
    gh.fake.clear_requests();
    gh.fake.inject(
        "POST",
        "/repos/acme/app/pulls",
        Injected::error(500, "Server Error"),
    );
    let r = gh
        .call(
            "open_pr",
            json!({"repo": REPO, "branch": "agent/x", "title": "t", "files": {"a": "1"}}),
        )
        .await;
    assert_eq!(
        assert_failed_action(&r, "create_pr"),
        "create_pr on acme/app: GitHub said: Server Error (500)"
    );
    assert_eq!(
        gh.writes()
            .iter()
            .filter(|l| l.contains("/pulls"))
            .collect::<Vec<_>>(),
        ["POST /repos/acme/app/pulls 500"]
    );
    assert!(gh.fake.pulls(REPO).is_empty());

    // A network failure after the request was sent: said so, never re-sent.
    gh.fake.clear_requests();
    gh.fake
        .inject("POST", "/repos/acme/app/issues", Injected::disconnect());
    let r = gh
        .call("create_issue", json!({"repo": REPO, "title": "Lost"}))
        .await;
    let error = assert_failed_action(&r, "create_issue");
    let prefix = format!(
        "create_issue on acme/app: no answer from GitHub at {}",
        gh.fake.base_url()
    );
    assert!(error.starts_with(&prefix), "{error}");
    assert!(
        error.ends_with(" — the change may or may not have been made"),
        "{error}"
    );
    assert_eq!(gh.writes(), ["POST /repos/acme/app/issues 0"]);

    // A push whose ref update is refused names the branch and GitHub's words.
    gh.fake.clear_requests();
    gh.fake.inject(
        "PATCH",
        "/repos/acme/app/git/refs/heads/agent/x",
        Injected::error(422, "Update is not a fast forward"),
    );
    let before = gh.fake.branch_sha(REPO, "agent/x").unwrap();
    let r = gh
        .call(
            "push_commit",
            json!({"repo": REPO, "branch": "agent/x", "message": "m", "files": {"b": "2"}}),
        )
        .await;
    let error = assert_failed_action(&r, "push_commit");
    assert!(
        error.starts_with(&format!(
            "push_commit on acme/app: cannot move branch 'agent/x' from {} to ",
            short(&before)
        )),
        "{error}"
    );
    assert!(
        error.ends_with(": GitHub said: Update is not a fast forward (422)"),
        "{error}"
    );
    assert_eq!(
        gh.writes(),
        [
            "POST /repos/acme/app/git/trees 201",
            "POST /repos/acme/app/git/commits 201",
            "PATCH /repos/acme/app/git/refs/heads/agent/x 422"
        ]
    );
    assert_eq!(gh.fake.branch_sha(REPO, "agent/x"), Some(before));

    let receipts = gh.folder.receipt_files();
    assert_eq!(receipts.len(), 5);
    assert!(receipts.iter().all(signature_recomputes));
    gh.finish().await;
}

#[tokio::test]
async fn the_token_never_appears_in_results_logs_receipts_or_resources() {
    let fake = FakeGithub::start().await.unwrap();
    fake.require_token(TOKEN);
    fake.add_repo(REPO);
    let folder = Folder::new(&config(fake.base_url()));
    let (client, log) =
        connect_with_stderr(&folder, &[("GITHUB_TOKEN", TOKEN), ("RUST_LOG", "trace")]).await;
    let mut seen: Vec<String> = Vec::new();
    let mut keep = |r: &CallToolResult| seen.push(serde_json::to_string(r).unwrap());

    let pass = call(
        &client,
        "open_pr",
        json!({"repo": REPO, "branch": "agent/t", "title": "t", "files": {"a": "1"}}),
    )
    .await;
    assert!(!is_error(&pass));
    keep(&pass);
    let run_id = structured(&pass)["run_id"].clone();
    fake.inject(
        "POST",
        "/repos/acme/app/issues",
        Injected::error(500, "Server Error"),
    );
    for (tool, args) in [
        ("create_issue", json!({"repo": REPO, "title": "x"})),
        ("merge_pr", json!({"repo": REPO, "pr_number": 7})),
        (
            "open_pr",
            json!({"repo": REPO, "branch": "main", "title": "t"}),
        ),
        (
            "open_pr",
            json!({"repo": "acme/none", "branch": "agent/n", "title": "t"}),
        ),
        (
            "enact_preview",
            json!({"workflow": "merge_pr", "arguments": {"repo": REPO, "pr_number": 1}}),
        ),
        ("enact_list_receipts", json!({})),
        ("enact_get_receipt", json!({"run_id": run_id})),
        ("enact_rollback", json!({"run_id": run_id})),
    ] {
        keep(&call(&client, tool, args).await);
    }
    for uri in [
        "enact://receipts".to_string(),
        format!("enact://receipts/{}", run_id.as_str().unwrap()),
        "enact://policies".into(),
        "enact://workflows".into(),
    ] {
        seen.push(read_json(&client, &uri).await.to_string());
    }
    client.cancel().await.unwrap();
    let stderr = log.await.unwrap();
    assert!(
        stderr.contains("run recorded"),
        "the log was captured: {stderr}"
    );

    // A wrong token: GitHub's 401 comes back by name, and neither token is echoed.
    let (client, log) = connect_with_stderr(
        &folder,
        &[
            ("GITHUB_TOKEN", "ghp_WrongToken_0000"),
            ("RUST_LOG", "trace"),
        ],
    )
    .await;
    let r = call(
        &client,
        "create_issue",
        json!({"repo": REPO, "title": "denied"}),
    )
    .await;
    assert_eq!(
        assert_failed_action(&r, "create_issue"),
        "create_issue on acme/app: cannot list open issues: GitHub said: Bad credentials (401)"
    );
    seen.push(serde_json::to_string(&r).unwrap());
    client.cancel().await.unwrap();
    let wrong_stderr = log.await.unwrap();

    let receipts: Vec<String> = folder
        .receipt_files()
        .iter()
        .map(Value::to_string)
        .collect();
    assert!(receipts.len() >= 6);
    for (what, text) in [
        ("tool results and resources", seen.join("\n")),
        ("stderr", stderr),
        ("stderr (wrong token)", wrong_stderr.clone()),
        ("receipts", receipts.join("\n")),
    ] {
        assert!(!text.contains(TOKEN), "the token leaked into {what}");
        assert!(
            !text.contains("ghp_WrongToken_0000"),
            "the wrong token leaked into {what}"
        );
    }
    // Only the names of where secrets live are shown, never values.
    assert!(!wrong_stderr.is_empty());
}

#[tokio::test]
async fn rollback_refuses_to_undo_against_a_different_github() {
    let gh = start().await;
    let run = gh.open_pr("elsewhere", "main").await;
    gh.client.cancel().await.unwrap();

    // The operator repoints `gh` at another GitHub holding a repo of the same name.
    let other = FakeGithub::start().await.unwrap();
    other.require_token(TOKEN);
    other.add_repo(REPO);
    std::fs::write(gh.folder.config(), config(other.base_url())).unwrap();
    let before = gh.fake.snapshot(REPO);
    gh.fake.clear_requests();
    let client = connect(&gh.folder, &[("GITHUB_TOKEN", TOKEN)]).await;
    let r = call(&client, "enact_rollback", json!({"run_id": run["run_id"]})).await;
    assert!(is_error(&r));
    let s = assert_shape(&r);
    assert_eq!(s["decision"], "PARTIAL");
    let recorded = json!({"type": "github", "base_url": gh.fake.base_url()});
    let now = json!({"type": "github", "base_url": other.base_url()});
    for step in s["actions"].as_array().unwrap() {
        assert_eq!(step["success"], false, "{step}");
        assert_eq!(
            step["output"]["error"],
            format!("system `gh` is not the one the run acted on: recorded {recorded}, now {now}")
        );
    }
    assert_eq!(s["actions"].as_array().unwrap().len(), 3);
    assert!(gh.fake.requests().is_empty() && other.requests().is_empty());
    assert_eq!(gh.fake.snapshot(REPO), before);
    client.cancel().await.unwrap();
}
