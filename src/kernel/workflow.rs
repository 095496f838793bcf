//! Workflows: a name, typed inputs, and either declared steps or a built-in plan builder.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::action::{ActionName, SystemKind};
use super::plan::{Guard, RawStep};

/// The names of Enact's own tools beside the workflows (`enact check` lists them too).
pub const PREVIEW: &str = "enact_preview";
pub const LIST_RECEIPTS: &str = "enact_list_receipts";
pub const GET_RECEIPT: &str = "enact_get_receipt";
pub const ROLLBACK: &str = "enact_rollback";
pub const RESUME: &str = "enact_resume";

/// The JSON type of a workflow input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
}

impl InputType {
    pub fn parse(s: &str) -> Option<InputType> {
        Some(match s {
            "string" => InputType::String,
            "integer" => InputType::Integer,
            "number" => InputType::Number,
            "boolean" => InputType::Boolean,
            "object" => InputType::Object,
            "array" => InputType::Array,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Object => "object",
            InputType::Array => "array",
        }
    }
}

/// One input of a workflow (one property of its tool's `inputSchema`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: InputType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Present: the input is optional and takes this value when omitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Absent and without a default (built-ins only: `db_safe_insert.unique_key`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<Value>>,
    /// For objects: every property value must have this type (`files`: path → content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<InputType>,
}

impl InputSpec {
    pub fn required(&self) -> bool {
        self.default.is_none() && !self.optional
    }
}

/// One step of a declared workflow, before templating.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTemplate {
    pub system: String,
    pub action: String,
    pub args: Map<String, Value>,
}

/// The built-in workflows (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    AgentPrWorkflow,
    DbSafeInsert,
    HubspotNewContact,
    PostSlackMessage,
}

impl Builtin {
    pub const ALL: [Builtin; 4] = [
        Builtin::AgentPrWorkflow,
        Builtin::DbSafeInsert,
        Builtin::HubspotNewContact,
        Builtin::PostSlackMessage,
    ];

