//! Integration tests: the GitHub connector through octocrab against the in-process fake GitHub.

use enact::connector::ActionOutcome;
use enact::connector::github::GithubConnector;
use enact::fake_github::{FakeGithub, Injected};
use enact::kernel::receipt::ActionRecord;
use enact::secret::Secret;
use serde_json::{Map, Value, json};

use crate::steplog::Probe;

const TOKEN: &str = "ghp_EnactTestToken_9f3a7c1e5b";
const REPO: &str = "acme/app";

fn args(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

struct Setup {
    fake: FakeGithub,
    gh: GithubConnector,
    main: String,
}

async fn setup() -> Setup {
    let fake = FakeGithub::start().await.unwrap();
    fake.require_token(TOKEN);
    let main = fake.add_repo(REPO);
    let gh = GithubConnector::new(
        fake.base_url(),
        &Secret::new(TOKEN),
        &["acme/*".to_string()],
    )
    .unwrap();
    Setup { fake, gh, main }
}

impl Setup {
    async fn run(&self, action: &str, a: Value) -> ActionOutcome {
        self.gh.execute(action, &args(a), &mut Probe::ok()).await
    }

    fn record(&self, action: &str, a: Value, outcome: &ActionOutcome) -> ActionRecord {
        Setup::record_of(&self.gh, action, a, outcome)
    }

    fn record_of(
        gh: &GithubConnector,
        action: &str,
        a: Value,
        outcome: &ActionOutcome,
    ) -> ActionRecord {
        ActionRecord {
            action: action.into(),
            system: "gh".into(),
            success: outcome.success,
            output: outcome.output.clone(),
            rollback_data: outcome.rollback_data.clone(),
            target: gh.target(),
            args: args(a),
        }
    }

    /// Runs an action and returns it with its record (as the engine would keep it).
    async fn run_recorded(&self, action: &str, a: Value) -> (ActionOutcome, ActionRecord) {
        let outcome = self.run(action, a.clone()).await;
        let record = self.record(action, a, &outcome);
        (outcome, record)
    }

    fn lines(&self) -> Vec<String> {
        self.fake.request_lines()
    }
}

fn short(sha: &str) -> &str {
    &sha[..7]
}

fn failed(error: &str) -> ActionOutcome {
    ActionOutcome::failed(error)
}

fn writes(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| !l.starts_with("GET ")).collect()
}

#[tokio::test]
async fn target_is_type_and_base_url() {
    let s = setup().await;
    assert_eq!(
        s.gh.target(),
        json!({"type": "github", "base_url": s.fake.base_url()})
    );
    let slash =
        GithubConnector::new(&format!("{}/", s.fake.base_url()), &Secret::new(TOKEN), &[]).unwrap();
    assert_eq!(slash.target(), s.gh.target());
}

#[tokio::test]
async fn create_branch_fresh_then_already_done() {
    let s = setup().await;
    let a = json!({"repo": REPO, "branch": "agent/x", "from_branch": "main"});
    let first = s.run("create_branch", a.clone()).await;
    assert_eq!(
        first,
        ActionOutcome::ok(
            json!({"branch": "agent/x", "sha": s.main, "already_done": false}),
            json!({"repo": REPO, "branch": "agent/x", "sha": s.main})
        )
    );
    assert_eq!(s.fake.branch_sha(REPO, "agent/x"), Some(s.main.clone()));
    assert_eq!(
        s.lines(),
        [
            "GET /repos/acme/app/git/ref/heads/agent/x 404",
            "GET /repos/acme/app/git/ref/heads/main 200",
            "POST /repos/acme/app/git/refs 201"
        ]
    );
    s.fake.clear_requests();
    let again = s.run("create_branch", a).await;
    assert_eq!(
        again,
        ActionOutcome::ok(
            json!({"branch": "agent/x", "sha": s.main, "already_done": "created"}),
            json!({})
        )
    );
    assert_eq!(s.lines(), ["GET /repos/acme/app/git/ref/heads/agent/x 200"]);
}

#[tokio::test]
async fn create_branch_from_a_missing_base_fails_without_writing() {
    let s = setup().await;
    let out = s
        .run(
            "create_branch",
            json!({"repo": REPO, "branch": "agent/x", "from_branch": "develop"}),
        )
        .await;
    assert_eq!(
        out,
        failed(
            "create_branch on acme/app: cannot create branch 'agent/x': base branch 'develop' does not exist"
        )
    );
    assert!(writes(&s.lines()).is_empty());
}

#[tokio::test]
async fn delete_branch_fresh_then_already_done() {
    let s = setup().await;
    let sha = s.fake.push_files(REPO, "main", "x", &[]).unwrap();
    assert!(s.fake.set_branch(REPO, "agent/old", Some(&sha)));
    let a = json!({"repo": REPO, "branch": "agent/old"});
    let first = s.run("delete_branch", a.clone()).await;
    assert_eq!(
        first,
        ActionOutcome::ok(
            json!({"branch": "agent/old", "sha": sha, "already_done": false}),
            json!({"repo": REPO, "branch": "agent/old", "sha": sha})
        )
    );
    assert_eq!(s.fake.branch_sha(REPO, "agent/old"), None);
    assert_eq!(
        s.run("delete_branch", a).await,
        ActionOutcome::ok(
            json!({"branch": "agent/old", "already_done": "deleted"}),
            json!({})
        )
    );
}

