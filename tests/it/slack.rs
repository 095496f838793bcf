//! Integration tests: the Slack connector over real HTTP against the in-process fake Slack —
//! identity, writes, Slack's error shapes, rate limits, and every undo guard (broken "as a
//! person" through the fake's hooks).

use enact::connector::ActionOutcome;
use enact::connector::slack::SlackConnector;
use enact::fake_slack::{FakeSlack, Injected, Kind};
use enact::kernel::receipt::ActionRecord;
use enact::kernel::slack::{Channel, Ts};
use enact::kernel::typed::SlackAction;
use enact::secret::Secret;
use serde_json::{Value, json};

use crate::steplog::Probe;

pub const TOKEN: &str = "xoxb-1111-EnactSlackTestToken-7c2e9a";
pub const CHAN: &str = "C0123ABCD";

struct Setup {
    fake: FakeSlack,
    slack: SlackConnector,
}

async fn setup() -> Setup {
    let fake = FakeSlack::start().await.unwrap();
    fake.require_token(TOKEN);
    fake.add_channel(CHAN, "general", Kind::Public);
    let slack = connector(&fake, TOKEN);
    Setup { fake, slack }
}

fn connector(fake: &FakeSlack, token: &str) -> SlackConnector {
    SlackConnector::new(
        fake.base_url(),
        "SLACK_BOT_TOKEN",
        &Secret::new(token),
        "T0000DEMO",
        &["*".to_string()],
    )
    .unwrap()
}

fn post(channel: &str, text: &str, thread: Option<&str>) -> SlackAction {
    SlackAction::PostMessage {
        channel: Channel::parse(channel).unwrap(),
        text: text.into(),
        thread_ts: thread.map(|t| Ts::parse(t).unwrap()),
    }
}

fn update(channel: &str, ts: &str, text: &str) -> SlackAction {
    SlackAction::UpdateMessage {
        channel: Channel::parse(channel).unwrap(),
        ts: Ts::parse(ts).unwrap(),
        text: text.into(),
    }
}

impl Setup {
    async fn run(&self, action: &SlackAction) -> ActionOutcome {
        self.slack.run(action, &mut Probe::ok()).await
    }

    fn record(&self, action: &str, outcome: &ActionOutcome) -> ActionRecord {
        ActionRecord {
            action: action.into(),
            system: "chat".into(),
            success: outcome.success,
            output: outcome.output.clone(),
            rollback_data: outcome.rollback_data.clone(),
            target: self.slack.target(),
            args: serde_json::Map::new(),
        }
    }

    async fn posted(&self, text: &str) -> (String, ActionRecord) {
        let out = self.run(&post(CHAN, text, None)).await;
        assert!(out.success, "{out:?}");
        let ts = out.output["ts"].as_str().unwrap().to_string();
        (ts, self.record("post_message", &out))
    }

    async fn undo(&self, record: &ActionRecord) -> ActionOutcome {
        self.slack.undo(record).await
    }
}

