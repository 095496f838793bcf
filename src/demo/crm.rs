//! The demo's CRM act (SPEC-hubspot-slack §1): `hubspot_new_contact` for an email HubSpot
//! already holds is a BLOCK by `no_duplicate_contacts`; for a new email it is a PASS (a contact
//! and a follow-up task); a ROLLBACK archives the task, then the contact. The fake HubSpot
//! plays the CRM; nothing leaves the loopback interface.

use serde_json::json;

use super::{Demo, expect};
use crate::fake_hubspot::FakeHubspot;
use crate::mcp::client::McpClient;

/// The env var the demo config reads the fake HubSpot token from.
pub const HUBSPOT_TOKEN_ENV: &str = "ENACT_DEMO_HUBSPOT_TOKEN";
/// The contact HubSpot already holds when the demo starts.
pub const SEEDED_EMAIL: &str = "grace@example.com";

/// The CRM part of the demo config.
pub fn crm_config(hubspot_url: &str) -> String {
    format!(
        r#"
[systems.crm]
type = "hubspot"
token_env = "{HUBSPOT_TOKEN_ENV}"
base_url = "{hubspot_url}"
portal_id = 12345678

[[policies]]
policy = "no_duplicate_contacts"
workflows = ["new_contact"]

[[policies]]
policy = "limit_tasks_per_contact"
max = 3
window = "7d"
workflows = ["new_contact"]

[[workflows]]
name = "new_contact"
builtin = "hubspot_new_contact"
system = "crm"
"#
    )
}

impl Demo {
    pub(super) async fn act_crm(
        &self,
        client: &McpClient,
        fake: &FakeHubspot,
    ) -> Result<(), String> {
        let s = &self.s;
        s.heading("Act 6 — CRM: a duplicate contact is blocked; a new one passes and rolls back");
        let before = fake.snapshot();
        let reply = self
            .call(
                client,
                "new_contact",
                json!({"email": "Grace@Example.com", "properties": {"firstname": "Grace"},
                       "task_subject": "Intro call"}),
            )
            .await?;
        expect(
            reply.structured["decision"] == "BLOCK" && fake.snapshot() == before,
            "the duplicate contact to be blocked with nothing written to HubSpot",
        )?;
        println!(
            "  {} HubSpot unchanged: {SEEDED_EMAIL} already exists, nothing was written",
            s.ok()
        );

        let reply = self
            .call(
                client,
                "new_contact",
                json!({"email": "ada@example.com", "properties": {"firstname": "Ada", "company": "Analytical Engines"},
                       "task_subject": "Intro call", "task_body": "Follow up on the demo", "task_due": "2026-12-24"}),
            )
            .await?;
        let r = &reply.structured;
        expect(
            !reply.is_error && r["success"] == json!(true),
            "the new contact to pass",
        )?;
        let contact = r["actions"][0]["output"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let task = r["actions"][1]["output"]["task_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        expect(
            fake.contact(&contact)
                .is_some_and(|(_, archived)| !archived)
                && fake.task(&task).is_some_and(|t| !t.archived),
            "a live contact and task in HubSpot",
        )?;
        println!(
            "  {} HubSpot now has contact {contact} (ada@example.com) and task {task} \"Intro call\"",
            s.ok()
        );

        let run_id = r["run_id"].as_str().unwrap_or_default().to_string();
        self.rollback(client, &run_id).await?;
        expect(
            fake.task(&task).is_some_and(|t| t.archived)
                && fake.contact(&contact).is_some_and(|(_, archived)| archived),
            "the rollback to archive the task and the contact",
        )?;
        println!(
            "  {} task {task} archived, then contact {contact} (HubSpot keeps them restorable for 90 days)",
            s.ok()
        );
        Ok(())
    }
}
