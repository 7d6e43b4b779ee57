//! What can be done to one connection, whoever asks — the API's handlers or the web
//! UI's forms: each checks what it must, does it, audits it, and tells the webhooks.

use std::sync::Arc;

use axum::http::StatusCode;
use egret_oauth::Begun;
use egret_policy::{AuthKind, EventKind};
use egret_vault::{ConnectionId, ConnectionInfo};
use egret_webhooks::{Event, EventSink};
use secrecy::SecretString;

use crate::error::ApiError;
use crate::{ControlState, TestOutcome};

/// The connector `id` names, or the 404 that says it is unknown.
fn known<'p>(
    policy: &'p egret_policy::Policy,
    id: &str,
) -> Result<&'p egret_policy::Connector, ApiError> {
    policy
        .connector(id)
        .ok_or_else(|| ApiError::unknown_connector(id))
}

/// Whether a static key may be stored for `conn` now: the connector exists, is enabled,
/// takes static keys, and the owner's other connections leave room.
pub fn may_store_key(state: &ControlState, conn: &ConnectionId) -> Result<(), ApiError> {
    let policy = state.policy.load();
    let id = conn.connector.as_str();
    let c = known(&policy, id)?;
    if !c.enabled {
        return Err(disabled(id));
    }
    if let AuthKind::OAuth2(_) = c.auth {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "wrong_auth_kind",
            format!(
                "connector `{id}` uses OAuth 2.0, not a static key; connect it with `egret connection connect`"
            ),
        ));
    }
    one_per_owner(state, c, conn)
}

/// Stores (or replaces) a static key; callers check [`may_store_key`] first.
pub async fn store_key(
    state: &Arc<ControlState>,
    conn: &ConnectionId,
    key: SecretString,
) -> Result<ConnectionInfo, ApiError> {
    let c = conn.clone();
    let info = state
        .blocking(move |s| {
            let info = s.vault.put_api_key(&c, &key)?;
            s.vault.audit_connection("connection.set_key", &c, None)?;
            Ok(info)
        })
        .await?;
    state.webhooks.emit(Event::connection(
        EventKind::ConnectionConnected,
        conn,
        "connected",
        "a key was stored",
    ));
    Ok(info)
}

/// Changes what people write on a connection (a string sets, `None` inside clears):
/// at most 500 characters of description and 200 of "connected as", on one line.
pub async fn update_labels(
    state: &Arc<ControlState>,
    conn: &ConnectionId,
    labels: egret_vault::Labels,
) -> Result<ConnectionInfo, ApiError> {
    for (field, value, max) in [
        ("description", &labels.description, 500),
        ("identity_label", &labels.identity_label, 200),
    ] {
        if let Some(Some(text)) = value
            && (text.chars().count() > max || text.chars().any(char::is_control))
        {
            return Err(ApiError::bad_request(format!(
                "`{field}` must be at most {max} characters, without control characters"
            )));
        }
    }
    let fields: Vec<&str> = [
        labels.description.is_some().then_some("description"),
        labels.identity_label.is_some().then_some("identity_label"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let detail = format!("changed: {}", fields.join(", "));
    let c = conn.clone();
    state
        .blocking(move |s| {
            let info = s.vault.update_labels(&c, labels)?;
            s.vault
                .audit_connection("connection.update", &c, Some(detail))?;
            Ok(info)
        })
        .await
}

/// Disconnects: revokes an OAuth grant at the vendor when it can, and erases the
/// connection and its placeholders in any case. Returns what the vendor said of the
/// revocation (`revoked`, `not_supported`, `failed: …`).
pub async fn disconnect(
    state: &Arc<ControlState>,
    conn: &ConnectionId,
) -> Result<String, ApiError> {
    let policy = state.policy.load_full();
    let (removed, revocation) = state
        .broker
        .disconnect(policy.connector(&conn.connector), conn)
        .await?;
    if !removed {
        return Err(not_found(conn));
    }
    let revoked = match &revocation {
        None => "not_supported".to_owned(),
        Some(Ok(())) => "revoked".to_owned(),
        Some(Err(e)) => format!("failed: {e}"),
    };
    let detail = revocation
        .is_some()
        .then(|| format!("vendor revocation: {revoked}"));
    let c = conn.clone();
    state
        .blocking(move |s| {
            s.vault.audit_connection("connection.remove", &c, detail)?;
            Ok(())
        })
        .await?;
    state.webhooks.emit(Event::connection(
        EventKind::ConnectionRemoved,
        conn,
        "removed",
        "disconnected",
    ));
    Ok(revoked)
}

/// One real, read-only request with the connection's credential (renewed first when
/// due); the outcome is audited and kept for the listing.
pub async fn test(state: &Arc<ControlState>, conn: &ConnectionId) -> Result<TestOutcome, ApiError> {
    let policy = state.policy.load_full();
    let id = conn.connector.as_str();
    let c = known(&policy, id)?;
    if state.vault.connection(conn).is_none() {
        return Err(not_found(conn));
    }
    let outcome = state.tester.test(c, conn).await.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_test_request",
            format!(
                "connector `{id}` has no test request; add `test: {{method: GET, path: /…, expect: 200}}` to it (templates bring their identity request)"
            ),
        )
    })?;
    state.broker.record_test(conn, outcome.ok, outcome.status);
    let detail = format!(
        "{}: {}",
        if outcome.ok { "ok" } else { "failed" },
        outcome.message
    );
    if let Some(who) = outcome.identity.clone() {
        fill_identity(state, conn, who).await?;
    }
    let c = conn.clone();
    state
        .blocking(move |s| {
            s.vault
                .audit_connection("connection.test", &c, Some(detail))?;
            Ok(())
        })
        .await?;
    Ok(outcome)
}

