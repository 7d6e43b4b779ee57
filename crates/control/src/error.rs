//! The control plane's error answer: `{"error": code, "message": sentence}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use egret_vault::VaultError;

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

    /// A lifetime (`ttl`) as the API takes it: `text` when given (from one second up to
    /// `max`, the policy's `limits.max_ttl`, refused beyond it with the maximum named),
    /// else `default` (or `max`, when that is shorter). Nothing lives forever.
    pub fn ttl_or(
        text: Option<&str>,
        default: std::time::Duration,
        max: std::time::Duration,
    ) -> Result<std::time::Duration, Self> {
        match text {
            Some(t) => Self::parse_ttl(t, max),
            None => Ok(default.min(max)),
        }
    }

    pub fn parse_ttl(text: &str, max: std::time::Duration) -> Result<std::time::Duration, Self> {
        let ttl = humantime::parse_duration(text).map_err(|_| {
            Self::bad_request(format!(
                "`{text}` is not a duration; expected e.g. `8h` or `30m`"
            ))
        })?;
        if ttl.as_secs() == 0 {
            return Err(Self::bad_request("ttl must be at least one second"));
        }
        if ttl > max {
            return Err(Self::bad_request(format!(
                "ttl `{text}` is longer than the longest lifetime allowed, {} (limits.max_ttl); ask for at most that",
                humantime::format_duration(max)
            )));
        }
        Ok(ttl)
    }

    pub fn unknown_connector(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "connector_not_found",
            format!("there is no connector `{id}`; GET /v1/connectors lists them"),
        )
    }
}

/// The lifetime of a placeholder or sandbox identity when none is asked for.
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        let status = match &e {
            VaultError::NoConnection { .. } => {
                return Self::new(StatusCode::NOT_FOUND, "connection_not_found", e.to_string());
            }
            VaultError::NoPlaceholder => {
                return Self::new(
                    StatusCode::NOT_FOUND,
                    "placeholder_not_found",
                    e.to_string(),
                );
            }
            VaultError::Storage(egret_vault::store::StoreError::Unavailable(_)) => {
                tracing::warn!(error = %e, "vault database unavailable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "vault_unavailable",
                    format!("{e}; nothing was changed, retry once the database answers"),
                );
            }
            VaultError::Storage(egret_vault::store::StoreError::Conflict(_)) => {
                return Self::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("{e}; nothing was changed, retry"),
                );
            }
            VaultError::Superseded(_) => {
                return Self::new(StatusCode::CONFLICT, "conflict", e.to_string());
            }
            VaultError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = if status == StatusCode::BAD_REQUEST {
            "bad_request"
        } else {
            "vault_error"
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "vault operation failed");
        }
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

/// A failed token request, as the control plane answers it.
pub(crate) fn token_error(connector: &str, e: &egret_oauth::TokenError) -> ApiError {
    match e {
        egret_oauth::TokenError::Config(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "connector_misconfigured",
            format!("connector `{connector}` cannot reach its authorization server: {e}"),
        ),
        egret_oauth::TokenError::Store(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "vault_error",
            format!(
                "egret could not store the connection to `{connector}` ({e}); nothing at the vendor is wrong. Check egret's log and its vault's disk, then connect again"
            ),
        ),
        egret_oauth::TokenError::Timeout(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "token_request_failed",
            format!("`{connector}`'s token endpoint did not answer in time; retry later"),
        ),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "token_request_failed",
            format!("`{connector}`'s authorization server did not issue a token: {e}"),
        ),
    }
}
