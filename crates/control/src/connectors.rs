//! Connectors: list and show (file and API ones alike; secrets shown only as the
//! reference to where they live, or masked), and create / change / delete the ones that
//! live in the vault. Policy-file connectors are read-only here.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use egret_policy::{AuthKind, ClientAuth, Connector, Grant, Source};
use egret_webhooks::{Event, EventSink};
use serde_json::{Value, json};

use crate::ControlState;
use crate::error::ApiError;
use crate::lifecycle::PurgeError;

pub(crate) async fn create(
    State(state): State<Arc<ControlState>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(entry) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a connector entry as JSON: {}",
            e.body_text()
        ))
    })?;
    let view = create_connector(&state, entry).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Creates a connector from an entry of the policy file's form (its
/// `oauth.client_secret` the value, sealed in the vault); returns its view.
pub async fn create_connector(state: &Arc<ControlState>, entry: Value) -> Result<Value, ApiError> {
    let connector = egret_policy::parse_api_connector(&entry).map_err(ApiError::bad_request)?;
    let id = connector.id.to_string();
    if state.policy.load().connector(&id).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("connector `{id}` already exists; change it with PATCH /v1/connectors/{id}"),
        ));
    }
    // Its kept connections would start sending their credentials to the new one's hosts.
    if let Some(since) = state.vault.connector_removed_at(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "connector_removed",
            format!(
                "connector `{id}` left the policy file at {} and its connections are kept for its return; put it back in the file, or erase them first with `egret connector purge {id}`",
                crate::lifecycle::format_unix(since)
            ),
        ));
    }
    state
        .blocking(move |s| {
            s.vault.put_api_connector(&id, &entry)?;
            s.lifecycle.refresh()?;
            s.vault.audit("connector.create", Some(&id), None, None)?;
            Ok(view_now(&s.policy.load(), &id))
        })
        .await
}

/// JSON merge patch (RFC 7396) onto the stored entry: `{"enabled": false}` disables.
pub(crate) async fn update(
    State(state): State<Arc<ControlState>>,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(patch) = body.map_err(|e| {
        ApiError::bad_request(format!("expected a JSON merge patch: {}", e.body_text()))
    })?;
    api_only(&state, &id)?;
    if patch
        .get("id")
        .is_some_and(|v| v.as_str() != Some(id.as_str()))
    {
        return Err(ApiError::bad_request(
            "a connector's id cannot change; create a new one",
        ));
    }
    let view = state
        .blocking(move |s| patch_connector(s, &id, &patch))
        .await?;
    Ok(Json(view))
}

/// Applies a JSON merge patch to a connector created through the control plane, puts
/// it in force and audits it; returns its view. Blocks (the vault syncs): call it off
/// the async workers ([`ControlState::blocking`]).
pub fn patch_connector(s: &ControlState, id: &str, patch: &Value) -> Result<Value, ApiError> {
    api_only(s, id)?;
    let (_, mut entry) = s
        .vault
        .api_connectors()?
        .into_iter()
        .find(|(k, _)| k == id)
        .ok_or_else(|| ApiError::unknown_connector(id))?;
    merge_patch(&mut entry, patch);
    egret_policy::parse_api_connector(&entry).map_err(ApiError::bad_request)?;
    s.vault.put_api_connector(id, &entry)?;
    s.lifecycle.refresh()?;
    let fields: Vec<&str> = patch
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    s.vault.audit(
        "connector.update",
        Some(id),
        None,
        Some(format!("changed: {}", fields.join(", "))),
    )?;
    Ok(view_now(&s.policy.load(), id))
}

/// The kill switch: the connector, its connections, tokens and placeholders go in one
/// vault transaction; the next request using any of them is refused.
pub(crate) async fn remove(
    State(state): State<Arc<ControlState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let erased = delete_connector(&state, &id).await?;
    Ok(Json(
        json!({ "deleted": true, "connections_erased": erased }),
    ))
}

/// The kill switch for a connector created through the control plane: it, its
/// connections, tokens and placeholders go in one vault transaction. Returns how many
/// connections were erased.
pub async fn delete_connector(state: &Arc<ControlState>, id: &str) -> Result<usize, ApiError> {
    api_only(state, id)?;
    let connector = id.to_owned();
    let erased = state
        .blocking(move |s| {
            let erased = s.vault.erase_connector(&connector)?;
            s.lifecycle.refresh()?;
            s.vault.audit(
                "connector.delete",
                Some(&connector),
                None,
                Some(format!(
                    "{} erased, with the placeholders",
                    crate::lifecycle::connections_word(erased)
                )),
            )?;
            Ok(erased)
        })
        .await?;
    state.webhooks.emit(Event::connector_deleted(
        id,
        "deleted through the control plane",
        u64::try_from(erased).unwrap_or(u64::MAX),
    ));
    Ok(erased)
}

