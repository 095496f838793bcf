//! Slack's identifiers and limits (SPEC-hubspot-slack §3.1, §7.5), as checked when the plan is
//! built, when the config is loaded and again by the connector. These are the only agent values
//! that reach a Slack query string, so the patterns are strict: a conversation ID is
//! `^[CGD][A-Z0-9]{8,}$`, a message timestamp `^\d{10}\.\d{6}$`.

/// Slack keeps at most this many characters of a message's text (it truncates the rest).
pub const MAX_TEXT_CHARS: usize = 40_000;

/// A conversation ID (`C…` public, `G…` private, `D…` direct message).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Channel(String);

impl Channel {
    pub fn parse(s: &str) -> Result<Channel, String> {
        if is_channel_id(s) {
            return Ok(Channel(s.to_string()));
        }
        Err(if s.starts_with('#') {
            format!(
                "channel '{s}' is a channel name: give its conversation ID (C…, G…), names can be renamed"
            )
        } else if is_user_id(s) {
            format!(
                "channel '{s}' is a user ID: give a conversation ID (C…, G…, D…), posting to a user would open a DM"
            )
        } else {
            format!("channel '{s}' is not a conversation ID (^[CGD][A-Z0-9]{{8,}}$)")
        })
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A direct message (`D…`): known without a lookup.
    pub fn is_dm_id(&self) -> bool {
        self.0.starts_with('D')
    }
}

/// A message timestamp, Slack's message id within a conversation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(String);

impl Ts {
    pub fn parse(s: &str) -> Result<Ts, String> {
        if is_ts(s) {
            Ok(Ts(s.to_string()))
        } else {
            Err(format!(
                "'{s}' is not a Slack message timestamp (like 1716900000.000100)"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `^[CGD][A-Z0-9]{8,}$`
pub fn is_channel_id(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(b'C' | b'G' | b'D'))
        && b.len() >= 9
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `^[UW][A-Z0-9]{2,}$`
fn is_user_id(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(b'U' | b'W'))
        && b.len() >= 3
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `^T[A-Z0-9]{2,}$`
pub fn is_team_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.first() == Some(&b'T')
        && b.len() >= 3
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `^\d{10}\.\d{6}$`
pub fn is_ts(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 17
        && b[10] == b'.'
        && b[..10].iter().all(u8::is_ascii_digit)
        && b[11..].iter().all(u8::is_ascii_digit)
}

/// A message text Slack will store as sent: not empty, at most 40,000 characters.
pub fn check_text(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("text is empty".into());
    }
    let n = s.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(format!(
            "text is {n} characters long; Slack keeps at most {MAX_TEXT_CHARS} (it would truncate the message)"
        ));
    }
    Ok(())
}

/// Whether a channel is in a system's `channels` (`["*"]` = any).
pub fn channel_in_scope(channels: &[String], channel: &str) -> bool {
    channels.iter().any(|c| c == "*" || c == channel)
}

/// The first mass mention in a text (`<!channel>`, `<!here>`, `<!everyone>`, `<!group>`,
/// `<!subteam^…>`), case-insensitive, as written up to its `>` (or the mention keyword).
pub fn mass_mention(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    ["<!channel", "<!here", "<!everyone", "<!group", "<!subteam^"]
        .iter()
        .filter_map(|m| lower.find(m).map(|at| (at, *m)))
        .min()
        .map(|(at, m)| {
            let rest = &text[at..];
            match rest.find('>') {
                Some(end) if end <= 128 => rest[..=end].to_string(),
                _ => format!("{}>", &rest[..m.len()]),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(is_channel_id("C0123ABCD"));
        assert!(is_channel_id("G0456EFGH"));
        assert!(is_channel_id("D01234567"));
        assert!(!is_channel_id("C0123ABC"));
        assert!(!is_channel_id("c0123abcd"));
        assert!(!is_channel_id("U0123ABCD"));
        assert!(is_team_id("T0123ABCD"));
        assert!(!is_team_id("T1"));
        assert!(is_ts("1716900000.000100"));
        assert!(!is_ts("1716900000.00010"));
        assert!(!is_ts("1716900000000100"));
        assert!(Channel::parse("#general").is_err_and(|e| e.contains("channel name")));
        assert!(Channel::parse("U0123ABCD").is_err_and(|e| e.contains("user ID")));
    }

    #[test]
    fn text_limits_count_characters_not_bytes() {
        assert!(check_text("").is_err());
        assert!(check_text(&"é".repeat(MAX_TEXT_CHARS)).is_ok());
        assert!(check_text(&"a".repeat(MAX_TEXT_CHARS + 1)).is_err());
    }

    #[test]
    fn mass_mentions() {
        assert_eq!(mass_mention("hi <!here> all"), Some("<!here>".into()));
        assert_eq!(mass_mention("<!HERE|here>"), Some("<!HERE|here>".into()));
        assert_eq!(
            mass_mention("x <!subteam^S123|@devs>"),
            Some("<!subteam^S123|@devs>".into())
        );
        assert_eq!(mass_mention("@channel plain"), None);
        assert_eq!(mass_mention("<@U123>"), None);
    }
}
