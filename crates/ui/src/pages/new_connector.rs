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
use axum::response::{Html, IntoResponse, Redirect, Response};
use egret_policy::templates::{TEMPLATES, Template};
use egret_service::{ConnectorEntry, NewAuth, NewConnector};
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::{admin, admin_post, layout, problem};
use crate::UiState;
use crate::marks;
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
    let draft = Draft {
        fields: BTreeMap::new(),
        problem: None,
    };
    page(&state, &session, kind.kind.as_deref(), &draft).into_response()
}

/// What the administrator typed (never the client secret) and what is wrong with it.
struct Draft {
    fields: BTreeMap<String, String>,
    /// The field that is wrong (`None`: the form as a whole) and why.
    problem: Option<(Option<String>, String)>,
}

impl Draft {
    fn value(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }

    fn error(&self, field: &str) -> Option<&str> {
        match &self.problem {
            Some((Some(f), why)) if f == field => Some(why),
            _ => None,
        }
    }
}

/// The chooser, or the form for `kind` filled from `draft`.
fn page(state: &UiState, session: &Session, kind: Option<&str>, draft: &Draft) -> Html<String> {
    let (title, content) = match kind {
        Some("api_key") => ("Add connector: API key", static_key_form(session, draft)),
        Some(name) => match TEMPLATES.iter().find(|t| t.oauth && t.name == name) {
            Some(t) => (t.title, template_form(state, session, t, draft)),
            None => ("Add connector", chooser()),
        },
        None => ("Add connector", chooser()),
    };
    let title = if title.starts_with("Add connector") {
        title.to_owned()
    } else {
        format!("Add connector: {title}")
    };
    layout(&title, Some(session), content)
}

fn chooser() -> Markup {
    html! {
        p.lead { "Choose what the connector connects to. Each user then connects their own account; the sandbox only ever holds a placeholder." }
        ul.choices {
            @for t in TEMPLATES.iter().filter(|t| t.oauth) {
                li {
                    a href=(format!("/ui/connectors/new?kind={}", t.name)) {
                        (marks::mark(Some(t.name)))
                        span { strong { (t.title) } span.summary { (t.summary) } }
                    }
                }
            }
            li {
                a href="/ui/connectors/new?kind=api_key" {
                    (marks::mark(None))
                    span { strong { "API key" } span.summary { "A key each owner stores, sent only to the hosts you name (OpenAI, Stripe, any bearer-token or header-key API)." } }
                }
            }
        }
    }
}

/// A text field with its label, help, what was typed and, when wrong, why (announced and
/// tied to the field).
fn field(draft: &Draft, name: &str, label: &str, required: bool, help: &str) -> Markup {
    let id = name.replace('.', "-");
    let error = draft.error(name);
    let help_id = format!("{id}-help");
    let error_id = format!("{id}-error");
    let described = match error {
        Some(_) => format!("{error_id} {help_id}"),
        None => help_id.clone(),
    };
    html! {
        label for=(id) { (label) @if required { " " abbr title="required" { "*" } } }
        input type="text" id=(id) name=(name) value=(draft.value(name)) required[required]
            aria-invalid=[error.map(|_| "true")] aria-describedby=(described);
        @if let Some(why) = error { p.field-error id=(error_id) { (why) } }
        small id=(help_id) { (help) }
    }
}

/// The form-wide problem, when there is one that no single field owns.
fn form_problem(draft: &Draft) -> Markup {
    html! {
        @if let Some((None, why)) = &draft.problem {
            p.problem role="alert" { "Not saved: " (why) }
        } @else if draft.problem.is_some() {
            p.problem role="alert" { "Not saved: see the field marked below." }
        }
    }
}

fn id_field(draft: &Draft) -> Markup {
    field(
        draft,
        "id",
        "Connector id",
        true,
        "Lower-case letters, digits, - and _. Users and agents see it.",
    )
}

fn template_form(state: &UiState, session: &Session, t: &Template, draft: &Draft) -> Markup {
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
    let typed_secret = draft.problem.is_some();
    html! {
        aside.guide aria-labelledby="guide" {
            h2 #guide { "Setup Guide" }
            ol {
                li { (t.console) }
                li { "Redirect URI to register: " span.copyable { code.copy data-copy { (redirect) } } }
                li { "What egret fills in: " (t.summary) "." }
                li { "Paste the app's client id and secret here and save. The connector is enabled at once: send each user a connect link from Connector Settings." }
            }
        }
        (form_problem(draft))
        form method="post" action="/ui/connectors/new" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="kind" value=(t.name);
            (id_field(draft))
            @for setting in t.settings {
                (field(draft, &format!("setting.{}", setting.key), setting.label, true, &capitalized(setting.help)))
            }
            (field(draft, "client_id", "Client id", true, "The OAuth app's client id, from the vendor's console."))
            label for="client_secret" { "Client secret" }
            input #client_secret type="password" name="client_secret" autocomplete="off" aria-describedby="client_secret-help";
            small #client_secret-help {
                @if typed_secret { strong { "Type the client secret again: " } "a secret is never sent back to the page. " }
                "Write-only: sealed in egret's vault, never shown again."
            }
            (field(draft, "scopes", "Scopes", false, "Space-separated; leave empty for the template's."))
            @if t.needs_egress {
                (field(draft, "egress", "Egress domains", true, "Space-separated hosts the token may be sent to, e.g. api.example.com"))
            } @else {
                (field(draft, "egress", "Egress domains", false, "Space-separated hosts the token may be sent to; leave empty for the template's."))
            }
            (test_field(draft))
            button.primary type="submit" { "Save connector" }
        }
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The read-only request **Test** makes (templates bring their own "who am I").
fn test_field(draft: &Draft) -> Markup {
    field(
        draft,
        "test_path",
        "Test request",
        false,
        "A read-only GET path on the first egress domain (e.g. /v1/me) that answers 200 when the connection works. Leave empty for the template's, if it has one.",
    )
}

