//! Approvals (SPEC §9) through the real binary: `require_approval`, PENDING receipts, the
//! operator's `enact approvals`, `enact_resume`, grants, waiting calls, elicitation in 2025
//! sessions and `input_required` in 2026 sessions.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::handler::client::ClientHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientConfig, ElicitRequestParams, ElicitResult,
    ErrorData, ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, RequestContext, RoleClient,
    RunningService,
};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::engine::FILES_CONFIG;
use crate::faults::{enact, stderr, stdout};
use crate::mcp::{Client, Folder, call, connect, is_error, serve_command, structured, texts};

/// The files config with deletions held for approval (and `extra` appended: `[approvals]`,
/// more policies).
fn config(extra: &str) -> String {
    format!(
        "{FILES_CONFIG}\n[[policies]]\npolicy = \"require_approval\"\nactions = [\"delete_file\"]\n{extra}"
    )
}

fn folder(extra: &str) -> Folder {
    let f = Folder::new(&config(extra));
    for name in ["a.txt", "b.txt", "c.txt"] {
        std::fs::write(f.workspace().join("notes").join(name), "keep me").unwrap();
    }
    f
}

fn note(f: &Folder, name: &str) -> std::path::PathBuf {
    f.workspace().join("notes").join(name)
}

/// Calls `remove` for `notes/<name>` and returns its structured result (which must be held).
async fn held(client: &Client, name: &str) -> Value {
    let r = call(client, "remove", json!({"path": format!("notes/{name}")})).await;
    assert!(is_error(&r), "{r:?}");
    let s = structured(&r);
    assert_eq!(s["decision"], "APPROVAL_REQUIRED", "{s}");
    let id = s["run_id"].as_str().unwrap();
    assert_eq!(
        texts(&r)[0],
        format!(
            "APPROVAL_REQUIRED: `remove` waits for a human — `enact approvals approve {id}` (expires {})",
            s["approval"]["expires_at"].as_str().unwrap()
        )
    );
    s
}

