//! Chat policies (SPEC-hubspot-slack §4): `require_channel_allowlist`, `block_dms`,
//! `no_mass_mentions`. They judge every planned Slack `post_message`/`update_message`;
//! `block_dms` reads the conversation kinds the engine looked up before the gate
//! (`Facts::dm_channels`), failing closed when a lookup is missing or failed.

use super::Outcome;
use super::plan_view::join_unique;
use crate::kernel::context::Context;
use crate::kernel::slack::{Channel, mass_mention};
use crate::kernel::typed::{Action, SlackAction};

const NOTHING: &str = "No Slack messages in this plan";

/// The planned Slack messages, in plan order.
fn messages<'a>(ctx: &'a Context<'_>) -> Vec<&'a SlackAction> {
    messages_by_system(ctx)
        .into_iter()
        .map(|(_, a)| a)
        .collect()
}

/// The planned Slack actions with the system each goes to.
fn messages_by_system<'a>(ctx: &'a Context<'_>) -> Vec<(&'a str, &'a SlackAction)> {
    ctx.plan
        .iter()
        .filter_map(|s| match &s.action {
            Action::Slack(a) => Some((s.system.as_str(), a)),
            _ => None,
        })
        .collect()
}

/// Blocks a message to a channel that is not listed (exact match).
pub fn require_channel_allowlist(
    channels: &[String],
    ctx: &Context<'_>,
) -> Result<Outcome, String> {
    let planned = messages(ctx);
    if planned.is_empty() {
        return Ok(Outcome::pass(NOTHING));
    }
    let outside: Vec<&Channel> = planned
        .iter()
        .map(|m| m.channel())
        .filter(|c| !channels.iter().any(|a| a == c.as_str()))
        .collect();
    if outside.is_empty() {
        return Ok(Outcome::pass(join_unique(
            planned
                .iter()
                .map(|m| format!("Channel '{}' is allowed", m.channel())),
        )));
    }
    Ok(Outcome::block(join_unique(outside.iter().map(|c| {
        format!("Channel '{c}' is not in the allowlist")
    }))))
}

/// Blocks a message to a direct message or group DM: `D…` without a lookup, other IDs by the
/// engine's `conversations.info` lookup.
pub fn block_dms(ctx: &Context<'_>) -> Result<Outcome, String> {
    let planned = messages_by_system(ctx);
    if planned.is_empty() {
        return Ok(Outcome::pass(NOTHING));
    }
    let mut dms = Vec::new();
    for (system, m) in &planned {
        let channel = m.channel();
        let is_dm = if channel.is_dm_id() {
            true
        } else {
            let key = (system.to_string(), channel.as_str().to_string());
            match ctx.facts.dm_channels.get(&key) {
                Some(Ok(is_dm)) => *is_dm,
                Some(Err(e)) => return Err(e.clone()),
                None => return Err(format!("the kind of channel '{channel}' was not looked up")),
            }
        };
        if is_dm {
            dms.push(format!("Channel '{channel}' is a direct message"));
        }
    }
    if dms.is_empty() {
        return Ok(Outcome::pass(join_unique(planned.iter().map(|(_, m)| {
            format!("Channel '{}' is not a direct message", m.channel())
        }))));
    }
    Ok(Outcome::block(join_unique(dms.into_iter())))
}

/// Blocks a message whose text holds `<!channel`, `<!here`, `<!everyone`, `<!group` or
/// `<!subteam^` (case-insensitive): Slack notifies a whole channel or group for these.
pub fn no_mass_mentions(ctx: &Context<'_>) -> Result<Outcome, String> {
    let planned = messages(ctx);
    if planned.is_empty() {
        return Ok(Outcome::pass(NOTHING));
    }
    let found: Vec<String> = planned
        .iter()
        .filter_map(|m| {
            mass_mention(m.text()).map(|at| format!("Message to '{}' mentions {at}", m.channel()))
        })
        .collect();
    if found.is_empty() {
        return Ok(Outcome::pass(join_unique(planned.iter().map(|m| {
            format!("No mass mention in the message to '{}'", m.channel())
        }))));
    }
    Ok(Outcome::block(join_unique(found.into_iter())))
}
