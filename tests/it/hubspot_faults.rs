//! HubSpot write-ahead records and recovery (SPEC §5.5): a step record that cannot be written
//! sends nothing; a process killed after its step record, before or after the request, is
//! finished by `enact recover` by asking HubSpot, and the recovered run rolls back; the task
//! limit holds across processes on the PostgreSQL journal.

use enact::connector::hubspot::{HubspotConnector, HubspotSettings};
use enact::fake_hubspot::FakeHubspot;
use enact::kernel::hubspot::Email;
use enact::kernel::typed::HubspotAction;
use enact::secret::Secret;
use serde_json::{Map, Value, json};

use crate::mcp::{Folder, connect_with_stderr};
use crate::steplog::Probe;

const TOKEN: &str = "pat-na1-EnactHubspotFaultToken-31b";

fn config(base_url: &str) -> String {
    format!(
        r#"
[actor]
email = "agent@company.com"

[rollback]
enabled = true

[systems.crm]
type = "hubspot"
base_url = "{base_url}"
portal_id = 12345678

[[workflows]]
name = "new_contact"
builtin = "hubspot_new_contact"
system = "crm"

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
[[workflows.steps]]
system = "crm"
action = "create_task"
args = {{ contact_email = "{{{{email}}}}", subject = "{{{{subject}}}}", due = "2026-05-01" }}
"#
    )
}

#[tokio::test]
async fn a_step_record_that_cannot_be_written_sends_nothing() {
    let fake = FakeHubspot::start().await.unwrap();
    let props = vec!["firstname".to_string()];
    let crm = HubspotConnector::new(&HubspotSettings {
        base_url: fake.base_url(),
        token_env: "HUBSPOT_TOKEN",
        token: &Secret::new(TOKEN),
        portal_id: 12_345_678,
        properties: &props,
        task_owner_id: None,
    })
    .unwrap();
    let mut firstname = Map::new();
    firstname.insert("firstname".into(), json!("Ada"));
    let action = HubspotAction::CreateContact {
        email: Email::parse("ada@x.com").unwrap(),
        properties: firstname,
    };
    let mut probe = Probe::failing("disk full");
    let out = crm.run(&action, &mut probe).await;
    assert_eq!(out.error(), Some("create_contact for ada@x.com: disk full"));
    assert_eq!(
        probe.pre(),
        &json!({"email": "ada@x.com", "properties": {"email": "ada@x.com", "firstname": "Ada"}})
    );
    assert!(
        fake.request_lines().iter().all(|l| l.starts_with("GET ")),
        "{:?}",
        fake.request_lines()
    );
    assert_eq!(fake.contact_id("ada@x.com"), None);
}

/// One call in a server that aborts at `point`, then `enact recover`; the recovered action.
async fn crash_and_recover(folder: &Folder, point: &str, tool: &str, args: Value) -> Value {
    let env = [("HUBSPOT_TOKEN", TOKEN), ("ENACT_TEST_CRASH_AT", point)];
    let (client, _log) = connect_with_stderr(folder, &env).await;
    assert!(crate::mcp::try_call(&client, tool, args).await.is_err());
    let o = crate::faults::enact(folder, &["recover"], &[("HUBSPOT_TOKEN", TOKEN)]);
    assert!(o.status.success(), "{point}: {}", crate::faults::stdout(&o));
    let last = folder.receipt_files().pop().unwrap();
    assert_eq!(last["interrupted"], true, "{last}");
    last["actions_taken"][0].clone()
}

fn last_run(folder: &Folder) -> String {
    folder.receipt_files().pop().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string()
}