#[tokio::test]
async fn post_records_before_sending_then_undo_deletes_the_message() {
    let s = setup().await;
    assert_eq!(
        s.slack.target(),
        json!({"type": "slack", "base_url": s.fake.base_url(), "team_id": "T0000DEMO"})
    );
    // The step record is written while Slack has no message yet.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let mut probe = Probe::checking(move |pre| seen2.lock().unwrap().push(pre.clone()));
    let out = s
        .slack
        .run(&post(CHAN, "deploy done", None), &mut probe)
        .await;
    assert!(out.success, "{out:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        [json!({"channel": CHAN, "thread_ts": null, "text": "deploy done"})]
    );
    let ts = out.output["ts"].as_str().unwrap().to_string();
    assert_eq!(
        out,
        ActionOutcome::ok(
            json!({"channel": CHAN, "ts": ts, "thread_ts": null, "already_done": false}),
            json!({"channel": CHAN, "ts": ts, "thread_ts": null, "text": "deploy done"}),
        )
    );
    assert_eq!(s.fake.message(CHAN, &ts).unwrap().text, "deploy done");
    let record = s.record("post_message", &out);
    let undone = s.undo(&record).await;
    assert_eq!(
        undone,
        ActionOutcome::ok(
            json!({"channel": CHAN, "ts": ts, "deleted": true}),
            json!({})
        )
    );
    assert_eq!(s.fake.message(CHAN, &ts), None);
    // Undoing again: the message is gone, which is the undone state.
    assert_eq!(
        s.undo(&record).await,
        ActionOutcome::ok(
            json!({"channel": CHAN, "ts": ts, "already_done": "deleted"}),
            json!({})
        )
    );
    // auth.test once for the process; the token never in what the fake logged.
    assert_eq!(
        s.fake.request_lines(),
        [
            "GET /auth.test 200 (token)",
            "POST /chat.postMessage 200 (token)",
            "GET /conversations.replies 200 (token)",
            "POST /chat.delete 200 (token)",
            "GET /conversations.replies 200 (token)",
        ]
    );
}

#[tokio::test]
async fn a_token_of_another_workspace_fails_every_call_and_sends_nothing() {
    let s = setup().await;
    s.fake.set_team_id("T0999ZZZZ");
    let out = s.run(&post(CHAN, "hi", None)).await;
    assert_eq!(
        out.error(),
        Some(
            "the token in SLACK_BOT_TOKEN belongs to Slack workspace T0999ZZZZ, not team_id T0000DEMO — nothing sent"
        )
    );
    assert_eq!(s.fake.request_lines(), ["GET /auth.test 200 (token)"]);
    assert!(s.fake.messages(CHAN).is_empty());
}

#[tokio::test]
async fn slack_errors_are_failed_steps_with_their_hints_and_never_the_token() {
    let s = setup().await;
    s.fake.add_channel("C0PRIVATE1", "secret", Kind::Private);
    s.fake.set_member("C0PRIVATE1", false);
    let e = s.run(&post("C0PRIVATE1", "x", None)).await;
    assert_eq!(
        e.error(),
        Some(
            "post_message to C0PRIVATE1: Slack said: not_in_channel (invite the bot or grant chat:write.public)"
        )
    );
    let e = s.run(&post("C0NOSUCH01", "x", None)).await;
    assert_eq!(
        e.error(),
        Some(
            "post_message to C0NOSUCH01: Slack said: channel_not_found (no such channel, or the bot cannot see it)"
        )
    );
    s.fake.archive("C0PRIVATE1");
    let e = s.run(&post("C0PRIVATE1", "x", None)).await;
    assert_eq!(
        e.error(),
        Some("post_message to C0PRIVATE1: Slack said: is_archived (the channel is archived)")
    );
    s.fake.inject(
        "chat.postMessage",
        Injected::error("missing_scope", Some("chat:write")),
    );
    let e = s.run(&post(CHAN, "x", None)).await;
    assert_eq!(
        e.error(),
        Some(
            "post_message to C0123ABCD: Slack said: missing_scope (the bot token needs the scope chat:write)"
        )
    );
    // A refused token (the identity check is the first call of a fresh connector).
    let wrong = connector(&s.fake, "xoxb-wrong");
    let e = wrong.run(&post(CHAN, "x", None), &mut Probe::ok()).await;
    assert_eq!(
        e.error(),
        Some(
            "auth.test: Slack said: invalid_auth (the token in SLACK_BOT_TOKEN was refused) — nothing sent"
        )
    );
    for line in s.fake.request_lines() {
        assert!(!line.contains(TOKEN) && !line.contains("xoxb"), "{line}");
    }
}

