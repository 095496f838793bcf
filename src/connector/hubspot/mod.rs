//! The HubSpot connector (SPEC-hubspot-slack §7.4): `find_contact`, `create_contact`,
//! `update_contact` and `create_task` over HubSpot's CRM v3 objects and v4 associations API
//! with a private app token, each idempotent, each recording its pre-state before the request
//! that changes anything, each undone by its recorded id behind the guards of §6.
//!
//! Before the first action, undo or policy lookup, the connector checks that the token belongs
//! to the configured `portal_id` (`GET /account-info/v3/details`); a success is kept for the
//! life of the process, a mismatch fails every call with nothing sent. The token travels only
//! in the `Authorization` header ([`crate::connector::http`]).

mod actions;
mod api;
mod recover;
mod undo;

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};

use super::http::JsonClient;
use super::{ActionOutcome, Recovered, StepLog, UndoMode, recover_without_asking};
use crate::kernel::action::{self, SystemKind};
use crate::kernel::hubspot::Email;
use crate::kernel::receipt::ActionRecord;
use crate::kernel::typed::HubspotAction;
use crate::secret::Secret;
use api::Api;

/// A HubSpot system: one API root, one token, one account, the properties agents may write.
pub struct HubspotConnector {
    api: Api,
    portal_id: u64,
    token_env: String,
    properties: Vec<String>,
    task_owner_id: Option<u64>,
    /// Set once the token was found to belong to `portal_id` (kept for the process).
    identity_checked: AtomicBool,
}

/// A HubSpot system's settings.
pub struct HubspotSettings<'a> {
    pub base_url: &'a str,
    pub token_env: &'a str,
    pub token: &'a Secret,
    pub portal_id: u64,
    pub properties: &'a [String],
    pub task_owner_id: Option<u64>,
}

impl HubspotConnector {
    /// Builds the connector. Contacts nothing.
    pub fn new(settings: &HubspotSettings<'_>) -> Result<HubspotConnector, String> {
        Ok(HubspotConnector {
            api: Api {
                client: JsonClient::new(settings.base_url, settings.token)?,
            },
            portal_id: settings.portal_id,
            token_env: settings.token_env.to_string(),
            properties: settings.properties.to_vec(),
            task_owner_id: settings.task_owner_id,
            identity_checked: AtomicBool::new(false),
        })
    }

    /// `{"type": "hubspot", "base_url": …, "portal_id": …}` (SPEC-hubspot-slack §5.1).
    pub fn target(&self) -> Value {
        json!({"type": "hubspot", "base_url": self.api.client.base_url(), "portal_id": self.portal_id})
    }

    /// Checks once per process that the token belongs to the configured account.
    async fn identity(&self) -> Result<(), String> {
        if self.identity_checked.load(Ordering::SeqCst) {
            return Ok(());
        }
        match self.api.portal_id().await {
            Ok(id) if id == self.portal_id => {
                self.identity_checked.store(true, Ordering::SeqCst);
                Ok(())
            }
            Ok(other) => Err(format!(
                "the token in {} belongs to HubSpot account {other}, not portal_id {} — nothing sent",
                self.token_env, self.portal_id
            )),
            Err(f) => Err(format!(
                "cannot check which HubSpot account the token in {} belongs to: {} — nothing sent",
                self.token_env, f.text
            )),
        }
    }

    /// `no_duplicate_contacts`: the id of the contact holding `email`, if any (a read only).
    pub async fn contact_id(&self, email: &Email) -> Result<Option<String>, String> {
        self.identity().await?;
        self.api
            .contact_by_email(email.as_str(), &[])
            .await
            .map(|c| c.map(|c| c.id))
            .map_err(|f| f.text)
    }

    /// Runs one typed action; its step record goes through `log` just before the request that
    /// changes anything.
    pub async fn run(&self, call: &HubspotAction, log: &mut dyn StepLog) -> ActionOutcome {
        if let Err(e) = self.identity().await {
            return ActionOutcome::failed(format!("{} for {}: {e}", call.name(), call.email()));
        }
        actions::run(self, call, log).await
    }

    /// Reverses one recorded action behind the guards of SPEC §6.
    pub async fn undo(&self, record: &ActionRecord, mode: UndoMode) -> ActionOutcome {
        if let Some(a) = action::spec(SystemKind::Hubspot, &record.action)
            && a.read_only
        {
            return ActionOutcome::ok(json!({"skipped": "read-only action"}), json!({}));
        }
        if let Err(e) = self.identity().await {
            return ActionOutcome::failed(format!("undo {}: {e}", record.action));
        }
        undo::undo(self, record, mode).await
    }

    /// Finds out whether an interrupted action happened (SPEC §5.5).
    pub async fn recover(
        &self,
        action_name: &str,
        args: &Map<String, Value>,
        pre: &Value,
    ) -> (Recovered, ActionOutcome) {
        let read_only = action::spec(SystemKind::Hubspot, action_name).is_some_and(|a| a.read_only);
        if let Some(known) = recover_without_asking(read_only, pre) {
            return known;
        }
        if let Err(e) = self.identity().await {
            return (
                Recovered::Unknown,
                ActionOutcome::ok(json!({"note": e}), pre.clone()),
            );
        }
        recover::recover(self, action_name, args, pre).await
    }
}
