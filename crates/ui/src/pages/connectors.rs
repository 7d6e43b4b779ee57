//! Connector Settings (administrators): every connector with its vendor, auth kind,
//! egress domains, whether it takes new connections, where it is defined, and its
//! connections by status; connectors created through the control plane can be enabled
//! and disabled here.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use egret_policy::{AuthKind, Connector, Grant, Source};
use egret_service::{ConnectionFilter, NewLink, Owner, ServiceError};
use maud::{Markup, html};
use serde::Deserialize;

use super::{CsrfForm, admin, admin_post, layout, outcome};
use crate::UiState;
use crate::marks;
use crate::session::Session;

pub(crate) async fn list(State(state): State<Arc<UiState>>, headers: HeaderMap) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    settings_page(&state, &session, None).into_response()
}

/// A connect-link form that was refused: whose card, what was typed, and why.
struct LinkRefused<'a> {
    connector: &'a str,
    typed: &'a str,
    why: &'a str,
}

fn settings_page(
    state: &UiState,
    session: &Session,
    refused: Option<&LinkRefused<'_>>,
) -> axum::response::Html<String> {
    let policy = state.service.policy.load();
    let content = html! {
        @if policy.connectors.is_empty() {
            (first_run())
        } @else {
            @if let Some(r) = refused {
                p.problem role="alert" { "No link made for " (r.connector) ": see the field marked below." }
            }
            p.lead { "Disabling a connector stops new connections to it; existing connections keep working. "
                "Deleting one is the kill switch: every connection to it stops at once." }
            @if session.who.may_change() { p { a.button.primary href="/ui/connectors/new" { "Add connector" } } }
            @for c in &policy.connectors {
                (card(state, session, c, refused.filter(|r| r.connector == c.id.as_str())))
            }
        }
    };
    layout("Connector Settings", Some(session), content)
}

/// What an administrator sees before there is any connector: the three steps, and the
/// way to take the first.
fn first_run() -> Markup {
    html! {
        section.first-run aria-labelledby="first-run" {
            h2 #first-run { "Add your first connector" }
            p { "A connector is a service agents may call on a user's behalf: its vendor, its OAuth app or key, and the hosts its credential may be sent to." }
            ol {
                li { "Add a connector: pick the vendor (Databricks, GitHub, Slack, Google, Atlassian, any OpenID Connect provider) or an API key." }
                li { "Send each user a connect link: they sign in to the vendor, and egret keeps the token sealed in its vault." }
                li { "Give the sandbox egret's proxy and placeholders: egret swaps them for the real credential, only toward the connector's hosts." }
            }
            p { a.button.primary href="/ui/connectors/new" { "Add your first connector" } }
            small { "Connectors can also live in the policy file (README, Policy reference); egret reloads it when it changes." }
        }
    }
}

