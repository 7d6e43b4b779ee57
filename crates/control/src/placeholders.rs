//! Minting and revoking placeholders.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use egret_service::{Minted, NewPlaceholder, Placeholder, PlaceholderFilter, PlaceholderRef};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::auth::Who;
use crate::connections::{Which, connection_id, parse_owner};
use crate::error::ApiError;

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
    Who(who): Who,
    body: Result<Json<MintBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"connector\", \"owner\", \"name\"?, \"ttl\"?, \"sandbox\"?}}: {}",
            e.body_text()
        ))
    })?;
    let which = Which { name: body.name };
    let new = NewPlaceholder {
        connection: connection_id(&body.connector, &body.owner, &which)?,
        ttl: body.ttl,
        sandbox: body.sandbox,
    };
    let Minted {
        placeholder,
        info,
        inputs,
    } = state.service.mint_placeholder(&who, new).await?;
    let mut answer = json!({
        "placeholder": placeholder.expose(),
        "connector": info.connector,
        "owner": info.owner,
        "name": info.name,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "sandbox": info.sandbox,
    });
    // A connector of several inputs: one placeholder each, by input name.
    if !inputs.is_empty() {
        let by_input: serde_json::Map<String, Value> = inputs
            .iter()
            .map(|(name, p)| (name.clone(), Value::from(p.expose())))
            .collect();
        answer["placeholders"] = Value::Object(by_input);
    }
    Ok((StatusCode::CREATED, Json(answer)))
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
    Who(who): Who,
    Query(f): Query<Filter>,
) -> Result<Json<Value>, ApiError> {
    let filter = PlaceholderFilter {
        connector: f.connector,
        owner: f.owner.as_deref().map(parse_owner).transpose()?,
        sandbox: f.sandbox,
    };
    let list = state.service.placeholders(&who, &filter)?;
    Ok(Json(json!({ "placeholders": list })))
}

pub(crate) async fn revoke(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(text): Path<String>,
) -> Result<StatusCode, ApiError> {
    let placeholder = Placeholder::parse(&text).ok_or_else(|| {
        ApiError::bad_request(
            "that is not a placeholder; expected `egp_` followed by at least 32 letters and digits",
        )
    })?;
    state
        .service
        .revoke_placeholder(&who, PlaceholderRef::Itself(placeholder))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
