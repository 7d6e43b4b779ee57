//! Approvals: requests a rule holds until a person decides. A user decides those about
//! their own connections (on their Connections page, under "Pending approvals", and on
//! an approval's own page, the URL an agent shows its user); an administrator decides
//! every one (the Approvals page). What is shown of a request never holds a credential:
//! the body preview has placeholders and secret-named values redacted.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use egret_service::{Approval, ApprovalFilter, ApprovalStatus, Decision, Grant};
use maud::{Markup, html};
use serde::Deserialize;

use super::{anyone, anyone_post, layout, outcome, problem, when};
use crate::UiState;
use crate::session::{Session, Who};

/// `POST /ui/approvals/{id}/decide`.
#[derive(Deserialize)]
pub(crate) struct DecideForm {
    csrf: String,
    /// `once`, `1h` or `deny`.
    decision: String,
    note: Option<String>,
    /// Where to go back to: `connections` or the approval's page.
    back: Option<String>,
}

/// `METHOD host/path?query`.
fn request_line(a: &Approval) -> String {
    let query = a
        .query
        .as_deref()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    format!("{} {}{}{query}", a.method, a.host, a.path)
}

fn status_word(s: ApprovalStatus) -> &'static str {
    match s {
        ApprovalStatus::Pending => "Waiting for a decision",
        ApprovalStatus::Approved => "Approved",
        ApprovalStatus::Denied => "Denied",
        ApprovalStatus::Expired => "Expired undecided",
    }
}

fn status_class(s: ApprovalStatus) -> &'static str {
    match s {
        ApprovalStatus::Pending => "off",
        ApprovalStatus::Approved => "ok",
        ApprovalStatus::Denied => "bad",
        ApprovalStatus::Expired => "plain",
    }
}

/// One approval as a card: the request, why it is held, and (when pending) the decision
/// form. `back` is where the form returns.
pub(crate) fn card(session: &Session, a: &Approval, back: &str) -> Markup {
    let note_id = format!("note-{}", a.id);
    html! {
        section.connection.approval id=(a.id) {
            div.card-head {
                h3 { code { (request_line(a)) } }
                span.badge.(status_class(a.status)) { (status_word(a.status)) }
            }
            dl {
                dt { "Connection" } dd { (a.connector) " · " (a.owner) @if !a.name.is_default() { " · " (a.name) } }
                dt { "Why it waits" } dd { (a.reason) " (rule " code { (a.rule) } ")" }
                dt { "Sandbox" } dd { (a.sandbox.as_deref().unwrap_or("-")) }
                dt { "Asked" } dd { (when(a.created_at)) }
                @if a.status == ApprovalStatus::Pending { dt { "Open until" } dd { (when(a.expires_at)) } }
                @if let Some(by) = &a.decided_by {
                    dt { "Decided" } dd { "by " (by) @if let Some(at) = a.decided_at { ", " (when(at)) } }
                    @if let Some(until) = a.grant_until { dt { "Covers until" } dd { (when(until)) " (every request of this rule, connection and sandbox)" } }
                    @if let Some(n) = &a.note { dt { "Note" } dd { (n) } }
                }
            }
            @if !a.body_preview.is_empty() {
                details {
                    summary { "Request body (first 4 KiB; placeholders and secrets hidden)" }
                    pre { (a.body_preview) }
                }
            }
            @if a.status == ApprovalStatus::Pending && session.who.may_change() {
                form.decide method="post" action=(format!("/ui/approvals/{}/decide", a.id)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="back" value=(back);
                    label for=(note_id) { "Note (optional; the agent and the audit log see it)" }
                    input type="text" id=(note_id) name="note" maxlength="500";
                    div.actions {
                        button.primary type="submit" name="decision" value="once" { "Approve once" }
                        button type="submit" name="decision" value="1h" { "Approve for 1 h" }
                        button.danger type="submit" name="decision" value="deny" { "Deny" }
                    }
                }
            }
        }
    }
}

/// The pending approvals `session` may decide, newest first (for the Connections page).
pub(crate) async fn pending_for(state: &UiState, session: &Session) -> Vec<Approval> {
    let filter = ApprovalFilter {
        status: Some(ApprovalStatus::Pending),
        ..ApprovalFilter::default()
    };
    state
        .service
        .approvals(&session.principal(), filter)
        .await
        .unwrap_or_default()
}