#[tokio::test]
async fn rate_limits_and_unclear_answers_are_never_retried() {
    let s = setup().await;
    s.run(&post(CHAN, "warm up", None)).await; // identity checked
    s.fake
        .inject("chat.postMessage", Injected::rate_limited(Some(30)));
    let e = s.run(&post(CHAN, "x", None)).await;
    assert_eq!(
        e.error(),
        Some("Slack rate limit: retry after 30 s — not posted")
    );
    s.fake
        .inject("chat.postMessage", Injected::rate_limited(None));
    let e = s.run(&post(CHAN, "x", None)).await;
    assert_eq!(
        e.error(),
        Some("Slack rate limit: retry after ? s — not posted")
    );
    s.fake
        .inject("chat.postMessage", Injected::error("ratelimited", None));
    let e = s.run(&post(CHAN, "x", None)).await;
    assert_eq!(
        e.error(),
        Some("Slack rate limit: retry after ? s — not posted")
    );
    s.fake.inject("chat.postMessage", Injected::status(500));
    let e = s.run(&post(CHAN, "x", None)).await;
    assert_eq!(
        e.error(),
        Some("post_message to C0123ABCD: HTTP 500 — the message may or may not have been posted")
    );
    s.fake.inject("chat.postMessage", Injected::disconnect());
    let e = s.run(&post(CHAN, "x", None)).await;
    let msg = e.error().unwrap();
    assert!(
        msg.starts_with("post_message to C0123ABCD: POST /chat.postMessage: no answer")
            && msg.ends_with("— the message may or may not have been posted"),
        "{msg}"
    );
    let posts = s
        .fake
        .request_lines()
        .into_iter()
        .filter(|l| l.contains("chat.postMessage"))
        .count();
    assert_eq!(
        posts,
        6,
        "one request per write: {:?}",
        s.fake.request_lines()
    );
    assert_eq!(s.fake.messages(CHAN).len(), 1);
}

#[tokio::test]
async fn update_message_edits_only_this_bots_plain_messages_and_undo_restores() {
    let s = setup().await;
    let (ts, _) = s.posted("v1").await;
    let missing = s.run(&update(CHAN, "1716000000.000001", "x")).await;
    assert_eq!(
        missing.error(),
        Some("message 1716000000.000001 not found in C0123ABCD")
    );
    let theirs = s.fake.post_as_person(CHAN, "U0PERSON1", "mine");
    let e = s.run(&update(CHAN, &theirs, "x")).await;
    assert_eq!(
        e.error(),
        Some("update_message only edits plain-text messages this bot posted")
    );
    let same = s.run(&update(CHAN, &ts, "v1")).await;
    assert_eq!(
        same,
        ActionOutcome::already_done(
            json!({"channel": CHAN, "ts": ts})
                .as_object()
                .unwrap()
                .clone(),
            "updated"
        )
    );
    let out = s.run(&update(CHAN, &ts, "v2")).await;
    assert_eq!(
        out,
        ActionOutcome::ok(
            json!({"channel": CHAN, "ts": ts, "already_done": false}),
            json!({"channel": CHAN, "ts": ts, "before": "v1", "after": "v2"}),
        )
    );
    assert_eq!(s.fake.message(CHAN, &ts).unwrap().text, "v2");
    let record = s.record("update_message", &out);
    let undone = s.undo(&record).await;
    assert!(undone.success, "{undone:?}");
    assert_eq!(s.fake.message(CHAN, &ts).unwrap().text, "v1");
    assert_eq!(
        s.undo(&record).await.output["already_done"],
        json!("restored")
    );
    // A person's edit after the run: not restored, and the text is not shown.
    let out = s.run(&update(CHAN, &ts, "v3")).await;
    let record = s.record("update_message", &out);
    s.fake
        .edit_as_person(CHAN, &ts, "U0ADMIN01", "someone else's words");
    assert_eq!(
        s.undo(&record).await.error(),
        Some(&*format!(
            "message {ts} in C0123ABCD was edited since the run — not restored"
        ))
    );
    assert_eq!(
        s.fake.message(CHAN, &ts).unwrap().text,
        "someone else's words"
    );
}

