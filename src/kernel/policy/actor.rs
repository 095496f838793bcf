//! Policies on who acts and when (SPEC §4): `require_actor_role`,
//! `within_maintenance_window`, `rate_limit`.
//!
//! Roles compare trimmed and case-insensitively. The role comes from the operator's config
//! (or its env override), never from the agent, so loose matching costs no safety and spares
//! the operator a confusing block over `Admin` vs `admin`.

use chrono::Timelike;

use super::Outcome;
use super::params::{format_time, format_window};
use super::plan_view::plain_list;
use crate::kernel::context::Context;

/// Blocks unless the actor's role is one of `roles`.
pub fn require_actor_role(roles: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let role = ctx.actor.role.as_str();
    let key = |r: &str| r.trim().to_lowercase();
    if roles.iter().any(|r| key(r) == key(role)) {
        Ok(Outcome::pass(format!("Actor role '{role}' is allowed")))
    } else {
        Ok(Outcome::block(format!(
            "Actor role '{role}' is not one of: {}",
            plain_list(roles)
        )))
    }
}

/// Blocks unless now (UTC) is inside [start, end) — minutes after midnight. The window
/// crosses midnight when `end < start`; `start == end` is an empty window and always blocks.
pub fn within_maintenance_window(
    start: u32,
    end: u32,
    ctx: &Context<'_>,
) -> Result<Outcome, String> {
    let now = ctx.now.hour() * 60 + ctx.now.minute();
    let inside = if start <= end {
        start <= now && now < end
    } else {
        now >= start || now < end
    };
    let window = format!("{}–{} UTC", format_time(start), format_time(end));
    let now = format_time(now);
    Ok(if start == end {
        Outcome::block(format!(
            "Outside maintenance window {window} (it is empty: start = end; now {now})"
        ))
    } else if inside {
        Outcome::pass(format!("Inside maintenance window {window} (now {now})"))
    } else {
        Outcome::block(format!("Outside maintenance window {window} (now {now})"))
    })
}

