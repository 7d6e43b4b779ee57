//! Scoped API tokens (administrators): `POST /v1/tokens {"name", "role", "owner"?, "ttl"?}`
//! answers the token once; `GET /v1/tokens` never shows one; `DELETE /v1/tokens/{name}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use egret_service::{MadeToken, NewToken};

use crate::ControlState;
use crate::auth::Who;
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    name: String,
    role: String,
    owner: Option<String>,
    ttl: Option<String>,
}

pub(crate) async fn create(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    raw: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: CreateBody = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"name\", \"role\": \"admin\" | \"auditor\" | \"platform\" | \"user\", \"owner\"?, \"ttl\"?}}: {e}"
        ))
    })?;
    let MadeToken { info, token } = state
        .service
        .create_token(
            &who,
            NewToken {
                name: b.name,
                role: b.role,
                owner: b.owner,
                ttl: b.ttl,
            },
        )
        .await?;
    let mut v = json!(info);
    v["token"] = json!(token.expose_secret());
    Ok((StatusCode::CREATED, Json(v)))
}

pub(crate) async fn list(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "tokens": state.service.tokens(&who).await? })))
}

pub(crate) async fn revoke(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.service.revoke_token(&who, name).await?;
    Ok(Json(json!({ "revoked": true })))
}
