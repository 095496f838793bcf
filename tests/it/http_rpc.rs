//! JSON-RPC rules of SPEC §3 that hold "on every transport", over `serve --http`: a request
//! whose id is still in flight in its session is refused (-32600, that id) and does not run,
//! and `notifications/cancelled` abandons a call whose run has not started an action; and the
//! front door's per-client concurrency bound (SPEC §10: 429, nothing recorded). Raw
//! HTTP exchanges, so the test controls ids and timing; a call is held in flight by a proxy
//! in front of the fake GitHub that holds the gate's pull-request lookup.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{HttpServer, initialize_body, raw_post};
use crate::mcp::Folder;
use crate::protocol::{
    Held, REPO, TOKEN, assert_cancelled_merge, cancel_of, fake_with_pr, gh_config, merge_call,
    save_call, wait_until,
};

/// An initialised 2025-11-25 session over raw HTTP: its `Mcp-Session-Id`.
async fn session(addr: &str) -> String {
    session_as(addr, None).await
}

async fn session_as(addr: &str, token: Option<&str>) -> String {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let auth: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("Authorization", b.as_str()))
        .collect();
    let (status, text) = raw_post(addr, &auth, &initialize_body()).await;
    assert_eq!(status, 200, "{text}");
    let id = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Mcp-Session-Id in\n{text}"));
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, text) = post_as(addr, token, &id, &initialized).await;
    assert_eq!(status, 202, "{text}");
    id
}

async fn post(addr: &str, session: &str, message: &Value) -> (u16, String) {
    post_as(addr, None, session, message).await
}

async fn post_as(addr: &str, token: Option<&str>, session: &str, message: &Value) -> (u16, String) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Mcp-Session-Id", session),
        ("Mcp-Protocol-Version", "2025-11-25"),
    ];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    raw_post(addr, &headers, message.to_string().as_bytes()).await
}

/// Posts `merge_call(id)` in `session` (as `token`'s client) and waits until the call is held
/// in the gate at its pull-request lookup; the handle gives its answer once `held` releases.
async fn merge_held_in_gate(
    addr: &str,
    held: &Held,
    token: Option<&'static str>,
    session: &str,
    id: u64,
) -> tokio::task::JoinHandle<(u16, String)> {
    let merging = {
        let (addr, session) = (addr.to_string(), session.to_string());
        tokio::spawn(async move { post_as(&addr, token, &session, &merge_call(id)).await })
    };
    wait_until("the merge's lookup", Duration::from_secs(30), || {
        held.connections.load(Ordering::SeqCst) >= 1
    })
    .await;
    merging
}