#[tokio::test]
async fn a_rate_limited_read_names_what_was_not_done_and_is_not_tried_again() {
    let s = setup().await;
    let (ts, _) = s.posted("v1").await;
    let replies = |s: &Setup| {
        s.fake
            .request_lines()
            .iter()
            .filter(|l| l.contains("conversations.replies"))
            .count()
    };
    // The read before an update.
    s.fake
        .inject("conversations.replies", Injected::rate_limited(Some(7)));
    let e = s.run(&update(CHAN, &ts, "v2")).await;
    assert_eq!(
        e.error(),
        Some("Slack rate limit: retry after 7 s — not updated")
    );
    assert_eq!(s.fake.message(CHAN, &ts).unwrap().text, "v1");
    // The read before an update's undo.
    let out = s.run(&update(CHAN, &ts, "v2")).await;
    let record = s.record("update_message", &out);
    s.fake
        .inject("conversations.replies", Injected::rate_limited(None));
    assert_eq!(
        s.undo(&record).await.error(),
        Some("Slack rate limit: retry after ? s — not restored")
    );
    assert_eq!(s.fake.message(CHAN, &ts).unwrap().text, "v2");
    // The read before a thread reply's delete: Slack's other spelling, HTTP 200, is a rate
    // limit too, so the read is not tried again through the recorded thread_ts.
    let out = s.run(&post(CHAN, "a reply", Some(&ts))).await;
    let reply = out.output["ts"].as_str().unwrap().to_string();
    let record = s.record("post_message", &out);
    s.fake.inject(
        "conversations.replies",
        Injected::error("rate_limited", None),
    );
    let before = replies(&s);
    assert_eq!(
        s.undo(&record).await.error(),
        Some("Slack rate limit: retry after ? s — not deleted")
    );
    assert_eq!(replies(&s) - before, 1, "{:?}", s.fake.request_lines());
    assert!(s.fake.message(CHAN, &reply).is_some());
}

#[tokio::test]
async fn update_message_refuses_this_bots_message_carrying_blocks_attachments_or_files() {
    let s = setup().await;
    let rich = [
        (
            "blocks",
            json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*v1*"}}]),
        ),
        (
            "attachments",
            json!([{"fallback": "a link", "title": "A link"}]),
        ),
        ("files", json!([{"id": "F0123ABCD", "name": "report.pdf"}])),
    ];
    for (key, value) in rich {
        let (ts, _) = s.posted("v1").await;
        assert!(s.fake.attach(CHAN, &ts, key, value));
        let before = s.fake.request_lines().len();
        let e = s.run(&update(CHAN, &ts, "v2")).await;
        assert_eq!(
            e.error(),
            Some("update_message only edits plain-text messages this bot posted"),
            "{key}"
        );
        assert_eq!(s.fake.message(CHAN, &ts).unwrap().text, "v1", "{key}");
        let sent: Vec<String> = s.fake.request_lines()[before..].to_vec();
        assert!(
            sent.iter().all(|l| !l.contains("chat.update")),
            "{key}: nothing but the read is sent: {sent:?}"
        );
    }
    // Empty lists are plain text, as Slack renders a message without rich content.
    let (ts, _) = s.posted("v1").await;
    assert!(s.fake.attach(CHAN, &ts, "blocks", json!([])));
    assert!(s.run(&update(CHAN, &ts, "v2")).await.success);
}