#[tokio::test]
async fn push_commit_makes_one_commit_with_every_file_then_a_pr_opens() {
    let s = setup().await;
    s.run(
        "create_branch",
        json!({"repo": REPO, "branch": "agent/x", "from_branch": "main"}),
    )
    .await;
    let commits_before = s.fake.commit_count(REPO);
    s.fake.clear_requests();
    let out = s
        .run(
            "push_commit",
            json!({"repo": REPO, "branch": "agent/x", "message": "Add files",
                   "files": {"a.txt": "A\n", "src/deep/b.rs": "fn b() {}\n"}}),
        )
        .await;
    assert!(out.success, "{out:?}");
    let sha = out.output["sha"].as_str().unwrap().to_string();
    assert_eq!(
        out,
        ActionOutcome::ok(
            json!({"branch": "agent/x", "sha": sha, "parent_sha": s.main, "files": 2, "already_done": false}),
            json!({"repo": REPO, "branch": "agent/x", "sha": sha, "parent_sha": s.main})
        )
    );
    assert_eq!(s.fake.commit_count(REPO), commits_before + 1);
    assert_eq!(s.fake.branch_sha(REPO, "agent/x"), Some(sha.clone()));
    let commit = s.fake.commit(REPO, &sha).unwrap();
    assert_eq!(commit.message, "Add files");
    assert_eq!(commit.parents, vec![s.main.clone()]);
    let files: Vec<(&str, &str)> = commit
        .files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("README.md", "# app\n"),
            ("a.txt", "A\n"),
            ("src/deep/b.rs", "fn b() {}\n")
        ]
    );
    assert_eq!(
        s.lines(),
        [
            "GET /repos/acme/app/git/ref/heads/agent/x 200".to_string(),
            format!("GET /repos/acme/app/git/commits/{} 200", s.main),
            "POST /repos/acme/app/git/trees 201".into(),
            "POST /repos/acme/app/git/commits 201".into(),
            "PATCH /repos/acme/app/git/refs/heads/agent/x 200".into(),
        ]
    );

    let pr_args = json!({"repo": REPO, "title": "Add files", "head": "agent/x", "base": "main", "body": "why"});
    let pr = s.run("create_pr", pr_args.clone()).await;
    let url = format!("{}/acme/app/pull/1", s.fake.base_url());
    assert_eq!(
        pr,
        ActionOutcome::ok(
            json!({"pr_number": 1, "url": url, "already_done": false}),
            json!({"repo": REPO, "pr_number": 1})
        )
    );
    let held = s.fake.pull(REPO, 1).unwrap();
    assert_eq!(
        (
            held.title.as_str(),
            held.body.as_str(),
            held.head.as_str(),
            held.base.as_str()
        ),
        ("Add files", "why", "agent/x", "main")
    );
    assert_eq!(held.state, "open");
    assert_eq!(
        s.run("create_pr", pr_args).await,
        ActionOutcome::ok(
            json!({"pr_number": 1, "url": url, "already_done": "created"}),
            json!({})
        )
    );
    assert_eq!(s.fake.pulls(REPO).len(), 1);
}

#[tokio::test]
async fn push_commit_is_never_already_done() {
    let s = setup().await;
    s.run("create_branch", json!({"repo": REPO, "branch": "agent/x"}))
        .await;
    let a = json!({"repo": REPO, "branch": "agent/x", "message": "m", "files": {"a.txt": "A"}});
    let first = s.run("push_commit", a.clone()).await;
    let second = s.run("push_commit", a).await;
    assert_eq!(second.output["already_done"], json!(false));
    assert_eq!(second.output["parent_sha"], first.output["sha"]);
    assert_ne!(second.output["sha"], first.output["sha"]);
}

#[tokio::test]
async fn create_pr_without_commits_fails_with_githubs_message() {
    let s = setup().await;
    s.run(
        "create_branch",
        json!({"repo": REPO, "branch": "agent/x", "from_branch": "main"}),
    )
    .await;
    s.fake.clear_requests();
    let out = s
        .run(
            "create_pr",
            json!({"repo": REPO, "title": "t", "head": "agent/x", "base": "main", "body": ""}),
        )
        .await;
    assert_eq!(
        out,
        failed("create_pr on acme/app: GitHub said: No commits between main and agent/x (422)")
    );
    assert_eq!(
        s.lines(),
        [
            "GET /repos/acme/app/pulls 200",
            "POST /repos/acme/app/pulls 422"
        ]
    );
    assert!(s.fake.pulls(REPO).is_empty());
}

#[tokio::test]
async fn create_pr_from_a_missing_head_names_the_field() {
    let s = setup().await;
    let out = s
        .run(
            "create_pr",
            json!({"repo": REPO, "title": "t", "head": "agent/none", "base": "main", "body": ""}),
        )
        .await;
    assert_eq!(
        out,
        failed("create_pr on acme/app: GitHub said: `head` is invalid (422)")
    );
}

#[tokio::test]
async fn create_issue_fresh_then_already_done_and_closed_issues_do_not_count() {
    let s = setup().await;
    let a = json!({"repo": REPO, "title": "Flaky test", "body": "details"});
    let first = s.run("create_issue", a.clone()).await;
    let url = format!("{}/acme/app/issues/1", s.fake.base_url());
    assert_eq!(
        first,
        ActionOutcome::ok(
            json!({"issue_number": 1, "url": url, "already_done": false}),
            json!({"repo": REPO, "issue_number": 1})
        )
    );
    assert_eq!(
        s.run("create_issue", a.clone()).await,
        ActionOutcome::ok(
            json!({"issue_number": 1, "url": url, "already_done": "created"}),
            json!({})
        )
    );
    // Once closed, the same title opens a new issue.
    let record = s.record("create_issue", a.clone(), &first);
    assert!(s.gh.undo(&record).await.success);
    let third = s.run("create_issue", a).await;
    assert_eq!(third.output["issue_number"], json!(2));
    assert_eq!(third.output["already_done"], json!(false));
}

#[tokio::test]
async fn create_issue_finds_a_duplicate_on_a_later_page() {
    let s = setup().await;
    for i in 0..150 {
        s.run(
            "create_issue",
            json!({"repo": REPO, "title": format!("issue {i}"), "body": ""}),
        )
        .await;
    }
    s.fake.clear_requests();
    let out = s
        .run(
            "create_issue",
            json!({"repo": REPO, "title": "issue 3", "body": ""}),
        )
        .await;
    assert_eq!(out.output["issue_number"], json!(4));
    assert_eq!(out.output["already_done"], json!("created"));
    assert_eq!(
        s.lines(),
        [
            "GET /repos/acme/app/issues 200",
            "GET /repos/acme/app/issues 200"
        ]
    );
    assert_eq!(s.fake.requests()[1].query, "state=open&per_page=100&page=2");
}

async fn open_pr(s: &Setup, branch: &str) -> u64 {
    s.run(
        "create_branch",
        json!({"repo": REPO, "branch": branch, "from_branch": "main"}),
    )
    .await;
    let push = s.run("push_commit", json!({"repo": REPO, "branch": branch, "message": "m", "files": {format!("{}.txt", branch.replace('/', "_")): "x"}})).await;
    assert!(push.success, "{push:?}");
    let pr = s
        .run(
            "create_pr",
            json!({"repo": REPO, "title": "t", "head": branch, "base": "main", "body": ""}),
        )
        .await;
    pr.output["pr_number"].as_u64().unwrap()
}

