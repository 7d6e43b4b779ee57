//! Sandboxes and placeholders (administrators): the sandbox identities and the live
//! placeholders — by hint, never the placeholder — each revocable at once.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use egret_service::PlaceholderRef;
use maud::html;

use super::{CsrfForm, admin, layout, outcome, when};
use crate::UiState;

pub(crate) async fn page(State(state): State<Arc<UiState>>, headers: HeaderMap) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let who = session.principal();
    let listed = state.service.sandboxes(&who).and_then(|sandboxes| {
        let placeholders = state.service.placeholders_by_id(&who)?;
        Ok((sandboxes, placeholders))
    });
    let (sandboxes, placeholders) = match listed {
        Ok(listed) => listed,
        Err(e) => {
            let (status, message) = super::failed(&e);
            return super::problem(
                status,
                Some(&session),
                "Sandboxes and placeholders",
                &message,
                html! {},
            );
        }
    };
    let revoke = |action: String, label: String| {
        html! {
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(session.csrf);
                button.danger type="submit" aria-label=(label) { "Revoke" }
            }
        }
    };
    let content = html! {
        h2 { "Sandboxes" }
        p.lead { "Identities sandboxes present to the proxy (" code { "proxy.auth: basic" } "). Revoking one stops its requests and the placeholders bound to it at once." }
        @if sandboxes.is_empty() { p.empty { "No sandbox identities." } }
        @else {
            table {
                thead { tr { th { "Sandbox" } th { "Created" } th { "Expires" } th { "" } } }
                tbody {
                    @for s in &sandboxes {
                        tr {
                            td data-label="Sandbox" { code { (s.id) } } td data-label="Created" { (when(s.created_at)) }
                            td data-label="Expires" { (s.expires_at.map_or_else(|| "never".to_owned(), when)) }
                            td { @if session.who.may_change() { (revoke(format!("/ui/sandboxes/{}/revoke", s.id), format!("Revoke sandbox {}", s.id))) } }
                        }
                    }
                }
            }
        }
        h2 { "Placeholders" }
        p.lead { "Live placeholders by their hint; the placeholder itself is never stored or shown." }
        @if placeholders.is_empty() { p.empty { "No live placeholders." } }
        @else {
            table {
                thead { tr { th { "Hint" } th { "Connection" } th { "Sandbox" } th { "Created" } th { "Expires" } th { "" } } }
                tbody {
                    @for (id, p) in &placeholders {
                        tr {
                            td data-label="Hint" { code { (p.hint) } }
                            td data-label="Connection" { (p.connection()) }
                            td data-label="Sandbox" { (p.sandbox.as_deref().unwrap_or("-")) }
                            td data-label="Created" { (when(p.created_at)) }
                            td data-label="Expires" { (p.expires_at.map_or_else(|| "never".to_owned(), when)) }
                            td { @if session.who.may_change() { (revoke(format!("/ui/placeholders/{id}/revoke"), format!("Revoke placeholder {}", p.hint))) } }
                        }
                    }
                }
            }
        }
    };
    layout("Sandboxes and placeholders", Some(&session), content).into_response()
}

/// `POST /ui/sandboxes/{id}/revoke`.
pub(crate) async fn revoke_sandbox(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    revoke(state, Kind::Sandbox, id, headers, form).await
}

/// `POST /ui/placeholders/{id}/revoke` (the id the page shows, never the placeholder).
pub(crate) async fn revoke_placeholder(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    revoke(state, Kind::Placeholder, id, headers, form).await
}

enum Kind {
    Sandbox,
    Placeholder,
}

async fn revoke(
    state: Arc<UiState>,
    what: Kind,
    id: String,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let session = match CsrfForm::checked(&state, &headers, form).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let who = session.principal();
    let done = match what {
        Kind::Sandbox => state.service.revoke_sandbox(&who, &id).await,
        Kind::Placeholder => {
            state
                .service
                .revoke_placeholder(&who, PlaceholderRef::Id(id))
                .await
        }
    };
    match done {
        Ok(()) => Redirect::to("/ui/sandboxes").into_response(),
        Err(e) => outcome(
            super::failed(&e).0,
            Some(&session),
            &e.to_string(),
            html! { a href="/ui/sandboxes" { "Back to sandboxes" } },
        ),
    }
}
