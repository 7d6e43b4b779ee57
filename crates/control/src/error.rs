//! The control plane's error answer: `{"error": code, "message": sentence}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use egret_service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

/// How the API answers each kind of service error: a status and a code, decided here
/// (and read by the web UI, which shows the same status on its pages).
pub fn status_of(e: &ServiceError) -> (StatusCode, &'static str) {
    match e {
        ServiceError::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
        ServiceError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
        ServiceError::Invalid { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
        ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        ServiceError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "vault_unavailable"),
        ServiceError::Vendor { timeout: true, .. } => {
            (StatusCode::GATEWAY_TIMEOUT, "token_request_failed")
        }
        ServiceError::Vendor { timeout: false, .. } => {
            (StatusCode::BAD_GATEWAY, "token_request_failed")
        }
        ServiceError::Misconfigured(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "connector_misconfigured")
        }
        ServiceError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "vault_error"),
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let (status, code) = status_of(&e);
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut resp = (self.status, Json(body)).into_response();
        if let Ok(v) = axum::http::HeaderValue::from_str(self.code) {
            resp.headers_mut().insert("x-egret-error", v);
        }
        resp
    }
}
