//! Users' connections: store a static key, list, label, test, disconnect. Every route
//! names one by connector and owner in its path and by `?name=` (default `default`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use egret_policy::AuthKind;
use egret_vault::{ConnectionId, ConnectionInfo, ConnectionName, ConnectionStatus, Owner};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub(crate) struct Filter {
    connector: Option<String>,
    owner: Option<String>,
    name: Option<String>,
}

/// `?name=`: which of an owner's connections to a connector a route is about.
#[derive(Deserialize)]
pub(crate) struct Which {
    pub(crate) name: Option<String>,
}

/// The connection a route names: its path's connector and owner, and `?name=`.
pub(crate) fn connection_id(
    connector: &str,
    owner: &str,
    which: &Which,
) -> Result<ConnectionId, ApiError> {
    let owner = parse_owner(owner)?;
    let name = match &which.name {
        Some(n) => ConnectionName::parse(n).map_err(ApiError::bad_request)?,
        None => ConnectionName::default(),
    };
    Ok(ConnectionId::new(connector, &owner, &name))
}

pub(crate) async fn list(
    State(state): State<Arc<ControlState>>,
    Query(f): Query<Filter>,
) -> Result<Json<Value>, ApiError> {
    let owner = f.owner.as_deref().map(parse_owner).transpose()?;
    let mut list = state
        .vault
        .connections(f.connector.as_deref(), owner.as_ref());
    if let Some(name) = &f.name {
        list.retain(|c| c.name.as_str() == name);
    }
    let policy = state.policy.load();
    let list: Vec<Value> = list
        .into_iter()
        .map(|c| {
            let removed = state.vault.connector_removed_at(&c.connector);
            let health = state.broker.health(&c.id());
            let missing = missing_scopes(policy.connector(&c.connector), &c);
            let mut v = json!(c);
            v["last_refresh_at"] = json!(c.refreshed_at);
            v["missing_scopes"] = json!(missing);
            for (k, value) in json!(health).as_object().into_iter().flatten() {
                if k != "refresh_failing" {
                    v[k.as_str()] = value.clone();
                }
            }
            v["status"] = json!(health.status(&c, removed.is_some()));
            // Kept for the connector's return, refused meanwhile: until when.
            if let Some(since) = removed {
                v["connector_removed_at"] = json!(since);
                v["purge_at"] = json!(policy.removed_purge_at(since));
            }
            v
        })
        .collect();
    Ok(Json(json!({ "connections": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyBody {
    key: SecretString,
}

pub(crate) async fn put_key(
    State(state): State<Arc<ControlState>>,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
    body: Result<Json<KeyBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    crate::actions::may_store_key(&state, &conn)?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"key\": \"...\"}}: {}",
            e.body_text()
        ))
    })?;
    let info = crate::actions::store_key(&state, &conn, body.key).await?;
    Ok(Json(json!(info)))
}

/// Disconnects: revokes an OAuth grant at the vendor when it can, and erases the
/// connection and its placeholders in any case.
pub(crate) async fn remove(
    State(state): State<Arc<ControlState>>,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    let revoked = crate::actions::disconnect(&state, &conn).await?;
    Ok(Json(
        json!({ "removed": true, "vendor_revocation": revoked }),
    ))
}

/// OpenID Connect's own scopes: vendors leave them out of the scopes an access token
/// carries (they ask for an ID token or a refresh token, not for an API's data).
const PROTOCOL_SCOPES: &[&str] = &[
    "openid",
    "offline_access",
    "profile",
    "email",
    "address",
    "phone",
];

/// The connector's declared scopes the vendor did not grant (scope drift: a reconnect
/// is needed to get them), OpenID Connect's own scopes aside. Empty for static keys.
pub fn missing_scopes(
    connector: Option<&egret_policy::Connector>,
    c: &ConnectionInfo,
) -> Vec<String> {
    let Some(AuthKind::OAuth2(o)) = connector.map(|c| &c.auth) else {
        return Vec::new();
    };
    if c.kind != egret_vault::ConnectionKind::Oauth2 || c.status != ConnectionStatus::Connected {
        return Vec::new();
    }
    o.scopes
        .iter()
        .filter(|s| !PROTOCOL_SCOPES.contains(&s.as_str()) && !c.scopes.contains(s))
        .cloned()
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelsBody {
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    identity_label: Option<Option<String>>,
}

/// A field that is present: `null` clears it, a string sets it.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /v1/connections/{connector}/{owner}`: exactly `description` and
/// `identity_label` (a string sets, `null` clears); any other field is a 400 naming it.
pub(crate) async fn update(
    State(state): State<Arc<ControlState>>,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"description\"?, \"identity_label\"?}}: {}",
            e.body_text()
        ))
    })?;
    if let Some(other) = body.as_object().and_then(|o| {
        o.keys()
            .find(|k| *k != "description" && *k != "identity_label")
    }) {
        return Err(ApiError::bad_request(format!(
            "`{other}` cannot be changed here; only `description` and `identity_label` can"
        )));
    }
    let labels: LabelsBody = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "`description` and `identity_label` are strings (or null to clear): {e}"
        ))
    })?;
    let labels = egret_vault::Labels {
        description: labels.description,
        identity_label: labels.identity_label,
    };
    let info = crate::actions::update_labels(&state, &conn, labels).await?;
    Ok(Json(json!(info)))
}

/// `POST /v1/connections/{connector}/{owner}/test`: one real, read-only request with
/// the connection's credential (renewed first when due); the outcome is audited and
/// kept for the listing.
pub(crate) async fn test(
    State(state): State<Arc<ControlState>>,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    let outcome = crate::actions::test(&state, &conn).await?;
    Ok(Json(json!(outcome)))
}

pub(crate) fn parse_owner(text: &str) -> Result<Owner, ApiError> {
    Owner::parse(text).map_err(ApiError::bad_request)
}
