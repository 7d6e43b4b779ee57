//! Sandbox identities for proxy authentication: create (or re-issue the secret), list,
//! revoke. The secret is shown once, in the answer that creates it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use egret_service::{IssuedSandbox, NewSandbox};

use crate::ControlState;
use crate::auth::Who;
use crate::error::ApiError;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueBody {
    /// Default: a random `sbx-…` id.
    id: Option<String>,
    /// e.g. `8h`; none: 24 hours. Never longer than `limits.max_ttl`.
    ttl: Option<String>,
}

pub(crate) async fn issue(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    raw: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // An empty body is a sandbox with a random id and the default lifetime.
    let body: IssueBody = if raw.iter().all(u8::is_ascii_whitespace) {
        IssueBody::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| ApiError::bad_request(format!("expected {{\"id\"?, \"ttl\"?}}: {e}")))?
    };
    let IssuedSandbox { info, secret } = state
        .service
        .issue_sandbox(
            &who,
            NewSandbox {
                id: body.id,
                ttl: body.ttl,
            },
        )
        .await?;
    let policy = state.service.policy.load();
    let listen = policy.proxy.listen;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": info.id,
            "secret": secret.expose_secret(),
            "created_at": info.created_at,
            "expires_at": info.expires_at,
            "proxy_auth": policy.proxy.auth == egret_policy::ProxyAuth::Basic,
            "proxy_url": format!("http://{}:{}@{listen}", info.id, secret.expose_secret()),
        })),
    ))
}

pub(crate) async fn list(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "sandboxes": state.service.sandboxes(&who)? })))
}

pub(crate) async fn revoke(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.service.revoke_sandbox(&who, &id).await?;
    Ok(Json(json!({ "revoked": true })))
}