/// The JSON-RPC message of an answer: the body of a JSON answer, or the last `data:` event of
/// an SSE stream that holds a JSON-RPC response.
fn message(text: &str) -> Value {
    let body = text.split_once("\r\n\r\n").map_or(text, |(_, b)| b);
    if let Ok(v) = serde_json::from_str::<Value>(body.trim()) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .rfind(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC answer in\n{text}"))
}

fn decision(v: &Value) -> &Value {
    &v["result"]["structuredContent"]["decision"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reusing_an_id_in_flight_in_its_session_is_refused_over_http() {
    let fake = fake_with_pr().await;
    let held = Held::start(fake.base_url()).await;
    let f = Folder::new(&gh_config(&held.url));
    let server = HttpServer::start(&f, &[("GITHUB_TOKEN", TOKEN)]).await;
    let s1 = session(&server.addr).await;

    // Call 5 waits in the gate for the PR's base.
    let merging = merge_held_in_gate(&server.addr, &held, None, &s1, 5).await;

    // A second request with id 5 in that session is refused and does not run.
    let (status, text) = post(&server.addr, &s1, &save_call(5, "notes/dup.md")).await;
    assert_eq!(status, 400, "{text}");
    let v = message(&text);
    assert_eq!(
        (&v["error"]["code"], &v["id"], &v["error"]["message"]),
        (
            &json!(-32600),
            &json!(5),
            &json!("Invalid request: id 5 is already used by a request in flight")
        ),
        "{v}"
    );
    // Other ids, and the same id in another session, are served meanwhile.
    let (status, text) = post(&server.addr, &s1, &save_call(6, "notes/other.md")).await;
    assert_eq!((status, decision(&message(&text))), (200, &json!("PASS")));
    let s2 = session(&server.addr).await;
    let (status, text) = post(&server.addr, &s2, &save_call(5, "notes/s2.md")).await;
    let v = message(&text);
    assert_eq!(
        (status, &v["id"], decision(&v)),
        (200, &json!(5), &json!("PASS"))
    );

    held.release();
    let (status, text) = merging.await.unwrap();
    let v = message(&text);
    assert_eq!((status, &v["id"]), (200, &json!(5)), "{text}");
    assert_eq!(v["result"]["structuredContent"]["workflow"], "merge_pr");
    assert_eq!(decision(&v), "PASS", "{v}");
    assert!(fake.pull(REPO, 1).unwrap().merged);
    assert!(
        !f.workspace().join("notes/dup.md").exists(),
        "the refused request ran"
    );

    // Answered, the id is free again.
    let (status, text) = post(&server.addr, &s1, &save_call(5, "notes/dup.md")).await;
    let v = message(&text);
    assert_eq!(
        (status, &v["id"], decision(&v)),
        (200, &json!(5), &json!("PASS"))
    );
    assert!(f.workspace().join("notes/dup.md").exists());
    let (status, log) = server.stop().await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("refused a request whose id is in flight"),
        "{log}"
    );
    assert_eq!(f.receipt_files().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_over_http_before_its_first_action_is_a_cancelled_block() {
    let fake = fake_with_pr().await;
    let held = Held::start(fake.base_url()).await;
    let f = Folder::new(&gh_config(&held.url));
    let server = HttpServer::start(&f, &[("GITHUB_TOKEN", TOKEN)]).await;
    let s = session(&server.addr).await;

    let merging = merge_held_in_gate(&server.addr, &held, None, &s, 1).await;
    let (status, text) = post(&server.addr, &s, &cancel_of(1)).await;
    assert_eq!(status, 202, "{text}");
    held.release();

    wait_until(
        "the cancelled call's receipt",
        Duration::from_secs(30),
        || !f.receipt_files().is_empty(),
    )
    .await;
    assert_cancelled_merge(&f.receipt_files().remove(0), &fake);
    // No answer is owed for the cancelled call; its exchange ends either way.
    let _ = tokio::time::timeout(Duration::from_secs(30), merging).await;

    // The session goes on.
    let (status, text) = post(&server.addr, &s, &save_call(2, "notes/after.md")).await;
    assert_eq!((status, decision(&message(&text))), (200, &json!("PASS")));
    let (status, log) = server.stop().await;
    assert!(status.success(), "{log}");
    assert_eq!(f.receipt_files().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_at_max_concurrent_gets_429_and_its_extra_call_leaves_no_trace() {
    use crate::http::{TOKEN_A, TOKEN_B, digest};
    let fake = fake_with_pr().await;
    let held = Held::start(fake.base_url()).await;
    let clients = format!(
        "\n[[http.clients]]\nname = \"ci-bot\"\ntoken_sha256 = \"{}\"\nemail = \"ci-bot@company.com\"\nrole = \"engineer\"\nmax_concurrent = 1\n\n[[http.clients]]\nname = \"dev\"\ntoken_sha256 = \"{}\"\nemail = \"dev@company.com\"\nrole = \"engineer\"\n",
        digest(TOKEN_A),
        digest(TOKEN_B)
    );
    let f = Folder::new(&format!("{}{clients}", gh_config(&held.url)));
    let server = HttpServer::start(&f, &[("GITHUB_TOKEN", TOKEN)]).await;
    let bot = session_as(&server.addr, Some(TOKEN_A)).await;
    let dev = session_as(&server.addr, Some(TOKEN_B)).await;

    // The bot's one slot is taken by a merge waiting in the gate.
    let merging = merge_held_in_gate(&server.addr, &held, Some(TOKEN_A), &bot, 1).await;
    let (status, text) = post_as(
        &server.addr,
        Some(TOKEN_A),
        &bot,
        &save_call(2, "notes/extra.md"),
    )
    .await;
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("\r\nretry-after: 1\r\n"), "{text}");
    assert!(
        text.ends_with("Too Many Requests: this client has max_concurrent calls running\n"),
        "{text}"
    );
    // Other requests of the bot (not calls) and other clients' calls are served meanwhile.
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let (status, text) = post_as(&server.addr, Some(TOKEN_A), &bot, &list).await;
    assert_eq!((status, &message(&text)["id"]), (200, &json!(3)), "{text}");
    let (status, text) = post_as(
        &server.addr,
        Some(TOKEN_B),
        &dev,
        &save_call(1, "notes/dev.md"),
    )
    .await;
    assert_eq!((status, decision(&message(&text))), (200, &json!("PASS")));

    held.release();
    let (status, text) = merging.await.unwrap();
    assert_eq!((status, decision(&message(&text))), (200, &json!("PASS")));
    // The slot is free again once the call is answered.
    let (status, text) = post_as(
        &server.addr,
        Some(TOKEN_A),
        &bot,
        &save_call(4, "notes/extra.md"),
    )
    .await;
    assert_eq!((status, decision(&message(&text))), (200, &json!("PASS")));
    let (status, log) = server.stop().await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("refused a call: the client has max_concurrent calls running"),
        "{log}"
    );
    // The refused call left no receipt: the merge, the dev's save and the bot's later save.
    let workflows: Vec<String> = f
        .receipt_files()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["actor_email"].as_str().unwrap(),
                r["workflow"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(workflows.len(), 3, "{workflows:?}");
    assert!(
        workflows.contains(&"dev@company.com save".to_string()),
        "{workflows:?}"
    );
}
