//! The pages: a shared layout, signing in and out, and one module per page. Handlers
//! answer HTML for people; a refusal is a page that says what happened and what to do.

pub(crate) mod activity;
pub(crate) mod all_connections;
pub(crate) mod approvals;
pub(crate) mod connections;
pub(crate) mod connectors;
pub(crate) mod new_connector;
pub(crate) mod oidc;
pub(crate) mod sandboxes;
pub(crate) mod tokens;

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::UiState;
use crate::session::{self, Session, Who};

const STYLESHEET: &str = include_str!("../../assets/egret.css");
const SCRIPT: &str = include_str!("../../assets/egret.js");

pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Every page: a title, the navigation when signed in (error pages too), the content.
pub(crate) fn layout(title: &str, session: Option<&Session>, content: Markup) -> Html<String> {
    let admin_pages = [
        ("/ui/connectors", "Connector Settings"),
        ("/ui/all-connections", "All connections"),
        ("/ui/approvals", "Approvals"),
        ("/ui/sandboxes", "Sandboxes"),
        ("/ui/tokens", "API tokens"),
        ("/ui/activity", "Activity"),
    ];
    let person_admin_pages = [
        ("/ui/connectors", "Connector Settings"),
        ("/ui/all-connections", "All connections"),
        ("/ui/approvals", "Approvals"),
        ("/ui/sandboxes", "Sandboxes"),
        ("/ui/tokens", "API tokens"),
        ("/ui/activity", "Activity"),
        ("/ui/connections", "Your connections"),
    ];
    let user_pages = [
        ("/ui/connections", "Your connections"),
        ("/ui/approvals", "Approvals"),
    ];
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · egret" }
                link rel="stylesheet" href="/ui/egret.css";
                script src="/ui/egret.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui/" { "egret" }
                    @if let Some(s) = session {
                        nav aria-label="Main" {
                            @let pages: &[(&str, &str)] = match &s.who {
                                Who::Admin => &admin_pages,
                                Who::User(_) => &user_pages,
                                Who::Person { .. } if s.who.sees_admin_pages() => &person_admin_pages,
                                Who::Person { .. } => &user_pages,
                            };
                            @for (href, label) in pages.iter().filter(|(h, _)| *h != "/ui/tokens" || s.who.may_change()) {
                                @if title.starts_with(label) {
                                    a href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                        form.signout method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (content) }
            }
        }
    };
    Html(page.into_string())
}

/// A connection's status as people read it (listings and the API say the code).
pub(crate) fn status_label(status: &str) -> &str {
    match status {
        "connected" => "Connected",
        "refresh_failing" => "Refresh failing",
        "needs_reauth" => "Needs sign-in again",
        "connector_removed" => "Connector removed",
        other => other,
    }
}

/// A unix time as people read it: `2026-11-26 14:07 UTC`.
pub(crate) fn when(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "-".to_owned())
}

/// A page that says what went wrong and what to do, with `status`; with the navigation
/// when someone is signed in.
pub(crate) fn problem(
    status: StatusCode,
    session: Option<&Session>,
    title: &str,
    what: &str,
    next: Markup,
) -> Response {
    let page = layout(
        title,
        session,
        html! { p.problem role="alert" { (prose(what)) } (next) },
    );
    (status, page).into_response()
}

/// A sentence written for the CLI and the API (`egret connector list`, `openai`) as a
/// page shows it: what is between backticks as code, the backticks gone.
pub(crate) fn prose(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// Why a page or a form was not served to whoever asked.
pub(crate) enum Refused {
    /// Nobody is signed in (or the session ended): to the sign-in page.
    SignIn,
    /// A form without its CSRF token, or posted from another origin.
    Forged,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => Redirect::to("/ui/login").into_response(),
            Self::Forged => problem(
                StatusCode::FORBIDDEN,
                None,
                "Not done",
                "This form did not come from egret's own page (or it is older than your session), so nothing was changed.",
                html! { p { a href="/ui/connectors" { "Reload the page" } " and try again." } },
            ),
        }
    }
}

