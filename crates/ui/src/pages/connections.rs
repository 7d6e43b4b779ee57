//! Connections (a user, for their owner, arriving by a connect link): what they have
//! connected — when, as whom, its status, missing scopes — with Test, Reconnect and
//! Disconnect, and the connectors available to connect (OAuth: egret's sign-in link;
//! static key: a write-only key field).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use egret_policy::{AuthKind, Connector};
use egret_service::{
    Begun, ConnectLink, ConnectionFilter, ConnectionId, ConnectionName, ConnectionView, GivenKey,
    Labels, LinkUse, Owner,
};
use maud::{Markup, html};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    Refused, anyone, anyone_post, layout, outcome, problem, signed_in, status_label, when,
};
use crate::UiState;
use crate::marks;
use crate::session::{self, Session, Who};

/// `GET /ui/connect/{ticket}`: says whom the link is for and asks to continue. Opening
/// it spends nothing (link previews fetch pages); continuing does.
pub(crate) async fn link(Path(ticket): Path<String>) -> Response {
    let content = html! {
        p { "This link opens your connections in egret: the accounts an AI agent may use on your behalf, without ever holding your passwords or tokens." }
        form method="post" action=(format!("/ui/connect/{ticket}")) {
            button type="submit" { "Continue" }
        }
        p { small { "The link works once, for a short time. If it was sent to you by mistake, close this page." } }
    };
    layout("Your connections", None, content).into_response()
}

/// `POST /ui/connect/{ticket}`: spends the link and opens a session for its owner.
pub(crate) async fn open(
    State(state): State<Arc<UiState>>,
    Path(ticket): Path<String>,
    headers: HeaderMap,
) -> Response {
    let public_url = state.service.policy.load().control.public_url.clone();
    if !session::same_origin(&headers, &public_url) {
        return problem(
            StatusCode::FORBIDDEN,
            None,
            "Not opened",
            "This link was not continued from egret's own page; open the link you were given again.",
            html! {},
        );
    }
    let used = state.service.use_connect_link(ticket).await;
    let link = match used {
        Ok(LinkUse::Fresh(link)) => link,
        Ok(LinkUse::Used) => {
            return problem(
                StatusCode::GONE,
                None,
                "This link was already used",
                "A connect link works once, in the browser that opened it first. Ask for a new link (whoever sent it can make one) and open it in one browser.",
                html! {},
            );
        }
        Ok(LinkUse::Expired) => {
            return problem(
                StatusCode::GONE,
                None,
                "This link has expired",
                "The link is older than its lifetime, or was never issued. Ask for a new one.",
                html! {},
            );
        }
        Err(e) => {
            let (status, message) = super::failed(&e);
            return problem(status, None, "Not opened", &message, html! {});
        }
    };
    signed_in(&state, Who::User(link), "/ui/connections").await
}

/// The owner and scope a session may act for.
fn scope(session: &Session) -> Option<&ConnectLink> {
    match &session.who {
        Who::User(link) | Who::Person { link, .. } => Some(link),
        Who::Admin => None,
    }
}

/// Behind an authenticating proxy (`ui.user_header`, believed only from a peer in
/// `ui.trusted_proxies`): the owner the header names. `Err` when it is there twice: which
/// one the proxy set cannot be told, so neither is believed.
fn proxied_owner(
    state: &UiState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Option<Owner>, String> {
    let policy = state.service.policy.load();
    let Some(name) = policy.ui.user_header.as_deref() else {
        return Ok(None);
    };
    if !policy.ui.trusts(peer.ip()) {
        return Ok(None);
    }
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!(
            "The request carried the {name} header twice, so egret cannot tell whom it names; the proxy in front of egret must send it once."
        ));
    }
    let value = first.to_str().ok().map(str::trim).unwrap_or_default();
    Ok(Owner::parse(&format!("user:{value}")).ok())
}

/// A session for the owner the trusted header names, and back to the page with it.
async fn start_proxied(state: &UiState, owner: Owner) -> Response {
    let expires_at = state
        .service
        .now()
        .saturating_add(i64::try_from(session::USER_LIFETIME.as_secs()).unwrap_or(i64::MAX));
    let who = Who::User(ConnectLink {
        owner,
        connector: None,
        name: None,
        expires_at,
    });
    signed_in(state, who, "/ui/connections").await
}

