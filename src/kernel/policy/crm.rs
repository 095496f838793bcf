//! HubSpot policies (SPEC-hubspot-slack §4): `no_duplicate_contacts` (a live lookup by email,
//! made by the engine before the gate) and `limit_tasks_per_contact` (counted from the
//! journal under its lock, like `rate_limit`, but per normalised contact email and per task).

use std::collections::BTreeMap;

use super::Outcome;
use super::plan_view::hubspot;
use crate::kernel::action::ActionName;
use crate::kernel::context::Context;
use crate::kernel::typed::HubspotAction;

/// Blocks a planned `create_contact` whose email already belongs to a contact (per the
/// lookup in `ctx.facts.contacts`), or two creations of one email in the plan.
pub fn no_duplicate_contacts(ctx: &Context<'_>) -> Result<Outcome, String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut blocks = Vec::new();
    let mut passes = Vec::new();
    for (p, a) in hubspot(ctx.plan, &[ActionName::CreateContact]) {
        let email = a.email().as_str();
        if seen.contains(&email) {
            let twice = format!("Contact {email} is created twice in this plan");
            if !blocks.contains(&twice) {
                blocks.push(twice);
            }
            continue;
        }
        seen.push(email);
        let key = (p.step.system.clone(), email.to_string());
        match ctx.facts.contacts.get(&key) {
            None => {
                return Err(format!(
                    "cannot look up {email} in HubSpot: no lookup was made"
                ));
            }
            Some(Err(e)) => return Err(format!("cannot look up {email} in HubSpot: {e}")),
            Some(Ok(Some(id))) => blocks.push(format!("Contact {email} already exists (id={id})")),
            Some(Ok(None)) => passes.push(format!("No existing contact for {email}")),
        }
    }
    if !blocks.is_empty() {
        return Ok(Outcome::block(blocks.join("; ")));
    }
    if passes.is_empty() {
        return Ok(Outcome::pass("No create_contact in this plan"));
    }
    Ok(Outcome::pass(passes.join("; ")))
}

/// Blocks when, for some contact email, the tasks this actor created for it in the window
/// (`ctx.facts.task_counts[index]`) plus this plan's `create_task` steps for it exceed `max`.
pub fn limit_tasks_per_contact(
    max: u64,
    window: &str,
    index: usize,
    ctx: &Context<'_>,
) -> Result<Outcome, String> {
    let mut planned: BTreeMap<&str, u64> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (_, a) in hubspot(ctx.plan, &[ActionName::CreateTask]) {
        let email = a.email().as_str();
        if !order.contains(&email) {
            order.push(email);
        }
        *planned.entry(email).or_default() += 1;
    }
    if order.is_empty() {
        return Ok(Outcome::pass("No create_task in this plan"));
    }
    let counts = match ctx.facts.task_counts.get(&index) {
        Some(Ok(c)) => c,
        Some(Err(e)) => return Err(e.clone()),
        None => return Err("task count unavailable".into()),
    };
    let mut blocks = Vec::new();
    let mut passes = Vec::new();
    for email in order {
        let earlier = counts.get(email).copied().unwrap_or_default();
        let adding = planned.get(email).copied().unwrap_or_default();
        if earlier.saturating_add(adding) > max {
            blocks.push(format!(
                "Contact {email} already has {earlier} tasks from this agent in {window} (max {max})"
            ));
        } else {
            passes.push(format!(
                "Contact {email} has {earlier} tasks from this agent in {window}, {adding} planned (max {max})"
            ));
        }
    }
    Ok(if blocks.is_empty() {
        Outcome::pass(passes.join("; "))
    } else {
        Outcome::block(blocks.join("; "))
    })
}

/// The HubSpot half of `contractor_cannot_write_pii`: the listed properties a contractor's
/// planned `create_contact` / `update_contact` would write (on create, `email` counts), as
/// reasons; and the contacts written.
pub(super) fn pii_properties(fields: &[String], ctx: &Context<'_>) -> (Vec<String>, Vec<String>) {
    let listed = |name: &str| fields.iter().any(|f| f.trim().eq_ignore_ascii_case(name));
    let mut hits = Vec::new();
    let mut contacts = Vec::new();
    let actions = [ActionName::CreateContact, ActionName::UpdateContact];
    for (_, a) in hubspot(ctx.plan, &actions) {
        let (HubspotAction::CreateContact { email, properties }
        | HubspotAction::UpdateContact { email, properties }) = a
        else {
            continue;
        };
        if matches!(a, HubspotAction::CreateContact { .. }) && listed("email") {
            hits.push(format!(
                "Contractor cannot write PII property 'email' of contact {email}"
            ));
        }
        for name in properties.keys() {
            if listed(name) {
                hits.push(format!(
                    "Contractor cannot write PII property '{name}' of contact {email}"
                ));
            }
        }
        contacts.push(email.to_string());
    }
    (hits, contacts)
}
