//! `GET /v1/connectors[/{id}]`: what the operator configured, secrets shown only as the
//! reference to where they live.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use egret_policy::{AuthKind, ClientAuth, Connector, Grant};
use serde_json::{Value, json};

use crate::ControlState;
use crate::error::ApiError;

pub(crate) async fn list(State(state): State<Arc<ControlState>>) -> Json<Value> {
    let policy = state.policy.load();
    Json(json!({ "connectors": policy.connectors.iter().map(connector_view).collect::<Vec<_>>() }))
}

pub(crate) async fn get(
    State(state): State<Arc<ControlState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let policy = state.policy.load();
    let connector = policy
        .connector(&id)
        .ok_or_else(|| ApiError::unknown_connector(&id))?;
    Ok(Json(connector_view(connector)))
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
        "source": "policy",
    });
    if let Some(t) = &c.template {
        v["template"] = json!(t);
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
            // The policy holds a reference, never the secret; showing where it lives is safe.
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
