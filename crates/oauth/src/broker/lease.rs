//! What a renewal does around the vendor call: claims the connection's renewal lease
//! (or waits for the replica that holds it), records the outcome in the store, tells
//! the webhooks, and gives a connection up when its grant is gone.

use super::*;

impl Broker {
    /// Asks the store whether this egret renews the connection now.
    pub(super) async fn claim(
        &self,
        conn: &ConnectionId,
        lease: Duration,
    ) -> Result<Claim, TokenError> {
        let store = self.inner.store.clone();
        let c = conn.clone();
        tokio::task::spawn_blocking(move || store.claim_renewal(&c, lease))
            .await
            .map_err(|_| TokenError::Store("the store stopped".to_owned()))?
            .map_err(|e| self.store_error(&e))
    }

    /// Another egret is renewing: waits a moment for the credential it commits (memory
    /// hears of it), and shares it. `None`: nothing yet; claim again (its lease may have
    /// run out).
    pub(super) async fn await_other(
        &self,
        conn: &ConnectionId,
        current: &Arc<Credential>,
    ) -> Option<Result<Arc<Credential>, TokenError>> {
        let clock = &self.inner.clock;
        let deadline = clock.instant() + CLAIM_AGAIN_AFTER;
        while clock.instant() < deadline {
            tokio::time::sleep(CLAIM_POLL).await;
            match self.inner.store.credential(conn) {
                Some(c) if !Arc::ptr_eq(&c, current) => {
                    return Some(match c.status {
                        ConnectionStatus::NeedsReauth => Err(TokenError::NeedsReauth),
                        ConnectionStatus::Connected => Ok(c),
                    });
                }
                Some(_) => {}
                None => return Some(Err(TokenError::NotConnected)),
            }
        }
        None
    }

    /// Whether another replica committed a newer credential than `current` (read from
    /// the store, not memory): asked before an `invalid_grant` is believed, because the
    /// refresh token just refused may be one another replica rotated a moment ago.
    pub(super) async fn newer_elsewhere(
        &self,
        conn: &ConnectionId,
        current: &Arc<Credential>,
    ) -> Option<Arc<Credential>> {
        let store = self.inner.store.clone();
        let c = conn.clone();
        let stored = tokio::task::spawn_blocking(move || store.reread(&c))
            .await
            .ok()
            .flatten()?;
        use secrecy::ExposeSecret as _;
        let moved = stored.secret.expose_secret() != current.secret.expose_secret();
        (moved && stored.status == ConnectionStatus::Connected).then_some(stored)
    }

    /// Gives the renewal lease back (off the async threads).
    pub(super) async fn release(&self, conn: &ConnectionId) {
        let store = self.inner.store.clone();
        let c = conn.clone();
        let _ = tokio::task::spawn_blocking(move || store.release_renewal(&c)).await;
    }

    /// Records whether renewal is failing for a passing reason (for listings); returns
    /// whether it was failing before.
    pub(super) fn set_failing(
        &self,
        conn: &ConnectionId,
        failing: Option<health::Failing>,
    ) -> bool {
        let slot = self.slot(conn);
        let mut tally = slot.tally.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut tally.failing, failing).is_some()
    }

    /// Tells the platform's webhooks about a turn of a connection.
    pub(super) fn tell(&self, kind: EventKind, conn: &ConnectionId, status: &str, reason: &str) {
        self.inner
            .events
            .emit(Event::connection(kind, conn, status, reason));
    }

    /// Commits tokens to the store (off the async threads: the vault syncs to disk). A
    /// failure here is egret's, never the vendor's: [`TokenError::Store`].
    pub(super) async fn store(
        &self,
        conn: &ConnectionId,
        tokens: TokenSet,
        update: TokenUpdate,
        took: Option<Duration>,
    ) -> Result<Arc<Credential>, TokenError> {
        let store = self.inner.store.clone();
        let c = conn.clone();
        let data = serde_json::json!({
            "result": "ok",
            "duration_ms": took.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            "expires_at": tokens.expires_at,
            "identity": tokens.identity.as_ref().and_then(egret_vault::Identity::label),
        });
        let identity = tokens
            .identity
            .as_ref()
            .and_then(egret_vault::Identity::label);
        let committed =
            tokio::task::spawn_blocking(move || store.commit_tokens(&c, tokens, update, data))
                .await
                .map_err(|_| TokenError::Store("the store write stopped".to_owned()))?;
        let credential = match committed {
            Ok(c) => c,
            // Another replica wrote the connection while this one renewed it: its
            // tokens are in force (this one's new refresh token is dropped unused).
            Err(egret_vault::VaultError::Superseded(_)) => {
                tracing::info!(connection = %conn, "another replica changed this connection during the renewal; using its tokens");
                let now = self
                    .inner
                    .store
                    .credential(conn)
                    .ok_or(TokenError::NotConnected)?;
                return match now.status {
                    ConnectionStatus::NeedsReauth => Err(TokenError::NeedsReauth),
                    ConnectionStatus::Connected => Ok(now),
                };
            }
            Err(e) => return Err(self.store_error(&e)),
        };
        if update == TokenUpdate::Authorized {
            self.set_failing(conn, None);
            let reason = match identity {
                Some(who) => format!("authorized at the vendor as {who}"),
                None => "authorized at the vendor".to_owned(),
            };
            self.tell(EventKind::ConnectionConnected, conn, "connected", &reason);
        }
        Ok(credential)
    }

    pub(super) fn store_error(&self, e: &egret_vault::VaultError) -> TokenError {
        self.inner.metrics.vault_errors.inc();
        tracing::error!(error = %e, "the token store failed");
        TokenError::Store(e.to_string())
    }

    /// The grant is gone: mark the connection and say so in the audit log.
    pub(super) async fn give_up(&self, conn: &ConnectionId, reason: &str) {
        let store = self.inner.store.clone();
        let (c, why) = (conn.clone(), reason.to_owned());
        let done = tokio::task::spawn_blocking(move || store.mark_needs_reauth(&c, why)).await;
        tracing::warn!(connection = %conn, "connection needs re-authorization");
        if matches!(done, Ok(Ok(()))) {
            self.tell(
                EventKind::ConnectionNeedsReauth,
                conn,
                "needs_reauth",
                reason,
            );
        }
        if let Ok(Err(e)) = done {
            self.inner.metrics.vault_errors.inc();
            tracing::error!(connection = %conn, error = %e, "cannot record needs_reauth");
        }
    }
}
