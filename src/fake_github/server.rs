//! The fake GitHub's [`Handler`] on the shared loopback server ([`crate::fake_http`]).

use std::sync::{Arc, Mutex, PoisonError};

use crate::fake_http::{self, Handler};

use super::api;
use super::state::State;

pub(crate) struct Github {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) base_url: String,
}

impl Handler for Github {
    fn handle(&self, req: &fake_http::Request) -> fake_http::Reply {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let request = api::Request {
            method: &req.method,
            target: &req.target,
            authorization: req.header("authorization"),
            body: &req.body,
        };
        let reply = api::handle(&mut state, &self.base_url, &request);
        fake_http::Reply {
            status: reply.status,
            body: reply.body,
            headers: reply.headers,
        }
    }

    fn malformed(&self, message: &str) -> fake_http::Reply {
        fake_http::Reply::json(400, super::state::error_body(message))
    }
}
