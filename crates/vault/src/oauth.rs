//! OAuth state in the vault: token pairs of connections, and authorizations a user has
//! started but not finished. The protocol itself lives in `egret-oauth`.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::db::{SealedSecret, Vault, aad};
use crate::error::VaultError;
use crate::records::{
    ConnectionId, ConnectionInfo, ConnectionKind, ConnectionName, ConnectionStatus, Credential,
    Owner, PendingAuthorization, TokenSet, TokenUpdate,
};
use crate::store::{Change, Table};

/// Pending authorizations kept at most: past it, a new one is refused (never another
/// owner's dropped for it). Bounds what sign-ins started in a loop can make the vault hold.
const PENDING_KEEP: usize = 10_000;
/// Pending authorizations one owner keeps at most; their oldest is dropped for a new one.
const PENDING_PER_OWNER: usize = 20;

/// The sealed form of a [`PendingAuthorization`].
#[derive(Serialize, Deserialize)]
struct SealedPending {
    connector: String,
    owner: Owner,
    #[serde(default)]
    name: ConnectionName,
    pkce_verifier: Option<String>,
    redirect_uri: String,
    expires_at: i64,
    #[serde(default)]
    vendor_url: Option<String>,
    #[serde(default)]
    binding: Option<String>,
}

impl SealedPending {
    fn of(pending: &PendingAuthorization) -> Self {
        Self {
            connector: pending.connector.clone(),
            owner: pending.owner.clone(),
            name: pending.name.clone(),
            pkce_verifier: pending
                .pkce_verifier
                .as_ref()
                .map(|v| v.expose_secret().to_owned()),
            redirect_uri: pending.redirect_uri.clone(),
            expires_at: pending.expires_at,
            vendor_url: pending.vendor_url.clone(),
            binding: pending.binding.clone(),
        }
    }

    fn opened(&self) -> PendingAuthorization {
        PendingAuthorization {
            connector: self.connector.clone(),
            owner: self.owner.clone(),
            name: self.name.clone(),
            pkce_verifier: self.pkce_verifier.clone().map(SecretString::from),
            redirect_uri: self.redirect_uri.clone(),
            expires_at: self.expires_at,
            vendor_url: self.vendor_url.clone(),
            binding: self.binding.clone(),
        }
    }
}

impl Drop for SealedPending {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(v) = &mut self.pkce_verifier {
            v.zeroize();
        }
    }
}

