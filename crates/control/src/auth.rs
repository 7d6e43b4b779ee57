//! The admin token check in front of every `/v1` route.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::ControlState;
use crate::error::ApiError;

pub(crate) async fn require_admin(
    State(state): State<Arc<ControlState>>,
    req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), state.admin_token.expose_secret().as_bytes()) => next.run(req).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the admin token is wrong; use the one in EGRET_ADMIN_TOKEN or the admin.token file beside the vault").into_response(),
        None => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send `Authorization: Bearer <admin token>`; egret serve logs where its token file is").into_response(),
    }
}

/// Compares without an early exit, so response time says nothing about the token.
/// Equal, in time that does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
