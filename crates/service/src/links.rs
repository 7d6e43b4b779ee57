//! Connect links: single-use links that open egret's Connections page as one owner
//! (optionally for one connector and connection name), for a platform to send its user
//! instead of building its own UI; and spending one.

use std::sync::Arc;
use std::time::Duration;

use egret_vault::{ConnectLink, ConnectionName, LinkUse, Owner};
use secrecy::ExposeSecret;

use crate::connections::disabled;
use crate::principal::{Operation, Principal, authorize};
use crate::{Service, ServiceError};

/// How long a link works when the request names no `ttl`.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(30 * 60);

/// A link to make.
#[derive(Debug)]
pub struct NewLink {
    pub owner: Owner,
    pub connector: Option<String>,
    pub name: Option<ConnectionName>,
    /// e.g. `30m` (the default), at most `limits.max_ttl`.
    pub ttl: Option<String>,
}

/// A connect link as made: its URL (which carries the ticket) and whom it is for.
pub struct MadeLink {
    pub url: String,
    pub owner: Owner,
    pub connector: Option<String>,
    pub name: Option<ConnectionName>,
    pub expires_at: i64,
}

impl Service {
    /// Makes a connect link; audited, never logged.
    pub async fn make_connect_link(
        self: &Arc<Self>,
        who: &Principal,
        new: NewLink,
    ) -> Result<MadeLink, ServiceError> {
        let by = who.label();
        authorize(who, Operation::ConnectLinks, None)?;
        let policy = self.policy.load_full();
        if let Some(id) = &new.connector {
            let c = policy
                .connector(id)
                .ok_or_else(|| ServiceError::unknown_connector(id, &policy))?;
            if !c.enabled {
                return Err(disabled(id));
            }
        }
        let ttl = crate::ttl::ttl_or(
            new.ttl.as_deref(),
            DEFAULT_LINK_TTL,
            policy.limits.max_ttl(),
        )?;
        let expires_at = self
            .now()
            .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let link = ConnectLink {
            owner: new.owner,
            connector: new.connector,
            name: new.name,
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
        self.blocking(move |s| {
            s.vault.put_connect_link(&ticket, &link)?;
            let what = match &link.connector {
                Some(c) => format!("for {c}"),
                None => "for every enabled connector".to_owned(),
            };
            s.vault.audit_by(
                &by,
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

    /// Spends the link whose ticket this is (the ticket is the credential: anyone who
    /// holds it may): what it was for, or that it was used or has expired.
    pub async fn use_connect_link(
        self: &Arc<Self>,
        ticket: String,
    ) -> Result<LinkUse, ServiceError> {
        self.blocking(move |s| Ok(s.vault.use_connect_link(&ticket)?))
            .await
    }
}