    pub fn parse(s: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Builtin::AgentPrWorkflow => "agent_pr_workflow",
            Builtin::DbSafeInsert => "db_safe_insert",
            Builtin::HubspotNewContact => "hubspot_new_contact",
            Builtin::PostSlackMessage => "post_slack_message",
        }
    }

    /// The system type the built-in must be bound to.
    pub fn kind(self) -> SystemKind {
        match self {
            Builtin::AgentPrWorkflow => SystemKind::Github,
            Builtin::DbSafeInsert => SystemKind::Postgres,
            Builtin::HubspotNewContact => SystemKind::Hubspot,
            Builtin::PostSlackMessage => SystemKind::Slack,
        }
    }

    /// The actions its plan may use (each must be in the system's `allowed_actions`).
    pub fn actions(self) -> Vec<&'static str> {
        let names: &[ActionName] = match self {
            Builtin::AgentPrWorkflow => &[
                ActionName::CreateBranch,
                ActionName::PushCommit,
                ActionName::CreatePr,
            ],
            Builtin::DbSafeInsert => &[ActionName::SelectRows, ActionName::InsertRow],
            Builtin::HubspotNewContact => &[ActionName::CreateContact, ActionName::CreateTask],
            Builtin::PostSlackMessage => &[ActionName::PostMessage],
        };
        names.iter().map(|n| n.as_str()).collect()
    }

    pub fn description(self) -> &'static str {
        match self {
            Builtin::AgentPrWorkflow => {
                "Open a pull request: create a branch from `base`, commit `files` to it (if any), open a PR into `base`."
            }
            Builtin::DbSafeInsert => {
                "Insert one row; with `unique_key`, refuse if a row with the same value already exists."
            }
            Builtin::HubspotNewContact => {
                "Create a HubSpot contact by email (with properties) and, when `task_subject` is given, a follow-up task for it."
            }
            Builtin::PostSlackMessage => {
                "Post a message to a Slack channel (by conversation ID), or as a reply in a thread with `thread_ts`."
            }
        }
    }

    pub fn inputs(self) -> Vec<InputSpec> {
        let s = |name: &str, description: &str, default: Option<Value>| InputSpec {
            name: name.into(),
            ty: InputType::String,
            description: Some(description.into()),
            default,
            optional: false,
            enum_values: None,
            values: None,
        };
        match self {
            Builtin::AgentPrWorkflow => vec![
                s("repo", "Repository as owner/name", None),
                s("branch", "Branch to create for the change", None),
                s("title", "Pull request title", None),
                s("body", "Pull request body", Some(json!(""))),
                s(
                    "base",
                    "Branch to branch from and merge into",
                    Some(json!("main")),
                ),
                InputSpec {
                    ty: InputType::Object,
                    values: Some(InputType::String),
                    ..s("files", "Files to commit: path → content", Some(json!({})))
                },
                s(
                    "message",
                    "Commit message (default: the title)",
                    Some(json!("")),
                ),
            ],
            Builtin::DbSafeInsert => vec![
                s(
                    "table",
                    "Table to insert into (table or schema.table)",
                    None,
                ),
                InputSpec {
                    ty: InputType::Object,
                    ..s("data", "Column → value", None)
                },
                InputSpec {
                    optional: true,
                    ..s(
                        "unique_key",
                        "Refuse the insert if a row with this column's value exists",
                        None,
                    )
                },
            ],
            Builtin::HubspotNewContact => vec![
                s("email", "The contact's email address", None),
                InputSpec {
                    ty: InputType::Object,
                    ..s(
                        "properties",
                        "Contact properties: name → value",
                        Some(json!({})),
                    )
                },
                s(
                    "task_subject",
                    "Subject of a follow-up task (none when empty)",
                    Some(json!("")),
                ),
                s("task_body", "Body of the follow-up task", Some(json!(""))),
                s(
                    "task_due",
                    "Due time of the task: RFC 3339 or YYYY-MM-DD (default: now)",
                    Some(json!("")),
                ),
            ],
            Builtin::PostSlackMessage => vec![
                s("channel", "Conversation ID (C…, G…, D…), not a #name", None),
                s(
                    "text",
                    "Message text (plain text, at most 40,000 characters)",
                    None,
                ),
                s(
                    "thread_ts",
                    "Timestamp of the thread's parent message to reply in; empty: a new message",
                    Some(json!("")),
                ),
            ],
        }
    }

    /// The plan for one call, before per-action normalisation. `args` already has defaults.
    pub fn plan(self, system: &str, args: &Map<String, Value>) -> Result<Vec<RawStep>, String> {
        let get = |k: &str| args.get(k).cloned().unwrap_or(Value::Null);
        let step = |_kind: SystemKind, action: ActionName, args: Value, guard| RawStep {
            system: system.to_string(),
            action: action.as_str().to_string(),
            args: match args {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            guard,
        };
        match self {
            Builtin::AgentPrWorkflow => {
                let mut steps = vec![step(
                    SystemKind::Github,
                    ActionName::CreateBranch,
                    json!({"repo": get("repo"), "branch": get("branch"), "from_branch": get("base")}),
                    None,
                )];
                let has_files = args
                    .get("files")
                    .and_then(Value::as_object)
                    .is_some_and(|f| !f.is_empty());
                if has_files {
                    let message = match args.get("message").and_then(Value::as_str) {
                        Some(m) if !m.is_empty() => get("message"),
                        _ => get("title"),
                    };
                    steps.push(step(
                        SystemKind::Github,
                        ActionName::PushCommit,
                        json!({"repo": get("repo"), "branch": get("branch"), "message": message, "files": get("files")}),
                        None,
                    ));
                }
                steps.push(step(
                    SystemKind::Github,
                    ActionName::CreatePr,
                    json!({"repo": get("repo"), "title": get("title"), "body": get("body"), "head": get("branch"), "base": get("base")}),
                    None,
                ));
                Ok(steps)
            }
            Builtin::DbSafeInsert => {
                let data = args
                    .get("data")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let mut steps = Vec::new();
                let mut guard = None;
                if let Some(key) = args.get("unique_key").and_then(Value::as_str) {
                    let Some(value) = data.get(key) else {
                        return Err(format!("unique_key `{key}` is not a column in `data`"));
                    };
                    let mut filter = Map::new();
                    filter.insert(key.to_string(), value.clone());
                    steps.push(step(
                        SystemKind::Postgres,
                        ActionName::SelectRows,
                        json!({"table": get("table"), "where": filter, "limit": 1}),
                        None,
                    ));
                    let shown = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    guard = Some(Guard::NoRowsFrom {
                        step: 0,
                        message: format!("Row with {key}={shown} already exists"),
                    });
                }
                steps.push(step(
                    SystemKind::Postgres,
                    ActionName::InsertRow,
                    json!({"table": get("table"), "data": data}),
                    guard,
                ));
                Ok(steps)
            }
            Builtin::HubspotNewContact => {
                let mut steps = vec![step(
                    SystemKind::Hubspot,
                    ActionName::CreateContact,
                    json!({"email": get("email"), "properties": get("properties")}),
                    None,
                )];
                let text = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
                if !text("task_subject").is_empty() {
                    let mut task = json!({"contact_email": get("email"), "subject": get("task_subject"), "body": get("task_body")});
                    if !text("task_due").is_empty()
                        && let Some(m) = task.as_object_mut()
                    {
                        m.insert("due".into(), get("task_due"));
                    }
                    steps.push(step(
                        SystemKind::Hubspot,
                        ActionName::CreateTask,
                        task,
                        None,
                    ));
                }
                Ok(steps)
            }
            Builtin::PostSlackMessage => {
                // An empty `thread_ts` means "no thread": the argument is left out.
                let thread = match args.get("thread_ts") {
                    Some(Value::String(t)) if t.is_empty() => Value::Null,
                    other => other.cloned().unwrap_or(Value::Null),
                };
                let mut a = json!({"channel": get("channel"), "text": get("text")});
                if !thread.is_null() {
                    a["thread_ts"] = thread;
                }
                Ok(vec![step(
                    SystemKind::Slack,
                    ActionName::PostMessage,
                    a,
                    None,
                )])
            }
        }
    }
}

/// How a workflow's plan is made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowBody {
    Declared { steps: Vec<StepTemplate> },
    Builtin { builtin: Builtin, system: String },
}

/// A validated workflow: one MCP tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workflow {
    pub name: String,
    pub description: String,
    pub inputs: Vec<InputSpec>,
    #[serde(flatten)]
    pub body: WorkflowBody,
}