/// Starts connecting an OAuth connection: egret's sign-in link to send the user to
/// (authorization code), or the connection itself (client credentials).
pub async fn connect(state: &Arc<ControlState>, conn: &ConnectionId) -> Result<Begun, ApiError> {
    let policy = state.policy.load_full();
    let id = conn.connector.as_str();
    let c = known(&policy, id)?;
    if !c.enabled {
        return Err(disabled(id));
    }
    if !matches!(c.auth, AuthKind::OAuth2(_)) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "wrong_auth_kind",
            format!("connector `{id}` uses a static key; store it with `egret connection set-key`"),
        ));
    }
    one_per_owner(state, c, conn)?;
    let begun = state
        .broker
        .begin(c, conn)
        .await
        .map_err(|e| crate::error::token_error(id, &e))?;
    if let Begun::Connected(_) = &begun {
        learn_identity(state, conn);
    }
    Ok(begun)
}

/// Renews an OAuth connection's token now, whatever its expiry ("Refresh now"); a static
/// key is left as it is.
pub async fn refresh_now(state: &Arc<ControlState>, conn: &ConnectionId) -> Result<(), ApiError> {
    let policy = state.policy.load_full();
    let id = conn.connector.as_str();
    let c = known(&policy, id)?;
    if state.vault.connection(conn).is_none() {
        return Err(not_found(conn));
    }
    if !matches!(c.auth, AuthKind::OAuth2(_)) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "wrong_auth_kind",
            format!("connector `{id}` uses a static key: there is nothing to renew"),
        ));
    }
    state
        .broker
        .fresh(c, conn, egret_oauth::Need::Keepalive)
        .await
        .map(drop)
        .map_err(|e| crate::error::token_error(id, &e))
}

/// One connection per connector, per owner, unless the connector allows several: a
/// second name is a 409 naming the one in the way.
pub(crate) fn one_per_owner(
    state: &ControlState,
    connector: &egret_policy::Connector,
    conn: &ConnectionId,
) -> Result<(), ApiError> {
    if connector.multiple_connections {
        return Ok(());
    }
    match egret_oauth::TokenStore::other_connection(&*state.vault, conn) {
        None => Ok(()),
        Some(other) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "one_connection_per_owner",
            format!(
                "`{}` is connected to `{}` already (as `{}`) and the connector allows one connection per owner; use that name, remove it first, or set `multiple_connections: true` on the connector",
                conn.owner, conn.connector, other.name
            ),
        )),
    }
}

pub(crate) fn not_found(conn: &ConnectionId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "connection_not_found",
        format!(
            "there is no connection `{}` for connector `{}` and owner `{}`; `egret connection list` shows what there is",
            conn.name, conn.connector, conn.owner
        ),
    )
}

/// Fills "connected as" with `who` when nothing filled it yet (the vendor's ID token,
/// or a person).
pub(crate) async fn fill_identity(
    state: &Arc<ControlState>,
    conn: &ConnectionId,
    who: String,
) -> Result<(), ApiError> {
    let c = conn.clone();
    state
        .blocking(move |s| {
            if s.vault
                .connection(&c)
                .is_some_and(|info| info.identity_label.is_none())
            {
                s.vault.update_labels(
                    &c,
                    egret_vault::Labels {
                        identity_label: Some(Some(who)),
                        description: None,
                    },
                )?;
            }
            Ok(())
        })
        .await
}

/// After a connect: when the vendor's ID token named nobody and the connector has an
/// identity request, asks the vendor who is connected (in the background: the user's
/// page does not wait on it).
pub(crate) fn learn_identity(state: &Arc<ControlState>, conn: &ConnectionId) {
    let policy = state.policy.load();
    let Some(c) = policy.connector(&conn.connector) else {
        return;
    };
    let wants = c.test.as_ref().is_some_and(|t| t.identity_field.is_some());
    let known = state
        .vault
        .connection(conn)
        .is_some_and(|info| info.identity_label.is_some());
    if !wants || known {
        return;
    }
    let (state, c, conn) = (state.clone(), c.clone(), conn.clone());
    tokio::spawn(async move {
        let Some(outcome) = state.tester.test(&c, &conn).await else {
            return;
        };
        match outcome.identity {
            Some(who) => {
                if let Err(e) = fill_identity(&state, &conn, who).await {
                    tracing::warn!(connector = %c.id, error = %e.message, "cannot record who is connected");
                }
            }
            None => {
                tracing::info!(connector = %c.id, message = %outcome.message, "the identity request named nobody");
            }
        }
    });
}

pub(crate) fn disabled(connector: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "connector_disabled",
        format!(
            "connector `{connector}` is disabled and takes no new connections; ask the operator to enable it"
        ),
    )
}