// The CLI runs block this thread while the fake answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_around_hubspot_writes_are_recovered_by_asking_hubspot() {
    let fake = FakeHubspot::start().await.unwrap();
    fake.require_token(TOKEN);
    let folder = Folder::new(&config(fake.base_url()));

    // create_contact: the step record written, nothing sent → not_done.
    let a = crash_and_recover(&folder, "step", "new_contact", json!({"email": "a@x.com"})).await;
    assert_eq!(a["output"]["recovered"], "not_done", "{a}");
    assert_eq!(fake.contact_id("a@x.com"), None);

    // create_contact: sent, the receipt lost → done; the recovered run rolls back.
    let a = crash_and_recover(
        &folder,
        "action",
        "new_contact",
        json!({"email": "a@x.com", "properties": {"firstname": "A"}}),
    )
    .await;
    assert_eq!(a["output"]["recovered"], "done", "{a}");
    let id = fake.contact_id("a@x.com").unwrap();
    assert_eq!(
        a["rollback_data"],
        json!({"id": id, "email": "a@x.com", "written": {"email": "a@x.com", "firstname": "A"}})
    );
    let o = crate::faults::enact(
        &folder,
        &["rollback", &last_run(&folder)],
        &[("HUBSPOT_TOKEN", TOKEN)],
    );
    assert!(o.status.success(), "{}", crate::faults::stdout(&o));
    assert!(fake.contact(&id).unwrap().1, "archived");

    // update_contact: not sent → not_done; sent → done with the values before and after.
    let bob = fake.add_contact("bob@x.com", &[("phone", "1")]);
    let args = json!({"email": "bob@x.com", "properties": {"phone": "2"}});
    let a = crash_and_recover(&folder, "step", "update", args.clone()).await;
    assert_eq!(a["output"]["recovered"], "not_done", "{a}");
    let a = crash_and_recover(&folder, "action", "update", args).await;
    assert_eq!(a["output"]["recovered"], "done", "{a}");
    assert_eq!(
        a["rollback_data"],
        json!({"id": bob, "email": "bob@x.com", "before": {"phone": "1"}, "after": {"phone": "2"}})
    );

    // create_task: not sent → not_done; sent → done (found among the contact's tasks), and
    // the recovered run's undo archives it.
    fake.add_contact("c@x.com", &[]);
    let args = json!({"email": "c@x.com", "subject": "Call"});
    let a = crash_and_recover(&folder, "step", "log_task", args.clone()).await;
    assert_eq!(a["output"]["recovered"], "not_done", "{a}");
    assert_eq!(fake.tasks().len(), 0);
    let a = crash_and_recover(&folder, "action", "log_task", args).await;
    assert_eq!(a["output"]["recovered"], "done", "{a}");
    let task = fake.tasks().pop().unwrap();
    assert_eq!(a["output"]["task_id"], task.id.as_str());
    let o = crate::faults::enact(
        &folder,
        &["rollback", &last_run(&folder)],
        &[("HUBSPOT_TOKEN", TOKEN)],
    );
    assert!(o.status.success(), "{}", crate::faults::stdout(&o));
    assert!(fake.task(&task.id).unwrap().archived);
}

/// `limit_tasks_per_contact` across processes sharing the PostgreSQL journal (SPEC §10): the
/// task counts are taken in the transaction that appends the intent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_limit_holds_across_processes_on_the_postgres_journal() {
    let fake = FakeHubspot::start().await.unwrap();
    fake.require_token(TOKEN);
    fake.add_contact("bob@x.com", &[]);
    let dsn = crate::postgres::test_dsn();
    let schema = crate::pg_journal::fresh_schema();
    let extra = format!(
        r#"
[systems.crm]
type = "hubspot"
base_url = "{}"
portal_id = 12345678

[[policies]]
policy = "limit_tasks_per_contact"
max = 3
workflows = ["log_task"]

[[workflows]]
name = "log_task"
[workflows.inputs.subject]
type = "string"
[[workflows.steps]]
system = "crm"
action = "create_task"
args = {{ contact_email = "Bob@X.com", subject = "{{{{subject}}}}" }}
"#,
        fake.base_url()
    );
    let f = Folder::new(&crate::pg_journal::pg_config(&schema, &extra));
    let env = [
        ("ENACT_RECEIPTS_DSN", dsn.as_str()),
        ("HUBSPOT_TOKEN", TOKEN),
    ];
    let a = std::sync::Arc::new(crate::mcp::connect(&f, &env).await);
    let b = std::sync::Arc::new(crate::mcp::connect(&f, &env).await);
    let mut calls = Vec::new();
    for k in 0..8 {
        let server = if k % 2 == 0 { a.clone() } else { b.clone() };
        calls.push(tokio::spawn(async move {
            crate::mcp::call(&server, "log_task", json!({"subject": format!("t{k}")})).await
        }));
    }
    let mut pass = 0;
    for c in calls {
        let r = c.await.unwrap();
        if crate::mcp::structured(&r)["decision"] == "PASS" {
            pass += 1;
        }
    }
    assert_eq!(pass, 3);
    assert_eq!(fake.tasks().len(), 3);
}