fn card(
    state: &UiState,
    session: &Session,
    c: &Connector,
    refused: Option<&LinkRefused<'_>>,
) -> Markup {
    let owner_field = format!("o-{}", c.id);
    let counts = by_status(state, session, c.id.as_str());
    let total: usize = counts.values().sum();
    html! {
        section.connector aria-labelledby=(format!("c-{}", c.id)) {
            div.card-head {
                (marks::mark(marks::mark_of(c)))
                h2 id=(format!("c-{}", c.id)) { (c.id) }
                @if c.enabled { span.badge.ok { "Enabled" } } @else { span.badge.off { "Disabled" } }
                @match c.source {
                    Source::Policy => span.badge title="Change it in the policy file; egret reloads it on save." { "Policy file (read-only)" },
                    Source::Api => span.badge { "Created here or through the API" },
                }
            }
            dl {
                dt { "Vendor" } dd { (marks::vendor_name(c)) }
                dt { "Authentication" } dd { (auth(c)) }
                @if let AuthKind::OAuth2(o) = &c.auth {
                    dt { "OAuth app" }
                    dd {
                        "Client id " code { (o.client_id) } "; client secret: "
                        @match &o.client_secret {
                            None => "none (public client)",
                            // Never a part of the value: where it lives, or that it is sealed.
                            Some(egret_policy::SecretRef::Stored(_)) => "sealed in egret's vault",
                            Some(reference) => code { (reference.to_string()) },
                        }
                    }
                    @if !o.scopes.is_empty() { dt { "Scopes" } dd { (o.scopes.join(" ")) } }
                }
                dt { "Egress domains" }
                dd {
                    ul.hosts { @for h in &c.egress { li { code { (h) } } } }
                    small { "Allow these in the sandbox's network policy: credentials are sent to them only." }
                }
                dt { "What agents may do" }
                dd {
                    @if c.access.is_open() { "anything the credential allows (no request rules)" }
                    @else { ul.rules { @for line in c.access.summaries() { li { code { (line) } } } } }
                    @if let Some(b) = c.budget {
                        p { small {
                            "Budget per connection: "
                            @if let Some((n, per)) = b.requests { (n) " requests per " (humantime::format_duration(per)) }
                            @if let Some(k) = b.concurrent { @if b.requests.is_some() { ", " } (k) " at once" }
                        } }
                    }
                }
                dt { "Connections" }
                dd {
                    @if total == 0 { "none yet: send a connect link below" }
                    @else {
                        ul.counts { @for (status, n) in &counts { li { (n) " " (status) } } }
                        a href=(format!("/ui/all-connections?connector={}", c.id)) { "See whose" }
                    }
                }
            }
            @if let Some(r) = refused.filter(|_| !session.who.may_change()) {
                p.problem role="alert" { (super::prose(r.why)) }
            }
            @if c.enabled && session.who.may_change() {
                form.link method="post" action=(format!("/ui/connectors/{}/link", c.id)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for=(owner_field) { "Send a connect link to" }
                    @if let Some(r) = refused {
                        input type="text" id=(owner_field) name="owner" value=(r.typed) required
                            aria-invalid="true" aria-describedby=(format!("{owner_field}-error"));
                        button type="submit" { "Make link" }
                        p.field-error id=(format!("{owner_field}-error")) { (super::prose(r.why)) }
                    } @else {
                        input type="text" id=(owner_field) name="owner" placeholder="user:alice@example.com" required;
                        button type="submit" { "Make link" }
                    }
                }
            }
            @if c.source == Source::Api && session.who.may_change() { (rules_form(session, c)) }
            @if c.source == Source::Api && session.who.may_change() {
                section.danger-zone aria-label=(format!("Danger zone for {}", c.id)) {
                    h3 { "Danger zone" }
                    div.actions {
                        form method="post" action=(format!("/ui/connectors/{}/enabled", c.id)) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            @if c.enabled {
                                input type="hidden" name="enabled" value="false";
                                button.danger type="submit" { "Disable" }
                            } @else {
                                input type="hidden" name="enabled" value="true";
                                button type="submit" { "Enable" }
                            }
                        }
                        a.button.danger href=(format!("/ui/connectors/{}/delete", c.id)) { "Delete…" }
                    }
                    small { "Disable: no new connections, existing ones keep working. Delete: every connection to it stops at once." }
                }
            }
        }
    }
}

fn auth(c: &Connector) -> String {
    match &c.auth {
        AuthKind::OAuth2(o) => match o.grant {
            Grant::AuthorizationCode => "OAuth 2.0, each user signs in".to_owned(),
            Grant::ClientCredentials => "OAuth 2.0 client credentials".to_owned(),
        },
        AuthKind::AwsSigV4(aws) => format!(
            "AWS keys ({}): egret signs each request (SigV4)",
            aws.region
        ),
        AuthKind::Hmac(_) => format!("Keys ({}): egret signs each request (HMAC)", input_names(c)),
        AuthKind::ApiKey if !c.inputs.is_empty() => format!("Static keys ({})", input_names(c)),
        AuthKind::ApiKey => "Static key".to_owned(),
    }
}