impl Vault {
    /// Stores an OAuth token pair for a connection in one transaction, replacing the old
    /// pair in place: placeholders keep working. A refresh keeps `connected_at`.
    pub fn put_oauth_tokens(
        &self,
        id: &ConnectionId,
        tokens: TokenSet,
        update: TokenUpdate,
    ) -> Result<ConnectionInfo, VaultError> {
        let at = self.clock.unix();
        let previous = self.connection(id);
        let connected_at = match (update, &previous) {
            (TokenUpdate::Refreshed, Some(p)) => p.connected_at,
            // A renewal must never bring back a connection that was removed meanwhile.
            (TokenUpdate::Refreshed, None) => return Err(VaultError::NoConnection(id.clone())),
            (TokenUpdate::Authorized, _) => at,
        };
        // A renewal keeps who signed in, unless the vendor says again.
        let identity_label = tokens
            .identity
            .as_ref()
            .and_then(crate::Identity::label)
            .or_else(|| match update {
                TokenUpdate::Refreshed => previous.as_ref().and_then(|p| p.identity_label.clone()),
                TokenUpdate::Authorized => None,
            });
        let info = ConnectionInfo {
            connector: id.connector.clone(),
            owner: id.owner.clone(),
            name: id.name.clone(),
            kind: ConnectionKind::Oauth2,
            status: ConnectionStatus::Connected,
            connected_at,
            refreshed_at: (update == TokenUpdate::Refreshed).then_some(at),
            expires_at: tokens.expires_at,
            scopes: tokens.scopes,
            identity_label,
            description: previous.as_ref().and_then(|p| p.description.clone()),
        };
        let mut secret = SealedSecret {
            access_token: Some(tokens.access_token.expose_secret().to_owned()),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|r| r.expose_secret().to_owned()),
            api_key: None,
            narrowed: None,
            values: Default::default(),
            refs: Default::default(),
        };
        let fenced = update == TokenUpdate::Refreshed;
        let credential = Credential {
            secret: tokens.access_token,
            refresh_token: tokens.refresh_token,
            kind: ConnectionKind::Oauth2,
            status: ConnectionStatus::Connected,
            expires_at: tokens.expires_at,
            narrowed: None,
            values: Default::default(),
            refs: Default::default(),
        };
        self.put_connection(fenced, info, &mut secret, credential)
    }

    /// Marks a connection as needing the user to authorize again (its grant was revoked
    /// or expired). Its tokens are dropped: they can no longer be renewed.
    pub fn mark_needs_reauth(&self, id: &ConnectionId) -> Result<ConnectionInfo, VaultError> {
        let mut info = self
            .connection(id)
            .ok_or_else(|| VaultError::NoConnection(id.clone()))?;
        info.status = ConnectionStatus::NeedsReauth;
        // Keeps a non-empty access token so the record still opens; it is never sent
        // while the status says needs_reauth.
        let mut secret = SealedSecret {
            access_token: Some("revoked".to_owned()),
            refresh_token: None,
            api_key: None,
            narrowed: None,
            values: Default::default(),
            refs: Default::default(),
        };
        let credential = Credential {
            secret: SecretString::from("revoked"),
            refresh_token: None,
            kind: info.kind,
            status: ConnectionStatus::NeedsReauth,
            expires_at: info.expires_at,
            narrowed: None,
            values: Default::default(),
            refs: Default::default(),
        };
        // Fenced when it ends a claimed renewal: a grant another replica has just
        // renewed is not marked dead on the strength of the old refresh token.
        self.put_connection(true, info, &mut secret, credential)
    }

    /// Remembers an authorization until its callback, under the hash of its `state`.
    pub fn put_authorization(
        &self,
        state: &SecretString,
        pending: &PendingAuthorization,
    ) -> Result<(), VaultError> {
        let key = state_key(state);
        let row = self.seal_pending(&key, &SealedPending::of(pending))?;
        let owner = pending.owner.as_str();
        // Headers only: nothing is unsealed to make room.
        let now = self.clock.unix();
        let (mut doomed, mut mine, mut live) = (Vec::new(), Vec::new(), 0usize);
        for (k, v) in self.store.scan(Table::Authorizations)? {
            match crate::pending::split(&v) {
                Some(r) if r.expires_at > now => {
                    live += 1;
                    if r.owner == owner {
                        mine.push((r.expires_at, k));
                    }
                }
                // Expired, or written before rows had headers (minutes old at most).
                _ => doomed.push(k),
            }
        }
        mine.sort();
        let excess = (mine.len() + 1).saturating_sub(PENDING_PER_OWNER);
        doomed.extend(mine.into_iter().take(excess).map(|(_, k)| k));
        if live - excess >= PENDING_KEEP {
            return Err(VaultError::Invalid(
                "too many sign-ins are under way; try again in a few minutes".to_owned(),
            ));
        }
        let mut changes: Vec<Change> = doomed
            .into_iter()
            .map(|k| Change::remove(Table::Authorizations, k))
            .collect();
        changes.push(Change::put(Table::Authorizations, key, row));
        Ok(self.store.commit(changes)?)
    }

    /// A pending authorization's row: its header, then the record sealed.
    fn seal_pending(&self, key: &str, record: &SealedPending) -> Result<Vec<u8>, VaultError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(record).map_err(|e| VaultError::Invalid(e.to_string()))?,
        );
        let sealed = self.sealer.seal(&aad("authorizations", key), &plain);
        Ok(crate::pending::join(
            record.expires_at,
            record.owner.as_str(),
            &sealed,
        ))
    }

    /// Takes the authorization started with `state`, removing it in the same
    /// transaction: a state is usable once. Expired ones are removed and not returned.
    pub fn take_authorization(
        &self,
        state: &str,
    ) -> Result<Option<PendingAuthorization>, VaultError> {
        self.authorization(state, true)
    }

    /// Reads a started authorization by its state without spending it: the callback
    /// checks the browser first, so a browser that did not start the sign-in spends
    /// nothing. `None` when unknown or expired.
    pub fn peek_authorization(
        &self,
        state: &str,
    ) -> Result<Option<PendingAuthorization>, VaultError> {
        self.authorization(state, false)
    }

    fn authorization(
        &self,
        state: &str,
        take: bool,
    ) -> Result<Option<PendingAuthorization>, VaultError> {
        let key = state_key(&SecretString::from(state));
        let row = if take {
            self.store.take(Table::Authorizations, &key)?
        } else {
            self.store.get(Table::Authorizations, &key)?
        };
        Ok(row
            .and_then(|v| self.open_pending(&key, &v))
            .filter(|p| p.expires_at > self.clock.unix())
            .map(|p| p.opened()))
    }

    /// Binds the authorization started with `state` to the browser that opened its
    /// start link: records the hash of that browser's binding secret and returns the
    /// vendor URL to send it to. `None` when the state is unknown, expired, or already
    /// bound (a start link works once).
    pub fn bind_authorization(
        &self,
        state: &str,
        binding_sha256: &str,
    ) -> Result<Option<String>, VaultError> {
        let key = state_key(&SecretString::from(state));
        let now = self.clock.unix();
        // Read, then write back only over what was read: of two browsers opening the
        // same start link at once (on two replicas, perhaps), one binds it.
        let Some(row) = self.store.get(Table::Authorizations, &key)? else {
            return Ok(None);
        };
        let found = self.open_pending(&key, &row);
        let Some(mut pending) = found.filter(|p| p.expires_at > now && p.binding.is_none()) else {
            return Ok(None);
        };
        pending.binding = Some(binding_sha256.to_owned());
        let sealed = self.seal_pending(&key, &pending)?;
        let bound = self
            .store
            .swap(Table::Authorizations, &key, &row, &sealed)?;
        Ok(bound.then(|| pending.vendor_url.clone()).flatten())
    }

    /// The record a row holds; `None` when it does not open, or its header and record
    /// disagree (the header was changed in the store).
    fn open_pending(&self, key: &str, row: &[u8]) -> Option<SealedPending> {
        let r = crate::pending::split(row)?;
        let plain = self.sealer.open(&aad("authorizations", key), r.sealed)?;
        let record: SealedPending = serde_json::from_slice(&plain).ok()?;
        (record.expires_at == r.expires_at && record.owner.as_str() == r.owner).then_some(record)
    }
}

/// The table key for a state: its SHA-256, so the file never holds the state itself.
fn state_key(state: &SecretString) -> String {
    crate::sandboxes::sha256_hex(state.expose_secret())
}
