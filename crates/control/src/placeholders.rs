//! Minting and revoking placeholders.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use egret_vault::Placeholder;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::connections::{Which, connection_id, parse_owner};
use crate::error::{ApiError, DEFAULT_TTL};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MintBody {
    connector: String,
    owner: String,
    /// Which of the owner's connections (`default` when absent).
    name: Option<String>,
    /// e.g. `8h`, `30m`; none: 24 hours. Never longer than `limits.max_ttl`.
    ttl: Option<String>,
    sandbox: Option<String>,
}

pub(crate) async fn mint(
    State(state): State<Arc<ControlState>>,
    body: Result<Json<MintBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"connector\", \"owner\", \"name\"?, \"ttl\"?, \"sandbox\"?}}: {}",
            e.body_text()
        ))
    })?;
    if body.sandbox.is_some() && state.policy.load().proxy.auth == egret_policy::ProxyAuth::None {
        return Err(ApiError::bad_request(
            "sandbox-bound placeholders need proxy authentication (`proxy.auth: basic` in the policy); without it no request can say which sandbox it comes from",
        ));
    }
    let which = Which { name: body.name };
    let conn = connection_id(&body.connector, &body.owner, &which)?;
    let max = state.policy.load().limits.max_ttl();
    let ttl = Some(ApiError::ttl_or(body.ttl.as_deref(), DEFAULT_TTL, max)?);
    if state.policy.load().connector(&body.connector).is_none() {
        return Err(ApiError::unknown_connector(&body.connector));
    }
    let sandbox = body.sandbox;
    let (placeholder, info) = state
        .blocking(move |s| {
            let minted = s
                .vault
                .mint_placeholder_for(&conn, ttl, sandbox.as_deref())?;
            s.vault
                .audit_connection("placeholder.mint", &conn, Some(minted.1.hint.clone()))?;
            Ok(minted)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "placeholder": placeholder.expose(),
            "connector": info.connector,
            "owner": info.owner,
            "name": info.name,
            "created_at": info.created_at,
            "expires_at": info.expires_at,
            "sandbox": info.sandbox,
        })),
    ))
}

#[derive(Deserialize)]
pub(crate) struct Filter {
    connector: Option<String>,
    owner: Option<String>,
    sandbox: Option<String>,
}

/// Live placeholders: who and what each stands for, its hint (`egp_AbCd…`), never the
/// placeholder itself.
pub(crate) async fn list(
    State(state): State<Arc<ControlState>>,
    Query(f): Query<Filter>,
) -> Result<Json<Value>, ApiError> {
    let owner = f.owner.as_deref().map(parse_owner).transpose()?;
    let list = state.vault.placeholders(
        f.connector.as_deref(),
        owner.as_ref(),
        f.sandbox.as_deref(),
        state.vault.clock().unix(),
    );
    Ok(Json(json!({ "placeholders": list })))
}

pub(crate) async fn revoke(
    State(state): State<Arc<ControlState>>,
    Path(text): Path<String>,
) -> Result<StatusCode, ApiError> {
    let placeholder = Placeholder::parse(&text).ok_or_else(|| {
        ApiError::bad_request(
            "that is not a placeholder; expected `egp_` followed by at least 32 letters and digits",
        )
    })?;
    state
        .blocking(move |s| {
            let info = s.vault.revoke_placeholder(&placeholder)?;
            s.vault
                .audit_connection("placeholder.revoke", &info.connection(), Some(info.hint))?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