fn input_names(c: &Connector) -> String {
    c.inputs
        .iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The connector's connections by status, as listings show it.
fn by_status(state: &UiState, session: &Session, connector: &str) -> BTreeMap<&'static str, usize> {
    let filter = ConnectionFilter {
        connector: Some(connector.to_owned()),
        ..ConnectionFilter::default()
    };
    let mut counts = BTreeMap::new();
    for c in state
        .service
        .connections(&session.principal(), &filter)
        .unwrap_or_default()
    {
        *counts.entry(c.status).or_insert(0) += 1;
    }
    counts
}

#[derive(Deserialize)]
pub(crate) struct EnabledForm {
    csrf: String,
    enabled: String,
}

pub(crate) async fn set_enabled(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<EnabledForm>, FormRejection>,
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
    let enabled = form.enabled == "true";
    match state
        .service
        .set_connector_enabled(&session.principal(), &id, enabled)
        .await
    {
        Ok(_) => Redirect::to("/ui/connectors").into_response(),
        Err(e) => back_failed(&session, &e),
    }
}

/// The rules of a connector made here or through the API, one per line, to edit:
/// `ACTION METHODS PATH [reason]` (`deny DELETE /repos/** agents never delete`). Rules
/// with query or body conditions are edited through the API.
fn rules_form(session: &Session, c: &Connector) -> Markup {
    let editable = c
        .access
        .rules
        .iter()
        .all(|r| r.query.is_empty() && r.body.is_empty());
    let id = c.id.as_str();
    let text: String = c
        .access
        .rules
        .iter()
        .map(|r| {
            let methods = if r.methods.is_empty() {
                "*".to_owned()
            } else {
                r.methods.join(",")
            };
            let reason = r
                .reason
                .as_deref()
                .map(|w| format!(" {w}"))
                .unwrap_or_default();
            format!("{} {methods} {}{reason}\n", r.action.as_str(), r.path)
        })
        .collect();
    html! {
        details.rules-editor {
            summary { "Edit request rules" }
            @if editable {
                form method="post" action=(format!("/ui/connectors/{id}/rules")) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for=(format!("access-{id}")) { "Access" }
                    select id=(format!("access-{id}")) name="access" {
                        option value="full" selected[!c.access.read_only] { "Full (the rules decide)" }
                        option value="read_only" selected[c.access.read_only] { "Read only (GET, HEAD, OPTIONS; GraphQL queries)" }
                    }
                    label for=(format!("rules-{id}")) { "Rules, first match wins: " code { "ACTION METHODS PATH reason" } }
                    textarea id=(format!("rules-{id}")) name="rules" rows="5" placeholder="deny DELETE /repos/** agents never delete repositories" { (text) }
                    label for=(format!("default-{id}")) { "When no rule matches" }
                    select id=(format!("default-{id}")) name="default" {
                        @for a in ["allow", "deny", "approve"] {
                            option value=(a) selected[c.access.default.as_str() == a] { (a) }
                        }
                    }
                    div.actions { button.primary type="submit" { "Save rules" } }
                }
            } @else {
                p { "This connector's rules match queries or bodies; change them through the API (" code { "PATCH /v1/connectors/" (id) } ")." }
            }
        }
    }
}

/// `POST /ui/connectors/{id}/rules`.
#[derive(serde::Deserialize)]
pub(crate) struct RulesForm {
    csrf: String,
    access: String,
    rules: String,
    default: String,
}

/// One line of the rules editor as the policy's rule entry.
fn rule_of_line(line: &str) -> Result<serde_json::Value, String> {
    let mut parts = line.split_whitespace();
    let (Some(action), Some(methods), Some(path)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "`{line}` needs an action, methods and a path, e.g. `deny DELETE /repos/**`"
        ));
    };
    let reason: Vec<&str> = parts.collect();
    let mut rule = serde_json::json!({ "action": action, "path": path });
    if methods != "*" {
        rule["methods"] = serde_json::json!(methods.split(',').collect::<Vec<_>>());
    }
    if !reason.is_empty() {
        rule["reason"] = serde_json::json!(reason.join(" "));
    }
    Ok(rule)
}

