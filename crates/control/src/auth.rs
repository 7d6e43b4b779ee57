//! Who calls each `/v1` route: the admin token (`admin`), or a scoped API token
//! (`egt_…`, acting with its role as `token:<name>`). The principal goes with the request
//! ([`Who`]); what it may do is decided in the service layer.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use egret_service::Principal;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::ControlState;
use crate::error::ApiError;

/// The principal a `/v1` route acts as (put there by [`require_principal`]).
pub struct Who(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Who)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send `Authorization: Bearer <token>`",
                )
            })
    }
}

pub(crate) async fn require_principal(
    State(state): State<Arc<ControlState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let Some(token) = presented else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send `Authorization: Bearer <admin token or API token>`; egret serve logs where its admin token file is").into_response();
    };
    let principal = if constant_time_eq(
        token.as_bytes(),
        state.admin_token.expose_secret().as_bytes(),
    ) {
        Principal::Admin
    } else if token.starts_with(egret_vault::API_TOKEN_PREFIX) {
        match state.service.token_principal(token).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "this API token is unknown, expired or revoked; ask an administrator for a new one (`egret token create`)").into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the token is wrong; use the admin token (EGRET_ADMIN_TOKEN or the admin.token file beside the vault) or an API token (`egt_…`)").into_response();
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
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
