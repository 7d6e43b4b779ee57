//! API tokens (administrators): the scoped tokens platforms and people use on the API,
//! made here (the token shown once), listed without it, revoked at once.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use egret_service::NewToken;
use maud::{Markup, html};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{CsrfForm, admin, admin_post, layout, outcome, when};
use crate::UiState;
use crate::session::Session;

fn page(session: &Session, made: Option<Markup>) -> Response {
    let content = html! {
        p.lead { "Scoped tokens for the API: " code { "platform" } " mints placeholders, sandbox identities and connect links; " code { "auditor" } " reads; " code { "user" } " acts for one owner; " code { "admin" } " does everything. egret keeps only each token's hash." }
        @if let Some(m) = made { (m) }
        h2 { "Make a token" }
        form method="post" action="/ui/tokens" {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="t-name" { "Name (the audit log says " code { "token:<name>" } ")" }
            input #t-name type="text" name="name" required pattern="[a-z0-9._-]{1,64}" placeholder="agent-platform";
            label for="t-role" { "Role" }
            select #t-role name="role" {
                option value="platform" { "platform" }
                option value="auditor" { "auditor" }
                option value="user" { "user (one owner)" }
                option value="admin" { "admin" }
            }
            label for="t-owner" { "Owner, for a user token" }
            input #t-owner type="text" name="owner" placeholder="user:alice@example.com";
            label for="t-ttl" { "Lifetime (empty: until revoked)" }
            input #t-ttl type="text" name="ttl" placeholder="90d";
            div.actions { button.primary type="submit" { "Make token" } }
        }
    };
    layout("API tokens", Some(session), content).into_response()
}

pub(crate) async fn list(State(state): State<Arc<UiState>>, headers: HeaderMap) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    match state.service.tokens(&session.principal()).await {
        Ok(tokens) => {
            let table = html! {
                h2 { "Tokens (" (tokens.len()) ")" }
                @if tokens.is_empty() { p.empty { "No API tokens yet." } }
                @else {
                    table {
                        thead { tr { th { "Name" } th { "Role" } th { "Owner" } th { "Created" } th { "Expires" } th { "Last used" } th { "" } } }
                        tbody {
                            @for t in &tokens {
                                tr {
                                    td data-label="Name" { code { (t.name) } }
                                    td data-label="Role" { (t.role) }
                                    td data-label="Owner" { (t.owner.as_ref().map_or("-".to_owned(), ToString::to_string)) }
                                    td data-label="Created" { (when(t.created_at)) }
                                    td data-label="Expires" { (t.expires_at.map_or_else(|| "never".to_owned(), when)) }
                                    td data-label="Last used" { (t.last_used_at.map_or_else(|| "never".to_owned(), when)) }
                                    td {
                                        form method="post" action=(format!("/ui/tokens/{}/revoke", t.name)) {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            button.danger type="submit" aria-label=(format!("Revoke token {}", t.name)) { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            };
            page(&session, Some(table))
        }
        Err(e) => {
            let (status, message) = super::failed(&e);
            super::problem(status, Some(&session), "API tokens", &message, html! {})
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct MakeForm {
    csrf: String,
    name: String,
    role: String,
    owner: Option<String>,
    ttl: Option<String>,
}

pub(crate) async fn create(
    State(state): State<Arc<UiState>>,
    headers: HeaderMap,
    form: Result<Form<MakeForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return outcome(
            StatusCode::BAD_REQUEST,
            None,
            "The form was incomplete; no token was made.",
            html! { p { a href="/ui/tokens" { "Back to API tokens" } } },
        );
    };
    let session = match admin_post(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let new = NewToken {
        name: form.name,
        role: form.role,
        owner: super::filled(form.owner.as_deref()),
        ttl: super::filled(form.ttl.as_deref()),
    };
    match state.service.create_token(&session.principal(), new).await {
        Ok(made) => {
            let shown = html! {
                section.connection role="status" {
                    h2 { "Token " code { (made.info.name) } " (" (made.info.role) ")" }
                    p { "Copy it now: egret keeps only its hash and cannot show it again." }
                    p { code.copy { (made.token.expose_secret()) } }
                }
            };
            page(&session, Some(shown))
        }
        Err(e) => {
            let (status, message) = super::failed(&e);
            outcome(
                status,
                Some(&session),
                &message,
                html! { p { a href="/ui/tokens" { "Back to API tokens" } } },
            )
        }
    }
}

pub(crate) async fn revoke(
    State(state): State<Arc<UiState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let session = match CsrfForm::checked(&state, &headers, form).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    match state.service.revoke_token(&session.principal(), name).await {
        Ok(()) => Redirect::to("/ui/tokens").into_response(),
        Err(e) => {
            let (status, message) = super::failed(&e);
            outcome(
                status,
                Some(&session),
                &message,
                html! { p { a href="/ui/tokens" { "Back to API tokens" } } },
            )
        }
    }
}
