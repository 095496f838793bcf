//! The [`StepLog`] of a run: each step's record goes to the journal before its action.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::timestamp;
use crate::connector::StepLog;
use crate::kernel::plan::Step;
use crate::store::Store;

/// The [`StepLog`] the engine hands a connector: writes the step's record to the journal.
pub(super) struct JournalLog<'a> {
    store: &'a Store,
    run_id: &'a str,
    index: usize,
    step: &'a Step,
    now: DateTime<Utc>,
    pub(super) target: Value,
    /// Why the record could not be written (the run then stops).
    pub(super) failure: Option<String>,
}

impl<'a> JournalLog<'a> {
    pub(super) fn new(
        store: &'a Store,
        run_id: &'a str,
        index: usize,
        step: &'a Step,
        now: DateTime<Utc>,
    ) -> Self {
        JournalLog {
            store,
            run_id,
            index,
            step,
            now,
            target: Value::Null,
            failure: None,
        }
    }
}

impl StepLog for JournalLog<'_> {
    fn before(&mut self, pre: Value) -> Result<(), String> {
        let mut fields = Map::new();
        fields.insert("run_id".into(), json!(self.run_id));
        fields.insert("index".into(), json!(self.index));
        fields.insert("system".into(), json!(self.step.system));
        fields.insert("action".into(), json!(self.step.name().as_str()));
        fields.insert("args".into(), Value::Object(self.step.args()));
        fields.insert("target".into(), self.target.clone());
        fields.insert("pre".into(), pre);
        fields.insert("timestamp".into(), json!(timestamp(self.now)));
        self.store.append_step(fields).map_err(|e| {
            let message = format!("the receipts journal cannot be written: {e}");
            self.failure = Some(e.to_string());
            message
        })?;
        crate::faults::crash_point("step");
        Ok(())
    }
}
