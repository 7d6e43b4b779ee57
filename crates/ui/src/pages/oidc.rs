//! Sign-in with the organisation's identity provider (`ui.oidc`): `GET /ui/oidc/start`
//! sends the browser to the provider (authorization code, PKCE, state, nonce), binding
//! the sign-in to this browser with a short-lived cookie; `GET /ui/oidc/callback` checks
//! that binding, has the service exchange the code and check the ID token, and starts a
//! session as `user:<claim>` with the role the provider's claims give. What is kept
//! between the two (nonce, PKCE verifier) is sealed in the vault under the state's hash,
//! for ten minutes, and spent by the callback. Every refusal is a page that says why.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use egret_control::cookies::Cookie;
use egret_service::{ConnectLink, Role};
use maud::html;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{problem, signed_in};
use crate::UiState;
use crate::session::Who;

/// Binds a sign-in to the browser that started it (sent back on the provider's
/// top-level redirect: `Lax`).
const BINDING: Cookie = Cookie {
    name: "egret_oidc",
    path: "/ui/oidc",
    same_site: "Lax",
};

/// How long a sign-in may take at the provider.
const PENDING: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Serialize, Deserialize)]
struct Pending {
    nonce: String,
    verifier: String,
}

fn redirect_uri(state: &UiState) -> String {
    let policy = state.service.policy.load();
    format!(
        "{}/ui/oidc/callback",
        policy.control.public_url.trim_end_matches('/')
    )
}

fn refused(status: StatusCode, why: &str) -> Response {
    problem(
        status,
        None,
        "Not signed in",
        why,
        html! { p { a href="/ui/login" { "Back to sign-in" } } },
    )
}

pub(crate) async fn start(State(state): State<Arc<UiState>>) -> Response {
    let begun = match state.service.oidc_begin(&redirect_uri(&state)).await {
        Ok(b) => b,
        Err(e) => return refused(super::failed(&e).0, &e.to_string()),
    };
    let pending = Pending {
        nonce: begun.nonce,
        verifier: begun.verifier,
    };
    let json = Zeroizing::new(serde_json::to_vec(&pending).unwrap_or_default());
    if let Err(e) = state
        .service
        .put_ui_session(SecretString::from(begun.state.clone()), json, PENDING)
        .await
    {
        return refused(super::failed(&e).0, &e.to_string());
    }
    let mut resp = Redirect::to(&begun.url).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        BINDING.set(Some(&begun.state), PENDING.as_secs(), state.secure()),
    );
    resp
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub(crate) async fn callback(
    State(state): State<Arc<UiState>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    if let Some(error) = q.error {
        let why = q.error_description.unwrap_or_default();
        return refused(
            StatusCode::FORBIDDEN,
            &format!(
                "The identity provider did not sign you in ({error}{}{why}).",
                if why.is_empty() { "" } else { ": " }
            ),
        );
    }
    let (Some(code), Some(st)) = (q.code, q.state) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "This page needs the identity provider's answer (a code and a state); start the sign-in again.",
        );
    };
    // Only the browser that started this sign-in may finish it.
    let bound = BINDING.read(&headers, state.secure());
    if bound.as_deref() != Some(st.as_str()) {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in was started in another browser (or its ten minutes ran out); start it again here.",
        );
    }
    let pending = match state.service.ui_session(st.clone()).await {
        Ok(Some(json)) => serde_json::from_slice::<Pending>(&json).ok(),
        Ok(None) => None,
        Err(e) => return refused(super::failed(&e).0, &e.to_string()),
    };
    // Spent now, whatever follows: a state works once.
    let _ = state.service.end_ui_session(st).await;
    let Some(pending) = pending else {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in was finished already or has expired; start it again.",
        );
    };
    let person = match state
        .service
        .oidc_finish(
            &code,
            &pending.verifier,
            &pending.nonce,
            &redirect_uri(&state),
        )
        .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "a sign-in with the identity provider was refused");
            return refused(super::failed(&e).0, &format!("{e}"));
        }
    };
    let role = person.role;
    let who = Who::Person {
        link: ConnectLink {
            owner: person.owner,
            connector: None,
            name: None,
            expires_at: i64::MAX,
        },
        role: role.as_str().to_owned(),
    };
    let to = if matches!(role, Role::Admin | Role::Auditor) {
        "/ui/connectors"
    } else {
        "/ui/connections"
    };
    let mut resp = signed_in(&state, who, to).await;
    resp.headers_mut()
        .append(header::SET_COOKIE, BINDING.set(None, 0, state.secure()));
    resp
}
