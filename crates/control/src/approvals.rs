//! Requests held for a person's approval: `GET /v1/approvals?status=&connector=&owner=`,
//! `GET /v1/approvals/{id}`, `POST /v1/approvals/{id}/approve` `{"for": "once" | "1h",
//! "note"?}`, `POST /v1/approvals/{id}/deny` `{"note"?}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use egret_service::{Approval, ApprovalFilter, ApprovalStatus, Decision, Grant};

use crate::ControlState;
use crate::auth::Who;
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<String>,
    connector: Option<String>,
    owner: Option<String>,
}

/// An approval as the API shows it, with where a person decides it.
pub fn view(a: &Approval, url: &str) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("url".to_owned(), json!(url));
    }
    v
}

pub(crate) async fn list(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(ApprovalStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`{s}` is not an approval status; expected pending, approved, denied or expired"
            ))
        })?),
    };
    let filter = ApprovalFilter {
        status,
        connector: q.connector,
        owner: q.owner,
    };
    let list = state.service.approvals(&who, filter).await?;
    let approvals: Vec<Value> = list
        .iter()
        .map(|a| view(a, &state.service.approval_url(&a.id)))
        .collect();
    Ok(Json(json!({ "approvals": approvals })))
}

pub(crate) async fn show(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let a = state.service.approval(&who, id).await?;
    Ok(Json(view(&a, &state.service.approval_url(&a.id))))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveBody {
    /// `once` (the default) or a duration such as `1h`.
    #[serde(rename = "for")]
    for_: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct DenyBody {
    note: Option<String>,
}

fn body<T: for<'de> Deserialize<'de> + Default>(raw: &[u8], shape: &str) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|e| ApiError::bad_request(format!("expected {shape}: {e}")))
}

pub(crate) async fn approve(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: ApproveBody = body(&raw, r#"{"for"?: "once" | "1h", "note"?}"#)?;
    let grant = match b.for_.as_deref() {
        None => Grant::Once,
        Some(text) => Grant::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?,
    };
    let a = state
        .service
        .decide_approval(
            &who,
            id,
            Decision::Approve {
                grant,
                note: b.note,
            },
        )
        .await?;
    Ok(Json(view(&a, &state.service.approval_url(&a.id))))
}

pub(crate) async fn deny(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: DenyBody = body(&raw, r#"{"note"?}"#)?;
    let a = state
        .service
        .decide_approval(&who, id, Decision::Deny { note: b.note })
        .await?;
    Ok(Json(view(&a, &state.service.approval_url(&a.id))))
}
