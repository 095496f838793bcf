//! `[systems.<name>] type = "slack"` (SPEC-hubspot-slack §2): a bot token from `token_env`,
//! an https (or loopback http) `base_url`, the workspace `team_id` the token must belong to,
//! and the `channels` the system may post in.

use super::super::SystemSettings;
use super::super::raw::{Problems, Section};
use super::systems::credential;
use crate::connector::http::check_base_url;
use crate::kernel::slack::{is_channel_id, is_team_id};

pub(super) fn slack(
    name: &str,
    s: &Section<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<SystemSettings> {
    let token = credential(name, s, "token_env", "SLACK_BOT_TOKEN", env, p);
    let base_url = match s.get("base_url") {
        None => Some("https://slack.com/api".to_string()),
        Some(_) => s
            .string("base_url", p)
            .and_then(|url| match check_base_url(url) {
                Ok(()) => Some(url.trim_end_matches('/').to_string()),
                Err(e) => {
                    p.push_hint(
                        s.at("base_url"),
                        e,
                        "e.g. https://slack.com/api (http:// only on 127.0.0.1, ::1 or localhost)",
                    );
                    None
                }
            }),
    };
    let team_id = team_id(s, p);
    let channels = channels(s, p);
    let (token_env, token) = token?;
    Some(SystemSettings::Slack {
        token_env,
        token,
        base_url: base_url?,
        team_id: team_id?,
        channels: channels?,
    })
}

fn team_id(s: &Section<'_>, p: &mut Problems) -> Option<String> {
    let hint =
        "the workspace the bot token belongs to, e.g. team_id = \"T0123ABCD\" (auth.test shows it)";
    if !s.has("team_id") {
        s.missing("team_id", Some(hint), p);
        return None;
    }
    let id = s.string("team_id", p)?;
    if !is_team_id(id) {
        p.push_hint(
            s.at("team_id"),
            format!("`team_id` must match ^T[A-Z0-9]{{2,}}$, got {id:?}"),
            hint,
        );
        return None;
    }
    Some(id.to_string())
}

/// `channels`: required; conversation IDs, or `["*"]` for any the bot can reach.
fn channels(s: &Section<'_>, p: &mut Problems) -> Option<Vec<String>> {
    let hint = "list the conversation IDs this system may post in, e.g. channels = [\"C0123ABCD\"], or [\"*\"]";
    if !s.has("channels") {
        s.missing("channels", Some(hint), p);
        return None;
    }
    let listed = s.strings("channels", p)?;
    let mut ok = true;
    for channel in &listed {
        if *channel != "*" && !is_channel_id(channel) {
            ok = false;
            p.push_hint(
                s.at("channels"),
                format!("channel `{channel}` is not a conversation ID (^[CGD][A-Z0-9]{{8,}}$)"),
                "use the channel's ID (channel details in Slack), not its #name or a user ID",
            );
        }
    }
    ok.then(|| listed.iter().map(|c| c.to_string()).collect())
}
