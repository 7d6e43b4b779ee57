//! Connectors created through the control plane (sealed in the vault): create, change,
//! enable or disable, delete (the kill switch), and purge what one gone from the policy
//! file kept. Policy-file connectors are read-only here.

use std::collections::BTreeMap;
use std::sync::Arc;

use egret_policy::{Connector, Source};
use egret_webhooks::{Event, EventSink};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::lifecycle::PurgeError;
use crate::principal::{Operation, Principal, authorize};
use crate::{Service, ServiceError};

/// A connector as the policy file writes one (its `oauth.client_secret` the value,
/// sealed in the vault): what the API takes as it is, and what a [`NewConnector`]
/// becomes.
#[derive(Debug, Clone)]
pub struct ConnectorEntry(Value);

impl ConnectorEntry {
    /// An entry in the policy file's form, as JSON (checked when it is created).
    pub fn from_json(entry: Value) -> Self {
        Self(entry)
    }
}

/// A new connector from a form: a static key or a template's OAuth app.
#[derive(Debug)]
pub struct NewConnector {
    pub id: String,
    pub auth: NewAuth,
    /// Where the credential may be sent (a template brings its own when empty).
    pub egress: Vec<String>,
    /// A read-only path to test connections with.
    pub test_path: Option<String>,
}

#[derive(Debug)]
pub enum NewAuth {
    /// A static key, sent in `header` (`Authorization: Bearer` when `None`).
    ApiKey { header: Option<String> },
    /// A template's OAuth app.
    Template {
        template: String,
        settings: BTreeMap<String, String>,
        client_id: String,
        client_secret: Option<SecretString>,
        scopes: Vec<String>,
    },
}

impl TryFrom<NewConnector> for ConnectorEntry {
    type Error = ServiceError;

    fn try_from(c: NewConnector) -> Result<Self, ServiceError> {
        let mut e = match c.auth {
            NewAuth::ApiKey { header } => {
                if c.egress.is_empty() {
                    return Err(ServiceError::invalid(
                        "egress",
                        "give at least one egress domain: where the key may be sent",
                    ));
                }
                let mut e = json!({ "id": c.id, "auth": "api_key", "egress": c.egress });
                if let Some(h) = header {
                    e["inject"] = json!({ "headers": [h] });
                }
                e
            }
            NewAuth::Template {
                template,
                settings,
                client_id,
                client_secret,
                scopes,
            } => {
                let mut oauth = json!({ "client_id": client_id });
                if let Some(secret) = client_secret {
                    oauth["client_secret"] = json!(secret.expose_secret());
                }
                if !scopes.is_empty() {
                    oauth["scopes"] = json!(scopes);
                }
                let mut e = json!({ "id": c.id, "template": template, "settings": settings, "oauth": oauth });
                if !c.egress.is_empty() {
                    e["egress"] = json!(c.egress);
                }
                e
            }
        };
        if let Some(path) = c.test_path {
            e["test"] = json!({ "path": path });
        }
        Ok(Self(e))
    }
}

/// A connector gone from the policy file whose connections are kept.
#[derive(Debug, Clone)]
pub struct RemovedConnector {
    pub id: String,
    pub removed_at: i64,
    /// When its connections are erased, unless it comes back.
    pub purge_at: i64,
    pub connections: usize,
}

impl Service {
    /// The connector `id` as the policy in force has it.
    pub fn connector(&self, id: &str) -> Result<Connector, ServiceError> {
        let policy = self.policy.load();
        policy
            .connector(id)
            .cloned()
            .ok_or_else(|| ServiceError::unknown_connector(id, &policy))
    }

    /// Connectors gone from the file whose connections are kept.
    pub fn removed_connectors(&self) -> Vec<RemovedConnector> {
        let policy = self.policy.load();
        self.vault
            .removed_connectors()
            .into_iter()
            .map(|(id, since)| RemovedConnector {
                purge_at: policy.removed_purge_at(since),
                connections: self.vault.connections(Some(&id), None).len(),
                id,
                removed_at: since,
            })
            .collect()
    }

    /// Creates a connector; returns it as it is in force.
    pub async fn create_connector(
        self: &Arc<Self>,
        who: &Principal,
        entry: ConnectorEntry,
    ) -> Result<Connector, ServiceError> {
        let by = who.label();
        authorize(who, Operation::ChangeConnectors, None)?;
        let entry = entry.0;
        let connector =
            egret_policy::parse_api_connector(&entry).map_err(|e| ServiceError::Invalid {
                field: None,
                message: e,
            })?;
        let id = connector.id.to_string();
        if self.policy.load().connector(&id).is_some() {
            return Err(ServiceError::conflict(
                "already_exists",
                format!(
                    "connector `{id}` already exists; change it with PATCH /v1/connectors/{id}"
                ),
            ));
        }
        // Its kept connections would start sending their credentials to the new one's hosts.
        if let Some(since) = self.vault.connector_removed_at(&id) {
            return Err(ServiceError::conflict(
                "connector_removed",
                format!(
                    "connector `{id}` left the policy file at {} and its connections are kept for its return; put it back in the file, or erase them first with `egret connector purge {id}`",
                    crate::lifecycle::format_unix(since)
                ),
            ));
        }
        self.blocking(move |s| {
            s.vault.put_api_connector(&id, &entry)?;
            s.lifecycle.refresh()?;
            s.vault
                .audit_by(&by, "connector.create", Some(&id), None, None)?;
            s.connector(&id)
        })
        .await
    }

