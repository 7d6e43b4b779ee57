//! Web UI sessions, kept in the vault so that every replica behind a load balancer knows
//! a browser signed in on another. Keyed by the SHA-256 of the cookie value (the vault
//! never holds the cookie itself) and sealed, since a session carries its CSRF token.
//! What a session holds is the UI's business: here it is bytes with an expiry.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::db::{Vault, aad};
use crate::error::VaultError;
use crate::sandboxes::sha256_hex;
use crate::store::{Change, Table};

/// Sessions kept at most; the soonest to expire go first.
const KEEP: usize = 10_000;

impl Vault {
    /// Stores a session under its cookie value `id` for `lifetime` from now (the
    /// vault's clock, which also decides when it has ended), dropping expired ones (and
    /// the soonest to expire beyond the cap).
    pub fn put_ui_session(
        &self,
        id: &SecretString,
        session: &[u8],
        lifetime: std::time::Duration,
    ) -> Result<(), VaultError> {
        let expires_at = self
            .clock
            .unix()
            .saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        let key = sha256_hex(id.expose_secret());
        let mut plain = Zeroizing::new(Vec::with_capacity(8 + session.len()));
        plain.extend_from_slice(&expires_at.to_be_bytes());
        plain.extend_from_slice(session);
        let sealed = self.sealer.seal(&aad("ui_sessions", &key), &plain);
        self.put_expiring(Table::UiSessions, key, sealed, KEEP, |k, v| {
            self.open_ui_session(k, v).map(|(at, _)| at)
        })
    }

    /// The live session whose cookie value is `id`.
    pub fn ui_session(&self, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let key = sha256_hex(id);
        let Some(sealed) = self.store.get(Table::UiSessions, &key)? else {
            return Ok(None);
        };
        Ok(self
            .open_ui_session(&key, &sealed)
            .filter(|(at, _)| *at > self.clock.unix())
            .map(|(_, s)| s))
    }

    /// Ends the session whose cookie value is `id`, on every replica at once.
    pub fn end_ui_session(&self, id: &str) -> Result<(), VaultError> {
        let key = sha256_hex(id);
        Ok(self
            .store
            .commit(vec![Change::remove(Table::UiSessions, key)])?)
    }

    /// Ends, on every replica, the sessions whose content `ended` picks (e.g. every
    /// administrator's, when the admin token changed); returns how many.
    pub fn end_ui_sessions_where(
        &self,
        ended: impl Fn(&[u8]) -> bool,
    ) -> Result<usize, VaultError> {
        let doomed: Vec<Change> = self
            .store
            .scan(Table::UiSessions)?
            .into_iter()
            .filter(|(k, v)| self.open_ui_session(k, v).is_some_and(|(_, s)| ended(&s)))
            .map(|(k, _)| Change::remove(Table::UiSessions, k))
            .collect();
        let n = doomed.len();
        if n > 0 {
            self.store.commit(doomed)?;
        }
        Ok(n)
    }

    fn open_ui_session(&self, key: &str, sealed: &[u8]) -> Option<(i64, Zeroizing<Vec<u8>>)> {
        let plain = self.sealer.open(&aad("ui_sessions", key), sealed)?;
        let at = i64::from_be_bytes(plain.get(..8)?.try_into().ok()?);
        Some((at, Zeroizing::new(plain.get(8..)?.to_vec())))
    }
}