#[tokio::test]
async fn merge_pr_fresh_then_already_done_and_never_undone() {
    let s = setup().await;
    let n = open_pr(&s, "agent/m").await;
    assert_eq!(s.gh.pr_base(REPO, n).await, Ok("main".to_string()));
    let (out, record) = s
        .run_recorded("merge_pr", json!({"repo": REPO, "pr_number": n}))
        .await;
    let sha = s.fake.branch_sha(REPO, "main").unwrap();
    assert_ne!(sha, s.main);
    assert_eq!(
        out,
        ActionOutcome::ok(
            json!({"pr_number": n, "merged": true, "sha": sha, "base": "main", "already_done": false}),
            json!({"repo": REPO, "pr_number": n, "sha": sha, "base": "main"})
        )
    );
    let pull = s.fake.pull(REPO, n).unwrap();
    assert!(pull.merged);
    assert_eq!(pull.merge_commit_sha, Some(sha.clone()));
    assert_eq!(
        s.run("merge_pr", json!({"repo": REPO, "pr_number": n}))
            .await,
        ActionOutcome::ok(
            json!({"pr_number": n, "merged": true, "sha": sha, "base": "main", "already_done": "merged"}),
            json!({})
        )
    );
    let before = s.fake.snapshot(REPO);
    s.fake.clear_requests();
    assert_eq!(
        s.gh.undo(&record).await,
        failed("'merge_pr' cannot be reversed")
    );
    assert!(s.lines().is_empty());
    assert_eq!(s.fake.snapshot(REPO), before);
}

#[tokio::test]
async fn merge_pr_refusals_carry_githubs_words() {
    let s = setup().await;
    let n = open_pr(&s, "agent/m").await;
    s.fake.set_mergeable(REPO, n, false);
    s.fake.clear_requests();
    let out = s
        .run("merge_pr", json!({"repo": REPO, "pr_number": n}))
        .await;
    assert_eq!(
        out,
        failed(
            "merge_pr on acme/app: cannot merge pull request #1 into 'main': GitHub said: Pull Request is not mergeable (405)"
        )
    );
    assert_eq!(
        writes(&s.lines()),
        ["PUT /repos/acme/app/pulls/1/merge 405"]
    );

    let missing = s
        .run("merge_pr", json!({"repo": REPO, "pr_number": 99}))
        .await;
    assert_eq!(
        missing,
        failed("merge_pr on acme/app: cannot read pull request #99: GitHub said: Not Found (404)")
    );
    assert_eq!(
        s.gh.pr_base(REPO, 99).await,
        Err(
            "cannot look up pull request #99 of acme/app: GitHub said: Not Found (404)".to_string()
        )
    );
}

#[tokio::test]
async fn merge_pr_merges_only_the_head_it_inspected() {
    let s = setup().await;
    let n = open_pr(&s, "agent/m").await;
    // Another push lands between the connector's read and its merge: simulated by making the
    // fake answer the merge as GitHub does when the expected head sha is stale.
    s.fake.inject(
        "PUT",
        "/repos/acme/app/pulls/1/merge",
        Injected::error(
            409,
            "Head branch was modified. Review and try the merge again.",
        ),
    );
    let out = s
        .run("merge_pr", json!({"repo": REPO, "pr_number": n}))
        .await;
    assert_eq!(
        out,
        failed(
            "merge_pr on acme/app: cannot merge pull request #1 into 'main': GitHub said: Head branch was modified. Review and try the merge again. (409)"
        )
    );
    assert_eq!(s.fake.branch_sha(REPO, "main"), Some(s.main.clone()));
}

#[tokio::test]
async fn rollback_restores_branches_and_closes_what_was_opened() {
    let s = setup().await;
    let before = s.fake.snapshot(REPO);
    let mut records = Vec::new();
    for (action, a) in [
        (
            "create_branch",
            json!({"repo": REPO, "branch": "agent/r", "from_branch": "main"}),
        ),
        (
            "push_commit",
            json!({"repo": REPO, "branch": "agent/r", "message": "m", "files": {"r.txt": "r"}}),
        ),
        (
            "create_pr",
            json!({"repo": REPO, "title": "t", "head": "agent/r", "base": "main", "body": ""}),
        ),
        (
            "create_issue",
            json!({"repo": REPO, "title": "Follow up", "body": ""}),
        ),
    ] {
        let (out, record) = s.run_recorded(action, a).await;
        assert!(out.success, "{action}: {out:?}");
        records.push(record);
    }
    let mut undos = Vec::new();
    for record in records.iter().rev() {
        undos.push(s.gh.undo(record).await);
    }
    let pushed = records[1].output["sha"].as_str().unwrap();
    assert_eq!(
        undos,
        [
            ActionOutcome::ok(json!({"issue_number": 2, "state": "closed"}), json!({})),
            ActionOutcome::ok(json!({"pr_number": 1, "state": "closed"}), json!({})),
            ActionOutcome::ok(
                json!({"branch": "agent/r", "sha": s.main, "removed_sha": pushed}),
                json!({})
            ),
            ActionOutcome::ok(
                json!({"branch": "agent/r", "deleted_sha": s.main}),
                json!({})
            ),
        ]
    );
    let mut expected = before;
    expected["pulls"] = json!([{"number": 1, "state": "closed", "merged": false, "head": "agent/r", "base": "main"}]);
    expected["issues"] = json!([{"number": 2, "state": "closed", "title": "Follow up"}]);
    assert_eq!(s.fake.snapshot(REPO), expected);

    // A second pass finds everything already undone (a PARTIAL rollback retried).
    let again: Vec<bool> = {
        let mut v = Vec::new();
        for record in records.iter().rev() {
            v.push(s.gh.undo(record).await.success);
        }
        v
    };
    assert_eq!(again, [true, true, false, true]);
    assert_eq!(s.fake.snapshot(REPO), expected);
}

