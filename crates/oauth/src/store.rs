//! What the token broker keeps, and where: a trait over the store, so the broker's
//! logic is tested against an in-memory store, and a store shared by several egret
//! replicas can plug in behind it. [`Vault`] is the store egret ships with.
//!
//! Reads come from memory and are cheap; every method that changes something is
//! durable when it returns and may block (the broker calls those off the async threads).

use std::sync::Arc;
use std::time::Duration;

use egret_vault::{
    AuditRecord, ConnectionId, ConnectionInfo, Credential, PendingAuthorization, TokenSet,
    TokenUpdate, Vault, VaultError,
};
use secrecy::SecretString;

/// Whether this egret may renew a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Yes: renew, then commit.
    Granted,
    /// Another egret sharing the store is renewing it: wait for its commit instead of
    /// asking the vendor too (a rotated refresh token may be used only once).
    HeldElsewhere,
}

/// The broker's storage.
pub trait TokenStore: Send + Sync + 'static {
    /// The connection's credential as the proxy would send it.
    fn credential(&self, id: &ConnectionId) -> Option<Arc<Credential>>;

    /// The connection's metadata (status, scopes, times).
    fn connection(&self, id: &ConnectionId) -> Option<ConnectionInfo>;

    /// Every connection (background renewal walks them).
    fn connections(&self) -> Vec<ConnectionInfo>;

    /// The owner's connection to the same connector under another name, if any: what
    /// stands in the way of `conn` when the connector allows one connection per owner.
    fn other_connection(&self, conn: &ConnectionId) -> Option<ConnectionInfo> {
        self.connections()
            .into_iter()
            .find(|c| c.connector == conn.connector && c.owner == conn.owner && c.name != conn.name)
    }

    /// Who renews this connection now. One egret on its own store is always granted
    /// (the broker's per-connection lock already makes it the only renewer); a store
    /// shared by replicas grants it to one replica at a time.
    fn claim_renewal(&self, id: &ConnectionId, lease: Duration) -> Result<Claim, VaultError>;

    /// Gives up a claimed renewal that will not commit (the vendor call failed), so
    /// another replica need not wait for the lease to run out. Best effort.
    fn release_renewal(&self, _id: &ConnectionId) {}

    /// The credential as the store holds it now: on a store shared by replicas, what
    /// another one may have committed a moment ago (memory is brought up to date).
    fn reread(&self, id: &ConnectionId) -> Option<Arc<Credential>> {
        self.credential(id)
    }

    /// Commits tokens the vendor issued, with their audit event (`connection.connect` or
    /// `connection.refresh`, carrying `data`), and returns the credential now in force.
    fn commit_tokens(
        &self,
        id: &ConnectionId,
        tokens: TokenSet,
        update: TokenUpdate,
        data: serde_json::Value,
    ) -> Result<Arc<Credential>, VaultError>;

    /// The grant is gone: the connection needs the user again (and an audit event says why).
    fn mark_needs_reauth(&self, id: &ConnectionId, why: String) -> Result<(), VaultError>;

    /// Appends an audit event (never a secret in `detail`).
    fn audit(&self, event: &str, id: &ConnectionId, detail: String) -> Result<(), VaultError>;

    /// Remembers a started authorization under its state until the callback.
    fn put_authorization(
        &self,
        state: &SecretString,
        pending: &PendingAuthorization,
    ) -> Result<(), VaultError>;

    /// Binds a started authorization to the browser that opened its start link (the
    /// hash of its binding secret); the vendor URL, or `None` when the state is
    /// unknown, expired or bound already.
    fn bind_authorization(
        &self,
        state: &str,
        binding_sha256: &str,
    ) -> Result<Option<String>, VaultError>;

    /// Takes (and spends) a started authorization by its state.
    fn take_authorization(&self, state: &str) -> Result<Option<PendingAuthorization>, VaultError>;

    /// Reads a started authorization by its state, leaving it in place.
    fn peek_authorization(&self, state: &str) -> Result<Option<PendingAuthorization>, VaultError>;

    /// Erases a connection and its placeholders; false when there was none.
    fn remove_connection(&self, id: &ConnectionId) -> Result<bool, VaultError>;
}

impl TokenStore for Vault {
    fn credential(&self, id: &ConnectionId) -> Option<Arc<Credential>> {
        Vault::credential(self, id)
    }

    fn connection(&self, id: &ConnectionId) -> Option<ConnectionInfo> {
        Vault::connection(self, id)
    }

    fn connections(&self) -> Vec<ConnectionInfo> {
        Vault::connections(self, None, None)
    }

    fn other_connection(&self, conn: &ConnectionId) -> Option<ConnectionInfo> {
        Vault::connections(self, Some(&conn.connector), Some(&conn.owner))
            .into_iter()
            .find(|c| c.name != conn.name)
    }

    fn claim_renewal(&self, id: &ConnectionId, lease: Duration) -> Result<Claim, VaultError> {
        Ok(if Vault::claim_renewal(self, id, lease)? {
            Claim::Granted
        } else {
            Claim::HeldElsewhere
        })
    }

    fn release_renewal(&self, id: &ConnectionId) {
        if let Err(e) = Vault::release_renewal(self, id) {
            tracing::warn!(connection = %id, error = %e, "could not release a renewal lease; it runs out by itself");
        }
    }

    fn reread(&self, id: &ConnectionId) -> Option<Arc<Credential>> {
        match self.reread_connection(id) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(connection = %id, error = %e, "could not read the connection again; using memory");
                Vault::credential(self, id)
            }
        }
    }

    fn commit_tokens(
        &self,
        id: &ConnectionId,
        tokens: TokenSet,
        update: TokenUpdate,
        data: serde_json::Value,
    ) -> Result<Arc<Credential>, VaultError> {
        self.put_oauth_tokens(id, tokens, update)?;
        let event = match update {
            TokenUpdate::Authorized => "connection.connect",
            TokenUpdate::Refreshed => "connection.refresh",
        };
        self.append_audit(vec![AuditRecord::about(event, id).with_data(&data)])?;
        Vault::credential(self, id).ok_or_else(|| VaultError::NoConnection(id.clone()))
    }

    fn mark_needs_reauth(&self, id: &ConnectionId, why: String) -> Result<(), VaultError> {
        Vault::mark_needs_reauth(self, id)?;
        self.audit_connection("connection.needs_reauth", id, Some(why))
            .map(drop)
    }

    fn audit(&self, event: &str, id: &ConnectionId, detail: String) -> Result<(), VaultError> {
        self.audit_connection(event, id, Some(detail)).map(drop)
    }

    fn put_authorization(
        &self,
        state: &SecretString,
        pending: &PendingAuthorization,
    ) -> Result<(), VaultError> {
        Vault::put_authorization(self, state, pending)
    }

    fn bind_authorization(
        &self,
        state: &str,
        binding_sha256: &str,
    ) -> Result<Option<String>, VaultError> {
        Vault::bind_authorization(self, state, binding_sha256)
    }

    fn take_authorization(&self, state: &str) -> Result<Option<PendingAuthorization>, VaultError> {
        Vault::take_authorization(self, state)
    }

    fn peek_authorization(&self, state: &str) -> Result<Option<PendingAuthorization>, VaultError> {
        Vault::peek_authorization(self, state)
    }

    fn remove_connection(&self, id: &ConnectionId) -> Result<bool, VaultError> {
        Vault::remove_connection(self, id)
    }
}