/// What an action did, on a page of its own with the way back: "Done" for a success,
/// "Not done" (and what happened) otherwise.
pub(crate) fn outcome(
    status: StatusCode,
    session: Option<&Session>,
    what: &str,
    back: Markup,
) -> Response {
    let title = if status.is_success() {
        "Done"
    } else {
        "Not done"
    };
    problem(status, session, title, what, back)
}

/// A filter field as a form sent it: one left empty filters nothing.
pub(crate) fn filled(field: Option<&str>) -> Option<String> {
    field.filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The signed-in administrator's session.
pub(crate) async fn admin(state: &UiState, headers: &HeaderMap) -> Result<Session, Refused> {
    state
        .sessions
        .find(headers, state.secure())
        .await
        .filter(|s| s.who.sees_admin_pages())
        .ok_or(Refused::SignIn)
}

/// Any signed-in session (an administrator, or a user from a connect link).
pub(crate) async fn anyone(state: &UiState, headers: &HeaderMap) -> Result<Session, Refused> {
    state
        .sessions
        .find(headers, state.secure())
        .await
        .ok_or(Refused::SignIn)
}

/// A form post from any session, checked as [`admin_post`] checks.
pub(crate) async fn anyone_post(
    state: &UiState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Session, Refused> {
    let session = anyone(state, headers).await?;
    let public_url = state.service.policy.load().control.public_url.clone();
    if !session::same_origin(headers, &public_url) || !session::csrf_ok(&session, csrf) {
        return Err(Refused::Forged);
    }
    Ok(session)
}

/// A form post from a signed-in administrator: the session, its CSRF token and egret's
/// own origin checked.
pub(crate) async fn admin_post(
    state: &UiState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Session, Refused> {
    let session = admin(state, headers).await?;
    let public_url = state.service.policy.load().control.public_url.clone();
    if !session::same_origin(headers, &public_url) || !session::csrf_ok(&session, csrf) {
        return Err(Refused::Forged);
    }
    Ok(session)
}

pub(crate) async fn home(State(state): State<Arc<UiState>>, headers: HeaderMap) -> Redirect {
    match state
        .sessions
        .find(&headers, state.secure())
        .await
        .map(|s| s.who)
    {
        Some(w) if w.sees_admin_pages() => Redirect::to("/ui/connectors"),
        Some(_) => Redirect::to("/ui/connections"),
        // Behind an authenticating proxy, users land on their connections.
        None if state.service.policy.load().ui.user_header.is_some() => {
            Redirect::to("/ui/connections")
        }
        None => Redirect::to("/ui/login"),
    }
}

pub(crate) fn login_page(state: &UiState, status: StatusCode, message: Option<&str>) -> Response {
    let policy = state.service.policy.load();
    let idp = policy.ui.oidc.as_ref().map(|o| o.name.clone());
    let token_login = policy.ui.admin_token_login;
    let content = html! {
        @if let Some(m) = message { p.problem role="alert" { (prose(m)) } }
        @if let Some(name) = &idp {
            p { a.button.primary href="/ui/oidc/start" { "Sign in with " (name) } }
        }
        @if token_login {
            @if idp.is_some() { h2 { "Break-glass: the admin token" } }
            p { "Sign in with egret's admin token: the value of " code { "EGRET_ADMIN_TOKEN" }
                ", or the " code { "admin.token" } " file beside the vault (" code { "egret serve" }
                " logs where it is)." }
            form method="post" action="/ui/login" {
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus[idp.is_none()];
                button type="submit" { "Sign in" }
            }
        }
        @if !token_login && idp.is_none() {
            p { "No way to sign in is set up: the policy turns the admin token off (" code { "ui.admin_token_login: false" } ") and names no identity provider (" code { "ui.oidc" } ")." }
        }
    };
    (status, layout("Sign in", None, content)).into_response()
}

pub(crate) async fn login_form(State(state): State<Arc<UiState>>, headers: HeaderMap) -> Response {
    // Signed in already: to the page this session may see (a user's is not an
    // administrator's: sending them there would bring them back here).
    match state
        .sessions
        .find(&headers, state.secure())
        .await
        .map(|s| s.who)
    {
        Some(w) if w.sees_admin_pages() => {
            return Redirect::to("/ui/connectors").into_response();
        }
        Some(_) => return Redirect::to("/ui/connections").into_response(),
        None => {}
    }
    login_page(&state, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: SecretString,
}

/// Exchanges the admin token for a session cookie; the token is never put in a URL.
/// Compared in constant time; an address that failed too often waits (`429`).
pub(crate) async fn login(
    State(state): State<Arc<UiState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let now = state.service.now();
    if let Some(wait) = state.sign_ins.wait(peer.ip(), now) {
        let mut resp = login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many wrong admin tokens from this address; wait {wait} seconds and try again."
            )),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(wait.max(1)));
        return resp;
    }
    if !state.service.policy.load().ui.admin_token_login {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            Some(
                "Signing in with the admin token is turned off here (`ui.admin_token_login: false`); sign in with the identity provider.",
            ),
        );
    }
    let public_url = state.service.policy.load().control.public_url.clone();
    if !session::same_origin(&headers, &public_url) {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            Some(
                "This sign-in did not come from egret's own page; open egret's address and sign in there.",
            ),
        );
    }
    let Ok(Form(form)) = form else {
        return login_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some("Type the admin token."),
        );
    };
    let expected = state.admin_token.expose_secret().as_bytes();
    let given = form.token.expose_secret().trim().as_bytes();
    if !bool::from(given.ct_eq(expected)) {
        state.sign_ins.failed(peer.ip(), now);
        tracing::info!(client = %peer.ip(), "a sign-in to the UI with a wrong admin token");
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some(
                "That is not the admin token. Copy it again from EGRET_ADMIN_TOKEN or the admin.token file.",
            ),
        );
    }
    signed_in(&state, Who::Admin, "/ui/connectors").await
}