#[tokio::test]
async fn undo_of_delete_branch_recreates_it_at_the_recorded_sha() {
    let s = setup().await;
    let sha = s.fake.push_files(REPO, "main", "x", &[("x", "1")]).unwrap();
    s.fake.set_branch(REPO, "agent/gone", Some(&sha));
    let (_, record) = s
        .run_recorded(
            "delete_branch",
            json!({"repo": REPO, "branch": "agent/gone"}),
        )
        .await;
    assert_eq!(
        s.gh.undo(&record).await,
        ActionOutcome::ok(json!({"branch": "agent/gone", "sha": sha}), json!({}))
    );
    assert_eq!(s.fake.branch_sha(REPO, "agent/gone"), Some(sha.clone()));
    assert_eq!(
        s.gh.undo(&record).await,
        ActionOutcome::ok(
            json!({"branch": "agent/gone", "sha": sha, "already_done": "created"}),
            json!({})
        )
    );
    s.fake.set_branch(REPO, "agent/gone", Some(&s.main));
    assert_eq!(
        s.gh.undo(&record).await,
        failed(&format!(
            "branch 'agent/gone' on acme/app exists again at {}, not at the recorded {} — not recreated",
            short(&s.main),
            short(&sha)
        ))
    );
}

#[tokio::test]
async fn undo_refuses_a_branch_that_moved() {
    let s = setup().await;
    let (_, created) = s
        .run_recorded(
            "create_branch",
            json!({"repo": REPO, "branch": "agent/x", "from_branch": "main"}),
        )
        .await;
    let (_, pushed) = s
        .run_recorded(
            "push_commit",
            json!({"repo": REPO, "branch": "agent/x", "message": "m", "files": {"a": "1"}}),
        )
        .await;
    let ours = pushed.output["sha"].as_str().unwrap().to_string();
    let theirs = s
        .fake
        .push_files(REPO, "agent/x", "someone else", &[("b", "2")])
        .unwrap();
    s.fake.clear_requests();
    assert_eq!(
        s.gh.undo(&pushed).await,
        failed(&format!(
            "branch 'agent/x' on acme/app moved from {} to {} since the run — not reset",
            short(&ours),
            short(&theirs)
        ))
    );
    assert_eq!(
        s.gh.undo(&created).await,
        failed(&format!(
            "branch 'agent/x' on acme/app moved from {} to {} since the run — not deleted",
            short(&s.main),
            short(&theirs)
        ))
    );
    assert!(writes(&s.lines()).is_empty());
    assert_eq!(s.fake.branch_sha(REPO, "agent/x"), Some(theirs));
}

#[tokio::test]
async fn undo_of_a_pr_merged_since_the_run_fails() {
    let s = setup().await;
    s.run("create_branch", json!({"repo": REPO, "branch": "agent/p"}))
        .await;
    s.run(
        "push_commit",
        json!({"repo": REPO, "branch": "agent/p", "message": "m", "files": {"p": "1"}}),
    )
    .await;
    let (_, record) = s
        .run_recorded(
            "create_pr",
            json!({"repo": REPO, "title": "t", "head": "agent/p", "base": "main", "body": ""}),
        )
        .await;
    s.run("merge_pr", json!({"repo": REPO, "pr_number": 1}))
        .await;
    assert_eq!(
        s.gh.undo(&record).await,
        failed("pull request #1 on acme/app was merged since the run — it cannot be closed")
    );
}

#[tokio::test]
async fn undo_skips_actions_that_changed_nothing() {
    let s = setup().await;
    s.run("create_branch", json!({"repo": REPO, "branch": "agent/x"}))
        .await;
    let (out, record) = s
        .run_recorded("create_branch", json!({"repo": REPO, "branch": "agent/x"}))
        .await;
    assert_eq!(out.output["already_done"], json!("created"));
    s.fake.clear_requests();
    assert_eq!(
        s.gh.undo(&record).await,
        ActionOutcome::ok(json!({"skipped": "nothing to undo"}), json!({}))
    );
    assert!(s.lines().is_empty());
    assert_eq!(s.fake.branch_sha(REPO, "agent/x"), Some(s.main.clone()));
}

#[tokio::test]
async fn http_errors_are_failed_actions_with_exactly_one_request_per_write() {
    let s = setup().await;
    let create = json!({"repo": REPO, "branch": "agent/x", "from_branch": "main"});

    s.fake.inject(
        "POST",
        "/repos/acme/app/git/refs",
        Injected::error(500, "Server Error"),
    );
    let out = s.run("create_branch", create.clone()).await;
    assert_eq!(
        out,
        failed(&format!(
            "create_branch on acme/app: cannot create branch 'agent/x' at {}: GitHub said: Server Error (500)",
            short(&s.main)
        ))
    );
    assert_eq!(writes(&s.lines()), ["POST /repos/acme/app/git/refs 500"]);
    assert_eq!(s.fake.branch_sha(REPO, "agent/x"), None);

    s.fake.clear_requests();
    s.fake.inject(
        "POST",
        "/repos/acme/app/git/refs",
        Injected::error(422, "Reference update failed"),
    );
    let out = s.run("create_branch", create.clone()).await;
    assert_eq!(
        out,
        failed(&format!(
            "create_branch on acme/app: cannot create branch 'agent/x' at {}: GitHub said: Reference update failed (422)",
            short(&s.main)
        ))
    );
    assert_eq!(writes(&s.lines()), ["POST /repos/acme/app/git/refs 422"]);

    s.fake.clear_requests();
    s.fake
        .inject("POST", "/repos/acme/app/git/refs", Injected::disconnect());
    let out = s.run("create_branch", create.clone()).await;
    let err = out.error().unwrap();
    assert!(err.starts_with(&format!("create_branch on acme/app: cannot create branch 'agent/x' at {}: no answer from GitHub at ", short(&s.main))), "{err}");
    assert!(
        err.ends_with(" — the change may or may not have been made"),
        "{err}"
    );
    assert_eq!(writes(&s.lines()), ["POST /repos/acme/app/git/refs 0"]);

    s.fake.clear_requests();
    let out = s
        .run(
            "create_branch",
            json!({"repo": "acme/missing", "branch": "agent/x"}),
        )
        .await;
    assert_eq!(
        out,
        failed(
            "create_branch on acme/missing: repository not found: GitHub said: Not Found (404) — it does not exist or the token cannot see it"
        )
    );
    assert_eq!(
        s.lines(),
        [
            "GET /repos/acme/missing/git/ref/heads/agent/x 404",
            "GET /repos/acme/missing/git/ref/heads/main 404",
            "GET /repos/acme/missing 404"
        ]
    );
    let out = s
        .run(
            "delete_branch",
            json!({"repo": "acme/missing", "branch": "agent/x"}),
        )
        .await;
    assert_eq!(
        out,
        failed(
            "delete_branch on acme/missing: repository not found: GitHub said: Not Found (404) — it does not exist or the token cannot see it"
        )
    );

    s.fake.clear_requests();
    s.fake.inject(
        "POST",
        "/repos/acme/app/issues",
        Injected::rate_limited(1_900_000_000),
    );
    let out = s
        .run(
            "create_issue",
            json!({"repo": REPO, "title": "t", "body": ""}),
        )
        .await;
    assert_eq!(
        out,
        failed(
            "create_issue on acme/app: GitHub said: API rate limit exceeded for user ID 1. (403); the rate limit resets at 2030-03-17T17:46:40+00:00"
        )
    );
    assert_eq!(writes(&s.lines()), ["POST /repos/acme/app/issues 403"]);

    s.fake.clear_requests();
    s.fake.inject(
        "PATCH",
        "/repos/acme/app/git/refs/heads/main",
        Injected::error(409, "Git Repository is empty."),
    );
    let out = s
        .run(
            "push_commit",
            json!({"repo": REPO, "branch": "main", "message": "m", "files": {"a": "1"}}),
        )
        .await;
    assert!(
        out.error()
            .unwrap()
            .ends_with("GitHub said: Git Repository is empty. (409)"),
        "{out:?}"
    );
    assert_eq!(
        writes(&s.lines()),
        [
            "POST /repos/acme/app/git/trees 201",
            "POST /repos/acme/app/git/commits 201",
            "PATCH /repos/acme/app/git/refs/heads/main 409"
        ]
    );
    assert_eq!(s.fake.branch_sha(REPO, "main"), Some(s.main.clone()));
}

