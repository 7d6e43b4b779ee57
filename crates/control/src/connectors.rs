//! Connectors: list and show (file and API ones alike; secrets shown only as the
//! reference to where they live, or masked), and create / change / delete the ones that
//! live in the vault. Policy-file connectors are read-only here.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use egret_policy::{AuthKind, ClientAuth, Connector, Grant};
use egret_service::ConnectorEntry;
use serde_json::{Value, json};

use crate::ControlState;
use crate::auth::Who;
use crate::error::ApiError;

pub(crate) async fn create(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(entry) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a connector entry as JSON: {}",
            e.body_text()
        ))
    })?;
    let created = state
        .service
        .create_connector(&who, ConnectorEntry::from_json(entry))
        .await?;
    Ok((StatusCode::CREATED, Json(connector_view(&created))))
}

/// JSON merge patch (RFC 7396) onto the stored entry: `{"enabled": false}` disables.
pub(crate) async fn update(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(patch) = body.map_err(|e| {
        ApiError::bad_request(format!("expected a JSON merge patch: {}", e.body_text()))
    })?;
    let changed = state.service.patch_connector(&who, &id, patch).await?;
    Ok(Json(connector_view(&changed)))
}

/// The kill switch: the connector, its connections, tokens and placeholders go in one
/// vault transaction; the next request using any of them is refused.
pub(crate) async fn remove(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let erased = state.service.delete_connector(&who, &id).await?;
    Ok(Json(
        json!({ "deleted": true, "connections_erased": erased }),
    ))
}

/// Erases at once what a connector gone from the policy file kept (its retention not
/// yet ended); 409 while it is in force, 404 when nothing is stored.
pub(crate) async fn purge(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let erased = state.service.purge_connector(&who, &id).await?;
    Ok(Json(
        json!({ "purged": true, "connections_erased": erased }),
    ))
}

/// The connectors in force, and those gone from the file whose connections are kept.
pub(crate) async fn list(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
) -> Result<Json<Value>, ApiError> {
    egret_service::authorize(&who, egret_service::Operation::ReadConnectors, None)?;
    let policy = state.service.policy.load();
    let removed: Vec<Value> = state
        .service
        .removed_connectors()
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "removed_at": r.removed_at,
                "purge_at": r.purge_at,
                "connections": r.connections,
            })
        })
        .collect();
    Ok(Json(json!({
        "connectors": policy.connectors.iter().map(connector_view).collect::<Vec<_>>(),
        "removed": removed,
    })))
}

pub(crate) async fn get(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    egret_service::authorize(&who, egret_service::Operation::ReadConnectors, None)?;
    Ok(Json(connector_view(&state.service.connector(&id)?)))
}

/// A connector as operators see it, resolved (template defaults filled in), with
/// secrets only as the reference to where they live.
pub fn connector_view(c: &Connector) -> Value {
    let mut v = json!({
        "id": c.id.as_str(),
        "auth": c.auth.name(),
        "egress": c.egress.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "inject": { "headers": c.inject.headers, "query": c.inject.query },
        "enabled": c.enabled,
        "source": c.source.name(),
        "scan_answers": c.scan_answers,
    });
    if let Some(t) = &c.template {
        v["template"] = json!(t);
    }
    if let Some(t) = &c.test {
        v["test"] = json!({ "method": t.method, "url": t.url, "expect": t.expect, "identity_field": t.identity_field });
    }
    if let Some(r) = c.rate_limit {
        v["rate_limit"] = json!({
            "requests": r.requests,
            "per": humantime::format_duration(r.per).to_string(),
        });
    }
    // What an agent may do with the credential, in one line each.
    if !c.access.is_open() {
        v["access"] = json!({
            "read_only": c.access.read_only,
            "rules": c.access.rules.iter().map(|r| json!({
                "name": r.name,
                "summary": r.summary(),
                "action": r.action.as_str(),
                "reason": r.reason,
            })).collect::<Vec<_>>(),
            "default": c.access.default.as_str(),
            "mcp_tools": c.access.mcp.as_ref().map(|m| json!({"allow": m.allow, "deny": m.deny, "approve": m.approve})),
            "summary": c.access.summaries(),
            "allowed": c.access.allowed_sentence(),
        });
    }
    if let Some(hold) = c.approval_hold {
        v["approvals"] = json!({ "hold": humantime::format_duration(hold).to_string() });
    }
    if let Some(b) = c.budget {
        v["limits"] = json!({
            "requests": b.requests.map(|(n, _)| n),
            "per": b.requests.map(|(_, per)| humantime::format_duration(per).to_string()),
            "concurrent": b.concurrent,
        });
    }
    if !c.inputs.is_empty() {
        v["inputs"] = c
            .inputs
            .iter()
            .map(|i| json!({ "name": i.name, "inject": i.inject.describe(), "optional": i.optional }))
            .collect::<Vec<_>>()
            .into();
    }
    if let AuthKind::AwsSigV4(aws) = &c.auth {
        v["aws"] = json!({
            "region": aws.region,
            "assume_role": aws.assume_role.as_ref().map(|r| &r.role_arn),
        });
    }
    v["env"] = c
        .env
        .iter()
        .map(|(name, what)| (name.clone(), json!(what.name())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    if let AuthKind::OAuth2(o) = &c.auth {
        v["grant"] = json!(match o.grant {
            Grant::AuthorizationCode => "authorization_code",
            Grant::ClientCredentials => "client_credentials",
        });
        v["oauth"] = json!({
            "authorize_url": o.authorize_url,
            "token_url": o.token_url,
            "issuer": o.issuer,
            "revocation_url": o.revocation_url,
            "client_id": o.client_id,
            // A reference (where the secret lives) or, for API connectors, a masked value.
            "client_secret": o.client_secret.as_ref().map(ToString::to_string),
            "scopes": o.scopes,
            "pkce": o.pkce,
            "client_auth": match o.client_auth { ClientAuth::Basic => "basic", ClientAuth::Post => "post" },
            "extra_params": o.extra_params,
            "refresh_skew_seconds": o.refresh_skew.as_secs(),
            "timeout_seconds": o.timeout.as_secs_f64(),
        });
    }
    v
}