/// Starts a session for `who` and sends the browser on to `to` with its cookie.
pub(crate) async fn signed_in(state: &UiState, who: Who, to: &str) -> Response {
    let (id, session) = match state.sessions.start(who).await {
        Ok(started) => started,
        Err(e) => {
            tracing::error!(error = %e, "cannot store a web UI session");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "Not signed in",
                "egret could not store the session (its vault did not answer). Try again in a moment.",
                html! { p { a href="/ui/login" { "Back to sign-in" } } },
            );
        }
    };
    let mut resp = Redirect::to(to).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(Some((&id, &session.who)), state.secure()),
    );
    resp
}

/// A form whose only field is the session's CSRF token (Sign out, Delete, Revoke).
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

impl CsrfForm {
    /// An administrator's post of such a form, checked as [`admin_post`] checks (a
    /// missing or unreadable form has no token, and is refused as forged).
    pub(crate) async fn checked(
        state: &UiState,
        headers: &HeaderMap,
        form: Result<Form<Self>, FormRejection>,
    ) -> Result<Session, Refused> {
        let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
        admin_post(state, headers, &csrf).await
    }
}

/// Signs out any session, an administrator's or a user's.
pub(crate) async fn logout(
    State(state): State<Arc<UiState>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    let session = match anyone_post(&state, &headers, &csrf).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    state.sessions.end(&headers, state.secure()).await;
    // Signed in with the identity provider: offer to sign out there too, where it can.
    let single = match session.who {
        Who::Person { .. } => state.service.oidc_end_session().await,
        _ => None,
    };
    let mut resp = match single {
        Some(url) => {
            let name = state.service.oidc_name().unwrap_or_default();
            let content = html! {
                p { "You are signed out of egret." }
                p { a.button href=(url) { "Also sign out of " (name) } }
                p { a href="/ui/login" { "Sign in again" } }
            };
            (StatusCode::OK, layout("Signed out", None, content)).into_response()
        }
        None => Redirect::to("/ui/login").into_response(),
    };
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(None, state.secure()),
    );
    resp
}

/// What a failed operation shows: the status the API would answer, and its sentence.
pub(crate) fn failed(e: &egret_service::ServiceError) -> (StatusCode, String) {
    (egret_control::status_of(e).0, e.to_string())
}
