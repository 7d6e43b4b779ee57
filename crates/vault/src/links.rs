//! Connect links: a single-use ticket a platform sends a user, which opens egret's
//! Connections page as that owner. Only the ticket's SHA-256 is stored, with whom it is
//! for; a used ticket is remembered until it expires, so a second browser opening the
//! same link is told it was used rather than that it never existed.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::db::Vault;
use crate::error::VaultError;
use crate::names::{ConnectionName, Owner};
use crate::sandboxes::sha256_hex;
use crate::store::Table;

/// Links kept at most (live or used, until they expire); the oldest go first.
const KEEP: usize = 10_000;

/// Whom a connect link is for, and what it may connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectLink {
    pub owner: Owner,
    /// Only this connector, when set.
    pub connector: Option<String>,
    /// Only this connection name, when set.
    pub name: Option<ConnectionName>,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    link: ConnectLink,
    used: bool,
}

/// What opening a ticket found.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkUse {
    /// First use: the link is now spent.
    Fresh(ConnectLink),
    /// Opened already (by this browser or another).
    Used,
    /// Unknown, or past its expiry.
    Expired,
}

impl Vault {
    /// Remembers a link under its ticket's hash, dropping expired ones (and the
    /// oldest beyond the cap).
    pub fn put_connect_link(
        &self,
        ticket: &SecretString,
        link: &ConnectLink,
    ) -> Result<(), VaultError> {
        let key = sha256_hex(ticket.expose_secret());
        let row = serde_json::to_vec(&Stored {
            link: link.clone(),
            used: false,
        })
        .map_err(|e| VaultError::Invalid(e.to_string()))?;
        let row = self.mac.wrap(Table::ConnectLinks, &key, &row);
        // A row that fails its MAC counts as expired: the first write after removes it.
        let put = self.put_expiring(Table::ConnectLinks, key, row, KEEP, |k, v| {
            let content = self.authentic(Table::ConnectLinks, k, v)?;
            serde_json::from_slice::<Stored>(content)
                .ok()
                .map(|s| s.link.expires_at)
        });
        self.audit_forged();
        put
    }

    /// Opens a ticket: the link on first use (and marks it used, in the same
    /// transaction), else why not.
    pub fn use_connect_link(&self, ticket: &str) -> Result<LinkUse, VaultError> {
        let key = sha256_hex(ticket);
        let now = self.clock.unix();
        // Marked used only over the row read: of two browsers opening it at once (on
        // two replicas, perhaps), one gets the link.
        let Some(row) = self.store.get(Table::ConnectLinks, &key)? else {
            return Ok(LinkUse::Expired);
        };
        // A link written without the master key opens nothing.
        let stored = self
            .authentic(Table::ConnectLinks, &key, &row)
            .and_then(|content| serde_json::from_slice::<Stored>(content).ok());
        self.audit_forged();
        let Some(mut s) = stored.filter(|s| s.link.expires_at > now) else {
            return Ok(LinkUse::Expired);
        };
        if s.used {
            return Ok(LinkUse::Used);
        }
        s.used = true;
        let new = serde_json::to_vec(&s).map_err(|e| VaultError::Invalid(e.to_string()))?;
        let new = self.mac.wrap(Table::ConnectLinks, &key, &new);
        if self.store.swap(Table::ConnectLinks, &key, &row, &new)? {
            Ok(LinkUse::Fresh(s.link))
        } else {
            Ok(LinkUse::Used)
        }
    }
}
