//! Connect links: `POST /v1/connect-links` mints a single-use link that opens egret's
//! Connections page as one owner (optionally for one connector and connection name),
//! for a platform to send its user instead of building its own UI.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use egret_vault::{ConnectLink, ConnectionName};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ControlState;
use crate::actions::disabled;
use crate::connections::parse_owner;
use crate::error::ApiError;

/// How long a link works when the request names no `ttl`.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(30 * 60);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkBody {
    owner: String,
    connector: Option<String>,
    name: Option<String>,
    /// e.g. `30m` (the default), at most `limits.max_ttl`.
    ttl: Option<String>,
}

pub(crate) async fn create(
    State(state): State<Arc<ControlState>>,
    body: Result<Json<LinkBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"owner\", \"connector\"?, \"name\"?, \"ttl\"?}}: {}",
            e.body_text()
        ))
    })?;
    let link = make_connect_link(&state, &body.owner, body.connector, body.name, body.ttl).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "url": link.url,
            "owner": link.owner,
            "connector": link.connector,
            "name": link.name,
            "expires_at": link.expires_at,
        })),
    ))
}

/// A connect link as made: its URL (which carries the ticket) and whom it is for.
pub struct MadeLink {
    pub url: String,
    pub owner: egret_vault::Owner,
    pub connector: Option<String>,
    pub name: Option<ConnectionName>,
    pub expires_at: i64,
}

/// Makes a connect link for `owner` (one connector and name when given), working for
/// `ttl` (default 30 minutes, at most `limits.max_ttl`); audited, never logged.
pub async fn make_connect_link(
    state: &Arc<ControlState>,
    owner: &str,
    connector: Option<String>,
    name: Option<String>,
    ttl: Option<String>,
) -> Result<MadeLink, ApiError> {
    let owner = parse_owner(owner)?;
    let name = name
        .as_deref()
        .map(ConnectionName::parse)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let policy = state.policy.load_full();
    if let Some(id) = &connector {
        let c = policy
            .connector(id)
            .ok_or_else(|| ApiError::unknown_connector(id))?;
        if !c.enabled {
            return Err(disabled(id));
        }
    }
    let max = policy.limits.max_ttl();
    let ttl = ApiError::ttl_or(ttl.as_deref(), DEFAULT_LINK_TTL, max)?;
    let expires_at = state
        .vault
        .clock()
        .unix()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let link = ConnectLink {
        owner,
        connector,
        name,
        expires_at,
    };
    // 256 random bits: the whole credential a link carries.
    let ticket = egret_vault::random_token();
    let url = format!(
        "{}/ui/connect/{}",
        policy.control.public_url.trim_end_matches('/'),
        ticket.expose_secret()
    );
    let made = MadeLink {
        url,
        owner: link.owner.clone(),
        connector: link.connector.clone(),
        name: link.name.clone(),
        expires_at,
    };
    state
        .blocking(move |s| {
            s.vault.put_connect_link(&ticket, &link)?;
            let what = match &link.connector {
                Some(c) => format!("for {c}"),
                None => "for every enabled connector".to_owned(),
            };
            s.vault.audit(
                "connect_link.create",
                link.connector.as_deref(),
                Some(link.owner.as_str()),
                Some(what),
            )?;
            Ok(())
        })
        .await?;
    Ok(made)
}