pub(crate) async fn list(
    State(state): State<Arc<UiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let proxied = match proxied_owner(&state, &headers, peer) {
        Ok(owner) => owner,
        Err(why) => {
            return problem(
                StatusCode::BAD_REQUEST,
                None,
                "Not signed in",
                &why,
                html! {},
            );
        }
    };
    let session = match (anyone(&state, &headers).await, proxied) {
        (Ok(s), Some(owner)) => match &s.who {
            Who::User(link) if link.owner == owner => s,
            // The proxy now names someone else: a session of their own.
            _ => return start_proxied(&state, owner).await,
        },
        (Ok(s), None) => s,
        (Err(_), Some(owner)) => return start_proxied(&state, owner).await,
        (Err(refused), None) => return refused.into_response(),
    };
    let Some(link) = scope(&session) else {
        // Administrators see every owner's connections on their own page; users' pages
        // are opened by connect links.
        return Redirect::to("/ui/all-connections").into_response();
    };
    let policy = state.service.policy.load();
    let mine = match state.service.connections(
        &session.principal(),
        &ConnectionFilter {
            owner: Some(link.owner.clone()),
            ..ConnectionFilter::default()
        },
    ) {
        Ok(mine) => mine,
        Err(e) => {
            let (status, message) = super::failed(&e);
            return problem(
                status,
                Some(&session),
                "Your connections",
                &message,
                html! {},
            );
        }
    };
    let available: Vec<&Connector> = policy
        .connectors
        .iter()
        .filter(|c| {
            c.enabled
                && egret_service::offered(&session.principal(), c, &link.owner)
                && link
                    .connector
                    .as_deref()
                    .is_none_or(|id| id == c.id.as_str())
        })
        .collect();
    let pending = super::approvals::pending_for(&state, &session).await;
    let usage = state
        .service
        .budget_use(mine.iter().map(|c| c.info.id()).collect())
        .await
        .unwrap_or_default();
    let content = html! {
        p.lead { "Signed in as " strong { (link.owner) } ". Agents use these connections through egret; they never see your passwords or tokens." }
        @if !pending.is_empty() {
            h2 { "Pending approvals (" (pending.len()) ")" }
            p { "Agents asked to use your connections for these requests; each waits for you." }
            @for a in &pending { (super::approvals::card(&session, a, "connections")) }
        }
        h2 { "Connected for " (link.owner) " (" (mine.len()) ")" }
        @if mine.is_empty() { p.empty { "Nothing connected yet: connect a service below." } }
        @for (i, c) in mine.iter().enumerate() { (connection(&session, c, policy.connector(&c.info.connector), state.service.narrowing_json(&c.info.id()).as_ref(), usage.get(i).and_then(Option::as_ref))) }
        h2 { "Available" }
        @if available.is_empty() {
            p.empty { "No connectors have been enabled for this account. Ask your administrator to enable the service you need in egret's Connector Settings." }
        }
        @for c in &available { (offer(&session, link, c, &mine)) }
    };
    layout("Your connections", Some(&session), content).into_response()
}

fn connection(
    session: &Session,
    view: &ConnectionView,
    connector: Option<&Connector>,
    narrowing: Option<&serde_json::Value>,
    usage: Option<&egret_service::BudgetUse>,
) -> Markup {
    let (c, health, status) = (&view.info, &view.health, view.status);
    let action = |what: &str| format!("/ui/connections/{}/{what}", c.connector);
    // Reconnecting needs the connector to take new connections.
    let oauth = connector.is_some_and(|k| k.enabled && matches!(k.auth, AuthKind::OAuth2(_)));
    html! {
        section.connection {
            div.card-head {
                (marks::mark(connector.and_then(marks::mark_of)))
                h3 { (c.connector) @if !c.name.is_default() { " · " (c.name) } }
                span.badge.(status_class(status)) { (status_label(status)) }
                @if connector.is_some_and(|k| !k.enabled) {
                    span.badge.off title="It keeps working; nobody can connect it anew." { "Connector disabled" }
                }
            }
            @if let Some(k) = connector { p { small { (marks::vendor_name(k)) } } }
            dl {
                dt { "Connected" } dd { (when(c.connected_at)) }
                dt { "Connected as" } dd { (c.identity_label.as_deref().unwrap_or("-")) }
                // What it counts: requests egret sent with this connection's credential
                // (seen by this egret since it started), not sign-ins or tests.
                @if let Some(last) = health.last_used_at {
                    dt title="The last request an agent sent through egret with this connection's credential, as seen by this egret since it started" { "Last request by an agent" }
                    dd { (when(last)) }
                }
                @if let Some(u) = usage {
                    dt { "Budget" }
                    dd { (u.used) " of " (u.budget) " requests per " (u.per) " used (renews " (when(u.window_ends_at)) "); " (u.used_24h) " in the last 24 hours" }
                }
                @if !view.missing_scopes.is_empty() {
                    dt { "Missing scopes" }
                    dd { (view.missing_scopes.join(" ")) " — the service granted less than asked; Reconnect to ask again." }
                }
                @if status == "needs_reauth" { dt { "What to do" } dd { "Connect again: the service no longer accepts this connection." } }
            }
            (narrow_form(session, view, connector, narrowing))
            form.inline method="post" action=(action("describe")) {
                (hidden(session, &c.name))
                label for=(format!("d-{}-{}", c.connector, c.name)) { "Description (shown to agents)" }
                input type="text" id=(format!("d-{}-{}", c.connector, c.name)) name="description" maxlength="500" value=(c.description.as_deref().unwrap_or(""));
                button type="submit" { "Save" }
            }
            div.actions {
                // Only where the connector has a test request: a button that can only fail
                // is worse than none.
                @if connector.is_some_and(|k| k.test.is_some()) {
                    form method="post" action=(action("test")) { (hidden(session, &c.name)) button type="submit" { "Test" } }
                }
                @if oauth {
                    form method="post" action=(action("connect")) data-popup="signin" { (hidden(session, &c.name)) button type="submit" { "Reconnect" } }
                }
                form method="post" action=(action("remove")) data-confirm=(format!("Disconnect {}? Agents using it stop at once.", c.connector)) {
                    (hidden(session, &c.name))
                    input type="hidden" name="confirm" value="yes";
                    button.danger type="submit" aria-label=(format!("Disconnect {}", c.connector)) { "Disconnect" }
                }
            }
        }
    }
}

