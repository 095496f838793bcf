//! HubSpot (SPEC-hubspot-slack §7.4): the real `enact serve` binary over stdio, its `crm`
//! system pointed at the in-process fake HubSpot (started in this test process on
//! 127.0.0.1), the token handed over in `HUBSPOT_TOKEN` and pinned by the fake.

use enact::fake_hubspot::{FakeHubspot, Injected};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::mcp::{
    Client, Folder, assert_block, assert_failed_action_on, assert_shape, call, connect,
    connect_with_stderr, fail, is_error, structured, texts,
};

const TOKEN: &str = "pat-na1-EnactHubspotTestToken-7d1c9e";

fn config(base_url: &str, role: &str) -> String {
    format!(
        r#"
[actor]
email = "agent@company.com"
role = "{role}"

[rollback]
enabled = true

[systems.crm]
type = "hubspot"
base_url = "{base_url}"
portal_id = 12345678

[[policies]]
policy = "no_duplicate_contacts"
workflows = ["new_contact"]

[[policies]]
policy = "limit_tasks_per_contact"
max = 2
window = "7d"
workflows = ["new_contact", "log_task"]

[[policies]]
policy = "contractor_cannot_write_pii"
fields = ["phone"]

[[workflows]]
name = "new_contact"
builtin = "hubspot_new_contact"
system = "crm"

[[workflows]]
name = "upsert_contact"
builtin = "hubspot_new_contact"
system = "crm"

[[workflows]]
name = "find"
[workflows.inputs.email]
type = "string"
[[workflows.steps]]
system = "crm"
action = "find_contact"
args = {{ email = "{{{{email}}}}" }}

[[workflows]]
name = "update"
[workflows.inputs.email]
type = "string"
[workflows.inputs.properties]
type = "object"
[[workflows.steps]]
system = "crm"
action = "update_contact"
args = {{ email = "{{{{email}}}}", properties = "{{{{properties}}}}" }}

[[workflows]]
name = "log_task"
[workflows.inputs.email]
type = "string"
[workflows.inputs.subject]
type = "string"
[workflows.inputs.due]
type = "string"
default = "2026-05-01"
[[workflows.steps]]
system = "crm"
action = "create_task"
args = {{ contact_email = "{{{{email}}}}", subject = "{{{{subject}}}}", due = "{{{{due}}}}" }}
"#
    )
}

struct Crm {
    fake: FakeHubspot,
    folder: Folder,
    client: Client,
}

async fn start_as(role: &str) -> Crm {
    let fake = FakeHubspot::start().await.unwrap();
    fake.require_token(TOKEN);
    let folder = Folder::new(&config(fake.base_url(), role));
    let client = connect(&folder, &[("HUBSPOT_TOKEN", TOKEN)]).await;
    Crm {
        fake,
        folder,
        client,
    }
}

async fn start() -> Crm {
    start_as("engineer").await
}

