//! STUB: the Postgres connector.
use serde_json::{Map, Value, json};

use super::ActionOutcome;
use crate::kernel::receipt::ActionRecord;
use crate::secret::Secret;

pub struct PgConnector {
    max_rows: u64,
}

impl PgConnector {
    pub fn new(_dsn: &Secret, max_rows: u64) -> Result<Self, String> {
        Ok(PgConnector { max_rows })
    }
    pub fn target(&self) -> Value {
        json!({"type": "postgres", "max_rows": self.max_rows})
    }
    pub async fn execute(&self, action: &str, _args: &Map<String, Value>) -> ActionOutcome {
        ActionOutcome::failed(format!("`{action}` is not implemented"))
    }
    pub async fn undo(&self, record: &ActionRecord) -> ActionOutcome {
        ActionOutcome::failed(format!("undo of `{}` is not implemented", record.action))
    }
}
