//! Connecting OAuth connections: `POST .../authorize` starts (or, for client
//! credentials, completes) a connection and answers egret's start link; `GET
//! /oauth/start` is that link: it binds the sign-in to the browser that opens it (a
//! cookie) and sends it on to the vendor; `GET /oauth/callback` is where the vendor
//! sends the browser back, and answers a small page for a person. The callback
//! completes only in the browser that carries the start link's cookie.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use egret_service::{Begun, CallbackError, PENDING_TTL_SECS};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::connections::{Which, connection_id};
use crate::cookies::Cookie;
use crate::error::ApiError;
use crate::{ADMIN, ControlState};

pub(crate) async fn authorize(
    State(state): State<Arc<ControlState>>,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    match state.service.connect(ADMIN, &conn).await? {
        Begun::Redirect(url) => Ok(Json(json!({
            "status": "redirect",
            "authorization_url": url,
            "expires_in": PENDING_TTL_SECS,
        }))),
        Begun::Connected(info) => Ok(Json(json!({ "status": "connected", "connection": info }))),
    }
}

/// The cookie that binds a sign-in to the browser that opened its start link. Lax: sent
/// on the vendor's top-level redirect back, not on cross-site subrequests.
const BINDING: Cookie = Cookie {
    name: "egret_oauth_binding",
    path: "/oauth/",
    same_site: "Lax",
};

#[derive(Deserialize)]
pub(crate) struct StartQuery {
    state: Option<String>,
}

/// egret's sign-in link: binds the sign-in to this browser and redirects to the vendor.
pub(crate) async fn start(
    State(state): State<Arc<ControlState>>,
    Query(q): Query<StartQuery>,
) -> Response {
    let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "This sign-in link is incomplete; open the whole link you were given.",
            None,
            false,
        );
    };
    match state.service.start_sign_in(s).await {
        Ok((vendor_url, binding)) => {
            let cookie = BINDING.set(
                Some(secrecy::ExposeSecret::expose_secret(&binding)),
                u64::try_from(PENDING_TTL_SECS).unwrap_or(600),
                secure(&state),
            );
            let mut resp = (StatusCode::FOUND, [(header::LOCATION, vendor_url)]).into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            resp
        }
        Err(e) => {
            tracing::info!(error = %e, "sign-in start refused");
            page(
                StatusCode::BAD_REQUEST,
                "Not connected",
                &escape(&e.to_string()),
                None,
                false,
            )
        }
    }
}

/// Whether egret is reached over https (its cookies are then `__Host-` cookies).
fn secure(state: &ControlState) -> bool {
    state.service.served_over_https()
}

/// Set by the web UI when it sends a user to sign in: the callback page links back.
const RETURN: Cookie = Cookie {
    name: "egret_ui_return",
    path: "/oauth/",
    same_site: "Lax",
};

/// `Set-Cookie` for the way back to the web UI: set (for the sign-in's 10 minutes) by
/// the page that sends a user to sign in, cleared by the callback.
pub fn return_cookie(set: bool, secure: bool) -> HeaderValue {
    RETURN.set(set.then_some("1"), 600, secure)
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

pub(crate) async fn callback(
    State(state): State<Arc<ControlState>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "This page needs the <code>state</code> the vendor sends back; open it only through a sign-in link.",
            None,
            false,
        );
    };
    let outcome = match (&q.error, &q.code) {
        (Some(error), _) => Err(error.as_str()),
        (None, Some(code)) if !code.is_empty() => Ok(code.as_str()),
        _ => Err("no authorization code"),
    };
    let secure = secure(&state);
    let binding = BINDING.read(&headers, secure);
    // Started from egret's Connections page: offer the way back.
    let back = RETURN.read(&headers, secure).is_some();
    let mut resp = match state
        .service
        .complete_sign_in(s, outcome, binding.as_deref())
        .await
    {
        Ok(info) => {
            tracing::info!(connector = %info.connector, owner = %info.owner, "connection authorized");
            let mut text = format!(
                "Connected to {}, you can close this window.",
                escape(&info.connector)
            );
            if let Some(who) = &info.identity_label {
                text.push_str(&format!(" Signed in as {}.", escape(who)));
            }
            let message = json!({
                "type": "egret.connected",
                "connector": info.connector,
                "owner": info.owner,
                "name": info.name,
            });
            page(StatusCode::OK, "Connected", &text, Some(message), back)
        }
        Err(e) => {
            tracing::info!(error = %e, "authorization callback refused");
            let status = match e {
                CallbackError::Exchange { .. } => StatusCode::BAD_GATEWAY,
                CallbackError::SecondConnection { .. } => StatusCode::CONFLICT,
                CallbackError::Vault(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            page(status, "Not connected", &escape(&e.to_string()), None, back)
        }
    };
    // The binding has done its job: the browser forgets it (and the way back).
    resp.headers_mut()
        .insert(header::SET_COOKIE, BINDING.set(None, 0, secure));
    if back {
        resp.headers_mut()
            .append(header::SET_COOKIE, return_cookie(false, secure));
    }
    resp
}

/// The page a person sees. On success it tells the opener and closes the popup.
fn page(
    status: StatusCode,
    title: &str,
    text: &str,
    message: Option<Value>,
    back: bool,
) -> Response {
    let script = message.map_or_else(String::new, |m| {
        // JSON of ids only; `<` is escaped so the text cannot close the script element.
        // Posted to egret's own origin only (this page's), never `*`.
        let m = m.to_string().replace('<', "\\u003c");
        format!(
            "<script>if (window.opener) {{ window.opener.postMessage({m}, window.location.origin); window.close(); }}</script>"
        )
    });
    let back = if back {
        "<p><a href=\"/ui/connections\">Back to your connections</a></p>"
    } else {
        ""
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · egret</title></head>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p>{back}{script}</body></html>"
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
