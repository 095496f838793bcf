//! The Slack connector through the real `enact serve` binary: its `chat` system pointed at
//! the in-process fake Slack, the bot token in `SLACK_BOT_TOKEN` and pinned by the fake.

use enact::fake_slack::{FakeSlack, Kind};
use serde_json::json;

use crate::mcp::{
    Folder, assert_block, assert_shape, call, connect_with_stderr, enact_bin, fail, is_error,
    structured, texts,
};
use crate::slack::{CHAN, TOKEN};

fn config(base_url: &str, extra: &str) -> String {
    format!(
        r#"
[actor]
email = "agent@company.com"

[rollback]
enabled = true

[systems.chat]
type = "slack"
base_url = "{base_url}"
team_id = "T0000DEMO"
channels = ["{CHAN}", "G0MPIM0001", "C0OTHER001"]

[[workflows]]
name = "post_slack_message"
builtin = "post_slack_message"
system = "chat"

[[workflows]]
name = "edit"
[workflows.inputs.channel]
type = "string"
[workflows.inputs.ts]
type = "string"
[workflows.inputs.text]
type = "string"
[[workflows.steps]]
system = "chat"
action = "update_message"
args = {{ channel = "{{{{channel}}}}", ts = "{{{{ts}}}}", text = "{{{{text}}}}" }}
{extra}
"#
    )
}

#[tokio::test]
async fn post_slack_message_passes_then_rollback_deletes_the_message() {
    let fake = FakeSlack::start().await.unwrap();
    fake.require_token(TOKEN);
    fake.add_channel(CHAN, "general", Kind::Public);
    let folder = Folder::new(&config(fake.base_url(), ""));
    let (client, log) = connect_with_stderr(
        &folder,
        &[("SLACK_BOT_TOKEN", TOKEN), ("RUST_LOG", "trace")],
    )
    .await;
    let r = call(
        &client,
        "post_slack_message",
        json!({"channel": CHAN, "text": "deploy done"}),
    )
    .await;
    let s = assert_shape(&r);
    assert_eq!(s["decision"], "PASS", "{s}");
    assert_eq!(s["success"], true, "{s}");
    let ts = s["actions"][0]["output"]["ts"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s["actions"][0]["output"],
        json!({"channel": CHAN, "ts": ts, "thread_ts": null, "already_done": false})
    );
    assert_eq!(fake.message(CHAN, &ts).unwrap().text, "deploy done");

    let rb = call(&client, "enact_rollback", json!({"run_id": s["run_id"]})).await;
    let rb = structured(&rb);
    assert_eq!(rb["decision"], "PASS", "{rb}");
    assert_eq!(fake.message(CHAN, &ts), None);

    let receipts = folder.receipt_files();
    assert_eq!(receipts.len(), 2);
    assert_eq!(
        receipts[0]["actions_taken"][0]["target"],
        json!({"type": "slack", "base_url": fake.base_url(), "team_id": "T0000DEMO"})
    );
    assert_eq!(
        receipts[0]["actions_taken"][0]["rollback_data"],
        json!({"channel": CHAN, "ts": ts, "thread_ts": null, "text": "deploy done"})
    );
    client.cancel().await.unwrap();
    let log = log.await.unwrap();
    let everything = format!("{log}{}", serde_json::to_string(&receipts).unwrap());
    assert!(!everything.contains(TOKEN), "the token leaked");
}