pub(crate) async fn set_rules(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<RulesForm>, FormRejection>,
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
    let rules: Result<Vec<serde_json::Value>, String> = form
        .rules
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(rule_of_line)
        .collect();
    let rules = match rules {
        Ok(r) => r,
        Err(why) => {
            return back(
                Some(&session),
                StatusCode::BAD_REQUEST,
                &format!("{why}; nothing was changed."),
            );
        }
    };
    let patch =
        serde_json::json!({ "access": form.access, "rules": rules, "default": form.default });
    match state
        .service
        .patch_connector(&session.principal(), &id, patch)
        .await
    {
        Ok(_) => Redirect::to("/ui/connectors").into_response(),
        Err(e) => back_failed(&session, &e),
    }
}

/// `GET /ui/connectors/{id}/delete`: says what deleting erases, and asks to confirm.
pub(crate) async fn confirm_delete(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let filter = ConnectionFilter {
        connector: Some(id.clone()),
        ..ConnectionFilter::default()
    };
    let n = state
        .service
        .connections(&session.principal(), &filter)
        .map_or(0, |c| c.len());
    let content = html! {
        p role="alert" { "Deleting " strong { (id) } " erases it and " strong { (n) " connection(s)" }
            " with their tokens and placeholders, at once: agents using them are refused from the next request. This cannot be undone." }
        form method="post" action=(format!("/ui/connectors/{id}/delete")) {
            input type="hidden" name="csrf" value=(session.csrf);
            button.danger type="submit" { "Delete " (id) }
        }
        p { a href="/ui/connectors" { "Keep it" } }
    };
    layout("Delete connector", Some(&session), content).into_response()
}

pub(crate) async fn delete(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let session = match CsrfForm::checked(&state, &headers, form).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    match state
        .service
        .delete_connector(&session.principal(), &id)
        .await
    {
        Ok(_) => Redirect::to("/ui/connectors").into_response(),
        Err(e) => back_failed(&session, &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct LinkForm {
    csrf: String,
    owner: String,
}

/// `POST /ui/connectors/{id}/link`: a connect link for one owner, shown to copy.
pub(crate) async fn link(
    State(state): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<LinkForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return back(
            None,
            StatusCode::BAD_REQUEST,
            "Give the owner, e.g. user:alice@example.com.",
        );
    };
    let session = match admin_post(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    // A refusal comes back on Connector Settings, beside the field, with what was typed.
    let again = |status: StatusCode, why: &str| {
        let refused = LinkRefused {
            connector: &id,
            typed: form.owner.trim(),
            why,
        };
        (status, settings_page(&state, &session, Some(&refused))).into_response()
    };
    let owner = match Owner::parse(form.owner.trim()) {
        Ok(o) => o,
        Err(why) => return again(StatusCode::BAD_REQUEST, &why),
    };
    let new = NewLink {
        owner,
        connector: Some(id.clone()),
        name: None,
        ttl: None,
    };
    let made = state
        .service
        .make_connect_link(&session.principal(), new)
        .await;
    match made {
        Ok(link) => {
            let content = html! {
                p { "Send this link to " strong { (link.owner) } ". It opens their connections in egret, once, until " (super::when(link.expires_at)) "." }
                p.copyable { code.copy data-copy { (link.url) } }
                p { a href="/ui/connectors" { "Back to Connector Settings" } }
            };
            layout("Connect link", Some(&session), content).into_response()
        }
        Err(e) => {
            let (status, why) = super::failed(&e);
            again(status, &why)
        }
    }
}

fn back_failed(session: &Session, e: &ServiceError) -> Response {
    let (status, message) = super::failed(e);
    back(Some(session), status, &message)
}

fn back(session: Option<&Session>, status: StatusCode, what: &str) -> Response {
    outcome(
        status,
        session,
        what,
        html! { a href="/ui/connectors" { "Back to Connector Settings" } },
    )
}
