//! `GET /v1/audit?since=&connector=&owner=&limit=`: decisions and changes, oldest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::auth::Who;
use crate::error::ApiError;

#[derive(Deserialize)]
pub(crate) struct Since {
    #[serde(default)]
    since: u64,
    limit: Option<usize>,
    connector: Option<String>,
    owner: Option<String>,
}

pub(crate) async fn list(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Query(q): Query<Since>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(1000).min(10_000);
    let events = state
        .service
        .audit_since(&who, q.since, limit, q.connector, q.owner)
        .await?;
    Ok(Json(json!({ "events": events })))
}