#[tokio::test]
async fn a_push_to_a_branch_that_moved_meanwhile_is_refused_not_forced() {
    let s = setup().await;
    s.run("create_branch", json!({"repo": REPO, "branch": "agent/x"}))
        .await;
    // The fake answers the ref update as GitHub does when someone pushed in between.
    s.fake.inject(
        "PATCH",
        "/repos/acme/app/git/refs/heads/agent/x",
        Injected::error(422, "Update is not a fast forward"),
    );
    let out = s
        .run(
            "push_commit",
            json!({"repo": REPO, "branch": "agent/x", "message": "m", "files": {"a": "1"}}),
        )
        .await;
    let err = out.error().unwrap();
    assert!(
        err.starts_with(&format!(
            "push_commit on acme/app: cannot move branch 'agent/x' from {} to ",
            short(&s.main)
        )),
        "{err}"
    );
    assert!(
        err.ends_with(": GitHub said: Update is not a fast forward (422)"),
        "{err}"
    );
    assert_eq!(s.fake.branch_sha(REPO, "agent/x"), Some(s.main.clone()));
}

#[tokio::test]
async fn an_unreachable_github_is_a_clear_failed_action() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let gh = GithubConnector::new(&base, &Secret::new(TOKEN), &["acme/app".into()]).unwrap();
    let out = gh
        .execute(
            "create_branch",
            &args(json!({"repo": REPO, "branch": "agent/x", "from_branch": "main"})),
            &mut Probe::ok(),
        )
        .await;
    let err = out.error().unwrap();
    assert!(
        err.starts_with(&format!("create_branch on acme/app: cannot look up branch 'agent/x': no answer from GitHub at {base}: ")),
        "{err}"
    );
    assert!(!out.success);
    assert!(!err.contains(TOKEN));
}

#[tokio::test]
async fn crafted_names_are_refused_before_any_request() {
    let s = setup().await;
    let cases = [
        (
            "create_branch",
            json!({"repo": REPO, "branch": "main?x", "from_branch": "main"}),
            "create_branch: invalid branch name 'main?x': it contains one of ~ ^ : ? * [ \\ # %",
        ),
        (
            "create_branch",
            json!({"repo": REPO, "branch": "../", "from_branch": "main"}),
            "create_branch: invalid branch name '../': it contains '..'",
        ),
        (
            "delete_branch",
            json!({"repo": REPO, "branch": "%2e%2e"}),
            "delete_branch: invalid branch name '%2e%2e': it contains one of ~ ^ : ? * [ \\ # %",
        ),
        (
            "create_branch",
            json!({"repo": REPO, "branch": "agent/x", "from_branch": "main#frag"}),
            "create_branch: invalid branch name 'main#frag': it contains one of ~ ^ : ? * [ \\ # %",
        ),
        (
            "create_pr",
            json!({"repo": "acme/app?", "title": "t", "head": "a", "base": "main", "body": ""}),
            "create_pr: repo 'acme/app?' is not of the form owner/name",
        ),
        (
            "create_issue",
            json!({"repo": "../acme", "title": "t", "body": ""}),
            "create_issue: repo '../acme' is not of the form owner/name",
        ),
        (
            "merge_pr",
            json!({"repo": "acme/%2e%2e", "pr_number": 1}),
            "merge_pr: repo 'acme/%2e%2e' is not of the form owner/name",
        ),
        (
            "merge_pr",
            json!({"repo": REPO, "pr_number": 0}),
            "merge_pr: argument `pr_number` must be a positive integer",
        ),
        (
            "create_issue",
            json!({"repo": "other/app", "title": "t", "body": ""}),
            "create_issue: repo 'other/app' is not in this system's repos",
        ),
        (
            "push_commit",
            json!({"repo": REPO, "branch": "agent/x", "message": "m", "files": {"../etc/passwd": "x"}}),
            "push_commit: invalid file path '../etc/passwd': it must be relative, without '.', '..' or empty components",
        ),
        (
            "push_commit",
            json!({"repo": REPO, "branch": "agent/x", "message": "m", "files": {}}),
            "push_commit: argument `files` is empty: there is nothing to commit",
        ),
        (
            "create_pr",
            json!({"repo": REPO, "head": "agent/x"}),
            "create_pr: missing argument `title`",
        ),
        (
            "create_issue",
            json!({"repo": REPO, "title": 5}),
            "create_issue: argument `title` must be a string",
        ),
        (
            "fork_repo",
            json!({"repo": REPO}),
            "fork_repo: `fork_repo` is not a github action",
        ),
    ];
    for (action, a, expected) in cases {
        assert_eq!(s.run(action, a).await, failed(expected), "{action}");
    }
    assert_eq!(
        s.gh.pr_base("acme/app?", 1).await,
        Err(
            "cannot look up pull request #1: repo 'acme/app?' is not of the form owner/name".into()
        )
    );

    // A crafted rollback record is refused too.
    let mut record = s.record(
        "create_branch",
        json!({}),
        &ActionOutcome::ok(json!({"already_done": false}), json!({})),
    );
    record.rollback_data = json!({"repo": REPO, "branch": "main?x", "sha": "abc"});
    assert_eq!(
        s.gh.undo(&record).await,
        failed("cannot undo: the recorded rollback_data has no valid `branch`")
    );
    record.rollback_data = json!({"repo": "acme/app/../x", "branch": "a", "sha": "abc"});
    assert_eq!(
        s.gh.undo(&record).await,
        failed("undo create_branch: repo 'acme/app/../x' is not of the form owner/name")
    );

    assert!(s.fake.requests().is_empty(), "{:?}", s.lines());
}

