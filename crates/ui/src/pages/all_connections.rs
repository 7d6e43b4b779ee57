//! All connections (administrators): every owner's connections, filtered by connector,
//! owner and status, with Test, Refresh now, Disconnect and a connect link for the owner.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use egret_policy::AuthKind;
use egret_vault::{ConnectionId, ConnectionName, Owner};
use maud::html;
use serde::Deserialize;

use super::{admin, admin_post, filled, layout, outcome, when};
use crate::UiState;

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
    let session = match admin(&state, &headers) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let (connector, owner, status) = (
        filled(filter.connector.as_deref()),
        filled(filter.owner.as_deref()),
        filled(filter.status.as_deref()),
    );
    let owner_parsed = owner.as_deref().and_then(|o| Owner::parse(o).ok());
    let policy = state.control.policy.load();
    let rows: Vec<_> = state
        .control
        .vault
        .connections(connector.as_deref(), owner_parsed.as_ref())
        .into_iter()
        .map(|c| {
            let removed = state
                .control
                .vault
                .connector_removed_at(&c.connector)
                .is_some();
            let health = state.control.broker.health(&c.id());
            let s = health.status(&c, removed);
            (c, s, health.last_used_at)
        })
        .filter(|(_, s, _)| status.as_deref().is_none_or(|want| want == *s))
        .collect();
    let content = html! {
        form.filter method="get" action="/ui/all-connections" {
            label for="f-connector" { "Connector" }
            input #f-connector type="text" name="connector" value=(connector.as_deref().unwrap_or(""));
            label for="f-owner" { "Owner" }
            input #f-owner type="text" name="owner" value=(owner.as_deref().unwrap_or(""));
            label for="f-status" { "Status" }
            select #f-status name="status" {
                option value="" { "any" }
                @for s in ["connected", "refresh_failing", "needs_reauth", "connector_removed"] {
                    option value=(s) selected[status.as_deref() == Some(s)] { (s) }
                }
            }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() { p.empty { "No connections match." } }
        @else {
            table {
                thead { tr { th { "Connector" } th { "Owner" } th { "Name" } th { "Status" } th { "Connected as" } th { "Connected" } th { "Last used" } th { "Actions" } } }
                tbody {
                    @for (c, s, used) in &rows {
                        tr {
                            td data-label="Connector" { (c.connector) } td data-label="Owner" { (c.owner) } td data-label="Name" { (c.name) }
                            td data-label="Status" { span.badge { (s) } }
                            td data-label="Connected as" { (c.identity_label.as_deref().unwrap_or("-")) }
                            td data-label="Connected" { (when(c.connected_at)) }
                            td data-label="Last used" { (used.map_or_else(|| "-".to_owned(), when)) }
                            td.actions {
                                @let oauth = policy.connector(&c.connector).is_some_and(|k| matches!(k.auth, AuthKind::OAuth2(_)));
                                @for (action, label) in [("test", "Test"), ("refresh", "Refresh now"), ("link", "Connect link"), ("remove", "Disconnect")] {
                                    @if action != "refresh" || oauth {
                                        form method="post" action=(format!("/ui/all-connections/{}/{action}", c.connector)) {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            input type="hidden" name="owner" value=(c.owner);
                                            input type="hidden" name="name" value=(c.name);
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
    };
    layout("All connections", Some(&session), content).into_response()
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
            StatusCode::BAD_REQUEST,
            "The form was incomplete; nothing was changed.",
        );
    };
    let session = match admin_post(&state, &headers, &form.csrf) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let (owner, name) = match (
        Owner::parse(&form.owner),
        ConnectionName::parse(form.name.as_deref().unwrap_or(ConnectionName::DEFAULT)),
    ) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(why), _) | (_, Err(why)) => return back(StatusCode::BAD_REQUEST, &why),
    };
    let conn = ConnectionId::new(&connector, &owner, &name);
    let control = &state.control;
    let done = match action.as_str() {
        "test" => match egret_control::actions::test(control, &conn).await {
            Ok(o) => {
                let verdict = if o.ok { "works" } else { "failed" };
                return back(
                    StatusCode::OK,
                    &format!("The test of {conn} {verdict}: {}", o.message),
                );
            }
            Err(e) => Err(e),
        },
        "refresh" => egret_control::actions::refresh_now(control, &conn).await,
        "remove" => egret_control::actions::disconnect(control, &conn)
            .await
            .map(drop),
        "link" => {
            let name = (!name.is_default()).then(|| name.to_string());
            match egret_control::make_connect_link(
                control,
                owner.as_str(),
                Some(connector.clone()),
                name,
                None,
            )
            .await
            {
                Ok(link) => {
                    let content = html! {
                        p { "Send this link to " strong { (link.owner) } " to connect " (connector) " again. It works once, until " (when(link.expires_at)) "." }
                        p { code.copy { (link.url) } }
                        p { a href="/ui/all-connections" { "Back to all connections" } }
                    };
                    return layout("Connect link", Some(&session), content).into_response();
                }
                Err(e) => Err(e),
            }
        }
        _ => return back(StatusCode::NOT_FOUND, "There is no such action."),
    };
    match done {
        Ok(()) => Redirect::to("/ui/all-connections").into_response(),
        Err(e) => back(e.status, &e.message),
    }
}

fn back(status: StatusCode, what: &str) -> Response {
    outcome(
        status,
        what,
        html! { a href="/ui/all-connections" { "Back to all connections" } },
    )
}