/// Blocks when the actor already has `max` or more counted runs in the window. The count is
/// taken by the engine (atomically with a reservation, SPEC §4) and passed in
/// `ctx.facts.rate_counts[index]`; without it the policy cannot decide.
pub fn rate_limit(
    max: u64,
    window_secs: u64,
    per: Option<&str>,
    index: usize,
    ctx: &Context<'_>,
) -> Result<Outcome, String> {
    let count = match ctx.facts.rate_counts.get(&index) {
        Some(Ok(count)) => *count,
        Some(Err(e)) => return Err(e.clone()),
        None => return Err("rate count unavailable".into()),
    };
    let window = format_window(window_secs);
    let scope = match per {
        Some(name) => {
            let value = ctx
                .payload
                .get(name)
                .map_or_else(|| "null".to_string(), |v| v.to_string());
            format!(" for {name} = {value}")
        }
        None => String::new(),
    };
    Ok(if count >= max {
        Outcome::block(format!(
            "Rate limit reached: {count} of {max} runs in {window}{scope}"
        ))
    } else {
        Outcome::pass(format!("{count} of {max} runs used in {window}{scope}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::context::{Actor, Facts};
    use chrono::{TimeZone, Utc};
    use serde_json::{Value, json};

    fn judge(
        role: &str,
        (h, m, s): (u32, u32, u32),
        payload: Value,
        facts: &Facts,
        f: impl Fn(&Context<'_>) -> Result<Outcome, String>,
    ) -> Result<Outcome, String> {
        let actor = Actor {
            email: "a@b.c".into(),
            role: role.into(),
        };
        let Value::Object(payload) = payload else {
            panic!("payload must be an object")
        };
        let now = Utc.with_ymd_and_hms(2025, 3, 1, h, m, s).single().unwrap();
        f(&Context {
            workflow: "w",
            actor: &actor,
            payload: &payload,
            plan: &[],
            now,
            facts,
        })
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn require_actor_role_matches_loosely() {
        let roles = strings(&["engineer", "Admin"]);
        let role = |r: &str| {
            judge(r, (12, 0, 0), json!({}), &Facts::default(), |c| {
                require_actor_role(&roles, c)
            })
        };
        assert_eq!(
            role("engineer"),
            Ok(Outcome::pass("Actor role 'engineer' is allowed"))
        );
        assert_eq!(
            role("admin"),
            Ok(Outcome::pass("Actor role 'admin' is allowed"))
        );
        assert_eq!(
            role(" ENGINEER "),
            Ok(Outcome::pass("Actor role ' ENGINEER ' is allowed"))
        );
        assert_eq!(
            role("contractor"),
            Ok(Outcome::block(
                "Actor role 'contractor' is not one of: engineer, Admin"
            ))
        );
        assert_eq!(
            role("engineers"),
            Ok(Outcome::block(
                "Actor role 'engineers' is not one of: engineer, Admin"
            ))
        );
        let none = judge("admin", (12, 0, 0), json!({}), &Facts::default(), |c| {
            require_actor_role(&[], c)
        });
        assert_eq!(
            none,
            Ok(Outcome::block("Actor role 'admin' is not one of: (none)"))
        );
    }

    fn window(start: u32, end: u32, at: (u32, u32, u32)) -> Result<Outcome, String> {
        judge("engineer", at, json!({}), &Facts::default(), |c| {
            within_maintenance_window(start, end, c)
        })
    }

    #[test]
    fn maintenance_window_is_half_open() {
        let (nine, five) = (9 * 60, 17 * 60);
        assert_eq!(
            window(nine, five, (9, 0, 0)),
            Ok(Outcome::pass(
                "Inside maintenance window 09:00–17:00 UTC (now 09:00)"
            ))
        );
        assert_eq!(
            window(nine, five, (16, 59, 59)),
            Ok(Outcome::pass(
                "Inside maintenance window 09:00–17:00 UTC (now 16:59)"
            ))
        );
        assert_eq!(
            window(nine, five, (17, 0, 0)),
            Ok(Outcome::block(
                "Outside maintenance window 09:00–17:00 UTC (now 17:00)"
            ))
        );
        assert_eq!(
            window(nine, five, (8, 59, 59)),
            Ok(Outcome::block(
                "Outside maintenance window 09:00–17:00 UTC (now 08:59)"
            ))
        );
    }

    #[test]
    fn maintenance_window_may_cross_midnight() {
        let (ten_pm, six_am) = (22 * 60, 6 * 60);
        for (at, now) in [
            ((22, 0, 0), "22:00"),
            ((23, 59, 59), "23:59"),
            ((0, 0, 0), "00:00"),
            ((5, 59, 0), "05:59"),
        ] {
            assert_eq!(
                window(ten_pm, six_am, at),
                Ok(Outcome::pass(format!(
                    "Inside maintenance window 22:00–06:00 UTC (now {now})"
                ))),
                "{now}"
            );
        }
        for (at, now) in [
            ((6, 0, 0), "06:00"),
            ((12, 0, 0), "12:00"),
            ((21, 59, 59), "21:59"),
        ] {
            assert_eq!(
                window(ten_pm, six_am, at),
                Ok(Outcome::block(format!(
                    "Outside maintenance window 22:00–06:00 UTC (now {now})"
                ))),
                "{now}"
            );
        }
    }

    #[test]
    fn empty_maintenance_window_always_blocks() {
        for at in [(9, 0, 0), (8, 59, 0), (0, 0, 0)] {
            let now = format_time(at.0 * 60 + at.1);
            assert_eq!(
                window(540, 540, at),
                Ok(Outcome::block(format!(
                    "Outside maintenance window 09:00–09:00 UTC (it is empty: start = end; now {now})"
                )))
            );
        }
    }

    fn rate(count: Option<Result<u64, String>>, per: Option<&str>) -> Result<Outcome, String> {
        let mut facts = Facts::default();
        if let Some(c) = count {
            facts.rate_counts.insert(2, c);
        }
        judge(
            "engineer",
            (12, 0, 0),
            json!({"repo": "acme/app"}),
            &facts,
            |c| rate_limit(5, 3600, per, 2, c),
        )
    }

    #[test]
    fn rate_limit_blocks_at_max() {
        assert_eq!(
            rate(Some(Ok(0)), None),
            Ok(Outcome::pass("0 of 5 runs used in 1h"))
        );
        assert_eq!(
            rate(Some(Ok(4)), None),
            Ok(Outcome::pass("4 of 5 runs used in 1h"))
        );
        assert_eq!(
            rate(Some(Ok(5)), None),
            Ok(Outcome::block("Rate limit reached: 5 of 5 runs in 1h"))
        );
        assert_eq!(
            rate(Some(Ok(9)), None),
            Ok(Outcome::block("Rate limit reached: 9 of 5 runs in 1h"))
        );
        assert_eq!(
            rate(Some(Ok(5)), Some("repo")),
            Ok(Outcome::block(
                "Rate limit reached: 5 of 5 runs in 1h for repo = \"acme/app\""
            ))
        );
        assert_eq!(
            rate(Some(Ok(1)), Some("branch")),
            Ok(Outcome::pass("1 of 5 runs used in 1h for branch = null"))
        );
    }

    #[test]
    fn rate_limit_without_a_count_cannot_decide() {
        assert_eq!(rate(None, None), Err("rate count unavailable".into()));
        assert_eq!(
            rate(Some(Err("receipts folder unreadable".into())), None),
            Err("receipts folder unreadable".into())
        );
        // The count of another policy is not this one's.
        let mut facts = Facts::default();
        facts.rate_counts.insert(0, Ok(0));
        let other = judge("engineer", (12, 0, 0), json!({}), &facts, |c| {
            rate_limit(5, 60, None, 1, c)
        });
        assert_eq!(other, Err("rate count unavailable".into()));
    }
}