#[tokio::test]
async fn unusual_but_valid_branch_names_are_percent_encoded() {
    let s = setup().await;
    let out = s
        .run(
            "create_branch",
            json!({"repo": REPO, "branch": "agent/café+1", "from_branch": "main"}),
        )
        .await;
    assert!(out.success, "{out:?}");
    assert_eq!(
        s.fake.branch_sha(REPO, "agent/café+1"),
        Some(s.main.clone())
    );
    assert_eq!(
        s.lines()[0],
        "GET /repos/acme/app/git/ref/heads/agent/caf%C3%A9%2B1 404"
    );
    let (_, record) = s
        .run_recorded(
            "delete_branch",
            json!({"repo": REPO, "branch": "agent/café+1"}),
        )
        .await;
    assert_eq!(s.fake.branch_sha(REPO, "agent/café+1"), None);
    assert!(s.gh.undo(&record).await.success);
    assert_eq!(
        s.fake.branch_sha(REPO, "agent/café+1"),
        Some(s.main.clone())
    );
}

#[tokio::test]
async fn the_token_never_appears_in_any_output() {
    let s = setup().await;
    let mut seen = Vec::new();
    let n = open_pr(&s, "agent/t").await;
    for (action, a) in [
        ("create_branch", json!({"repo": REPO, "branch": "agent/t"})),
        (
            "create_pr",
            json!({"repo": REPO, "title": "t", "head": "main", "base": "main", "body": ""}),
        ),
        ("merge_pr", json!({"repo": REPO, "pr_number": n})),
        ("merge_pr", json!({"repo": REPO, "pr_number": 77})),
        ("create_branch", json!({"repo": "acme/none", "branch": "x"})),
        ("create_branch", json!({"repo": REPO, "branch": "bad?"})),
    ] {
        let (out, record) = s.run_recorded(action, a).await;
        seen.push(format!("{out:?}"));
        seen.push(format!("{:?}", s.gh.undo(&record).await));
    }
    // A wrong token: GitHub's 401, and the token is still not echoed.
    let wrong = GithubConnector::new(
        s.fake.base_url(),
        &Secret::new("ghp_WrongToken"),
        &["acme/app".into()],
    )
    .unwrap();
    let out = wrong
        .execute(
            "create_issue",
            &args(json!({"repo": REPO, "title": "t", "body": ""})),
            &mut Probe::ok(),
        )
        .await;
    assert_eq!(
        out,
        failed(
            "create_issue on acme/app: cannot list open issues: GitHub said: Bad credentials (401)"
        )
    );
    seen.push(format!("{out:?}"));
    seen.push(s.gh.target().to_string());
    seen.push(format!("{:?}", s.gh.pr_base(REPO, 12345).await));
    let all = seen.join("\n");
    assert!(!all.contains(TOKEN), "{all}");
    assert!(!all.contains("ghp_WrongToken"));
    assert!(
        s.fake
            .requests()
            .iter()
            .all(|r| r.status != 401 || r.path.ends_with("/issues"))
    );
}

#[tokio::test]
async fn the_fake_requires_credentials() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = FakeGithub::start().await.unwrap();
    fake.add_repo(REPO);
    let addr = fake.base_url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /repos/acme/app/git/ref/heads/main HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with(r#"{"documentation_url":"https://docs.github.com/rest","message":"Requires authentication"}"#), "{answer}");
    assert_eq!(
        fake.request_lines(),
        ["GET /repos/acme/app/git/ref/heads/main 401"]
    );
}

// --- Write-ahead step records (SPEC §5.5) and recovery ---

mod write_ahead {
    use std::sync::Arc;

    use enact::connector::github::GithubConnector;
    use enact::connector::{ActionOutcome, Recovered};
    use enact::fake_github::FakeGithub;
    use enact::secret::Secret;
    use serde_json::{Value, json};

    use super::{REPO, TOKEN, args, writes};
    use crate::steplog::Probe;

    struct World {
        fake: Arc<FakeGithub>,
        gh: GithubConnector,
        main: String,
    }

    async fn world() -> World {
        let fake = Arc::new(FakeGithub::start().await.unwrap());
        fake.require_token(TOKEN);
        let main = fake.add_repo(REPO);
        let gh =
            GithubConnector::new(fake.base_url(), &Secret::new(TOKEN), &["acme/*".into()]).unwrap();
        World { fake, gh, main }
    }

    impl World {
        /// A log whose check fails the test if GitHub's observable state changed before it.
        fn unchanged(&self) -> Probe {
            let (fake, expected) = (Arc::clone(&self.fake), self.fake.snapshot(REPO));
            Probe::checking(move |_| assert_eq!(fake.snapshot(REPO), expected))
        }

        async fn run(&self, action: &str, a: &Value, log: &mut Probe) -> ActionOutcome {
            self.gh.execute(action, &args(a.clone()), log).await
        }

        async fn recover(
            &self,
            action: &str,
            a: &Value,
            pre: &Value,
        ) -> (Recovered, ActionOutcome) {
            self.gh.recover(action, &args(a.clone()), pre).await
        }

        /// A branch `name` one commit ahead of main (something to open a pull request from).
        fn feature(&self, name: &str) -> String {
            assert!(self.fake.set_branch(REPO, name, Some(&self.main)));
            self.fake
                .push_files(REPO, name, "feature", &[("f.txt", name)])
                .unwrap()
        }