#[tokio::test]
async fn bad_channels_timestamps_and_texts_are_input_schema_blocks() {
    let fake = FakeSlack::start().await.unwrap();
    let folder = Folder::new(&config(fake.base_url(), ""));
    let (client, _log) = connect_with_stderr(&folder, &[("SLACK_BOT_TOKEN", TOKEN)]).await;
    let cases = [
        (
            "post_slack_message",
            json!({"channel": "C0999ZZZZ", "text": "x"}),
            "chat.post_message: argument `channel`: channel 'C0999ZZZZ' is not in the channels of system `chat`",
        ),
        (
            "post_slack_message",
            json!({"channel": "U0123ABCD", "text": "x"}),
            "chat.post_message: argument `channel`: channel 'U0123ABCD' is a user ID: give a conversation ID (C…, G…, D…), posting to a user would open a DM",
        ),
        (
            "post_slack_message",
            json!({"channel": "#general", "text": "x"}),
            "chat.post_message: argument `channel`: channel '#general' is a channel name: give its conversation ID (C…, G…), names can be renamed",
        ),
        (
            "post_slack_message",
            json!({"channel": CHAN, "text": ""}),
            "chat.post_message: argument `text`: text is empty",
        ),
        (
            "post_slack_message",
            json!({"channel": CHAN, "text": "x", "thread_ts": "12345"}),
            "chat.post_message: argument `thread_ts`: '12345' is not a Slack message timestamp (like 1716900000.000100)",
        ),
        (
            "edit",
            json!({"channel": CHAN, "ts": "", "text": "x"}),
            "chat.update_message: argument `ts`: '' is not a Slack message timestamp (like 1716900000.000100)",
        ),
    ];
    for (tool, args, reason) in cases {
        let r = call(&client, tool, args).await;
        assert_eq!(assert_block(&r), [fail("input_schema", reason)]);
    }
    let long = "é".repeat(40_001);
    let r = call(
        &client,
        "post_slack_message",
        json!({"channel": CHAN, "text": long}),
    )
    .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "input_schema",
            "chat.post_message: argument `text`: text is 40001 characters long; Slack keeps at most 40000 (it would truncate the message)"
        )]
    );
    // Nothing reached Slack, not even the identity check.
    assert!(
        fake.request_lines().is_empty(),
        "{:?}",
        fake.request_lines()
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn chat_policies_judge_the_plan_with_a_live_lookup_for_dms() {
    let fake = FakeSlack::start().await.unwrap();
    fake.require_token(TOKEN);
    fake.add_channel(CHAN, "general", Kind::Public);
    fake.add_channel("G0MPIM0001", "mpdm-a--b", Kind::Mpim);
    let extra = r#"
[[policies]]
policy = "require_channel_allowlist"
channels = ["C0123ABCD", "G0MPIM0001"]

[[policies]]
policy = "block_dms"

[[policies]]
policy = "no_mass_mentions"
"#;
    let folder = Folder::new(&config(fake.base_url(), extra));
    let (client, _log) = connect_with_stderr(&folder, &[("SLACK_BOT_TOKEN", TOKEN)]).await;
    let r = call(
        &client,
        "post_slack_message",
        json!({"channel": "G0MPIM0001", "text": "hi"}),
    )
    .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "block_dms",
            "Channel 'G0MPIM0001' is a direct message"
        )]
    );
    let r = call(
        &client,
        "post_slack_message",
        json!({"channel": "C0OTHER001", "text": "<!here> hi"}),
    )
    .await;
    assert_eq!(
        assert_block(&r),
        [
            fail(
                "require_channel_allowlist",
                "Channel 'C0OTHER001' is not in the allowlist"
            ),
            fail(
                "block_dms",
                "policy error: cannot look up channel 'C0OTHER001' in Slack: conversations.info for C0OTHER001: Slack said: channel_not_found (no such channel, or the bot cannot see it)"
            ),
            fail(
                "no_mass_mentions",
                "Message to 'C0OTHER001' mentions <!here>"
            ),
        ]
    );
    // The same verdict in a preview, which sends no write either.
    let p = call(
        &client,
        "enact_preview",
        json!({"workflow": "post_slack_message", "arguments": {"channel": "G0MPIM0001", "text": "hi"}}),
    )
    .await;
    assert_eq!(structured(&p)["decision"], "BLOCK");
    let r = call(
        &client,
        "post_slack_message",
        json!({"channel": CHAN, "text": "fine"}),
    )
    .await;
    assert!(!is_error(&r), "{:?}", texts(&r));
    let writes: Vec<String> = fake
        .request_lines()
        .into_iter()
        .filter(|l| l.starts_with("POST"))
        .collect();
    assert_eq!(writes, ["POST /chat.postMessage 200 (token)"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_token_of_another_workspace_is_a_failed_action_naming_both() {
    let fake = FakeSlack::start().await.unwrap();
    fake.add_channel(CHAN, "general", Kind::Public);
    fake.set_team_id("T0999ZZZZ");
    let folder = Folder::new(&config(fake.base_url(), ""));
    let (client, _log) = connect_with_stderr(&folder, &[("SLACK_BOT_TOKEN", TOKEN)]).await;
    let r = call(
        &client,
        "post_slack_message",
        json!({"channel": CHAN, "text": "x"}),
    )
    .await;
    let s = structured(&r);
    assert_eq!(s["success"], false);
    assert_eq!(
        s["actions"][0]["output"]["error"],
        "the token in SLACK_BOT_TOKEN belongs to Slack workspace T0999ZZZZ, not team_id T0000DEMO — nothing sent"
    );
    assert!(fake.messages(CHAN).is_empty());
    client.cancel().await.unwrap();
}

fn check(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    let folder = Folder::new(config);
    let mut cmd = std::process::Command::new(enact_bin());
    cmd.arg("check")
        .arg("--config")
        .arg(folder.config())
        .env("ENACT_SECRET", crate::engine::SECRET)
        .env_remove("SLACK_BOT_TOKEN")
        .env_remove("ENACT_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn enact_check_reports_every_slack_config_error() {
    let bad = r#"
[actor]
email = "agent@company.com"

[systems.chat]
type = "slack"
base_url = "http://slack.example.com/api"
team_id = "acme"
channels = ["C0123ABCD", "general", "U0123ABCD"]
allowed_actions = ["post_message", "delete_message"]

[systems.chat2]
type = "slack"
token_env = "OTHER_SLACK_TOKEN"
"#;
    let (code, text) = check(bad, &[("SLACK_BOT_TOKEN", TOKEN)]);
    assert_eq!(code, 2, "{text}");
    for expected in [
        "`base_url` \"http://slack.example.com/api\" uses http:// on a host that is not loopback: the token would travel in clear (use https://)",
        "`team_id` must match ^T[A-Z0-9]{2,}$, got \"acme\"",
        "channel `general` is not a conversation ID (^[CGD][A-Z0-9]{8,}$)",
        "channel `U0123ABCD` is not a conversation ID (^[CGD][A-Z0-9]{8,}$)",
        "`delete_message` is not a slack action",
        "environment variable `OTHER_SLACK_TOKEN` is unset or empty",
        "team_id",
        "channels",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains(TOKEN));

    let good = r#"
[actor]
email = "agent@company.com"

[systems.chat]
type = "slack"
team_id = "T0123ABCD"
channels = ["*"]

[[policies]]
policy = "require_channel_allowlist"
channels = ["C0123ABCD"]

[[workflows]]
name = "post_slack_message"
builtin = "post_slack_message"
system = "chat"
"#;
    let (code, text) = check(good, &[("SLACK_BOT_TOKEN", TOKEN)]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("team_id:         T0123ABCD"), "{text}");
    assert!(text.contains("https://slack.com/api"), "{text}");
    assert!(!text.contains(TOKEN));

    let bad_policy = good.replace("channels = [\"C0123ABCD\"]", "channels = [\"#general\"]");
    let (code, text) = check(&bad_policy, &[("SLACK_BOT_TOKEN", TOKEN)]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("`#general` is not a conversation ID (^[CGD][A-Z0-9]{8,}$)"),
        "{text}"
    );
}

/// Runs one call in a server that aborts at `point`, then `enact recover`; returns the
/// recovered receipt's only action.
async fn crash_and_recover(
    folder: &Folder,
    expect_unknown: bool,
    point: &str,
    tool: &str,
    args: serde_json::Value,
) -> serde_json::Value {
    let env = [("SLACK_BOT_TOKEN", TOKEN), ("ENACT_TEST_CRASH_AT", point)];
    let (client, _log) = connect_with_stderr(folder, &env).await;
    assert!(crate::mcp::try_call(&client, tool, args).await.is_err());
    let o = crate::faults::enact(folder, &["recover"], &[("SLACK_BOT_TOKEN", TOKEN)]);
    let receipts = folder.receipt_files();
    assert!(
        o.status.success() || expect_unknown,
        "{point}: {}{} {}",
        crate::faults::stdout(&o),
        crate::faults::stderr(&o),
        receipts.last().unwrap()
    );
    let last = receipts.last().unwrap();
    assert_eq!(last["interrupted"], true, "{last}");
    last["actions_taken"][0].clone()
}

// The CLI runs block this thread while the fake Slack answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_around_slack_writes_are_recovered_by_asking_slack() {
    let fake = FakeSlack::start().await.unwrap();
    fake.require_token(TOKEN);
    fake.add_channel(CHAN, "general", Kind::Public);
    let folder = Folder::new(&config(fake.base_url(), ""));
    let bot = |text: &str| {
        fake.messages(CHAN)
            .into_iter()
            .filter(|m| m.text == text)
            .count()
    };

    // update_message: the step record written, nothing sent → not_done.
    let (client, _log) = connect_with_stderr(&folder, &[("SLACK_BOT_TOKEN", TOKEN)]).await;
    let r = call(
        &client,
        "post_slack_message",
        json!({"channel": CHAN, "text": "v1"}),
    )
    .await;
    let ts = structured(&r)["actions"][0]["output"]["ts"]
        .as_str()
        .unwrap()
        .to_string();
    client.cancel().await.unwrap();
    let a = crash_and_recover(
        &folder,
        false,
        "step",
        "edit",
        json!({"channel": CHAN, "ts": ts, "text": "v2"}),
    )
    .await;
    assert_eq!(a["output"]["recovered"], "not_done", "{a}");
    assert_eq!(fake.message(CHAN, &ts).unwrap().text, "v1");

    // update_message: sent, the receipt lost → done, and the recovered run rolls back.
    let a = crash_and_recover(
        &folder,
        false,
        "action",
        "edit",
        json!({"channel": CHAN, "ts": ts, "text": "v2"}),
    )
    .await;
    assert_eq!(a["output"]["recovered"], "done", "{a}");
    assert_eq!(
        a["rollback_data"],
        json!({"channel": CHAN, "ts": ts, "before": "v1", "after": "v2"})
    );
    let run = folder.receipt_files().last().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = crate::faults::enact(&folder, &["rollback", &run], &[("SLACK_BOT_TOKEN", TOKEN)]);
    assert!(o.status.success(), "{}", crate::faults::stdout(&o));
    assert_eq!(fake.message(CHAN, &ts).unwrap().text, "v1");

    // A thread reply whose answer was lost is found in its thread: done, and undone.
    let a = crash_and_recover(
        &folder,
        false,
        "action",
        "post_slack_message",
        json!({"channel": CHAN, "text": "reply", "thread_ts": ts}),
    )
    .await;
    assert_eq!(a["output"]["recovered"], "done", "{a}");
    assert_eq!(bot("reply"), 1);
    let run = folder.receipt_files().last().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = crate::faults::enact(&folder, &["rollback", &run], &[("SLACK_BOT_TOKEN", TOKEN)]);
    assert!(o.status.success(), "{}", crate::faults::stdout(&o));
    assert_eq!(bot("reply"), 0);

    // A thread reply never sent: not_done.
    let a = crash_and_recover(
        &folder,
        false,
        "step",
        "post_slack_message",
        json!({"channel": CHAN, "text": "reply 2", "thread_ts": ts}),
    )
    .await;
    assert_eq!(a["output"]["recovered"], "not_done", "{a}");

    // A top-level post whose answer was lost cannot be found: unknown, and its rollback
    // refuses rather than guess (the message stays, the operator decides).
    let a = crash_and_recover(
        &folder,
        true,
        "action",
        "post_slack_message",
        json!({"channel": CHAN, "text": "top"}),
    )
    .await;
    assert_eq!(a["output"]["recovered"], "unknown", "{a}");
    assert_eq!(bot("top"), 1);
    let run = folder.receipt_files().last().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = crate::faults::enact(&folder, &["rollback", &run], &[("SLACK_BOT_TOKEN", TOKEN)]);
    assert!(!o.status.success());
    assert!(
        crate::faults::stdout(&o)
            .contains("cannot undo: the recorded rollback_data has no valid `ts`"),
        "{}{}",
        crate::faults::stdout(&o),
        crate::faults::stderr(&o)
    );
    assert_eq!(bot("top"), 1);
}
