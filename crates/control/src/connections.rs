//! Users' connections: store a static key, list, disconnect.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use egret_policy::AuthKind;
use egret_vault::Owner;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub(crate) struct Filter {
    connector: Option<String>,
    owner: Option<String>,
}

pub(crate) async fn list(
    State(state): State<Arc<ControlState>>,
    Query(f): Query<Filter>,
) -> Result<Json<Value>, ApiError> {
    let owner = f.owner.as_deref().map(parse_owner).transpose()?;
    let list = state
        .vault
        .connections(f.connector.as_deref(), owner.as_ref());
    let retention = i64::try_from(state.policy.load().connectors_removed_retention.as_secs())
        .unwrap_or(i64::MAX);
    let list: Vec<Value> = list
        .into_iter()
        .map(|c| {
            let removed = state.vault.connector_removed_at(&c.connector);
            let mut v = json!(c);
            // Kept for the connector's return, refused meanwhile: say so, and until when.
            if let Some(since) = removed {
                v["status"] = json!("connector_removed");
                v["connector_removed_at"] = json!(since);
                v["purge_at"] = json!(since.saturating_add(retention));
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
    body: Result<Json<KeyBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let owner = parse_owner(&owner)?;
    {
        let policy = state.policy.load();
        let c = policy
            .connector(&connector)
            .ok_or_else(|| ApiError::unknown_connector(&connector))?;
        if !c.enabled {
            return Err(disabled(&connector));
        }
        if let AuthKind::OAuth2(_) = c.auth {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "wrong_auth_kind",
                format!(
                    "connector `{connector}` uses OAuth 2.0, not a static key; connect it with `egret connection connect`"
                ),
            ));
        }
    }
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"key\": \"...\"}}: {}",
            e.body_text()
        ))
    })?;
    let info = state
        .blocking(move |s| {
            let info = s.vault.put_api_key(&connector, &owner, &body.key)?;
            s.vault.audit(
                "connection.set_key",
                Some(&connector),
                Some(owner.as_str()),
                None,
            )?;
            Ok(info)
        })
        .await?;
    Ok(Json(json!(info)))
}

/// Disconnects: revokes an OAuth grant at the vendor when it can, and erases the
/// connection and its placeholders in any case.
pub(crate) async fn remove(
    State(state): State<Arc<ControlState>>,
    Path((connector, owner)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let owner = parse_owner(&owner)?;
    let policy = state.policy.load_full();
    let (removed, revocation) = state
        .broker
        .disconnect(policy.connector(&connector), &connector, &owner)
        .await?;
    if !removed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "connection_not_found",
            format!("there is no connection for connector `{connector}` and owner `{owner}`"),
        ));
    }
    let revoked = match &revocation {
        None => "not_supported".to_owned(),
        Some(Ok(())) => "revoked".to_owned(),
        Some(Err(e)) => format!("failed: {e}"),
    };
    let detail = revocation
        .is_some()
        .then(|| format!("vendor revocation: {revoked}"));
    let (c, o) = (connector.clone(), owner.clone());
    state
        .blocking(move |s| {
            s.vault
                .audit("connection.remove", Some(&c), Some(o.as_str()), detail)?;
            Ok(())
        })
        .await?;
    Ok(Json(
        json!({ "removed": true, "vendor_revocation": revoked }),
    ))
}

pub(crate) fn disabled(connector: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "connector_disabled",
        format!(
            "connector `{connector}` is disabled and takes no new connections; ask the operator to enable it"
        ),
    )
}

pub(crate) fn parse_owner(text: &str) -> Result<Owner, ApiError> {
    Owner::parse(text).map_err(ApiError::bad_request)
}
