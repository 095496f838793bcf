//! The registry: systems (with their connectors), policies and workflows, built once from a
//! validated config and never changed while serving.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{Config, SystemConfig, SystemSettings};
use crate::connector::filesystem::FsConnector;
use crate::connector::github::GithubConnector;
use crate::connector::hubspot::{HubspotConnector, HubspotSettings};
use crate::connector::postgres::PgConnector;
use crate::connector::{Connector, System};
use crate::kernel::jcs::canonicalize;
use crate::kernel::plan::SystemScope;
use crate::kernel::workflow::Workflow;

pub struct Registry {
    pub config: Config,
    pub systems: BTreeMap<String, System>,
    /// Hex SHA-256 of the active policy set (JCS), recorded in every receipt.
    pub policy_set_hash: String,
}

impl Registry {
    /// Builds every connector. Contacts no system.
    pub fn build(config: Config) -> Result<Registry, String> {
        let mut systems = BTreeMap::new();
        for sc in &config.systems {
            let connector =
                build_connector(sc, &config).map_err(|e| format!("system `{}`: {e}", sc.name))?;
            systems.insert(
                sc.name.clone(),
                System {
                    name: sc.name.clone(),
                    kind: sc.kind,
                    allowed_actions: sc.allowed_actions.clone(),
                    connector,
                },
            );
        }
        Ok(Registry {
            systems,
            ..Registry::without_connectors(config)
        })
    }

    /// A registry without connectors, for operator commands that never act on a system
    /// (`enact approvals`): their config may leave the agent's credentials unset
    /// ([`crate::config::Credentials::Optional`]), since no connector is ever built from it.
    pub fn without_connectors(config: Config) -> Registry {
        let policy_set_hash = hex::encode(Sha256::digest(canonicalize(&policies_json(&config))));
        Registry {
            config,
            systems: BTreeMap::new(),
            policy_set_hash,
        }
    }

    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.config.workflows.iter().find(|w| w.name == name)
    }

    /// What the plan builder needs to know about a system.
    pub fn scope(&self, system: &str) -> Option<SystemScope> {
        let sc = self.config.systems.iter().find(|s| s.name == system)?;
        let mut scope = SystemScope {
            name: sc.name.clone(),
            kind: sc.kind,
            repos: Vec::new(),
            root: None,
            properties: Vec::new(),
            channels: Vec::new(),
        };
        match &sc.settings {
            SystemSettings::Github { repos, .. } => scope.repos = repos.clone(),
            SystemSettings::Filesystem { root } => scope.root = Some(root.display().to_string()),
            SystemSettings::Postgres { .. } => {}
            SystemSettings::Hubspot { properties, .. } => scope.properties = properties.clone(),
            SystemSettings::Slack { channels, .. } => scope.channels = channels.clone(),
        }
        Some(scope)
    }
}

/// The active policies as shown by `enact://policies`: name, parameters, scope.
pub fn policies_json(config: &Config) -> Value {
    Value::Array(
        config
            .policies
            .iter()
            .map(|p| json!({"policy": p.name(), "params": p.kind.params_json(), "workflows": p.scope}))
            .collect(),
    )
}

/// Builds the connector for a validated system config. Contacts nothing.
fn build_connector(system: &SystemConfig, config: &Config) -> Result<Connector, String> {
    Ok(match &system.settings {
        SystemSettings::Filesystem { root } => {
            Connector::Filesystem(FsConnector::new(root, config)?)
        }
        SystemSettings::Github {
            token,
            base_url,
            repos,
            ..
        } => Connector::Github(GithubConnector::new(base_url, token, repos)?),
        SystemSettings::Postgres {
            dsn,
            max_rows,
            statement_timeout,
            ..
        } => Connector::Postgres(PgConnector::new(dsn, *max_rows, *statement_timeout)?),
        SystemSettings::Hubspot {
            token_env,
            token,
            base_url,
            portal_id,
            properties,
            task_owner_id,
        } => Connector::Hubspot(HubspotConnector::new(&HubspotSettings {
            base_url,
            token_env,
            token,
            portal_id: *portal_id,
            properties,
            task_owner_id: *task_owner_id,
        })?),
        SystemSettings::Slack {
            token_env,
            token,
            base_url,
            team_id,
            channels,
        } => Connector::Slack(crate::connector::slack::SlackConnector::new(
            base_url, token_env, token, team_id, channels,
        )?),
    })
}
