//! All connections (administrators): every owner's connections, filtered by connector,
//! owner and status, with Test, Refresh now, Disconnect and a connect link for the owner.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use egret_policy::AuthKind;
use egret_service::{ConnectionFilter, ConnectionId, ConnectionName, NewLink, Owner};
use maud::html;
use serde::Deserialize;

use super::{admin, admin_post, filled, layout, outcome, status_label, when};
use crate::UiState;
use crate::session::Session;

#[derive(Deserialize, Default)]
pub(crate) struct Filter {
    connector: Option<String>,
    owner: Option<String>,
    status: Option<String>,
}

pub(crate) async fn list(
    State(state): State<Arc<UiState>>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let (connector, owner, status) = (
        filled(filter.connector.as_deref()),
        filled(filter.owner.as_deref()),
        filled(filter.status.as_deref()),
    );
    let policy = state.service.policy.load();
    let filter = ConnectionFilter {
        connector: connector.clone(),
        owner: owner.as_deref().and_then(|o| Owner::parse(o).ok()),
        name: None,
        status: status.clone(),
    };
    let rows = match state.service.connections(&session.principal(), &filter) {
        Ok(rows) => rows,
        Err(e) => {
            let (code, message) = super::failed(&e);
            return super::problem(code, Some(&session), "All connections", &message, html! {});
        }
    };
    let content = html! {
        form.filter method="get" action="/ui/all-connections" {
            label for="f-connector" { "Connector" }
            input #f-connector type="text" name="connector" value=(connector.as_deref().unwrap_or(""));
            label for="f-owner" { "Owner" }
            input #f-owner type="text" name="owner" value=(owner.as_deref().unwrap_or(""));
            label for="f-status" { "Status" }
            select #f-status name="status" {
                option value="" { "Any" }
                @for s in ["connected", "refresh_failing", "needs_reauth", "connector_removed"] {
                    option value=(s) selected[status.as_deref() == Some(s)] { (status_label(s)) }
                }
            }
            button type="submit" { "Filter" }
            @if connector.is_some() || owner.is_some() || status.is_some() {
                a href="/ui/all-connections" { "Clear" }
            }
        }
        @if rows.is_empty() {
            @if connector.is_none() && owner.is_none() && status.is_none() {
                p.empty { "Nobody has connected yet. Send a connect link from Connector Settings: each user signs in to the service, and their connection shows here." }
            } @else {
                p.empty { "No connections match." }
            }
        }
        @else {
            p { (summary(&rows)) }
            table {
                thead { tr { th { "Connector" } th { "Owner" } th { "Name" } th { "Status" } th { "Connected as" } th { "Connected" } th title="The last request an agent sent through egret with the connection's credential (this egret, since it started)" { "Last agent request" } th { "Actions" } } }
                tbody {
                    @for view in &rows {
                        @let (c, s, used) = (&view.info, view.status, view.health.last_used_at);
                        tr {
                            td data-label="Connector" { (c.connector) } td data-label="Owner" { (c.owner) } td data-label="Name" { (c.name) }
                            td data-label="Status" { span.badge { (status_label(s)) } }
                            td data-label="Connected as" { (c.identity_label.as_deref().unwrap_or("-")) }
                            td data-label="Connected" { (when(c.connected_at)) }
                            td data-label="Last agent request" { (used.map_or_else(|| "-".to_owned(), when)) }
                            td.actions {
                                @let oauth = policy.connector(&c.connector).is_some_and(|k| matches!(k.auth, AuthKind::OAuth2(_)));
                                @for (action, label) in [("test", "Test"), ("refresh", "Refresh now"), ("link", "Connect link"), ("remove", "Disconnect")] {
                                    @if (action != "refresh" || oauth) && session.who.may_change() {
                                        form method="post" action=(format!("/ui/all-connections/{}/{action}", c.connector)) {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            input type="hidden" name="owner" value=(c.owner);
                                            input type="hidden" name="name" value=(c.name);
                                            @if action == "remove" {
                                                button.danger type="submit" aria-label=(format!("{label}: {} of {}", c.connector, c.owner)) { (label) }
                                            } @else {
                                                button type="submit" aria-label=(format!("{label}: {} of {}", c.connector, c.owner)) { (label) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("All connections", Some(&session), content).into_response()
}

/// "3 connections of 2 owners: alice (2), bob (1)": whose, not only how many.
fn summary(rows: &[egret_service::ConnectionView]) -> String {
    let mut by_owner = std::collections::BTreeMap::new();
    for view in rows {
        *by_owner
            .entry(view.info.owner.to_string())
            .or_insert(0usize) += 1;
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let owners: Vec<String> = by_owner
        .iter()
        .map(|(owner, n)| format!("{owner} ({n})"))
        .collect();
    format!(
        "{} of {}: {}",
        plural(rows.len(), "connection"),
        plural(by_owner.len(), "owner"),
        owners.join(", ")
    )
}

#[derive(Deserialize)]
pub(crate) struct ActForm {
    csrf: String,
    owner: String,
    name: Option<String>,
}

pub(crate) async fn act(
    State(state): State<Arc<UiState>>,
    Path((connector, action)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<ActForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return back(
            None,
            StatusCode::BAD_REQUEST,
            "The form was incomplete; nothing was changed.",
        );
    };
    let session = match admin_post(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let (owner, name) = match (
        Owner::parse(&form.owner),
        ConnectionName::parse(form.name.as_deref().unwrap_or(ConnectionName::DEFAULT)),
    ) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(why), _) | (_, Err(why)) => {
            return back(Some(&session), StatusCode::BAD_REQUEST, &why);
        }
    };
    let conn = ConnectionId::new(&connector, &owner, &name);
    let (service, who) = (&state.service, session.principal());
    let done = match action.as_str() {
        "test" => match service.test(&who, &conn).await {
            Ok(o) => {
                let verdict = if o.ok { "works" } else { "failed" };
                return back(
                    Some(&session),
                    StatusCode::OK,
                    &format!("The test of {conn} {verdict}: {}", o.message),
                );
            }
            Err(e) => Err(e),
        },
        "refresh" => service.refresh_now(&who, &conn).await,
        "remove" => service.disconnect(&who, &conn).await.map(drop),
        "link" => {
            let new = NewLink {
                owner: owner.clone(),
                connector: Some(connector.clone()),
                name: (!name.is_default()).then(|| name.clone()),
                ttl: None,
            };
            match service.make_connect_link(&who, new).await {
                Ok(link) => {
                    let content = html! {
                        p { "Send this link to " strong { (link.owner) } " to connect " (connector) " again. It works once, until " (when(link.expires_at)) "." }
                        p.copyable { code.copy data-copy { (link.url) } }
                        p { a href="/ui/all-connections" { "Back to all connections" } }
                    };
                    return layout("Connect link", Some(&session), content).into_response();
                }
                Err(e) => Err(e),
            }
        }
        _ => {
            return back(
                Some(&session),
                StatusCode::NOT_FOUND,
                "There is no such action.",
            );
        }
    };
    match done {
        Ok(()) => Redirect::to("/ui/all-connections").into_response(),
        Err(e) => {
            let (status, message) = super::failed(&e);
            back(Some(&session), status, &message)
        }
    }
}

fn back(session: Option<&Session>, status: StatusCode, what: &str) -> Response {
    outcome(
        status,
        session,
        what,
        html! { a href="/ui/all-connections" { "Back to all connections" } },
    )
}