    /// Applies a JSON merge patch (RFC 7396) to a connector created through the control
    /// plane, puts it in force and audits it; returns it as it is in force.
    pub async fn patch_connector(
        self: &Arc<Self>,
        who: &Principal,
        id: &str,
        patch: Value,
    ) -> Result<Connector, ServiceError> {
        authorize(who, Operation::ChangeConnectors, None)?;
        self.api_only(id)?;
        if patch.get("id").is_some_and(|v| v.as_str() != Some(id)) {
            return Err(ServiceError::invalid(
                "id",
                "a connector's id cannot change; create a new one",
            ));
        }
        let id = id.to_owned();
        self.blocking(move |s| s.patch_now(&id, &patch)).await
    }

    /// Enables or disables a connector created through the control plane: disabled, it
    /// takes no new connections; those it has keep working.
    pub async fn set_connector_enabled(
        self: &Arc<Self>,
        who: &Principal,
        id: &str,
        enabled: bool,
    ) -> Result<Connector, ServiceError> {
        self.patch_connector(who, id, json!({ "enabled": enabled }))
            .await
    }

    fn patch_now(&self, id: &str, patch: &Value) -> Result<Connector, ServiceError> {
        self.api_only(id)?;
        let (_, mut entry) = self
            .vault
            .api_connectors()?
            .into_iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| ServiceError::unknown_connector(id, &self.policy.load()))?;
        merge_patch(&mut entry, patch);
        egret_policy::parse_api_connector(&entry).map_err(|e| ServiceError::Invalid {
            field: None,
            message: e,
        })?;
        self.vault.put_api_connector(id, &entry)?;
        self.lifecycle.refresh()?;
        let fields: Vec<&str> = patch
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        self.vault.audit(
            "connector.update",
            Some(id),
            None,
            Some(format!("changed: {}", fields.join(", "))),
        )?;
        self.connector(id)
    }

    /// The kill switch for a connector created through the control plane: it, its
    /// connections, tokens and placeholders go in one vault transaction. Returns how
    /// many connections were erased.
    pub async fn delete_connector(
        self: &Arc<Self>,
        who: &Principal,
        id: &str,
    ) -> Result<usize, ServiceError> {
        let by = who.label();
        authorize(who, Operation::ChangeConnectors, None)?;
        self.api_only(id)?;
        let connector = id.to_owned();
        let erased = self
            .blocking(move |s| {
                let erased = s.vault.erase_connector(&connector)?;
                s.lifecycle.refresh()?;
                s.vault.audit_by(
                    &by,
                    "connector.delete",
                    Some(&connector),
                    None,
                    Some(format!(
                        "{} erased, with the placeholders",
                        crate::lifecycle::connections_word(erased)
                    )),
                )?;
                Ok(erased)
            })
            .await?;
        self.webhooks.emit(Event::connector_deleted(
            id,
            "deleted through the control plane",
            u64::try_from(erased).unwrap_or(u64::MAX),
        ));
        Ok(erased)
    }

    /// Erases at once what a connector gone from the policy file kept (its retention not
    /// yet ended); refused while it is in force, not found when nothing is stored.
    pub async fn purge_connector(
        self: &Arc<Self>,
        who: &Principal,
        id: &str,
    ) -> Result<usize, ServiceError> {
        authorize(who, Operation::ChangeConnectors, None)?;
        let connector = id.to_owned();
        let erased = self
            .blocking(move |s| {
                s.lifecycle.purge(&connector).map_err(|e| match e {
                    PurgeError::InForce(_) => {
                        ServiceError::conflict("connector_in_force", e.to_string())
                    }
                    PurgeError::NothingStored(_) => {
                        ServiceError::not_found("nothing_to_purge", e.to_string())
                    }
                    PurgeError::Vault(v) => v.into(),
                })
            })
            .await?;
        self.webhooks.emit(Event::connector_deleted(
            id,
            "removed from the policy file, and purged",
            u64::try_from(erased).unwrap_or(u64::MAX),
        ));
        Ok(erased)
    }

    /// Not found for unknown ids, a conflict for connectors the policy file manages.
    fn api_only(&self, id: &str) -> Result<(), ServiceError> {
        let policy = self.policy.load();
        match policy.connector(id).map(|c| c.source) {
            None => Err(ServiceError::unknown_connector(id, &policy)),
            Some(Source::Policy) => Err(ServiceError::conflict(
                "managed_by_policy",
                format!(
                    "connector `{id}` is defined in the policy file {}; change it there (egret reloads the file)",
                    policy.source.display()
                ),
            )),
            Some(Source::Api) => Ok(()),
        }
    }
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}
