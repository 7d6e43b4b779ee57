//! Connect links: `POST /v1/connect-links` mints a single-use link that opens egret's
//! Connections page as one owner (optionally for one connector and connection name),
//! for a platform to send its user instead of building its own UI.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use egret_service::{ConnectionName, NewLink};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::auth::Who;
use crate::connections::parse_owner;
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkBody {
    owner: String,
    connector: Option<String>,
    name: Option<String>,
    /// e.g. `30m` (the default), at most `limits.max_ttl`.
    ttl: Option<String>,
}

pub(crate) async fn create(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    body: Result<Json<LinkBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"owner\", \"connector\"?, \"name\"?, \"ttl\"?}}: {}",
            e.body_text()
        ))
    })?;
    let new = NewLink {
        owner: parse_owner(&body.owner)?,
        connector: body.connector,
        name: body
            .name
            .as_deref()
            .map(ConnectionName::parse)
            .transpose()
            .map_err(ApiError::bad_request)?,
        ttl: body.ttl,
    };
    let link = state.service.make_connect_link(&who, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "url": link.url,
            "owner": link.owner,
            "connector": link.connector,
            "name": link.name,
            "expires_at": link.expires_at,
        })),
    ))
}