fn static_key_form(session: &Session, draft: &Draft) -> Markup {
    html! {
        (form_problem(draft))
        form method="post" action="/ui/connectors/new" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="kind" value="api_key";
            (id_field(draft))
            (field(draft, "egress", "Egress domains", true, "Space-separated hosts the key may be sent to, e.g. api.example.com *.example.net"))
            (field(draft, "header", "Header the key goes in", false, "Besides Authorization: Bearer, e.g. x-api-key. Leave empty for Authorization only."))
            (test_field(draft))
            button.primary type="submit" { "Save connector" }
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
    let Ok(Form(mut fields)) = form else {
        return problem(
            StatusCode::BAD_REQUEST,
            None,
            "Not saved",
            "The form was incomplete; nothing was saved.",
            html! { p { a href="/ui/connectors/new" { "Start again" } } },
        );
    };
    let csrf = fields.get("csrf").map(String::as_str).unwrap_or_default();
    let session = match admin_post(&state, &headers, csrf).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let problem = match new_connector(&fields) {
        Err(wrong) => wrong,
        Ok(new) => {
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
                Ok(_) => return Redirect::to("/ui/connectors").into_response(),
                Err(e) => (
                    field_of(&e.to_string()).map(str::to_owned),
                    super::failed(&e).1,
                ),
            }
        }
    };
    // The same form again, as typed, with the problem beside its field; the secret is
    // not sent back.
    fields.remove("client_secret");
    fields.remove("csrf");
    let kind = fields.get("kind").cloned();
    let draft = Draft {
        fields,
        problem: Some(problem),
    };
    let page = page(&state, &session, kind.as_deref(), &draft);
    (StatusCode::BAD_REQUEST, page).into_response()
}

/// The form field a refusal is about, where its words say so.
fn field_of(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    if m.contains("egress") || m.contains("host") {
        Some("egress")
    } else if m.contains("client id") || m.contains("client_id") {
        Some("client_id")
    } else if m.contains("scope") {
        Some("scopes")
    } else if m.contains("test") {
        Some("test_path")
    } else if m.contains("header") {
        Some("header")
    } else if m.contains("connector id") || m.contains("already exists") || m.contains("`id`") {
        Some("id")
    } else {
        None
    }
}

/// The connector the form describes, or the field that is wrong and why.
fn new_connector(
    fields: &BTreeMap<String, String>,
) -> Result<NewConnector, (Option<String>, String)> {
    let get = |k: &str| fields.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let missing = |field: &str, why: &str| (Some(field.to_owned()), why.to_owned());
    let id = get("id")
        .ok_or_else(|| missing("id", "Give the connector an id."))?
        .to_owned();
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
        Some("api_key") => {
            if get("egress").is_none() {
                return Err(missing("egress", "Name the hosts the key may be sent to."));
            }
            NewAuth::ApiKey {
                header: get("header").map(str::to_owned),
            }
        }
        Some(name) => {
            let Some(template) = TEMPLATES.iter().find(|t| t.oauth && t.name == name) else {
                return Err((None, "Choose a vendor or an API key.".to_owned()));
            };
            for setting in template.settings {
                let name = format!("setting.{}", setting.key);
                if get(&name).is_none() {
                    return Err(missing(&name, &format!("Give the {}.", setting.label)));
                }
            }
            if template.needs_egress && get("egress").is_none() {
                return Err(missing(
                    "egress",
                    "Name the hosts the token may be sent to: this vendor has no default.",
                ));
            }
            NewAuth::Template {
                template: template.name.to_owned(),
                settings: fields
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((k.strip_prefix("setting.")?.to_owned(), v.trim().to_owned()))
                    })
                    .collect(),
                client_id: get("client_id")
                    .ok_or_else(|| missing("client_id", "Give the app's client id."))?
                    .to_owned(),
                client_secret: get("client_secret").map(|s| SecretString::from(s.to_owned())),
                scopes: words("scopes"),
            }
        }
        None => return Err((None, "Choose a vendor or an API key.".to_owned())),
    };
    Ok(NewConnector {
        id,
        auth,
        egress: words("egress"),
        test_path: get("test_path").map(str::to_owned),
    })
}