#[tokio::test]
async fn undo_of_a_post_refuses_an_edited_message_or_one_with_replies() {
    let s = setup().await;
    let (edited, record) = s.posted("original").await;
    s.fake.edit_as_person(CHAN, &edited, "U0ADMIN01", "changed");
    assert_eq!(
        s.undo(&record).await.error(),
        Some(&*format!(
            "message {edited} in C0123ABCD was edited since the run — not deleted"
        ))
    );
    assert!(s.fake.message(CHAN, &edited).is_some());
    // Edited back to the same text by a person: still an edit by someone else.
    s.fake
        .edit_as_person(CHAN, &edited, "U0ADMIN01", "original");
    assert!(
        s.undo(&record)
            .await
            .error()
            .unwrap()
            .contains("was edited since the run")
    );

    let (parent, record) = s.posted("question").await;
    s.fake
        .reply_as_person(CHAN, &parent, "U0PERSON1", "answer 1");
    s.fake
        .reply_as_person(CHAN, &parent, "U0PERSON2", "answer 2");
    assert_eq!(
        s.undo(&record).await.error(),
        Some(&*format!(
            "message {parent} in C0123ABCD has 2 thread replies — not deleted"
        ))
    );
    assert!(s.fake.message(CHAN, &parent).is_some());
}

#[tokio::test]
async fn a_thread_reply_is_posted_in_its_thread_and_its_undo_deletes_only_it() {
    let s = setup().await;
    let parent = s.fake.post_as_person(CHAN, "U0PERSON1", "incident?");
    let out = s.run(&post(CHAN, "on it", Some(&parent))).await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.output["thread_ts"], json!(parent));
    let ts = out.output["ts"].as_str().unwrap().to_string();
    assert_eq!(s.fake.message(CHAN, &parent).unwrap().reply_count, 1);
    let undone = s.undo(&s.record("post_message", &out)).await;
    assert!(undone.success, "{undone:?}");
    assert_eq!(s.fake.message(CHAN, &ts), None);
    assert_eq!(s.fake.message(CHAN, &parent).unwrap().reply_count, 0);
}

#[tokio::test]
async fn recovery_of_an_interrupted_update_asks_slack() {
    let s = setup().await;
    let (ts, _) = s.posted("before").await;
    let pre = json!({"channel": CHAN, "ts": ts, "before": "before", "after": "after"});
    let (found, _) = s
        .slack
        .recover("update_message", &serde_json::Map::new(), &pre)
        .await;
    assert_eq!(found.as_str(), "not_done");
    s.run(&update(CHAN, &ts, "after")).await;
    let (found, outcome) = s
        .slack
        .recover("update_message", &serde_json::Map::new(), &pre)
        .await;
    assert_eq!(found.as_str(), "done");
    assert_eq!(outcome.rollback_data, pre);
    let (found, outcome) = s
        .slack
        .recover(
            "post_message",
            &serde_json::Map::new(),
            &json!({"channel": CHAN, "thread_ts": null, "text": "x"}),
        )
        .await;
    assert_eq!(found.as_str(), "unknown");
    // Without a ts the undo refuses rather than guess.
    let record = ActionRecord {
        rollback_data: outcome.rollback_data.clone(),
        ..s.record("post_message", &outcome)
    };
    assert_eq!(
        s.undo(&record).await.error(),
        Some("cannot undo: the recorded rollback_data has no valid `ts`")
    );
    let _: Value = outcome.output;
}

#[tokio::test]
async fn update_records_the_old_text_before_it_sends_the_new_one() {
    let s = setup().await;
    let (ts, _) = s.posted("old words").await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let mut probe = Probe::checking(move |pre| seen2.lock().unwrap().push(pre.clone()));
    let out = s
        .slack
        .run(&update(CHAN, &ts, "new words"), &mut probe)
        .await;
    assert!(out.success, "{out:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        [json!({"channel": CHAN, "ts": ts, "before": "old words", "after": "new words"})]
    );
    // A journal that cannot be written stops the update before anything is sent.
    let before = s.fake.request_lines().len();
    let refused = s
        .slack
        .run(
            &update(CHAN, &ts, "newer"),
            &mut Probe::failing("journal full"),
        )
        .await;
    assert_eq!(refused.error(), Some("journal full"));
    assert_eq!(s.fake.message(CHAN, &ts).unwrap().text, "new words");
    let sent: Vec<String> = s.fake.request_lines()[before..].to_vec();
    assert_eq!(sent, ["GET /conversations.replies 200 (token)"]);
}