        /// A commit that is on no branch the tests use.
        fn stray_commit(&self) -> String {
            assert!(self.fake.set_branch(REPO, "stray", Some(&self.main)));
            let sha = self
                .fake
                .push_files(REPO, "stray", "stray", &[("s.txt", "s")])
                .unwrap();
            assert!(self.fake.set_branch(REPO, "stray", None));
            sha
        }
    }

    #[tokio::test]
    async fn each_action_writes_its_record_just_before_the_change() {
        let w = world().await;
        let repo = REPO;

        let a = json!({"repo": repo, "branch": "agent/x", "from_branch": "main"});
        let mut log = w.unchanged();
        let out = w.run("create_branch", &a, &mut log).await;
        assert!(out.success, "{out:?}");
        assert_eq!(
            log.pre(),
            &json!({"repo": repo, "branch": "agent/x", "sha": w.main})
        );
        assert_eq!(log.pre(), &out.rollback_data);
        let mut log = Probe::ok();
        w.run("create_branch", &a, &mut log).await;
        assert_eq!(
            log.pre(),
            &json!({"branch": "agent/x", "sha": w.main, "already_done": "created"})
        );

        let a = json!({"repo": repo, "branch": "agent/x", "message": "m", "files": {"a.txt": "A"}});
        let mut log = w.unchanged();
        let out = w.run("push_commit", &a, &mut log).await;
        assert!(out.success, "{out:?}");
        assert_eq!(log.pre(), &out.rollback_data);
        assert_eq!(log.pre()["parent_sha"], json!(w.main));
        assert_eq!(
            w.fake.branch_sha(repo, "agent/x"),
            log.pre()["sha"].as_str().map(String::from)
        );

        let a = json!({"repo": repo, "title": "T", "head": "agent/x", "base": "main", "body": ""});
        let mut log = w.unchanged();
        let out = w.run("create_pr", &a, &mut log).await;
        assert!(out.success, "{out:?}");
        assert_eq!(
            log.pre(),
            &json!({"repo": repo, "head": "agent/x", "base": "main", "title": "T"})
        );
        let pr = out.output["pr_number"].as_u64().unwrap();

        let a = json!({"repo": repo, "title": "Bug", "body": ""});
        let mut log = w.unchanged();
        let out = w.run("create_issue", &a, &mut log).await;
        assert!(out.success, "{out:?}");
        assert_eq!(log.pre(), &json!({"repo": repo, "title": "Bug"}));

        let head = w.fake.branch_sha(repo, "agent/x").unwrap();
        let a = json!({"repo": repo, "pr_number": pr});
        let mut log = w.unchanged();
        let out = w.run("merge_pr", &a, &mut log).await;
        assert!(out.success, "{out:?}");
        assert_eq!(
            log.pre(),
            &json!({"repo": repo, "pr_number": pr, "head_sha": head, "base": "main"})
        );

        let a = json!({"repo": repo, "branch": "agent/x"});
        let mut log = w.unchanged();
        let out = w.run("delete_branch", &a, &mut log).await;
        assert!(out.success, "{out:?}");
        assert_eq!(log.pre(), &out.rollback_data);
        assert_eq!(log.pre()["sha"], json!(head));
    }

    #[tokio::test]
    async fn a_failing_step_log_sends_no_change() {
        let w = world().await;
        let feature = w.feature("feature");
        let pr = {
            let a = json!({"repo": REPO, "title": "T", "head": "feature", "base": "main"});
            let out = w.run("create_pr", &a, &mut Probe::ok()).await;
            out.output["pr_number"].as_u64().unwrap()
        };
        let before = w.fake.snapshot(REPO);
        let journal_down = "the receipts journal cannot be written: lock error";
        for (action, a) in [
            ("create_branch", json!({"repo": REPO, "branch": "agent/y"})),
            ("delete_branch", json!({"repo": REPO, "branch": "feature"})),
            (
                "push_commit",
                json!({"repo": REPO, "branch": "feature", "message": "m", "files": {"b.txt": "B"}}),
            ),
            (
                "create_pr",
                json!({"repo": REPO, "title": "T2", "head": "feature", "base": "other"}),
            ),
            ("create_issue", json!({"repo": REPO, "title": "Bug"})),
            ("merge_pr", json!({"repo": REPO, "pr_number": pr})),
        ] {
            w.fake.clear_requests();
            let mut log = Probe::failing(journal_down);
            let out = w.run(action, &a, &mut log).await;
            assert_eq!(out, ActionOutcome::failed(journal_down), "{action}");
            assert_eq!(log.calls.len(), 1, "{action}");
            assert_eq!(w.fake.snapshot(REPO), before, "{action}");
            // Only invisible objects (push_commit's blobs, tree and commit) may have been made.
            let lines = w.fake.request_lines();
            let changes: Vec<_> = writes(&lines)
                .into_iter()
                .filter(|l| {
                    !l.starts_with("POST /repos/acme/app/git/trees")
                        && !l.starts_with("POST /repos/acme/app/git/commits")
                        && !l.starts_with("POST /repos/acme/app/git/blobs")
                })
                .collect();
            assert!(changes.is_empty(), "{action}: {changes:?}");
        }
        assert_eq!(w.fake.branch_sha(REPO, "feature"), Some(feature));
    }