/// [`held`], returning the request's run id.
async fn held_id(client: &Client, name: &str) -> String {
    held(client, name).await["run_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn resume(client: &Client, id: &str) -> rmcp::model::CallToolResult {
    call(client, "enact_resume", json!({"run_id": id})).await
}

fn receipt(f: &Folder, id: &str) -> Value {
    f.receipt_files()
        .into_iter()
        .find(|r| r["run_id"] == id)
        .unwrap_or_else(|| panic!("no receipt {id}"))
}

fn approve(f: &Folder, id: &str, who: &str, reason: &str) -> std::process::Output {
    enact(
        f,
        &["approvals", "approve", id, "--as", who, "--reason", reason],
        &[],
    )
}

/// JCS of plain JSON (strings, integers, objects, arrays): serde_json's sorted maps, compact.
fn digest(workflow: &str, actor: &str, plan: &Value) -> String {
    let bound = json!({"workflow": workflow, "actor_email": actor, "plan": plan});
    hex::encode(Sha256::digest(serde_json::to_string(&bound).unwrap()))
}

#[tokio::test]
async fn cli_path_request_list_approve_resume_once() {
    let f = folder("");
    let client = connect(&f, &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "enact_resume"));
    let s = held(&client, "a.txt").await;
    let id = s["run_id"].as_str().unwrap().to_string();
    assert!(note(&f, "a.txt").exists(), "nothing runs while held");
    let plan =
        json!([{"system": "files", "action": "delete_file", "args": {"path": "notes/a.txt"}}]);
    assert_eq!(s["approval"]["plan"], plan);
    assert_eq!(s["approval"]["run_id"], id.as_str());
    assert_eq!(
        s["policy_results"].as_array().unwrap().last().unwrap(),
        &json!({"policy": "require_approval", "passed": false, "approval": true,
                "reason": "approval required: step 1 (delete_file on files)"})
    );

    // The PENDING receipt binds the plan.
    let pending = receipt(&f, &id);
    assert_eq!(pending["decision"], "PENDING");
    assert_eq!(pending["approval"]["plan"], plan);
    assert_eq!(
        pending["approval"]["plan_digest"],
        digest("remove", "agent@company.com", &plan)
    );
    assert_eq!(
        pending["approval"]["expires_at"],
        s["approval"]["expires_at"]
    );
    assert_eq!(pending["actions_taken"], json!([]));

    // Not yet approved.
    let early = resume(&client, &id).await;
    assert!(is_error(&early));
    assert_eq!(
        texts(&early)[0],
        format!(
            "approval request `{id}` is still waiting for a human — `enact approvals approve {id}`"
        )
    );

    // The operator sees it, in the table, as JSON and over MCP.
    let table = enact(&f, &["approvals", "list"], &[]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(stdout(&table).contains(&id), "{}", stdout(&table));
    assert!(stdout(&table).contains("delete_file on files (path=notes/a.txt)"));
    let listed: Value =
        serde_json::from_str(&stdout(&enact(&f, &["approvals", "list", "--json"], &[]))).unwrap();
    let entry = json!({"run_id": id, "workflow": "remove", "actor_email": "agent@company.com",
                       "plan": plan, "expires_at": s["approval"]["expires_at"]});
    assert_eq!(listed, json!({"approvals": [entry.clone()]}));
    assert_eq!(approvals_of(&client).await, json!({"approvals": [entry]}));
    let shown = enact(&f, &["approvals", "show", &id], &[]);
    let shown: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(shown["status"], "waiting");
    assert_eq!(shown["plan"], plan);

    // Approve; a second answer is refused.
    let ok = approve(&f, &id, "lead@company.com", "looks right");
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains(&format!("approved request {id} as lead@company.com")));
    let again = enact(
        &f,
        &["approvals", "deny", &id, "--as", "x@company.com"],
        &[],
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        stderr(&again).trim(),
        format!(
            "error: approval request `{id}` was already answered: approved by lead@company.com (looks right)"
        )
    );
    let empty = enact(&f, &["approvals", "list", "--json"], &[]);
    assert_eq!(stdout(&empty).trim(), "{\n  \"approvals\": []\n}");
    let record = f
        .receipt_files()
        .into_iter()
        .find(|r| r["decision"] == "APPROVE")
        .unwrap();
    assert_eq!(record["approval_of"], id.as_str());
    assert_eq!(record["actor_email"], "lead@company.com");
    assert_eq!(record["via"], "cli");
    assert_eq!(record["reason"], "looks right");
    assert_eq!(record["workflow"], "approval:remove");

    // Resume: runs once, as a new run.
    let done = resume(&client, &id).await;
    assert!(!is_error(&done), "{:?}", texts(&done));
    let out = structured(&done);
    assert_eq!(out["decision"], "PASS");
    assert_eq!(out["success"], true);
    assert_ne!(out["run_id"], id.as_str());
    assert_eq!(
        out["approval"],
        json!({"run_id": record["run_id"], "decided_by": "lead@company.com", "via": "cli"})
    );
    assert!(
        texts(&done)[0].ends_with(", approved by lead@company.com via cli"),
        "{:?}",
        texts(&done)
    );
    assert!(!note(&f, "a.txt").exists());
    let run = receipt(&f, out["run_id"].as_str().unwrap());
    assert_eq!(run["resumes"], id.as_str());
    assert_eq!(
        run["approved_by"],
        json!({"run_id": record["run_id"], "actor_email": "lead@company.com", "via": "cli"})
    );
    assert!(run["policy_results"].as_array().unwrap().contains(
        &json!({"policy": "require_approval", "passed": true, "reason": "approved by lead@company.com"})
    ));

    let twice = resume(&client, &id).await;
    assert!(is_error(&twice));
    assert_eq!(
        texts(&twice)[0],
        format!(
            "approval request `{id}` was already used by run `{}`",
            out["run_id"].as_str().unwrap()
        )
    );

    // Approval records are receipts like any other, and no run: rollback refuses them.
    let verify = enact(&f, &["receipts", "verify"], &[]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    for (rid, kind) in [
        (id.as_str(), "PENDING"),
        (record["run_id"].as_str().unwrap(), "APPROVE"),
    ] {
        let rb = enact(&f, &["rollback", rid], &[]);
        assert_eq!(rb.status.code(), Some(1));
        assert_eq!(
            stderr(&rb).trim(),
            format!(
                "error: Cannot rollback `{rid}`: it is a {kind} record, not a workflow run — nothing was done by it"
            )
        );
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn denied_expired_unknown_and_other_actors_requests_are_refused_with_nothing_written() {
    let f = folder("[approvals]\nexpires = \"2s\"\n");
    let client = connect(&f, &[]).await;
    let denied = held_id(&client, "a.txt").await;
    let expiring = held(&client, "b.txt").await;
    let expiring_id = expiring["run_id"].as_str().unwrap().to_string();

    let no = enact(
        &f,
        &[
            "approvals",
            "deny",
            &denied,
            "--as",
            "lead@company.com",
            "--reason",
            "too risky",
        ],
        &[],
    );
    assert!(no.status.success(), "{}", stderr(&no));
    assert_eq!(f.receipt_files().last().unwrap()["decision"], "DENY");

    let before = f.receipt_files().len();
    let r = resume(&client, &denied).await;
    assert_eq!(
        texts(&r)[0],
        format!("approval request `{denied}` was denied by lead@company.com: too risky")
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    let r = resume(&client, unknown).await;
    assert_eq!(texts(&r)[0], format!("no approval request `{unknown}`"));
    let r = resume(&client, "not-a-uuid").await;
    assert_eq!(texts(&r)[0], "Invalid run_id: 'not-a-uuid'");
    assert_eq!(f.receipt_files().len(), before, "refusals write nothing");

    // Another actor (same folder, other [actor]) neither sees nor resumes the request.
    let other = connect(&f, &[("ENACT_ACTOR_EMAIL", "other@company.com")]).await;
    let r = resume(&other, &expiring_id).await;
    assert_eq!(
        texts(&r)[0],
        format!("approval request `{expiring_id}` was made by another actor")
    );
    other.cancel().await.unwrap();

    // Wait (on the clock, not a fixed sleep) until the request has expired.
    let expires =
        chrono::DateTime::parse_from_rfc3339(expiring["approval"]["expires_at"].as_str().unwrap())
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while chrono::Utc::now() < expires {
        assert!(Instant::now() < deadline, "the request never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let late = approve(&f, &expiring_id, "lead@company.com", "ok");
    assert_eq!(late.status.code(), Some(1));
    assert_eq!(
        stderr(&late).trim(),
        format!(
            "error: approval request `{expiring_id}` expired at {}",
            expiring["approval"]["expires_at"].as_str().unwrap()
        )
    );
    let r = resume(&client, &expiring_id).await;
    assert_eq!(
        texts(&r)[0],
        format!(
            "approval request `{expiring_id}` expired at {}",
            expiring["approval"]["expires_at"].as_str().unwrap()
        )
    );
    let list = enact(&f, &["approvals", "list", "--json"], &[]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&list)).unwrap(),
        json!({"approvals": []})
    );
    assert!(note(&f, "a.txt").exists() && note(&f, "b.txt").exists());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_plan_changed_between_approval_and_resume_is_refused() {
    let f = folder("");
    let client = connect(&f, &[]).await;
    let id = held_id(&client, "a.txt").await;
    client.cancel().await.unwrap();
    assert!(approve(&f, &id, "lead@company.com", "ok").status.success());
    // The operator edits the workflow: the same payload now plans another path.
    let text = std::fs::read_to_string(f.config()).unwrap().replace(
        "action = \"delete_file\"\nargs = { path = \"{{path}}\" }",
        "action = \"delete_file\"\nargs = { path = \"notes/c.txt\" }",
    );
    std::fs::write(f.config(), text).unwrap();
    let client = connect(&f, &[]).await;
    let before = f.receipt_files().len();
    let r = resume(&client, &id).await;
    assert!(is_error(&r));
    assert_eq!(
        texts(&r)[0],
        format!(
            "the plan changed since approval request `{id}` was made (its digest differs): nothing was run; call the workflow again to ask anew"
        )
    );
    assert_eq!(f.receipt_files().len(), before);
    assert!(note(&f, "a.txt").exists() && note(&f, "c.txt").exists());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn pending_records_do_not_count_and_a_policy_failing_at_resume_blocks_and_uses_the_approval()
{
    let f = folder("[[policies]]\npolicy = \"rate_limit\"\nmax = 1\nworkflows = [\"remove\"]\n");
    let client = connect(&f, &[]).await;
    // Two requests: PENDING receipts are not runs, so neither counts.
    let first = held_id(&client, "a.txt").await;
    let second = held_id(&client, "b.txt").await;
    for id in [&first, &second] {
        assert!(approve(&f, id, "lead@company.com", "ok").status.success());
    }
    let r = resume(&client, &first).await;
    assert_eq!(structured(&r)["decision"], "PASS", "{:?}", texts(&r));
    // The rate limit now fails: the resumed run is a BLOCK, with a receipt, and uses it up.
    let r = resume(&client, &second).await;
    assert!(is_error(&r));
    let blocked = structured(&r);
    assert_eq!(blocked["decision"], "BLOCK");
    assert!(texts(&r)[0].contains("rate_limit"), "{:?}", texts(&r));
    let run = receipt(&f, blocked["run_id"].as_str().unwrap());
    assert_eq!(run["decision"], "BLOCK");
    assert_eq!(run["resumes"], second.as_str());
    assert!(note(&f, "b.txt").exists());
    let again = resume(&client, &second).await;
    assert_eq!(
        texts(&again)[0],
        format!(
            "approval request `{second}` was already used by run `{}`",
            blocked["run_id"].as_str().unwrap()
        )
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_block_beats_an_approval_and_preview_reports_the_verdict() {
    let f = folder("");
    std::fs::write(note(&f, ".env"), "SECRET=1").unwrap();
    let client = connect(&f, &[]).await;
    let preview = call(
        &client,
        "enact_preview",
        json!({"workflow": "remove", "arguments": {"path": "notes/a.txt"}}),
    )
    .await;
    assert_eq!(structured(&preview)["decision"], "APPROVAL_REQUIRED");
    assert!(f.receipt_files().is_empty(), "preview writes nothing");

    let r = call(&client, "remove", json!({"path": "notes/.env"})).await;
    let s = structured(&r);
    assert_eq!(s["decision"], "BLOCK");
    assert_eq!(s.get("approval"), None);
    let rec = receipt(&f, s["run_id"].as_str().unwrap());
    assert_eq!(rec["decision"], "BLOCK");
    assert!(
        enact(&f, &["approvals", "list", "--json"], &[])
            .stdout
            .starts_with(b"{\n  \"approvals\": []")
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn grants_pass_matching_calls_until_revoked() {
    let f = folder("");
    let grant = enact(
        &f,
        &[
            "approvals",
            "grant",
            "--workflow",
            "remove",
            "--action",
            "delete_file",
            "--for",
            "30m",
            "--as",
            "lead@company.com",
            "--reason",
            "cleanup hour",
        ],
        &[],
    );
    assert!(grant.status.success(), "{}", stderr(&grant));
    let grant_id = stdout(&grant).trim().to_string();
    let record = receipt(&f, &grant_id);
    assert_eq!(record["decision"], "GRANT");
    assert_eq!(record["grant_for"], "agent@company.com");
    assert_eq!(
        record["scope"],
        json!({"workflow": "remove", "action": "delete_file"})
    );
    let until = record["expires_at"].as_str().unwrap().to_string();

    let client = connect(&f, &[]).await;
    let r = call(&client, "remove", json!({"path": "notes/a.txt"})).await;
    let s = structured(&r);
    assert_eq!(s["decision"], "PASS", "{s}");
    assert!(s["policy_results"].as_array().unwrap().contains(&json!({
        "policy": "require_approval", "passed": true,
        "reason": format!("granted by lead@company.com until {until}")
    })));
    assert!(!note(&f, "a.txt").exists());

    let revoke = enact(
        &f,
        &["approvals", "revoke", &grant_id],
        &[("ENACT_OPERATOR", "lead@company.com")],
    );
    assert!(revoke.status.success(), "{}", stderr(&revoke));
    assert_eq!(
        f.receipt_files().last().unwrap()["actor_email"],
        "lead@company.com"
    );
    held(&client, "b.txt").await;
    let again = enact(&f, &["approvals", "revoke", &grant_id], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains(&format!("grant `{grant_id}` was already revoked by record")),
        "{}",
        stderr(&again)
    );

    for (args, message) in [
        (
            vec!["--workflow", "remove", "--for", "25h"],
            "error: --for 25h: a grant lasts at most 24h",
        ),
        (
            vec!["--workflow", "nope", "--for", "1h"],
            "error: unknown workflow `nope` (configured: save, remove, pair)",
        ),
        (
            vec!["--workflow", "remove", "--action", "zap", "--for", "1h"],
            "error: unknown action `zap`",
        ),
    ] {
        let mut full = vec!["approvals", "grant"];
        full.extend(args);
        let o = enact(&f, &full, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert_eq!(stderr(&o).trim(), message);
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cli_answers_are_refused_when_via_lacks_cli_and_wait_over_15m_is_a_config_error() {
    let f = folder("[approvals]\nvia = [\"elicitation\"]\n");
    let client = connect(&f, &[]).await;
    let id = held_id(&client, "a.txt").await;
    let o = approve(&f, &id, "lead@company.com", "ok");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "error: approvals through `cli` are not enabled: add \"cli\" to `[approvals] via`"
    );
    client.cancel().await.unwrap();

    let bad = Folder::new(&config(
        "[approvals]\nwait = \"16m\"\nvia = [\"sms\"]\nexpires = \"soon\"\n",
    ));
    let o = enact(&bad, &["check"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    for want in [
        "wait \"16m\" is longer than the longest allowed, 15m",
        "unknown way to answer: \"sms\"",
        "invalid window \"soon\"",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
}

/// An rmcp client that answers elicitations with `answer` and records what it was asked and
/// the progress notifications it got.
#[derive(Clone)]
struct Human {
    elicitation: bool,
    answer: Value,
    asked: Arc<Mutex<Vec<String>>>,
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl Human {
    fn new(elicitation: bool, answer: Value) -> Human {
        Human {
            elicitation,
            answer,
            asked: Arc::default(),
            progress: Arc::default(),
        }
    }
}

impl ClientHandler for Human {
    fn get_info(&self) -> ClientConfig {
        let mut info: Value = json!({
            "protocolVersion": ProtocolVersion::V_2025_11_25,
            "capabilities": {},
            "clientInfo": {"name": "approver-test", "version": "1"},
        });
        if self.elicitation {
            info["capabilities"]["elicitation"] = json!({"form": {}});
        }
        serde_json::from_value(info).unwrap()
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let v = serde_json::to_value(&request).unwrap();
        self.asked
            .lock()
            .unwrap()
            .push(v["message"].as_str().unwrap_or_default().to_string());
        Ok(serde_json::from_value(self.answer.clone()).unwrap())
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

async fn connect_as(
    f: &Folder,
    human: Human,
    lifecycle: ClientLifecycleMode,
) -> RunningService<RoleClient, Human> {
    let (transport, _) = TokioChildProcess::builder(serve_command(f, &[]))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    human
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .unwrap()
}

fn remove_params(name: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("remove").with_arguments(
        json!({"path": format!("notes/{name}")})
            .as_object()
            .cloned()
            .unwrap(),
    )
}

#[tokio::test]
async fn elicitation_approve_runs_the_same_call_and_decline_denies() {
    let f = folder("[approvals]\nvia = [\"elicitation\", \"cli\"]\n");
    let yes = Human::new(
        true,
        json!({"action": "accept", "content": {"decision": "approve", "reason": "fine"}}),
    );
    let client = connect_as(&f, yes.clone(), ClientLifecycleMode::Initialize).await;
    let r = client.call_tool(remove_params("a.txt")).await.unwrap();
    let s = r.structured_content.clone().unwrap();
    assert_eq!(s["decision"], "PASS", "{s}");
    assert_eq!(s["approval"]["decided_by"], "client:approver-test");
    assert_eq!(s["approval"]["via"], "elicitation");
    assert!(!note(&f, "a.txt").exists());
    let asked = yes.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert!(asked[0].contains("Workflow: remove"), "{}", asked[0]);
    assert!(asked[0].contains("agent@company.com"), "{}", asked[0]);
    assert!(
        asked[0].contains("1. delete_file on files: path=notes/a.txt"),
        "{}",
        asked[0]
    );
    let decisions: Vec<String> = f
        .receipt_files()
        .iter()
        .map(|r| r["decision"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(decisions, ["PENDING", "APPROVE", "PASS"]);
    let approve = &f.receipt_files()[1];
    assert_eq!(approve["via"], "elicitation");
    assert_eq!(approve["actor_email"], "client:approver-test");
    assert_eq!(approve["reason"], "fine");
    client.cancel().await.unwrap();

    for (answer, reason) in [
        (json!({"action": "decline"}), "declined"),
        (json!({"action": "cancel"}), "cancelled"),
        (
            json!({"action": "accept", "content": {"decision": "deny", "reason": "not today"}}),
            "not today",
        ),
    ] {
        let no = Human::new(true, answer);
        let client = connect_as(&f, no, ClientLifecycleMode::Initialize).await;
        let r = client.call_tool(remove_params("b.txt")).await.unwrap();
        assert_eq!(r.is_error, Some(true));
        let text = serde_json::to_value(&r.content[0]).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(text, format!("denied by the user: {reason}"));
        assert_eq!(f.receipt_files().last().unwrap()["decision"], "DENY");
        assert!(note(&f, "b.txt").exists());
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_client_without_the_capability_is_never_asked_and_never_hangs() {
    let f = folder("[approvals]\nvia = [\"elicitation\", \"cli\"]\n");
    let mute = Human::new(
        false,
        json!({"action": "accept", "content": {"decision": "approve"}}),
    );
    let client = connect_as(&f, mute.clone(), ClientLifecycleMode::Initialize).await;
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        client.call_tool(remove_params("a.txt")),
    )
    .await
    .expect("the call must not hang")
    .unwrap();
    assert_eq!(
        r.structured_content.unwrap()["decision"],
        "APPROVAL_REQUIRED"
    );
    assert!(mute.asked.lock().unwrap().is_empty());
    assert!(note(&f, "a.txt").exists());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn input_required_round_trip_in_a_2026_session_and_tampered_or_replayed_states_are_refused() {
    let f = folder("[approvals]\nvia = [\"elicitation\"]\n");
    let human = Human::new(true, json!(null));
    let client = connect_as(
        &f,
        human,
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await;
    let first = client.call_tool_once(remove_params("a.txt")).await.unwrap();
    let CallToolResponse::InputRequired(input) = first else {
        panic!("expected input_required, got {first:?}");
    };
    let wire = serde_json::to_value(&input).unwrap();
    let request = &wire["inputRequests"]["approval"];
    assert_eq!(request["method"], "elicitation/create", "{wire}");
    assert!(
        request["params"]["message"]
            .as_str()
            .unwrap()
            .contains("delete_file on files")
    );
    let state = input.request_state.clone().unwrap();
    let pending = f.receipt_files();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["decision"], "PENDING");
    let id = pending[0]["run_id"].as_str().unwrap().to_string();

    let answer = |decision: &str| {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "approval".into(),
            json!({"action": "accept", "content": {"decision": decision}}),
        );
        m
    };
    let text_of = |r: CallToolResponse| -> (bool, String, Option<Value>) {
        let CallToolResponse::Complete(r) = r else {
            panic!("expected a result, got {r:?}")
        };
        let text = serde_json::to_value(&r.content[0]).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string();
        (r.is_error == Some(true), text, r.structured_content)
    };

    // A tampered state: one hex digit of the body changed.
    let mut tampered = state.clone().into_bytes();
    tampered[3] = if tampered[3] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let r = client
        .call_tool_once(
            remove_params("a.txt")
                .with_request_state(tampered)
                .with_input_responses(answer("approve")),
        )
        .await
        .unwrap();
    let (err, text, _) = text_of(r);
    assert!(err);
    assert!(
        text == "the requestState was altered or forged (its MAC does not verify)"
            || text == "the requestState is not one this server issued (malformed)",
        "{text}"
    );
    // The same state for other arguments: the plan differs.
    let r = client
        .call_tool_once(
            remove_params("b.txt")
                .with_request_state(state.clone())
                .with_input_responses(answer("approve")),
        )
        .await
        .unwrap();
    assert_eq!(
        text_of(r).1,
        format!(
            "the plan changed since approval request `{id}` was made (its digest differs): nothing was run; call the workflow again to ask anew"
        )
    );
    assert_eq!(f.receipt_files().len(), 1, "refusals write nothing");

    let r = client
        .call_tool_once(
            remove_params("a.txt")
                .with_request_state(state.clone())
                .with_input_responses(answer("approve")),
        )
        .await
        .unwrap();
    let (err, text, s) = text_of(r);
    assert!(!err, "{text}");
    let s = s.unwrap();
    assert_eq!(s["decision"], "PASS");
    assert_eq!(s["approval"]["via"], "elicitation");
    assert!(!note(&f, "a.txt").exists());

    // Replayed: the request was answered already.
    let r = client
        .call_tool_once(
            remove_params("a.txt")
                .with_request_state(state)
                .with_input_responses(answer("approve")),
        )
        .await
        .unwrap();
    let (err, text, _) = text_of(r);
    assert!(err);
    assert_eq!(
        text,
        format!(
            "approval request `{id}` was already used by run `{}`",
            s["run_id"].as_str().unwrap()
        )
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_waiting_call_returns_the_final_pass_when_another_process_approves() {
    let f = folder("[approvals]\nwait = \"60s\"\n");
    let human = Human::new(false, json!(null));
    let client = connect_as(&f, human.clone(), ClientLifecycleMode::Initialize).await;
    let params = remove_params("a.txt");
    let waiting = {
        let peer = client.peer().clone();
        tokio::spawn(async move { peer.call_tool(params).await })
    };
    // Wait for the request to appear and for a progress notification, then approve.
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        assert!(Instant::now() < deadline, "the request never appeared");
        let list: Value =
            serde_json::from_str(&stdout(&enact(&f, &["approvals", "list", "--json"], &[])))
                .unwrap();
        if let Some(id) = list["approvals"][0]["run_id"].as_str() {
            break id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    while human.progress.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no progress notification");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = human.progress.lock().unwrap()[0].clone();
    let p = serde_json::to_value(p).unwrap();
    // rmcp's client sends its own token for each request; the server echoes the one it got.
    assert!(!p["progressToken"].is_null(), "{p}");
    assert!(p["message"].as_str().unwrap().contains(&id));
    assert!(approve(&f, &id, "lead@company.com", "go").status.success());
    let r = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the waiting call returns")
        .unwrap()
        .unwrap();
    let s = r.structured_content.unwrap();
    assert_eq!(s["decision"], "PASS", "{s}");
    assert_eq!(s["approval"]["decided_by"], "lead@company.com");
    assert!(!note(&f, "a.txt").exists());
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_resuming_one_approval_at_once_run_it_exactly_once() {
    let f = folder("");
    let first = connect(&f, &[]).await;
    let id = held_id(&first, "a.txt").await;
    assert!(approve(&f, &id, "lead@company.com", "ok").status.success());
    let second = connect(&f, &[]).await;
    let (a, b) = tokio::join!(resume(&first, &id), resume(&second, &id));
    let mut passed = 0;
    let mut refused = Vec::new();
    for r in [&a, &b] {
        if is_error(r) {
            refused.push(texts(r)[0].clone());
        } else {
            assert_eq!(structured(r)["decision"], "PASS");
            passed += 1;
        }
    }
    assert_eq!(passed, 1, "{refused:?}");
    let winner = f
        .receipt_files()
        .into_iter()
        .find(|r| r["resumes"] == id.as_str())
        .unwrap();
    assert_eq!(
        refused,
        [format!(
            "approval request `{id}` was already used by run `{}`",
            winner["run_id"].as_str().unwrap()
        )]
    );
    assert_eq!(
        f.receipt_files()
            .iter()
            .filter(|r| r["resumes"] == id.as_str())
            .count(),
        1
    );
    first.cancel().await.unwrap();
    second.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_killed_mid_action_is_recovered_and_its_approval_stays_used() {
    let f = folder("");
    let client = connect(&f, &[]).await;
    let id = held_id(&client, "a.txt").await;
    client.cancel().await.unwrap();
    assert!(approve(&f, &id, "lead@company.com", "ok").status.success());

    let crashing = connect(&f, &[("ENACT_TEST_CRASH_AT", "action")]).await;
    let died = crate::mcp::try_call(&crashing, "enact_resume", json!({"run_id": id})).await;
    assert!(
        died.is_err(),
        "the server was meant to abort mid-run: {died:?}"
    );
    assert!(
        !note(&f, "a.txt").exists(),
        "the action ran before the crash"
    );

    let o = enact(&f, &["recover"], &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let recovered = f
        .receipt_files()
        .into_iter()
        .find(|r| r["resumes"] == id.as_str())
        .expect("recovery writes the resumed run's receipt");
    assert_eq!(recovered["interrupted"], true);
    assert_eq!(recovered["approved_by"]["actor_email"], "lead@company.com");
    assert_eq!(recovered["actions_taken"][0]["output"]["recovered"], "done");

    let client = connect(&f, &[]).await;
    let again = resume(&client, &id).await;
    assert_eq!(
        texts(&again)[0],
        format!(
            "approval request `{id}` was already used by run `{}`",
            recovered["run_id"].as_str().unwrap()
        )
    );
    assert!(enact(&f, &["receipts", "verify"], &[]).status.success());
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_postgres_journal_an_approval_given_anywhere_is_seen_everywhere() {
    let dsn = crate::postgres::test_dsn();
    let schema = crate::pg_journal::fresh_schema();
    let text = crate::pg_journal::pg_config(
        &schema,
        "\n[[policies]]\npolicy = \"require_approval\"\nactions = [\"delete_file\"]\n",
    );
    let f = Folder::new(&text);
    std::fs::write(note(&f, "a.txt"), "keep me").unwrap();
    let env = [("ENACT_RECEIPTS_DSN", dsn.as_str())];
    let host_a = connect(&f, &env).await;
    let id = held_id(&host_a, "a.txt").await;
    let listed = enact(&f, &["approvals", "list", "--json"], &env);
    assert!(stdout(&listed).contains(&id), "{}", stderr(&listed));
    let ok = enact(
        &f,
        &["approvals", "approve", &id, "--as", "lead@company.com"],
        &env,
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let host_b = connect(&f, &env).await;
    let r = resume(&host_b, &id).await;
    assert_eq!(structured(&r)["decision"], "PASS", "{:?}", texts(&r));
    let again = resume(&host_a, &id).await;
    assert!(
        texts(&again)[0].starts_with(&format!("approval request `{id}` was already used by run"))
    );
    assert!(!note(&f, "a.txt").exists());
    assert!(enact(&f, &["receipts", "verify"], &env).status.success());
    host_a.cancel().await.unwrap();
    host_b.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_each_client_sees_and_resumes_only_its_own_requests_and_grants_name_the_actor() {
    use crate::http::{HttpServer, TOKEN_A, TOKEN_B, clients};
    let f = folder(&clients());
    let server = HttpServer::start(&f, &[]).await;
    let bot = server.connect(Some(TOKEN_A)).await;
    let support = server.connect_stateless(Some(TOKEN_B)).await;

    let r = crate::http::call(&bot, "remove", json!({"path": "notes/a.txt"})).await;
    let s = structured(&r);
    assert_eq!(s["decision"], "APPROVAL_REQUIRED");
    let id = s["run_id"].as_str().unwrap().to_string();
    assert_eq!(receipt(&f, &id)["actor_email"], "ci-bot@company.com");

    assert_eq!(
        approvals_of(&bot).await["approvals"][0]["run_id"],
        id.as_str()
    );
    assert_eq!(approvals_of(&support).await, json!({"approvals": []}));

    assert!(approve(&f, &id, "lead@company.com", "ok").status.success());
    let other = crate::http::call(&support, "enact_resume", json!({"run_id": id})).await;
    assert_eq!(
        texts(&other)[0],
        format!("approval request `{id}` was made by another actor")
    );
    let done = crate::http::call(&bot, "enact_resume", json!({"run_id": id})).await;
    assert_eq!(structured(&done)["decision"], "PASS", "{:?}", texts(&done));

    // A grant for the support client's actor covers its calls, not the bot's.
    let g = enact(
        &f,
        &[
            "approvals",
            "grant",
            "--workflow",
            "remove",
            "--for",
            "1h",
            "--actor",
            "support@company.com",
        ],
        &[],
    );
    assert!(g.status.success(), "{}", stderr(&g));
    let r = crate::http::call(&support, "remove", json!({"path": "notes/b.txt"})).await;
    assert_eq!(structured(&r)["decision"], "PASS", "{:?}", texts(&r));
    let r = crate::http::call(&bot, "remove", json!({"path": "notes/c.txt"})).await;
    assert_eq!(structured(&r)["decision"], "APPROVAL_REQUIRED");
    let (status, _) = server.stop().await;
    assert!(status.success());
}

/// `enact://approvals` as a client reads it.
async fn approvals_of(client: &Client) -> Value {
    let res = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "enact://approvals",
        ))
        .await
        .unwrap();
    let text = serde_json::to_value(&res.contents[0]).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_python_sdk_answers_by_elicitation_and_by_input_required() {
    if !crate::protocol::python_sdk() {
        eprintln!("SKIPPED: the python `mcp` package is not importable (pip install \"mcp>=2\")");
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/fixtures/py_approver.py"
    );
    for (mode, decision) in [
        ("discover", "approve"),
        ("2025-11-25", "approve"),
        ("discover", "deny"),
        ("2025-11-25", "deny"),
    ] {
        let f = folder("[approvals]\nvia = [\"elicitation\"]\n");
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new("python3")
                .args([script, mode, crate::mcp::enact_bin()])
                .arg(f.config())
                .arg(decision)
                .env("ENACT_SECRET", crate::engine::SECRET)
                .env("RUST_LOG", "warn")
                .env_remove("ENACT_CONFIG")
                .env_remove("ENACT_ACTOR_EMAIL")
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the python client timed out")
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_str(text.trim()).unwrap();
        let asked = got["asked"].as_array().unwrap();
        assert_eq!(asked.len(), 1, "{mode}: {got}");
        assert!(
            asked[0]["message"]
                .as_str()
                .unwrap()
                .contains("1. delete_file on files: path=notes/a.txt"),
            "{got}"
        );
        let decisions: Vec<Value> = f
            .receipt_files()
            .iter()
            .map(|r| r["decision"].clone())
            .collect();
        if decision == "approve" {
            assert_eq!(got["is_error"], false, "{mode}: {got}");
            assert_eq!(got["structured"]["decision"], "PASS");
            assert_eq!(got["structured"]["approval"]["via"], "elicitation");
            assert!(!note(&f, "a.txt").exists(), "{mode}");
            assert_eq!(
                decisions,
                [json!("PENDING"), json!("APPROVE"), json!("PASS")],
                "{mode}"
            );
        } else {
            assert_eq!(got["is_error"], true, "{mode}: {got}");
            assert_eq!(got["text"], "denied by the user: python says so");
            assert!(note(&f, "a.txt").exists(), "{mode}");
            assert_eq!(decisions, [json!("PENDING"), json!("DENY")], "{mode}");
        }
        let approval = &f.receipt_files()[1];
        assert_eq!(approval["actor_email"], "client:mcp", "{approval}");
    }
}

#[test]
fn the_operator_answers_without_holding_the_agents_credentials() {
    let f = Folder::new(&config(
        "[systems.gh]\ntype = \"github\"\ntoken_env = \"APPROVALS_TEST_UNSET_TOKEN\"\nrepos = [\"acme/app\"]\n",
    ));
    let o = enact(&f, &["approvals", "list", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&o)).unwrap(),
        json!({"approvals": []})
    );
    // `serve` does need it.
    let o = enact(&f, &["check"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("APPROVALS_TEST_UNSET_TOKEN"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_shows_enact_resume_and_the_approvals_settings() {
    let f = Folder::new(&config(
        "[approvals]\nvia = [\"elicitation\", \"cli\"]\nwait = \"2m\"\n",
    ));
    let o = enact(&f, &["check"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("enact_resume"), "{text}");
    assert!(text.contains("enact://approvals"), "{text}");
    assert!(
        text.contains(
            "approvals:   via elicitation and cli, requests expire after 1h, calls wait 2m"
        ),
        "{text}"
    );
    let plain = Folder::new(FILES_CONFIG);
    let text = stdout(&enact(&plain, &["check"], &[]));
    assert!(!text.contains("enact_resume"), "{text}");
    assert!(!text.contains("approvals:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_2025_session_is_asked_by_elicitation_on_its_event_stream() {
    use crate::http::{HttpServer, TOKEN_A, clients};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let f = folder(&format!(
        "[approvals]\nvia = [\"elicitation\", \"cli\"]\n{}",
        clients()
    ));
    let server = HttpServer::start(&f, &[]).await;
    let human = Human::new(
        true,
        json!({"action": "accept", "content": {"decision": "approve", "reason": "over http"}}),
    );
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url.clone())
            .auth_header(TOKEN_A.to_string()),
    );
    let client = tokio::time::timeout(
        Duration::from_secs(60),
        human
            .clone()
            .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize),
    )
    .await
    .unwrap()
    .unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        client.call_tool(remove_params("a.txt")),
    )
    .await
    .expect("the call over HTTP did not return")
    .unwrap();
    let s = r.structured_content.clone().unwrap();
    assert_eq!(s["decision"], "PASS", "{s}");
    assert_eq!(s["approval"]["via"], "elicitation");
    assert!(!note(&f, "a.txt").exists());
    let asked = human.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    // The request, its approval and the run all name the HTTP client's actor.
    assert!(asked[0].contains("ci-bot@company.com"), "{}", asked[0]);
    let records = f.receipt_files();
    let decisions: Vec<&str> = records
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["PENDING", "APPROVE", "PASS"]);
    assert_eq!(records[0]["actor_email"], "ci-bot@company.com");
    assert_eq!(records[2]["actor_email"], "ci-bot@company.com");
    client.cancel().await.unwrap();
    let (status, _) = server.stop().await;
    assert!(status.success());
}
