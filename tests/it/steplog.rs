//! A test [`StepLog`]: records every `pre` it is given, runs a check of the world at that
//! moment (which must not have changed yet), and succeeds or fails as told.

use enact::connector::StepLog;
use serde_json::Value;

type Check = Box<dyn FnMut(&Value) + Send>;

pub struct Probe {
    pub calls: Vec<Value>,
    check: Check,
    fail: Option<String>,
}

impl Probe {
    /// Accepts every record, checking nothing.
    pub fn ok() -> Probe {
        Probe::checking(|_| {})
    }

    /// Accepts every record after running `check` (which asserts the world is unchanged).
    pub fn checking(check: impl FnMut(&Value) + Send + 'static) -> Probe {
        Probe {
            calls: Vec::new(),
            check: Box::new(check),
            fail: None,
        }
    }

    /// Refuses every record with `message`, as a journal that cannot be written would.
    pub fn failing(message: &str) -> Probe {
        Probe {
            calls: Vec::new(),
            check: Box::new(|_| {}),
            fail: Some(message.to_string()),
        }
    }

    /// The one record written; fails the test unless there was exactly one.
    pub fn pre(&self) -> &Value {
        assert_eq!(
            self.calls.len(),
            1,
            "expected exactly one step record, got {:?}",
            self.calls
        );
        &self.calls[0]
    }
}

impl StepLog for Probe {
    fn before(&mut self, pre: Value) -> Result<(), String> {
        (self.check)(&pre);
        self.calls.push(pre);
        match &self.fail {
            Some(m) => Err(m.clone()),
            None => Ok(()),
        }
    }
}

/// Runs async work from inside a synchronous check (multi-thread runtime only).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
