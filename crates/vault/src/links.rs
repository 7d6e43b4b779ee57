//! Connect links: a single-use ticket a platform sends a user, which opens egret's
//! Connections page as that owner. Only the ticket's SHA-256 is stored, with whom it is
//! for; a used ticket is remembered until it expires, so a second browser opening the
//! same link is told it was used rather than that it never existed.

use redb::ReadableTable;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::db::{CONNECT_LINKS, Vault};
use crate::error::VaultError;
use crate::names::{ConnectionName, Owner};
use crate::sandboxes::sha256_hex;

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
        let now = self.clock.unix();
        self.write(|tx| {
            let mut table = tx.open_table(CONNECT_LINKS)?;
            let mut live = Vec::new();
            let mut dead = Vec::new();
            for r in table.iter()? {
                let (k, v) = r?;
                match serde_json::from_slice::<Stored>(v.value()) {
                    Ok(s) if s.link.expires_at > now => {
                        live.push((s.link.expires_at, k.value().to_owned()));
                    }
                    _ => dead.push(k.value().to_owned()),
                }
            }
            live.sort();
            let excess = (live.len() + 1).saturating_sub(KEEP);
            dead.extend(live.into_iter().take(excess).map(|(_, k)| k));
            for k in dead {
                table.remove(k.as_str())?;
            }
            table.insert(key.as_str(), row.as_slice())?;
            Ok(())
        })
    }

    /// Opens a ticket: the link on first use (and marks it used, in the same
    /// transaction), else why not.
    pub fn use_connect_link(&self, ticket: &str) -> Result<LinkUse, VaultError> {
        let key = sha256_hex(ticket);
        let now = self.clock.unix();
        let mut found = LinkUse::Expired;
        self.write(|tx| {
            let mut table = tx.open_table(CONNECT_LINKS)?;
            let stored = table
                .get(key.as_str())?
                .and_then(|v| serde_json::from_slice::<Stored>(v.value()).ok());
            let Some(mut s) = stored.filter(|s| s.link.expires_at > now) else {
                return Ok(());
            };
            if s.used {
                found = LinkUse::Used;
                return Ok(());
            }
            s.used = true;
            let row = serde_json::to_vec(&s).map_err(|e| VaultError::Invalid(e.to_string()))?;
            table.insert(key.as_str(), row.as_slice())?;
            found = LinkUse::Fresh(s.link);
            Ok(())
        })?;
        Ok(found)
    }
}