/// What the owner lets agents do with this connection, on top of the connector's rules:
/// everything the connector allows, read only, or "ask me first" (each request waits for
/// the owner's approval). A narrowing set through the API shows as its own choice.
fn narrow_form(
    session: &Session,
    view: &ConnectionView,
    connector: Option<&Connector>,
    narrowing: Option<&serde_json::Value>,
) -> Markup {
    let c = &view.info;
    let field = format!("n-{}-{}", c.connector, c.name);
    let current = match narrowing {
        None => "none",
        Some(v) if *v == serde_json::json!({"access": "read_only"}) => "read_only",
        Some(v) if *v == serde_json::json!({"default": "approve"}) => "ask",
        Some(_) => "custom",
    };
    html! {
        form.inline method="post" action=(format!("/ui/connections/{}/narrow", c.connector)) {
            (hidden(session, &c.name))
            label for=(field) { "Agents may" }
            select id=(field) name="narrow" {
                option value="none" selected[current == "none"] {
                    @if connector.is_some_and(|k| !k.access.is_open()) { "do what the connector's rules allow" } @else { "do anything the service allows" }
                }
                option value="read_only" selected[current == "read_only"] { "only read (GET, HEAD, OPTIONS)" }
                option value="ask" selected[current == "ask"] { "ask me first (each request waits for my approval)" }
                @if current == "custom" { option value="custom" selected { "follow the rules set through the API" } }
            }
            button type="submit" { "Save" }
        }
    }
}

/// A connector the user may connect (again, under another name when it allows that).
fn offer(session: &Session, link: &ConnectLink, c: &Connector, mine: &[ConnectionView]) -> Markup {
    let connected = mine.iter().any(|m| m.info.connector == c.id.as_str());
    let name = link.name.clone().unwrap_or_default();
    if connected && !c.multiple_connections {
        return html! {};
    }
    let id = c.id.as_str();
    html! {
        section.offer {
            div.card-head {
                (marks::mark(marks::mark_of(c)))
                h3 { (id) }
                span { small { (marks::vendor_name(c)) } }
            }
            p { small { "Sends your credential only to " (c.egress.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) "." } }
            @match &c.auth {
                AuthKind::OAuth2(_) => {
                    form method="post" action=(format!("/ui/connections/{id}/connect")) data-popup="signin" {
                        (hidden(session, &name))
                        button.primary type="submit" { "Connect" }
                    }
                }
                _ => {
                    form method="post" action=(format!("/ui/connections/{id}/key")) {
                        (hidden(session, &name))
                        @if c.inputs.is_empty() {
                            label for=(format!("k-{id}")) { "API key" }
                            input type="password" id=(format!("k-{id}")) name="key" autocomplete="off" required;
                        } @else {
                            // One write-only field per input: what is typed is never shown again.
                            @for i in &c.inputs {
                                label for=(format!("k-{id}-{}", i.name)) {
                                    (i.name)
                                    @if i.optional { " (optional)" }
                                }
                                input type="password" id=(format!("k-{id}-{}", i.name)) name=(format!("input.{}", i.name)) autocomplete="off" required[!i.optional];
                            }
                        }
                        button.primary type="submit" { "Save key" }
                    }
                }
            }
        }
    }
}

fn hidden(session: &Session, name: &ConnectionName) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(session.csrf);
        input type="hidden" name="name" value=(name);
    }
}

fn status_class(status: &str) -> &'static str {
    match status {
        "connected" => "ok",
        "refresh_failing" => "off",
        _ => "bad",
    }
}