    #[tokio::test]
    async fn recovery_of_branches_and_commits() {
        let w = world().await;
        let stray = w.stray_commit();

        // create_branch
        let a = json!({"repo": REPO, "branch": "agent/x", "from_branch": "main"});
        let mut log = Probe::failing("down");
        w.run("create_branch", &a, &mut log).await;
        let (status, out) = w.recover("create_branch", &a, log.pre()).await;
        assert_eq!(
            (status, out.rollback_data.clone()),
            (Recovered::NotDone, json!({})),
            "{out:?}"
        );
        let mut log = Probe::ok();
        let done = w.run("create_branch", &a, &mut log).await;
        assert_eq!(
            w.recover("create_branch", &a, log.pre()).await,
            (Recovered::Done, done)
        );
        w.fake.set_branch(REPO, "agent/x", Some(&stray));
        let (status, out) = w.recover("create_branch", &a, log.pre()).await;
        assert_eq!(status, Recovered::Unknown, "{out:?}");
        assert_eq!(&out.rollback_data, log.pre());
        w.fake.set_branch(REPO, "agent/x", Some(&w.main));

        // push_commit
        let a = json!({"repo": REPO, "branch": "agent/x", "message": "m", "files": {"a.txt": "A"}});
        let mut log = Probe::failing("down");
        w.run("push_commit", &a, &mut log).await;
        let (status, out) = w.recover("push_commit", &a, log.pre()).await;
        assert_eq!(status, Recovered::NotDone, "{out:?}");
        let mut log = Probe::ok();
        let done = w.run("push_commit", &a, &mut log).await;
        assert_eq!(
            w.recover("push_commit", &a, log.pre()).await,
            (Recovered::Done, done)
        );
        w.fake
            .push_files(REPO, "agent/x", "someone else", &[("z.txt", "z")])
            .unwrap();
        let (status, out) = w.recover("push_commit", &a, log.pre()).await;
        assert_eq!(status, Recovered::Unknown, "{out:?}");
        assert_eq!(&out.rollback_data, log.pre());

        // delete_branch
        let a = json!({"repo": REPO, "branch": "agent/x"});
        let mut log = Probe::failing("down");
        w.run("delete_branch", &a, &mut log).await;
        let (status, _) = w.recover("delete_branch", &a, log.pre()).await;
        assert_eq!(status, Recovered::NotDone);
        let mut log = Probe::ok();
        let done = w.run("delete_branch", &a, &mut log).await;
        assert_eq!(
            w.recover("delete_branch", &a, log.pre()).await,
            (Recovered::Done, done)
        );
        w.fake.set_branch(REPO, "agent/x", Some(&stray));
        let (status, out) = w.recover("delete_branch", &a, log.pre()).await;
        assert_eq!(status, Recovered::Unknown, "{out:?}");
        // The undo built from it keeps its guard: the branch is not where it was recorded.
        let record = super::Setup::record_of(&w.gh, "delete_branch", a.clone(), &out);
        let undone = w.gh.undo(&record).await;
        assert!(!undone.success, "{undone:?}");
        assert_eq!(w.fake.branch_sha(REPO, "agent/x"), Some(stray));

        // A step that found its desired state already there recovers as that, asking nothing.
        w.fake.clear_requests();
        let (status, out) = w
            .recover(
                "create_branch",
                &json!({"repo": REPO}),
                &json!({"branch": "x", "sha": "00", "already_done": "created"}),
            )
            .await;
        assert_eq!(status, Recovered::Done);
        assert_eq!(
            out,
            ActionOutcome::ok(
                json!({"branch": "x", "sha": "00", "already_done": "created"}),
                json!({})
            )
        );
        assert!(w.fake.request_lines().is_empty());
    }

    #[tokio::test]
    async fn recovery_of_pull_requests_issues_and_merges() {
        let w = world().await;
        w.feature("feature");

        // create_pr
        let a = json!({"repo": REPO, "title": "T", "head": "feature", "base": "main"});
        let mut log = Probe::failing("down");
        w.run("create_pr", &a, &mut log).await;
        let (status, out) = w.recover("create_pr", &a, log.pre()).await;
        assert_eq!(
            (status, out.rollback_data.clone()),
            (Recovered::NotDone, json!({})),
            "{out:?}"
        );
        let mut log = Probe::ok();
        let done = w.run("create_pr", &a, &mut log).await;
        assert_eq!(
            w.recover("create_pr", &a, log.pre()).await,
            (Recovered::Done, done.clone())
        );
        let pr = done.output["pr_number"].as_u64().unwrap();

        // merge_pr: still open at the recorded head → NotDone; merged → Done.
        let m = json!({"repo": REPO, "pr_number": pr});
        let mut log = Probe::failing("down");
        w.run("merge_pr", &m, &mut log).await;
        let (status, out) = w.recover("merge_pr", &m, log.pre()).await;
        assert_eq!(status, Recovered::NotDone, "{out:?}");
        let mut log = Probe::ok();
        let merged = w.run("merge_pr", &m, &mut log).await;
        assert!(merged.success, "{merged:?}");
        assert_eq!(
            w.recover("merge_pr", &m, log.pre()).await,
            (Recovered::Done, merged)
        );

        // A pull request closed by someone else since: Unknown, undo data as recorded.
        w.feature("feature2");
        let a = json!({"repo": REPO, "title": "T2", "head": "feature2", "base": "main"});
        let mut log = Probe::ok();
        let done = w.run("create_pr", &a, &mut log).await;
        let pr2 = done.output["pr_number"].as_u64().unwrap();
        let undone =
            w.gh.undo(&super::Setup::record_of(
                &w.gh,
                "create_pr",
                a.clone(),
                &done,
            ))
            .await;
        assert!(undone.success, "{undone:?}");
        let (status, out) = w.recover("create_pr", &a, log.pre()).await;
        assert_eq!(status, Recovered::Unknown, "{out:?}");
        assert_eq!(&out.rollback_data, log.pre());
        // merge_pr of a pull request closed unmerged since: not merged, so NotDone; a pull
        // request GitHub cannot find: Unknown.
        let m = json!({"repo": REPO, "pr_number": pr2});
        let pre = json!({"repo": REPO, "pr_number": pr2, "head_sha": "abc", "base": "main"});
        assert_eq!(w.recover("merge_pr", &m, &pre).await.0, Recovered::NotDone);
        let pre = json!({"repo": REPO, "pr_number": 999, "head_sha": "abc", "base": "main"});
        let (status, out) = w.recover("merge_pr", &m, &pre).await;
        assert_eq!(status, Recovered::Unknown);
        assert_eq!(out.rollback_data, pre);

        // create_issue
        let a = json!({"repo": REPO, "title": "Bug"});
        let mut log = Probe::failing("down");
        w.run("create_issue", &a, &mut log).await;
        let (status, _) = w.recover("create_issue", &a, log.pre()).await;
        assert_eq!(status, Recovered::NotDone);
        let mut log = Probe::ok();
        let done = w.run("create_issue", &a, &mut log).await;
        assert_eq!(
            w.recover("create_issue", &a, log.pre()).await,
            (Recovered::Done, done.clone())
        );
        let undone =
            w.gh.undo(&super::Setup::record_of(
                &w.gh,
                "create_issue",
                a.clone(),
                &done,
            ))
            .await;
        assert!(undone.success, "{undone:?}");
        let (status, out) = w.recover("create_issue", &a, log.pre()).await;
        assert_eq!(status, Recovered::Unknown, "{out:?}");
        assert_eq!(&out.rollback_data, log.pre());
    }
}
