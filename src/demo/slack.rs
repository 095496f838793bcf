//! Act 5 of `enact demo` (SPEC-hubspot-slack §1, step 4): `post_slack_message` to a channel of
//! the in-process fake Slack is a PASS, and one rollback deletes the message.

use serde_json::json;

use super::{Demo, expect};
use crate::fake_slack::{FakeSlack, Kind};
use crate::mcp::client::McpClient;

/// The env var the demo config reads the fake Slack's bot token from.
pub const SLACK_TOKEN_ENV: &str = "ENACT_DEMO_SLACK_TOKEN";
/// The demo's channel in the fake Slack.
pub const CHANNEL: &str = "C0DEMO0001";

/// The fake Slack, its token pinned and `#deploys` created.
pub async fn start(token: &str) -> Result<FakeSlack, String> {
    let fake = FakeSlack::start()
        .await
        .map_err(|e| format!("cannot start the fake Slack: {e}"))?;
    fake.require_token(token);
    fake.add_channel(CHANNEL, "deploys", Kind::Public);
    Ok(fake)
}

/// The Slack part of the demo config.
pub fn config(slack_url: &str) -> String {
    format!(
        r#"
[systems.chat]
type = "slack"
token_env = "{SLACK_TOKEN_ENV}"
base_url = "{slack_url}"
team_id = "T0000DEMO"
channels = ["{CHANNEL}"]
allowed_actions = ["post_message"]

[[policies]]
policy = "require_channel_allowlist"
channels = ["{CHANNEL}"]
workflows = ["post_slack_message"]

[[policies]]
policy = "no_mass_mentions"
workflows = ["post_slack_message"]

[[workflows]]
name = "post_slack_message"
builtin = "post_slack_message"
system = "chat"
"#
    )
}

impl Demo {
    pub(super) async fn act_slack(
        &self,
        client: &McpClient,
        fake: &FakeSlack,
    ) -> Result<(), String> {
        let s = &self.s;
        s.heading("Act 5 — ROLLBACK on Slack: the agent posts to #deploys; one call deletes it");
        let reply = self
            .call(
                client,
                "post_slack_message",
                json!({"channel": CHANNEL, "text": "Deployed app v1.4.2 to staging"}),
            )
            .await?;
        expect(
            !reply.is_error && reply.structured["success"] == json!(true),
            "the Slack post to pass",
        )?;
        let ts = reply.structured["actions"][0]["output"]["ts"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let posted = fake.message(CHANNEL, &ts);
        expect(posted.is_some(), "the message in the fake Slack")?;
        println!(
            "  {} Slack #deploys now shows message {ts}: \"{}\"",
            s.ok(),
            posted.map(|m| m.text).unwrap_or_default()
        );
        let run_id = reply.structured["run_id"].as_str().unwrap_or_default();
        self.rollback(client, run_id).await?;
        expect(
            fake.message(CHANNEL, &ts).is_none(),
            "the message to be deleted",
        )?;
        println!(
            "  {} message {ts} is gone from #deploys (chat.delete, after checking nobody edited or replied to it)",
            s.ok()
        );
        Ok(())
    }
}