#[derive(Deserialize)]
pub(crate) struct ActionForm {
    csrf: String,
    name: Option<String>,
    key: Option<SecretString>,
    description: Option<String>,
    /// `none`, `read_only`, `ask` (the narrowing form).
    narrow: Option<String>,
    /// `input.<name>`: one value per input of a connector that has several.
    #[serde(flatten)]
    inputs: std::collections::BTreeMap<String, SecretString>,
}

/// `POST /ui/connections/{connector}/{action}`: connect, key, test, describe, remove.
pub(crate) async fn act(
    State(state): State<Arc<UiState>>,
    Path((connector, action)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return back_with(
            None,
            StatusCode::BAD_REQUEST,
            "The form was incomplete; nothing was changed.",
        );
    };
    let session = match anyone_post(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let Some(link) = scope(&session) else {
        return Refused::SignIn.into_response();
    };
    let name = match form.name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => match ConnectionName::parse(n) {
            Ok(n) => n,
            Err(why) => return back_with(Some(&session), StatusCode::BAD_REQUEST, &why),
        },
        None => ConnectionName::default(),
    };
    let conn = ConnectionId::new(&connector, &link.owner, &name);
    let (service, who) = (&state.service, session.principal());
    let done = match action.as_str() {
        "connect" => {
            // Bound to this browser (the one holding this session) from the start: the
            // vendor's URL works nowhere else, and no sign-in link is made.
            let (binding, cookie) = egret_control::sign_in_binding(&headers, state.secure());
            match service.connect_here(&who, &conn, &binding).await {
                Ok(Begun::Bound { vendor_url: url }) | Ok(Begun::Redirect(url)) => {
                    let mut resp = Redirect::to(&url).into_response();
                    resp.headers_mut().insert(header::SET_COOKIE, cookie);
                    // The callback page links back here.
                    resp.headers_mut().append(
                        header::SET_COOKIE,
                        egret_control::return_cookie(true, state.secure()),
                    );
                    return resp;
                }
                Ok(Begun::Connected(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        "key" => {
            let given: Vec<(Option<String>, GivenKey)> = match form.key {
                Some(key) => vec![(None, GivenKey::Value(key))],
                // An optional input left empty is not given.
                None => form
                    .inputs
                    .into_iter()
                    .filter_map(|(field, value)| {
                        let input = field.strip_prefix("input.")?.to_owned();
                        (!value.expose_secret().is_empty())
                            .then_some((Some(input), GivenKey::Value(value)))
                    })
                    .collect(),
            };
            if given.is_empty() {
                return back_with(
                    Some(&session),
                    StatusCode::BAD_REQUEST,
                    "Type the key; nothing was changed.",
                );
            }
            service.store_keys(&who, &conn, given).await.map(drop)
        }
        "test" => match service.test(&who, &conn).await {
            Ok(outcome) if outcome.ok => Ok(()),
            Ok(outcome) => {
                return back_with(
                    Some(&session),
                    StatusCode::OK,
                    &format!("The test of {connector} failed: {}", outcome.message),
                );
            }
            Err(e) => Err(e),
        },
        "describe" => {
            let text = form.description.unwrap_or_default();
            let labels = Labels {
                description: Some((!text.is_empty()).then_some(text)),
                identity_label: None,
            };
            service.update_labels(&who, &conn, labels).await.map(drop)
        }
        "narrow" => {
            let narrowing = match form.narrow.as_deref() {
                Some("none") => None,
                Some("read_only") => Some(serde_json::json!({"access": "read_only"})),
                Some("ask") => Some(serde_json::json!({"default": "approve"})),
                // The API's own rules stay as they are.
                Some("custom") => return Redirect::to("/ui/connections").into_response(),
                _ => {
                    return back_with(
                        Some(&session),
                        StatusCode::BAD_REQUEST,
                        "Choose what agents may do; nothing was changed.",
                    );
                }
            };
            service.narrow(&who, &conn, narrowing).await.map(drop)
        }
        "remove" => service.disconnect(&who, &conn).await.map(drop),
        _ => {
            return back_with(
                Some(&session),
                StatusCode::NOT_FOUND,
                "There is no such action.",
            );
        }
    };
    match done {
        Ok(()) => Redirect::to("/ui/connections").into_response(),
        Err(e) => {
            let (status, message) = super::failed(&e);
            back_with(Some(&session), status, &message)
        }
    }
}

/// A page that says what happened, with the way back to the Connections page.
fn back_with(session: Option<&Session>, status: StatusCode, what: &str) -> Response {
    outcome(
        status,
        session,
        what,
        html! { p { a href="/ui/connections" { "Back to your connections" } } },
    )
}
