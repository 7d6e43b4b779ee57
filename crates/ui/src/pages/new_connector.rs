//! Add Connector (administrators): choose a vendor template or a static key, then a form
//! with that template's fields — required ones marked, the client secret write-only —
//! beside a Setup Guide: the redirect URI to register at the vendor and where in its
//! console to do so.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use egret_policy::templates::{TEMPLATES, Template};
use egret_service::{ConnectorEntry, NewAuth, NewConnector};
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::{admin, admin_post, layout, problem};
use crate::UiState;
use crate::session::Session;

/// The kind a form is for: a template's name, or `api_key`.
#[derive(Deserialize)]
pub(crate) struct Kind {
    kind: Option<String>,
}

pub(crate) async fn form(
    State(state): State<Arc<UiState>>,
    headers: HeaderMap,
    Query(kind): Query<Kind>,
) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let content = match kind.kind.as_deref() {
        None => chooser(),
        Some("api_key") => static_key_form(&session),
        Some(name) => match TEMPLATES.iter().find(|t| t.name == name) {
            Some(t) => template_form(&state, &session, t),
            None => chooser(),
        },
    };
    layout("Add connector", Some(&session), content).into_response()
}

fn chooser() -> Markup {
    html! {
        p { "Choose what the connector connects to." }
        ul.choices {
            @for t in TEMPLATES {
                li { a href=(format!("/ui/connectors/new?kind={}", t.name)) { (t.name) } " — " (t.summary) }
            }
            li { a href="/ui/connectors/new?kind=api_key" { "Static API key" } " — a key each owner stores, sent to the hosts you name" }
        }
    }
}

fn id_field() -> Markup {
    html! {
        label for="id" { "Connector id " abbr title="required" { "*" } }
        input #id type="text" name="id" required pattern="[a-z0-9_-]+" maxlength="64";
        small { "Lower-case letters, digits, - and _. Users and agents see it." }
    }
}

fn template_form(state: &UiState, session: &Session, t: &Template) -> Markup {
    let redirect = format!(
        "{}/oauth/callback",
        state
            .service
            .policy
            .load()
            .control
            .public_url
            .trim_end_matches('/')
    );
    html! {
        aside.guide aria-labelledby="guide" {
            h2 #guide { "Setup Guide" }
            ol {
                li { (t.console) }
                li { "Redirect URI to register: " code.copy { (redirect) } }
                li { "What egret fills in: " (t.summary) "." }
                li { "Paste the app's client id and secret here and save; then enable it and send users a connect link." }
            }
        }
        form method="post" action="/ui/connectors/new" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="kind" value=(t.name);
            (id_field())
            @for (key, what) in t.settings {
                label for=(format!("s-{key}")) { (key) " " abbr title="required" { "*" } }
                input type="text" id=(format!("s-{key}")) name=(format!("setting.{key}")) required;
                small { (what) }
            }
            label for="client_id" { "Client id " abbr title="required" { "*" } }
            input #client_id type="text" name="client_id" required;
            label for="client_secret" { "Client secret" }
            input #client_secret type="password" name="client_secret" autocomplete="off";
            small { "Write-only: sealed in egret's vault, never shown again." }
            label for="scopes" { "Scopes" }
            input #scopes type="text" name="scopes";
            small { "Space-separated; leave empty for the template's." }
            label for="egress" { "Egress domains" }
            input #egress type="text" name="egress";
            small { "Space-separated hosts the token may be sent to; leave empty for the template's." }
            (test_field())
            button type="submit" { "Save" }
        }
    }
}

/// The read-only request **Test** makes (templates bring their own "who am I").
fn test_field() -> Markup {
    html! {
        label for="test_path" { "Test request" }
        input #test_path type="text" name="test_path" placeholder="/v1/me";
        small { "A read-only GET on the first egress domain that answers 200 when the connection works. Leave empty for the template's, if it has one." }
    }
}

fn static_key_form(session: &Session) -> Markup {
    html! {
        form method="post" action="/ui/connectors/new" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="kind" value="api_key";
            (id_field())
            label for="egress" { "Egress domains " abbr title="required" { "*" } }
            input #egress type="text" name="egress" required;
            small { "Space-separated hosts the key may be sent to, e.g. api.example.com *.example.net" }
            label for="header" { "Header the key goes in" }
            input #header type="text" name="header";
            small { "Besides Authorization: Bearer, e.g. x-api-key. Leave empty for Authorization only." }
            (test_field())
            button type="submit" { "Save" }
        }
    }
}

/// `POST /ui/connectors/new`: the form's fields as a connector entry, created as the API
/// creates one; the form is not shown again with the secret in it.
pub(crate) async fn create(
    State(state): State<Arc<UiState>>,
    headers: HeaderMap,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(fields)) = form else {
        return again(
            StatusCode::BAD_REQUEST,
            "The form was incomplete; nothing was saved.",
        );
    };
    let csrf = fields.get("csrf").map(String::as_str).unwrap_or_default();
    let session = match admin_post(&state, &headers, csrf).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let new = match new_connector(&fields) {
        Ok(new) => new,
        Err(why) => return again(StatusCode::BAD_REQUEST, &why),
    };
    let created = match ConnectorEntry::try_from(new) {
        Ok(entry) => {
            state
                .service
                .create_connector(&session.principal(), entry)
                .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(_) => Redirect::to("/ui/connectors").into_response(),
        Err(e) => {
            let (status, message) = super::failed(&e);
            again(status, &message)
        }
    }
}

/// The connector the form describes.
fn new_connector(fields: &BTreeMap<String, String>) -> Result<NewConnector, String> {
    let get = |k: &str| fields.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let id = get("id").ok_or("give the connector an id")?.to_owned();
    let words = |k: &str| -> Vec<String> {
        get(k)
            .map(|v| {
                v.split([' ', ','])
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let auth = match get("kind") {
        Some("api_key") => NewAuth::ApiKey {
            header: get("header").map(str::to_owned),
        },
        Some(template) if TEMPLATES.iter().any(|t| t.name == template) => NewAuth::Template {
            template: template.to_owned(),
            settings: fields
                .iter()
                .filter_map(|(k, v)| {
                    Some((k.strip_prefix("setting.")?.to_owned(), v.trim().to_owned()))
                })
                .collect(),
            client_id: get("client_id")
                .ok_or("give the app's client id")?
                .to_owned(),
            client_secret: get("client_secret").map(|s| SecretString::from(s.to_owned())),
            scopes: words("scopes"),
        },
        _ => return Err("choose a template or a static key".to_owned()),
    };
    Ok(NewConnector {
        id,
        auth,
        egress: words("egress"),
        test_path: get("test_path").map(str::to_owned),
    })
}

fn again(status: StatusCode, what: &str) -> Response {
    problem(
        status,
        "Not saved",
        what,
        html! { p { a href="/ui/connectors/new" { "Start again" } " · " a href="/ui/connectors" { "Connector Settings" } } },
    )
}
