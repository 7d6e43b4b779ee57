//! Connecting OAuth connections: `POST .../authorize` starts (or, for client
//! credentials, completes) a connection and answers egret's sign-in link; `GET
//! /oauth/start` is that link: a page naming the connector and the owner, which goes on
//! only when the person continues (`POST /oauth/start`, carrying a token derived from
//! the browser's binding cookie): that binds the sign-in to the browser and sends it to
//! the vendor. A GET spends and binds nothing, so a link previewer or a cross-site
//! `window.open` advances nothing. `GET /oauth/callback` is where the vendor sends the
//! browser back; it completes only in the browser that carries the binding cookie, and
//! answers a small page for a person.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use egret_service::{Begun, CallbackError, PENDING_TTL_SECS};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::auth::Who;
use crate::connections::{Which, connection_id};
use crate::cookies::Cookie;
use crate::error::ApiError;

pub(crate) async fn authorize(
    State(state): State<Arc<ControlState>>,
    Who(who): Who,
    Path((connector, owner)): Path<(String, String)>,
    Query(which): Query<Which>,
) -> Result<Json<Value>, ApiError> {
    let conn = connection_id(&connector, &owner, &which)?;
    match state.service.connect(&who, &conn).await? {
        Begun::Redirect(url) => Ok(Json(json!({
            "status": "redirect",
            "authorization_url": url,
            "expires_in": PENDING_TTL_SECS,
        }))),
        Begun::Connected(info) => Ok(Json(json!({ "status": "connected", "connection": info }))),
        // Only a browser asking for itself (the web UI) gets a sign-in bound to it.
        Begun::Bound { .. } => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the sign-in was bound to no browser; start connecting again",
        )),
    }
}

/// The cookie that binds a sign-in to the browser that opened its start link. Lax: sent
/// on the vendor's top-level redirect back, not on cross-site subrequests.
const BINDING: Cookie = Cookie {
    name: "egret_oauth_binding",
    path: "/oauth/",
    same_site: "Lax",
};

/// The browser's binding secret: the one its cookie already holds (so sign-ins under
/// way in other tabs keep theirs), else a new one; and the `Set-Cookie` that keeps it for
/// the sign-in's 10 minutes.
pub fn sign_in_binding(
    headers: &axum::http::HeaderMap,
    secure: bool,
) -> (SecretString, HeaderValue) {
    let secret = BINDING
        .read(headers, secure)
        .filter(|v| {
            v.len() >= 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(SecretString::from)
        .unwrap_or_else(egret_service::random_token);
    let cookie = BINDING.set(
        Some(secret.expose_secret()),
        u64::try_from(PENDING_TTL_SECS).unwrap_or(600),
        secure,
    );
    (secret, cookie)
}

/// What the continue form carries: derived from the browser's binding secret and the
/// sign-in's state, so only the page egret showed this browser can continue this
/// sign-in (another site can neither read the cookie nor forge the token).
fn continue_token(binding: &SecretString, state: &str) -> String {
    egret_service::sha256_hex(&format!(
        "egret-sign-in\n{}\n{state}",
        binding.expose_secret()
    ))
}

#[derive(Deserialize)]
pub(crate) struct StartQuery {
    state: Option<String>,
}

/// egret's sign-in link, opened: a page that names the connector and the owner, with a
/// Continue button. Nothing is spent or bound; the browser gets its binding cookie.
pub(crate) async fn start(
    State(state): State<Arc<ControlState>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        return not_connected(
            "This sign-in link is incomplete; open the whole link you were given.",
        );
    };
    let start = match state.service.sign_in_start(s).await {
        Ok(start) => start,
        Err(e) => {
            tracing::info!(error = %e, "sign-in link refused");
            return not_connected(&escape(&e.to_string()));
        }
    };
    let secure = secure(&state);
    let (binding, cookie) = sign_in_binding(&headers, secure);
    let token = continue_token(&binding, s);
    let connector = escape(&start.connector);
    let owner = escape(start.owner.as_str());
    let named = if start.name.is_default() {
        String::new()
    } else {
        format!(
            " (the connection <strong>{}</strong>)",
            escape(start.name.as_str())
        )
    };
    let text = format!(
        "You are connecting <em>your</em> <strong>{connector}</strong> account for \
         <strong>{owner}</strong>{named}. Continue only if you are {owner}, or act for \
         them, and asked for this link: whoever continues connects the account they sign \
         in with.</p><form method=\"post\" action=\"/oauth/start\">\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <button class=\"primary\" type=\"submit\">Continue to {connector}</button></form><p>\
         If you did not expect this, close this page: nothing has been connected.",
        state = escape(s),
    );
    let mut resp = page(
        StatusCode::OK,
        &format!("Connect {connector}"),
        &text,
        None,
        false,
    );
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp
}

#[derive(Deserialize)]
pub(crate) struct ContinueForm {
    state: String,
    token: String,
}

/// The person continued: the sign-in is bound to this browser and it goes to the vendor.
pub(crate) async fn continue_sign_in(
    State(state): State<Arc<ControlState>>,
    headers: axum::http::HeaderMap,
    form: Result<axum::Form<ContinueForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return not_connected("This form was incomplete; open the sign-in link again.");
    };
    let secure = secure(&state);
    let given = BINDING.read(&headers, secure).map(SecretString::from);
    let matches = given.as_ref().is_some_and(|b| {
        let expected = continue_token(b, &form.state);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), form.token.as_bytes()).into()
    });
    let Some(binding) = given.filter(|_| matches) else {
        tracing::info!("sign-in continue refused: not the page egret showed this browser");
        return not_connected(
            "This sign-in can only be continued from the page its link opened, in the same browser; open the link again.",
        );
    };
    match state.service.start_sign_in(&form.state, &binding).await {
        Ok(vendor_url) => {
            let mut resp =
                (StatusCode::SEE_OTHER, [(header::LOCATION, vendor_url)]).into_response();
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
            not_connected(&escape(&e.to_string()))
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
        return not_connected(
            "This page needs the <code>state</code> the vendor sends back; open it only through a sign-in link.",
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
            let account = match &info.identity_label {
                Some(who) => format!(
                    "the {} account <strong>{}</strong>",
                    escape(&info.connector),
                    escape(who)
                ),
                None => format!(
                    "the {} account you signed in with (the vendor did not say which)",
                    escape(&info.connector)
                ),
            };
            let text = format!(
                "Connected {account} for <strong>{}</strong>. You can close this window.",
                escape(info.owner.as_str())
            );
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

/// A sign-in link or form refused: a 400 page saying why (`why` is HTML, escaped by the
/// caller), without the way back to the web UI.
fn not_connected(why: &str) -> Response {
    page(StatusCode::BAD_REQUEST, "Not connected", why, None, false)
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
    // The web UI's stylesheet (same origin), so these pages look like the rest of egret.
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\"><title>{title} · egret</title>\
<link rel=\"stylesheet\" href=\"/ui/egret.css\"></head>\
<body><header class=\"top\"><span class=\"brand\">egret</span></header>\
<main><h1>{title}</h1><p>{text}</p>{back}</main>{script}</body></html>"
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
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'self'",
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