/// `GET /ui/approvals`: pending first, then the decided ones of the last week.
pub(crate) async fn list(State(state): State<Arc<UiState>>, headers: HeaderMap) -> Response {
    let session = match anyone(&state, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let all = match state
        .service
        .approvals(&session.principal(), ApprovalFilter::default())
        .await
    {
        Ok(all) => all,
        Err(e) => {
            let (status, message) = super::failed(&e);
            return problem(status, Some(&session), "Approvals", &message, html! {});
        }
    };
    let (pending, decided): (Vec<&Approval>, Vec<&Approval>) = all
        .iter()
        .partition(|a| a.status == ApprovalStatus::Pending);
    let whose = match &session.who {
        Who::Admin => "every connection".to_owned(),
        Who::User(link) => format!("the connections of {}", link.owner),
        Who::Person { link, role } if role == "user" => {
            format!("the connections of {}", link.owner)
        }
        Who::Person { .. } => "every connection".to_owned(),
    };
    let content = html! {
        p.lead { "Requests agents made that a rule holds until a person decides, for " (whose) ". Approving sends the request (or lets its retry through); denying tells the agent, with your note." }
        h2 { "Pending (" (pending.len()) ")" }
        @if pending.is_empty() { p.empty { "Nothing is waiting for a decision." } }
        @for a in &pending { (card(&session, a, "approvals")) }
        h2 { "Decided or expired (" (decided.len()) ")" }
        @if decided.is_empty() { p.empty { "No decisions in the last week." } }
        @else {
            table {
                thead { tr { th { "Request" } th { "Connection" } th { "Status" } th { "Decided by" } th { "Asked" } } }
                tbody {
                    @for a in &decided {
                        tr {
                            td data-label="Request" { a href=(format!("/ui/approvals/{}", a.id)) { code { (request_line(a)) } } }
                            td data-label="Connection" { (a.connector) " · " (a.owner) }
                            td data-label="Status" { (status_word(a.status)) }
                            td data-label="Decided by" { (a.decided_by.as_deref().unwrap_or("-")) }
                            td data-label="Asked" { (when(a.created_at)) }
                        }
                    }
                }
            }
        }
    };
    layout("Approvals", Some(&session), content).into_response()
}

/// `GET /ui/approvals/{id}`: the page an agent sends its user to.
pub(crate) async fn show(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let session = match anyone(&state, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    match state.service.approval(&session.principal(), id).await {
        Ok(a) => {
            let content = html! {
                p.lead { "An agent asked to make this request with a connection's credential; a rule holds it until a person decides." }
                (card(&session, &a, &format!("approval:{}", a.id)))
                p { a href="/ui/approvals" { "All approvals" } }
            };
            layout("Approval", Some(&session), content).into_response()
        }
        Err(e) => {
            let (status, message) = super::failed(&e);
            problem(
                status,
                Some(&session),
                "Approval",
                &message,
                html! { p { a href="/ui/approvals" { "All approvals" } } },
            )
        }
    }
}

/// `POST /ui/approvals/{id}/decide`.
pub(crate) async fn decide(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<DecideForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return outcome(
            StatusCode::BAD_REQUEST,
            None,
            "The form was incomplete; nothing was decided.",
            html! { p { a href="/ui/approvals" { "Back to approvals" } } },
        );
    };
    let session = match anyone_post(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let note = form.note.filter(|n| !n.trim().is_empty());
    let decision = match form.decision.as_str() {
        "once" => Decision::Approve {
            grant: Grant::Once,
            note,
        },
        "1h" => Decision::Approve {
            grant: Grant::For(std::time::Duration::from_secs(3600)),
            note,
        },
        "deny" => Decision::Deny { note },
        _ => {
            return outcome(
                StatusCode::BAD_REQUEST,
                Some(&session),
                "Choose Approve once, Approve for 1 h or Deny; nothing was decided.",
                html! { p { a href="/ui/approvals" { "Back to approvals" } } },
            );
        }
    };
    let back = match form.back.as_deref() {
        Some("connections") => "/ui/connections".to_owned(),
        Some(other) if other.starts_with("approval:") => format!("/ui/approvals/{id}"),
        _ => "/ui/approvals".to_owned(),
    };
    match state
        .service
        .decide_approval(&session.principal(), id, decision)
        .await
    {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => {
            let (status, message) = super::failed(&e);
            outcome(
                status,
                Some(&session),
                &message,
                html! { p { a href=(back) { "Back" } } },
            )
        }
    }
}