impl Crm {
    async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        call(&self.client, tool, args).await
    }
    async fn run(&self, tool: &str, args: Value) -> Value {
        let s = assert_shape(&self.call(tool, args).await);
        assert_eq!(s["success"], true, "{s}");
        s
    }
    async fn rollback(&self, run_id: &Value) -> Value {
        structured(&self.call("enact_rollback", json!({"run_id": run_id})).await)
    }
    fn writes(&self) -> Vec<String> {
        self.fake
            .request_lines()
            .into_iter()
            .filter(|l| !l.starts_with("GET ") && !l.contains("batch/read"))
            .collect()
    }
    /// The error of the rollback's only undo step.
    async fn undo_error(&self, run_id: &Value) -> String {
        let r = self.rollback(run_id).await;
        assert_eq!(r["decision"], "PARTIAL", "{r}");
        r["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["success"] == false)
            .unwrap()["output"]["error"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[tokio::test]
async fn new_contact_creates_contact_and_task_with_exact_requests_then_rolls_back() {
    let crm = start().await;
    let s = crm
        .run(
            "new_contact",
            json!({"email": " Ada@Example.COM ", "properties": {"firstname": "Ada", "company": "Acme"},
                   "task_subject": "Intro call", "task_body": "Say hi", "task_due": "2026-05-01"}),
        )
        .await;
    let actions = s["actions"].as_array().unwrap();
    assert_eq!(
        actions[0]["output"],
        json!({"id": "501", "email": "ada@example.com", "already_done": false})
    );
    assert_eq!(
        actions[1]["output"],
        json!({"task_id": "502", "contact_id": "501", "contact_email": "ada@example.com",
               "due": "2026-05-01T00:00:00.000Z", "already_done": false})
    );
    let receipt = crm.folder.receipt_files().pop().unwrap();
    assert_eq!(
        receipt["actions_taken"][0]["rollback_data"],
        json!({"id": "501", "email": "ada@example.com",
               "written": {"company": "Acme", "email": "ada@example.com", "firstname": "Ada"}})
    );
    assert_eq!(
        receipt["actions_taken"][0]["target"],
        json!({"type": "hubspot", "base_url": crm.fake.base_url(), "portal_id": 12345678})
    );
    let task = crm.fake.task("502").unwrap();
    assert_eq!(
        (
            task.subject.as_str(),
            task.body.as_str(),
            task.status.as_str(),
            task.timestamp
        ),
        ("Intro call", "Say hi", "NOT_STARTED", 1_777_593_600_000)
    );
    assert_eq!(task.contacts, ["501"]);
    assert_eq!(
        crm.fake.request_lines(),
        [
            "GET /account-info/v3/details 200",
            "GET /crm/v3/objects/contacts/ada%40example.com 404",
            "GET /crm/v3/objects/contacts/ada%40example.com 404",
            "POST /crm/v3/objects/contacts 201",
            "GET /crm/v3/objects/contacts/ada%40example.com 200",
            "GET /crm/v4/objects/contacts/501/associations/tasks 200",
            "POST /crm/v3/objects/tasks 201",
        ]
    );
    assert!(crm.fake.requests().iter().all(|r| r.token_sent));

    crm.fake.clear_requests();
    let rb = crm.rollback(&s["run_id"]).await;
    assert_eq!(rb["decision"], "PASS", "{rb}");
    assert_eq!(
        crm.writes(),
        [
            "DELETE /crm/v3/objects/tasks/502 204",
            "DELETE /crm/v3/objects/contacts/501 204"
        ]
    );
    assert!(crm.fake.task("502").unwrap().archived);
    assert!(crm.fake.contact("501").unwrap().1);
}

#[tokio::test]
async fn an_existing_email_is_blocked_by_no_duplicate_contacts_and_nothing_is_written() {
    let crm = start().await;
    let id = crm
        .fake
        .add_contact("bob@acme.com", &[("firstname", "Bob")]);
    let r = crm
        .call(
            "new_contact",
            json!({"email": "Bob@Acme.com", "task_subject": "x"}),
        )
        .await;
    assert!(assert_block(&r).contains(&fail(
        "no_duplicate_contacts",
        &format!("Contact bob@acme.com already exists (id={id})")
    )));
    assert_eq!(crm.writes(), Vec::<String>::new());
    // Without the policy the contact is already there and the task is still created.
    let s = crm
        .run(
            "upsert_contact",
            json!({"email": "bob@acme.com", "task_subject": "Follow up"}),
        )
        .await;
    assert_eq!(
        s["actions"][0]["output"],
        json!({"id": id, "email": "bob@acme.com", "already_done": "created"})
    );
    assert_eq!(s["actions"][1]["output"]["already_done"], false);
    // A fresh email passes with the policy's reason.
    let s = crm
        .run("new_contact", json!({"email": "new@acme.com"}))
        .await;
    assert_eq!(
        s["policy_results"][0]["reason"],
        "No existing contact for new@acme.com"
    );
}

#[tokio::test]
async fn a_failed_duplicate_lookup_fails_closed() {
    let crm = start().await;
    crm.fake.inject(
        "GET",
        "/crm/v3/objects/contacts/new%40acme.com",
        Injected::error(500, "INTERNAL_ERROR", "Oops"),
    );
    let r = crm
        .call("new_contact", json!({"email": "new@acme.com"}))
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "no_duplicate_contacts",
            "policy error: cannot look up new@acme.com in HubSpot: HubSpot said: Oops (500 INTERNAL_ERROR, correlationId aaaaaaaa-0000-4000-8000-000000000001)"
        )]
    );
    assert_eq!(crm.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn plan_checks_block_with_nothing_sent() {
    let crm = start().await;
    let cases = [
        (
            "update",
            json!({"email": "not-an-email", "properties": {"firstname": "A"}}),
            "crm.update_contact: argument `email`: invalid email 'not-an-email': it must hold exactly one '@'",
        ),
        (
            "update",
            json!({"email": "a@b.com", "properties": {"hs_email_optout": true}}),
            "crm.update_contact: argument `properties`: property 'hs_email_optout' is not in the properties of system `crm`",
        ),
        (
            "update",
            json!({"email": "a@b.com", "properties": {"email": "c@d.com"}}),
            "crm.update_contact: argument `properties`: property 'email' cannot be set through properties: give it as the `email` argument (update_contact cannot change it)",
        ),
        (
            "update",
            json!({"email": "a@b.com", "properties": {"firstname": {"x": 1}}}),
            "crm.update_contact: argument `properties`: property 'firstname' must be a string, number or boolean, got an object",
        ),
        (
            "log_task",
            json!({"email": "a@b.com", "subject": "s", "due": "next week"}),
            "crm.create_task: argument `due`: invalid due 'next week': use RFC 3339 (2026-05-01T09:00:00Z) or YYYY-MM-DD",
        ),
        (
            "find",
            json!({"email": "a/b@c.com"}),
            "crm.find_contact: argument `email`: invalid email 'a/b@c.com': it contains whitespace, a control character or one of / \\ ? # %",
        ),
    ];
    for (tool, args, reason) in cases {
        let r = crm.call(tool, args).await;
        assert_eq!(assert_block(&r), [fail("input_schema", reason)]);
    }
    assert_eq!(crm.fake.request_lines(), Vec::<String>::new());
}

#[tokio::test]
async fn find_contact_returns_the_configured_properties_or_nulls() {
    let crm = start().await;
    let id = crm
        .fake
        .add_contact("bob@acme.com", &[("firstname", "Bob"), ("website", "x")]);
    let s = crm.run("find", json!({"email": "BOB@acme.com"})).await;
    assert_eq!(
        s["actions"][0]["output"],
        json!({"email": "bob@acme.com", "found": true, "id": id,
               "properties": {"email": "bob@acme.com", "firstname": "Bob", "lastname": null,
                              "phone": null, "company": null, "jobtitle": null}})
    );
    let s = crm.run("find", json!({"email": "nobody@acme.com"})).await;
    assert_eq!(
        s["actions"][0]["output"],
        json!({"email": "nobody@acme.com", "found": false, "id": null, "properties": null})
    );
    let rb = crm.rollback(&s["run_id"]).await;
    assert_eq!(rb["decision"], "PASS", "{rb}");
}

#[tokio::test]
async fn update_contact_patches_only_differences_and_undo_restores_or_refuses() {
    let crm = start().await;
    let id = crm
        .fake
        .add_contact("bob@acme.com", &[("firstname", "Bob"), ("phone", "111")]);
    let s = crm
        .run(
            "update",
            json!({"email": "bob@acme.com", "properties": {"firstname": "Bob", "phone": 222, "company": "Acme"}}),
        )
        .await;
    assert_eq!(
        s["actions"][0]["output"],
        json!({"id": id, "email": "bob@acme.com", "updated": ["company", "phone"], "already_done": false})
    );
    let again = crm
        .run(
            "update",
            json!({"email": "bob@acme.com", "properties": {"phone": "222"}}),
        )
        .await;
    assert_eq!(again["actions"][0]["output"]["already_done"], "updated");
    let rb = crm.rollback(&s["run_id"]).await;
    assert_eq!(rb["decision"], "PASS", "{rb}");
    let (props, _) = crm.fake.contact(&id).unwrap();
    assert_eq!(
        (props["phone"].as_str(), props["company"].as_str()),
        ("111", "")
    );

    // A person edits a property the run wrote: the undo names it and changes nothing.
    let s = crm
        .run(
            "update",
            json!({"email": "bob@acme.com", "properties": {"phone": "333", "firstname": "Robert"}}),
        )
        .await;
    crm.fake.set_contact_property(&id, "phone", "444");
    assert_eq!(
        crm.undo_error(&s["run_id"]).await,
        format!("contact {id} changed since the run: phone — not restored")
    );
    assert_eq!(crm.fake.contact(&id).unwrap().0["firstname"], "Robert");

    let r = crm
        .call(
            "update",
            json!({"email": "nobody@acme.com", "properties": {"phone": "1"}}),
        )
        .await;
    assert_eq!(
        assert_failed_action_on(&r, "crm", "update_contact"),
        "update_contact for nobody@acme.com: No HubSpot contact with email nobody@acme.com"
    );
}

#[tokio::test]
async fn create_contact_undo_guards() {
    let crm = start().await;
    let new = |email: &str| json!({"email": email, "properties": {"firstname": "A", "phone": "1"}});

    let s = crm.run("upsert_contact", new("a@x.com")).await;
    let id = s["actions"][0]["output"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    crm.fake.set_contact_property(&id, "firstname", "Z");
    crm.fake.set_contact_property(&id, "phone", "9");
    assert_eq!(
        crm.undo_error(&s["run_id"]).await,
        format!("contact {id} changed since the run: firstname, phone — not archived")
    );
    assert!(!crm.fake.contact(&id).unwrap().1);

    let s = crm.run("upsert_contact", new("b@x.com")).await;
    let id = s["actions"][0]["output"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let survivor = crm.fake.add_contact("c@x.com", &[]);
    crm.fake.merge_contacts(&survivor, &id);
    assert_eq!(
        crm.undo_error(&s["run_id"]).await,
        format!("contact {id} was merged into {survivor} — not archived")
    );

    let s = crm.run("upsert_contact", new("d@x.com")).await;
    let id = s["actions"][0]["output"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    crm.fake.purge_contact(&id);
    assert_eq!(
        crm.undo_error(&s["run_id"]).await,
        format!("contact {id} no longer exists — merged or permanently deleted; nothing archived")
    );

    let s = crm.run("upsert_contact", new("e@x.com")).await;
    let id = s["actions"][0]["output"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    crm.fake.archive_contact(&id);
    let rb = crm.rollback(&s["run_id"]).await;
    assert_eq!(rb["decision"], "PASS", "{rb}");
    assert_eq!(rb["actions"][0]["output"]["already_done"], "archived");
}

#[tokio::test]
async fn create_task_is_idempotent_and_its_undo_leaves_a_worked_task_alone() {
    let crm = start().await;
    crm.fake.add_contact("bob@acme.com", &[]);
    let s = crm
        .run(
            "log_task",
            json!({"email": "bob@acme.com", "subject": "Call"}),
        )
        .await;
    let task = s["actions"][0]["output"]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let again = crm
        .run(
            "log_task",
            json!({"email": "bob@acme.com", "subject": "Call"}),
        )
        .await;
    assert_eq!(again["actions"][0]["output"]["already_done"], "created");
    assert_eq!(again["actions"][0]["output"]["task_id"], task.as_str());
    crm.fake.complete_task(&task);
    assert_eq!(
        crm.undo_error(&s["run_id"]).await,
        format!("task {task} was completed since the run — not archived")
    );
    crm.fake
        .set_task_property(&task, "hs_task_status", "NOT_STARTED");
    crm.fake
        .set_task_property(&task, "hs_task_subject", "Other");
    assert_eq!(
        crm.undo_error(&s["run_id"]).await,
        format!("task {task} changed since the run: hs_task_subject — not archived")
    );
    let r = crm
        .call(
            "log_task",
            json!({"email": "ghost@acme.com", "subject": "Call"}),
        )
        .await;
    assert_eq!(
        assert_failed_action_on(&r, "crm", "create_task"),
        "create_task for ghost@acme.com: No HubSpot contact with email ghost@acme.com"
    );
}

#[tokio::test]
async fn limit_tasks_per_contact_counts_tasks_per_normalised_email() {
    let crm = start().await;
    crm.fake.add_contact("bob@acme.com", &[]);
    crm.run(
        "log_task",
        json!({"email": "bob@acme.com", "subject": "one"}),
    )
    .await;
    crm.run(
        "log_task",
        json!({"email": "BOB@acme.com", "subject": "two"}),
    )
    .await;
    let r = crm
        .call(
            "log_task",
            json!({"email": "bob@ACME.com", "subject": "three"}),
        )
        .await;
    assert!(assert_block(&r).contains(&fail(
        "limit_tasks_per_contact",
        "Contact bob@acme.com already has 2 tasks from this agent in 7d (max 2)"
    )));
    assert_eq!(crm.fake.tasks().len(), 2);
}

#[tokio::test]
async fn concurrent_calls_from_two_processes_pass_exactly_the_limit() {
    let crm = start().await;
    crm.fake.add_contact("bob@acme.com", &[]);
    let other = connect(&crm.folder, &[("HUBSPOT_TOKEN", TOKEN)]).await;
    async fn call_one(client: &Client, i: usize) -> CallToolResult {
        call(
            client,
            "log_task",
            json!({"email": "bob@acme.com", "subject": format!("task {i}")}),
        )
        .await
    }
    let (a, b, c, d) = tokio::join!(
        call_one(&crm.client, 1),
        call_one(&other, 2),
        call_one(&crm.client, 3),
        call_one(&other, 4)
    );
    let passed = [a, b, c, d]
        .iter()
        .filter(|r| structured(r)["decision"] == "PASS")
        .count();
    assert_eq!(passed, 2);
    assert_eq!(crm.fake.tasks().len(), 2);
}

#[tokio::test]
async fn a_contractor_cannot_write_a_listed_property() {
    let crm = start_as("contractor").await;
    let r = crm
        .call(
            "upsert_contact",
            json!({"email": "a@x.com", "properties": {"phone": "1"}}),
        )
        .await;
    assert_eq!(
        assert_block(&r),
        [fail(
            "contractor_cannot_write_pii",
            "Contractor cannot write PII property 'phone' of contact a@x.com"
        )]
    );
    let s = crm
        .run(
            "upsert_contact",
            json!({"email": "a@x.com", "properties": {"firstname": "A"}}),
        )
        .await;
    assert_eq!(
        s["policy_results"][0]["reason"],
        "Writes to contact a@x.com touch no PII property (phone)"
    );
}

#[tokio::test]
async fn a_token_of_another_account_fails_every_call_with_nothing_sent() {
    let crm = start().await;
    crm.fake.set_portal_id(87_654_321);
    let r = crm
        .call("upsert_contact", json!({"email": "a@x.com"}))
        .await;
    assert_eq!(
        assert_failed_action_on(&r, "crm", "create_contact"),
        "create_contact for a@x.com: the token in HUBSPOT_TOKEN belongs to HubSpot account 87654321, not portal_id 12345678 — nothing sent"
    );
    assert_eq!(
        crm.fake.request_lines(),
        ["GET /account-info/v3/details 200"]
    );
}

#[tokio::test]
async fn errors_rate_limits_and_lost_answers_are_reported_as_the_contract_says() {
    let crm = start().await;
    crm.fake.add_contact("bob@acme.com", &[]);
    crm.fake
        .inject("POST", "/crm/v3/objects/tasks", Injected::rate_limited(10));
    let r = crm
        .call("log_task", json!({"email": "bob@acme.com", "subject": "a"}))
        .await;
    assert_eq!(
        assert_failed_action_on(&r, "crm", "create_task"),
        "create_task for bob@acme.com: HubSpot rate limit reached (TEN_SECONDLY_ROLLING); retry after 10 s"
    );
    crm.fake.inject(
        "POST",
        "/crm/v3/objects/contacts",
        Injected::error(400, "VALIDATION_ERROR", "Property values were not valid"),
    );
    let r = crm
        .call("upsert_contact", json!({"email": "n@x.com"}))
        .await;
    assert_eq!(
        assert_failed_action_on(&r, "crm", "create_contact"),
        "create_contact for n@x.com: HubSpot said: Property values were not valid (400 VALIDATION_ERROR, correlationId aaaaaaaa-0000-4000-8000-000000000001)"
    );
    crm.fake
        .inject("POST", "/crm/v3/objects/contacts", Injected::disconnect());
    let r = crm
        .call("upsert_contact", json!({"email": "m@x.com"}))
        .await;
    let e = assert_failed_action_on(&r, "crm", "create_contact");
    assert!(
        e.ends_with(" — the change may or may not have been made"),
        "{e}"
    );
}

#[tokio::test]
async fn the_token_is_never_in_output_receipts_or_logs() {
    let fake = FakeHubspot::start().await.unwrap();
    fake.require_token(TOKEN);
    let folder = Folder::new(&config(fake.base_url(), "engineer"));
    let (client, log) =
        connect_with_stderr(&folder, &[("HUBSPOT_TOKEN", TOKEN), ("RUST_LOG", "trace")]).await;
    let mut seen = String::new();
    for args in [
        json!({"email": "a@x.com", "task_subject": "t"}),
        json!({"email": "a@x.com"}),
    ] {
        let r = call(&client, "new_contact", args).await;
        seen.push_str(&texts(&r).join("\n"));
        if let Some(run) = r.structured_content.as_ref().map(|s| s["run_id"].clone()) {
            let rb = call(&client, "enact_rollback", json!({"run_id": run})).await;
            seen.push_str(&texts(&rb).join("\n"));
        }
    }
    fake.inject(
        "POST",
        "/crm/v3/objects/contacts",
        Injected::error(
            401,
            "INVALID_AUTHENTICATION",
            "The access token provided is invalid",
        ),
    );
    let r = call(&client, "upsert_contact", json!({"email": "b@x.com"})).await;
    assert!(is_error(&r));
    seen.push_str(&texts(&r).join("\n"));
    client.cancel().await.unwrap();
    let log = log.await.unwrap();
    assert!(
        log.contains("hubspot request"),
        "trace log has the requests"
    );
    let journal = crate::journal::receipts(&folder.receipts());
    for (what, text) in [
        ("output", seen),
        ("log", log),
        ("receipts", serde_json::to_string(&journal).unwrap()),
    ] {
        assert!(!text.contains(TOKEN), "the token is in the {what}");
    }
}

#[test]
fn enact_check_reports_every_hubspot_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("enact.toml"),
        r#"
[actor]
email = "a@b.com"
[systems.crm]
type = "hubspot"
base_url = "http://api.hubapi.com"
portal_id = -3
properties = ["email", "Bad-Name", "firstname"]
task_owner_id = 0
[systems.other]
type = "hubspot"
base_url = "https://api.hubapi.com/?x=1"
"#,
    )
    .unwrap();
    let o = std::process::Command::new(crate::mcp::enact_bin())
        .args(["check", "--config"])
        .arg(dir.path().join("enact.toml"))
        .env("ENACT_SECRET", crate::engine::SECRET)
        .env("HUBSPOT_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for line in [
        "systems.crm.base_url: `base_url` \"http://api.hubapi.com\" uses http:// on a host that is not loopback: the token would travel in clear (use https://)",
        "systems.crm.portal_id: `portal_id` must be a positive integer, got -3",
        "systems.crm.task_owner_id: `task_owner_id` must be a positive integer, got 0",
        "systems.crm.properties: `properties` may not list `email`",
        "systems.crm.properties: property name `Bad-Name` is not valid",
        "systems.other: missing required key `portal_id`",
        "systems.other.base_url: `base_url` may not have a query or fragment, got \"https://api.hubapi.com/?x=1\"",
    ] {
        assert!(text.contains(line), "{line}\nnot in:\n{text}");
    }
    assert!(!text.contains(TOKEN));
}

#[tokio::test]
async fn a_conflict_on_create_is_reported_as_the_existing_contact() {
    let crm = start().await;
    crm.fake.inject(
        "POST",
        "/crm/v3/objects/contacts",
        Injected::error(409, "CONFLICT", "Contact already exists. Existing ID: 777"),
    );
    let s = crm
        .run("upsert_contact", json!({"email": "race@x.com"}))
        .await;
    assert_eq!(
        s["actions"][0]["output"],
        json!({"id": "777", "email": "race@x.com", "already_done": "created"})
    );
}

#[tokio::test]
async fn preview_looks_the_email_up_and_writes_nothing() {
    let crm = start().await;
    let id = crm.fake.add_contact("bob@acme.com", &[]);
    let r = crm
        .call(
            "enact_preview",
            json!({"workflow": "new_contact", "arguments": {"email": "bob@acme.com"}}),
        )
        .await;
    let p = structured(&r);
    assert_eq!(p["decision"], "BLOCK", "{p}");
    assert_eq!(
        p["policy_results"][0]["reason"],
        format!("Contact bob@acme.com already exists (id={id})")
    );
    assert_eq!(crm.writes(), Vec::<String>::new());
    assert!(crm.folder.receipt_files().is_empty());
}

/// The fake is as strict as HubSpot: token, unknown and read-only properties, duplicates,
/// tasks without a timestamp or a valid association, archived objects, merged ids.
#[tokio::test]
async fn the_fake_answers_like_hubspot() {
    use enact::connector::http::{JsonClient, Request};
    let fake = FakeHubspot::start().await.unwrap();
    fake.require_token(TOKEN);
    let client = JsonClient::new(fake.base_url(), &enact::secret::Secret::new(TOKEN)).unwrap();
    let wrong = JsonClient::new(fake.base_url(), &enact::secret::Secret::new("nope")).unwrap();
    let r = wrong
        .send(&Request::get("/account-info/v3/details"))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["category"].as_str()),
        (401, Some("INVALID_AUTHENTICATION"))
    );
    let post =
        |props: Value| Request::post_json("/crm/v3/objects/contacts", json!({"properties": props}));
    let r = client
        .send(&post(json!({"email": "A@x.com", "nickname": "a"})))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (400, Some("Property \"nickname\" does not exist"))
    );
    let r = client
        .send(&post(json!({"createdate": "1"})))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = client
        .send(&post(json!({"email": "A@x.com"})))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = client
        .send(&post(json!({"email": "a@X.com"})))
        .await
        .unwrap();
    assert_eq!(
        (
            r.status,
            r.body["category"].as_str(),
            r.body["message"].as_str().map(str::to_string)
        ),
        (
            409,
            Some("CONFLICT"),
            Some(format!("Contact already exists. Existing ID: {id}"))
        )
    );
    assert!(r.body["correlationId"].is_string());
    let task = |assoc: Value, props: Value| {
        Request::post_json(
            "/crm/v3/objects/tasks",
            json!({"properties": props, "associations": assoc}),
        )
    };
    let to = |id: &str, type_id: u64| json!([{"to": {"id": id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}]);
    let r = client
        .send(&task(to(&id, 204), json!({"hs_task_subject": "s"})))
        .await
        .unwrap();
    assert_eq!(r.status, 400, "no hs_timestamp");
    let r = client
        .send(&task(to(&id, 1), json!({"hs_timestamp": "1"})))
        .await
        .unwrap();
    assert_eq!(r.status, 400, "wrong association type");
    let r = client
        .send(&task(to("99999", 204), json!({"hs_timestamp": "1"})))
        .await
        .unwrap();
    assert_eq!(r.status, 400, "no such contact");
    let r = client
        .send(
            &Request::get(format!("/crm/v3/objects/contacts/{id}?properties=email"))
                .with_method(http::Method::DELETE),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    let path = format!("/crm/v3/objects/contacts/{id}?properties=email");
    assert_eq!(
        client
            .send(&Request::get(path.clone()))
            .await
            .unwrap()
            .status,
        404
    );
    let r = client
        .send(&Request::get(format!("{path}&archived=true")))
        .await
        .unwrap();
    assert_eq!((r.status, r.body["archived"].as_bool()), (200, Some(true)));
    let a = fake.add_contact("p@x.com", &[]);
    let b = fake.add_contact("s@x.com", &[]);
    fake.merge_contacts(&a, &b);
    let r = client
        .send(&Request::get(format!("/crm/v3/objects/contacts/{b}")))
        .await
        .unwrap();
    assert_eq!(r.body["id"].as_str(), Some(a.as_str()));
    assert_eq!(
        client
            .send(&Request::get("/crm/v3/objects/deals"))
            .await
            .unwrap()
            .status,
        404
    );
    assert!(fake.requests().iter().all(|r| r.token_sent));
    assert!(!fake.request_lines().join("\n").contains(TOKEN));
}

#[tokio::test]
async fn a_refused_token_or_a_missing_scope_is_named() {
    let fake = FakeHubspot::start().await.unwrap();
    fake.require_token(TOKEN);
    let folder = Folder::new(&config(fake.base_url(), "engineer"));
    let client = connect(&folder, &[("HUBSPOT_TOKEN", "pat-wrong")]).await;
    let r = call(&client, "upsert_contact", json!({"email": "a@x.com"})).await;
    assert_eq!(
        assert_failed_action_on(&r, "crm", "create_contact"),
        "create_contact for a@x.com: cannot check which HubSpot account the token in HUBSPOT_TOKEN belongs to: HubSpot said: The access token provided is invalid or expired. (401 INVALID_AUTHENTICATION, correlationId 00000000-0000-4000-8000-000000000001) — nothing sent"
    );
    assert_eq!(fake.request_lines(), ["GET /account-info/v3/details 401"]);
    client.cancel().await.unwrap();

    let crm = Crm {
        client: connect(&folder, &[("HUBSPOT_TOKEN", TOKEN)]).await,
        fake,
        folder,
    };
    crm.fake.inject(
        "POST",
        "/crm/v3/objects/contacts",
        Injected::error(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes",
        )
        .with_context(json!({"requiredGranularScopes": ["crm.objects.contacts.write"]})),
    );
    let r = crm
        .call("upsert_contact", json!({"email": "a@x.com"}))
        .await;
    assert!(
        assert_failed_action_on(&r, "crm", "create_contact")
            .ends_with("; missing scopes: crm.objects.contacts.write"),
        "{:?}",
        texts(&r)
    );
}