/// Erases at once what a connector gone from the policy file kept (its retention not
/// yet ended); 409 while it is in force, 404 when nothing is stored.
pub(crate) async fn purge(
    State(state): State<Arc<ControlState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let connector = id.clone();
    let erased = state
        .blocking(move |s| {
            s.lifecycle.purge(&id).map_err(|e| match e {
                PurgeError::InForce(_) => {
                    ApiError::new(StatusCode::CONFLICT, "connector_in_force", e.to_string())
                }
                PurgeError::NothingStored(_) => {
                    ApiError::new(StatusCode::NOT_FOUND, "nothing_to_purge", e.to_string())
                }
                PurgeError::Vault(v) => v.into(),
            })
        })
        .await?;
    state.webhooks.emit(Event::connector_deleted(
        &connector,
        "removed from the policy file, and purged",
        u64::try_from(erased).unwrap_or(u64::MAX),
    ));
    Ok(Json(
        json!({ "purged": true, "connections_erased": erased }),
    ))
}

/// 404 for unknown ids, 409 for connectors the policy file manages.
fn api_only(state: &ControlState, id: &str) -> Result<(), ApiError> {
    let policy = state.policy.load();
    match policy.connector(id).map(|c| c.source) {
        None => Err(ApiError::unknown_connector(id)),
        Some(Source::Policy) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "managed_by_policy",
            format!(
                "connector `{id}` is defined in the policy file {}; change it there (egret reloads the file)",
                policy.source.display()
            ),
        )),
        Some(Source::Api) => Ok(()),
    }
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// The connectors in force, and those gone from the file whose connections are kept.
pub(crate) async fn list(State(state): State<Arc<ControlState>>) -> Json<Value> {
    let policy = state.policy.load();
    let removed: Vec<Value> = state
        .vault
        .removed_connectors()
        .into_iter()
        .map(|(id, since)| {
            json!({
                "id": id,
                "removed_at": since,
                "purge_at": policy.removed_purge_at(since),
                "connections": state.vault.connections(Some(&id), None).len(),
            })
        })
        .collect();
    Json(json!({
        "connectors": policy.connectors.iter().map(connector_view).collect::<Vec<_>>(),
        "removed": removed,
    }))
}

pub(crate) async fn get(
    State(state): State<Arc<ControlState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let policy = state.policy.load();
    let connector = policy
        .connector(&id)
        .ok_or_else(|| ApiError::unknown_connector(&id))?;
    Ok(Json(connector_view(connector)))
}

/// The connector `id` as the policy now in force has it (after an install or a change).
fn view_now(policy: &egret_policy::Policy, id: &str) -> Value {
    policy.connector(id).map(connector_view).unwrap_or_default()
}

/// A connector as operators see it, resolved (template defaults filled in), with
/// secrets only as the reference to where they live.
pub fn connector_view(c: &Connector) -> Value {
    let mut v = json!({
        "id": c.id.as_str(),
        "auth": c.auth.name(),
        "egress": c.egress.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "inject": { "headers": c.inject.headers, "query": c.inject.query },
        "enabled": c.enabled,
        "source": c.source.name(),
        "scan_answers": c.scan_answers,
    });
    if let Some(t) = &c.template {
        v["template"] = json!(t);
    }
    if let Some(t) = &c.test {
        v["test"] = json!({ "method": t.method, "url": t.url, "expect": t.expect, "identity_field": t.identity_field });
    }
    if let Some(r) = c.rate_limit {
        v["rate_limit"] = json!({
            "requests": r.requests,
            "per": humantime::format_duration(r.per).to_string(),
        });
    }
    v["env"] = c
        .env
        .iter()
        .map(|(name, what)| (name.clone(), json!(what.name())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    if let AuthKind::OAuth2(o) = &c.auth {
        v["grant"] = json!(match o.grant {
            Grant::AuthorizationCode => "authorization_code",
            Grant::ClientCredentials => "client_credentials",
        });
        v["oauth"] = json!({
            "authorize_url": o.authorize_url,
            "token_url": o.token_url,
            "issuer": o.issuer,
            "revocation_url": o.revocation_url,
            "client_id": o.client_id,
            // A reference (where the secret lives) or, for API connectors, a masked value.
            "client_secret": o.client_secret.as_ref().map(ToString::to_string),
            "scopes": o.scopes,
            "pkce": o.pkce,
            "client_auth": match o.client_auth { ClientAuth::Basic => "basic", ClientAuth::Post => "post" },
            "extra_params": o.extra_params,
            "refresh_skew_seconds": o.refresh_skew.as_secs(),
            "timeout_seconds": o.timeout.as_secs_f64(),
        });
    }
    v
}
