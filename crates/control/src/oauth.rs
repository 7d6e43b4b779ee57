//! Connecting OAuth connections: `POST .../authorize` starts (or, for client
//! credentials, completes) a connection; `GET /oauth/callback` is where the vendor
//! sends the user's browser back, and answers a small page for a person.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use egret_oauth::{Begun, CallbackError, TokenError};
use egret_policy::AuthKind;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::connections::{disabled, parse_owner};
use crate::error::ApiError;

pub(crate) async fn authorize(
    State(state): State<Arc<ControlState>>,
    Path((connector, owner)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let owner = parse_owner(&owner)?;
    let policy = state.policy.load_full();
    let c = policy
        .connector(&connector)
        .ok_or_else(|| ApiError::unknown_connector(&connector))?;
    if !c.enabled {
        return Err(disabled(&connector));
    }
    if !matches!(c.auth, AuthKind::OAuth2(_)) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "wrong_auth_kind",
            format!(
                "connector `{connector}` uses a static key; store it with `egret connection set-key`"
            ),
        ));
    }
    match state
        .broker
        .begin(c, &owner)
        .await
        .map_err(|e| token_error(&connector, &e))?
    {
        Begun::Redirect(url) => Ok(Json(json!({
            "status": "redirect",
            "authorization_url": url,
            "expires_in": egret_oauth::PENDING_TTL_SECS,
        }))),
        Begun::Connected(info) => Ok(Json(json!({ "status": "connected", "connection": info }))),
    }
}

/// A failed token request, as the control plane answers it.
pub(crate) fn token_error(connector: &str, e: &TokenError) -> ApiError {
    match e {
        TokenError::Config(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "connector_misconfigured",
            format!("connector `{connector}` cannot reach its authorization server: {e}"),
        ),
        TokenError::Store(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "vault_error",
            format!(
                "egret could not store the connection to `{connector}` ({e}); nothing at the vendor is wrong. Check egret's log and its vault's disk, then connect again"
            ),
        ),
        TokenError::Timeout(_) => ApiError::new(
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

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

pub(crate) async fn callback(
    State(state): State<Arc<ControlState>>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "This page needs the <code>state</code> the vendor sends back; open it only through a sign-in link.",
            None,
        );
    };
    let outcome = match (&q.error, &q.code) {
        (Some(error), _) => Err(error.as_str()),
        (None, Some(code)) if !code.is_empty() => Ok(code.as_str()),
        _ => Err("no authorization code"),
    };
    match state.broker.complete(s, outcome).await {
        Ok(info) => {
            tracing::info!(connector = %info.connector, owner = %info.owner, "connection authorized");
            let text = format!(
                "Connected to {}, you can close this window.",
                escape(&info.connector)
            );
            let message = json!({
                "type": "egret.connected",
                "connector": info.connector,
                "owner": info.owner,
            });
            page(StatusCode::OK, "Connected", &text, Some(message))
        }
        Err(e) => {
            tracing::info!(error = %e, "authorization callback refused");
            let status = match e {
                CallbackError::Exchange { .. } => StatusCode::BAD_GATEWAY,
                CallbackError::Vault(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            page(status, "Not connected", &escape(&e.to_string()), None)
        }
    }
}

/// The page a person sees. On success it tells the opener and closes the popup.
fn page(status: StatusCode, title: &str, text: &str, message: Option<Value>) -> Response {
    let script = message.map_or_else(String::new, |m| {
        // JSON of ids only; `<` is escaped so the text cannot close the script element.
        let m = m.to_string().replace('<', "\\u003c");
        format!(
            "<script>if (window.opener) {{ window.opener.postMessage({m}, \"*\"); }} window.close();</script>"
        )
    });
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · egret</title></head>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p>{script}</body></html>"
    );
    let mut resp = (status, Html(body)).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The URL carried an authorization code: never pass it on.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ),
    );
    resp
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
