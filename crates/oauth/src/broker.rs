//! The token broker: keeps every OAuth connection's access token fresh.
//!
//! One renewal per connection at a time: callers queue on the connection's lock, and the
//! first one in runs the refresh in a task of its own that holds the lock until the new
//! tokens are committed to the vault. Cancelling a caller (its sandbox hung up) can
//! therefore never lose a rotated refresh token, and nobody after it can reuse the old
//! one — which would make vendors with single-use refresh tokens revoke the grant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use egret_policy::{AuthKind, Connector, Grant, OAuthSettings, Policy};
use egret_vault::{
    ConnectionInfo, ConnectionKind, ConnectionStatus, Credential, Owner, TokenSet, TokenUpdate,
    Vault, unix_now,
};
use tokio::sync::OwnedMutexGuard;

use crate::endpoints::{Discovery, Endpoints};
use crate::error::TokenError;
use crate::http::HttpClient;
use crate::protocol::Exchange;

/// Backoff after a failed renewal: 1 s, doubling, at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Connections used within this window are renewed ahead of expiry in the background.
const RECENT_USE: i64 = 3600;
/// Idle connections are renewed at least this often so refresh tokens do not lapse.
const KEEPALIVE: i64 = 24 * 3600;

/// What a caller needs from [`Broker::fresh`].
pub enum Need {
    /// A token that does not expire within the connector's skew (a request is waiting).
    Fresh,
    /// Renew if it expires within this many seconds (background renewal).
    Ahead(i64),
    /// The upstream refused this very credential: renew unless it was replaced already.
    Replace(Arc<Credential>),
    /// Renew now, whatever the expiry (keeps an idle refresh token alive).
    Keepalive,
}

#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<egret_metrics::Metrics>,
    policy: Arc<ArcSwap<Policy>>,
    vault: Arc<Vault>,
    http: HttpClient,
    discovery: Discovery,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// Per-connection renewal state.
struct Slot {
    lock: Arc<tokio::sync::Mutex<Renewal>>,
    /// Renewals finished, so a waiter can tell one ran while it queued.
    finished: AtomicU64,
    last_used: AtomicI64,
}

#[derive(Default)]
struct Renewal {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<TokenError>,
}

/// The first step of connecting: where to send the user, or done already.
pub enum Begun {
    Redirect(String),
    Connected(ConnectionInfo),
}

impl Broker {
    pub fn new(
        policy: Arc<ArcSwap<Policy>>,
        vault: Arc<Vault>,
        http: HttpClient,
        metrics: Arc<egret_metrics::Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                metrics,
                policy,
                vault,
                http,
                discovery: Discovery::default(),
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn slot(&self, connector: &str, owner: &Owner) -> Arc<Slot> {
        let key = format!("{connector}/{owner}");
        let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Slot {
                    lock: Arc::new(tokio::sync::Mutex::new(Renewal::default())),
                    finished: AtomicU64::new(0),
                    last_used: AtomicI64::new(0),
                })
            })
            .clone()
    }

    fn exchange<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        endpoints: &'a Endpoints,
        http: &'a HttpClient,
    ) -> Exchange<'a> {
        Exchange {
            settings,
            endpoints,
            http,
        }
    }

    async fn endpoints(
        &self,
        settings: &OAuthSettings,
        http: &HttpClient,
    ) -> Result<Endpoints, TokenError> {
        self.inner.discovery.endpoints(settings, http).await
    }

    /// Records that a request used the connection's token: background renewal keeps
    /// recently used connections ahead of expiry.
    pub fn touch(&self, connector: &str, owner: &Owner) {
        self.slot(connector, owner)
            .last_used
            .store(unix_now(), Ordering::Relaxed);
    }

    /// The connection's credential, renewed first when `need` says so. Static keys are
    /// returned as they are.
    pub async fn fresh(
        &self,
        connector: &Connector,
        owner: &Owner,
        need: Need,
    ) -> Result<Arc<Credential>, TokenError> {
        let vault = &self.inner.vault;
        let id = connector.id.as_str();
        let AuthKind::OAuth2(settings) = &connector.auth else {
            return vault.credential(id, owner).ok_or(TokenError::NotConnected);
        };
        let slot = self.slot(id, owner);
        if !matches!(need, Need::Ahead(_) | Need::Keepalive) {
            slot.last_used.store(unix_now(), Ordering::Relaxed);
        }
        let seen = slot.finished.load(Ordering::Acquire);
        let guard = slot.lock.clone().lock_owned().await;
        let current = vault
            .credential(id, owner)
            .ok_or(TokenError::NotConnected)?;
        if current.kind != ConnectionKind::Oauth2 {
            return Ok(current);
        }
        if current.status == ConnectionStatus::NeedsReauth {
            return Err(TokenError::NeedsReauth);
        }
        let now = unix_now();
        let skew = i64::try_from(settings.refresh_skew.as_secs()).unwrap_or(i64::MAX);
        let due = match &need {
            Need::Fresh => current.needs_renewal(now, skew),
            Need::Ahead(window) => current.needs_renewal(now, *window),
            Need::Replace(used) => Arc::ptr_eq(used, &current),
            Need::Keepalive => true,
        };
        if !due {
            return Ok(current);
        }
        if slot.finished.load(Ordering::Acquire) != seen && !matches!(need, Need::Keepalive) {
            // A renewal ran while this caller queued: share its outcome rather than ask
            // the vendor again at once (even when a short-lived token is still "due").
            return match &guard.last_error {
                Some(e) => usable_or(current, e.clone(), now),
                None if current.usable_at(now) => Ok(current),
                None => Err(TokenError::Unreachable(
                    "the vendor issued a token that had already expired".to_owned(),
                )),
            };
        }
        if let (Some(at), Some(e)) = (guard.retry_at, &guard.last_error)
            && Instant::now() < at
        {
            return usable_or(current, e.clone(), now);
        }
        if settings.grant == Grant::AuthorizationCode && current.refresh_token.is_none() {
            if current.usable_at(now) {
                return Ok(current);
            }
            self.give_up(
                id,
                owner,
                "the token expired and the vendor issued no refresh token",
            )
            .await;
            return Err(TokenError::NeedsReauth);
        }
        let this = self.clone();
        let connector = connector.clone();
        let owner = owner.clone();
        let task = tokio::spawn(async move {
            let result = this.renew(&connector, &owner, &current, guard).await;
            slot.finished.fetch_add(1, Ordering::Release);
            result
        });
        task.await.unwrap_or_else(|_| {
            Err(TokenError::Unreachable(
                "the renewal task stopped".to_owned(),
            ))
        })
    }

    /// Runs one renewal while holding the connection's lock, and records its outcome.
    async fn renew(
        &self,
        connector: &Connector,
        owner: &Owner,
        current: &Arc<Credential>,
        mut guard: OwnedMutexGuard<Renewal>,
    ) -> Result<Arc<Credential>, TokenError> {
        let id = connector.id.as_str();
        let AuthKind::OAuth2(settings) = &connector.auth else {
            return Ok(current.clone());
        };
        let http = self.inner.http.with_timeout(settings.timeout);
        let started = Instant::now();
        let result = async {
            let endpoints = self.endpoints(settings, &http).await?;
            let exchange = self.exchange(settings, &endpoints, &http);
            let scopes = self
                .inner
                .vault
                .connection(id, owner)
                .map(|c| c.scopes)
                .unwrap_or_default();
            match (&settings.grant, &current.refresh_token) {
                (Grant::AuthorizationCode, Some(refresh)) => {
                    exchange.refresh(refresh, &scopes).await
                }
                (Grant::AuthorizationCode, None) => {
                    Err(TokenError::InvalidGrant("no refresh token".to_owned()))
                }
                (Grant::ClientCredentials, _) => exchange.client_credentials().await,
            }
        }
        .await;
        let now = unix_now();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(TokenError::InvalidGrant(_)) => "invalid_grant",
            Err(_) => "failed",
        };
        self.inner
            .metrics
            .refresh(id, outcome, started.elapsed().as_secs_f64());
        match result {
            Ok(tokens) => {
                let credential = self
                    .store(
                        id,
                        owner,
                        tokens,
                        TokenUpdate::Refreshed,
                        Some(started.elapsed()),
                    )
                    .await?;
                *guard = Renewal::default();
                tracing::info!(connector = id, owner = %owner, "token renewed");
                Ok(credential)
            }
            Err(TokenError::InvalidGrant(why)) => {
                self.give_up(id, owner, &why).await;
                guard.last_error = Some(TokenError::NeedsReauth);
                guard.retry_at = None;
                Err(TokenError::InvalidGrant(why))
            }
            Err(e) => {
                let vault = self.inner.vault.clone();
                let (c, o, why) = (id.to_owned(), owner.clone(), e.to_string());
                // Off the async threads; the outcome of writing it only matters to the log.
                tokio::task::spawn_blocking(move || {
                    let _ = vault.audit(
                        "connection.refresh_failed",
                        Some(&c),
                        Some(o.as_str()),
                        Some(why),
                    );
                });
                guard.failures = guard.failures.saturating_add(1);
                let backoff = Duration::from_secs(1u64 << guard.failures.min(6).saturating_sub(1))
                    .min(MAX_BACKOFF);
                guard.retry_at = Some(Instant::now() + backoff);
                guard.last_error = Some(e.clone());
                tracing::warn!(
                    connector = id, owner = %owner, error = %e, retry_in = ?backoff,
                    "token renewal failed"
                );
                usable_or(current.clone(), e, now)
            }
        }
    }

    /// Commits tokens to the vault (off the async threads: redb syncs to disk).
    async fn store(
        &self,
        connector: &str,
        owner: &Owner,
        tokens: TokenSet,
        update: TokenUpdate,
        took: Option<Duration>,
    ) -> Result<Arc<Credential>, TokenError> {
        let vault = self.inner.vault.clone();
        let (c, o) = (connector.to_owned(), owner.clone());
        tokio::task::spawn_blocking(move || {
            let expires_at = tokens.expires_at;
            vault.put_oauth_tokens(&c, &o, tokens, update)?;
            let event = match update {
                TokenUpdate::Authorized => "connection.connect",
                TokenUpdate::Refreshed => "connection.refresh",
            };
            let record = egret_vault::AuditRecord {
                event: event.to_owned(),
                connector: Some(c.clone()),
                owner: Some(o.to_string()),
                ..egret_vault::AuditRecord::default()
            };
            vault.append_audit(vec![record.with_data(&serde_json::json!({
                "result": "ok",
                "duration_ms": took.map(|d| d.as_millis() as u64),
                "expires_at": expires_at,
            }))])?;
            vault
                .credential(&c, &o)
                .ok_or(egret_vault::VaultError::NoConnection {
                    connector: c.clone(),
                    owner: o.to_string(),
                })
        })
        .await
        .map_err(|_| TokenError::Config("the vault write stopped".to_owned()))?
        .map_err(|e| {
            self.inner.metrics.vault_errors.inc();
            TokenError::Config(e.to_string())
        })
    }

    /// The grant is gone: mark the connection and say so in the audit log.
    async fn give_up(&self, connector: &str, owner: &Owner, why: &str) {
        let vault = self.inner.vault.clone();
        let (c, o, why) = (connector.to_owned(), owner.clone(), why.to_owned());
        let done = tokio::task::spawn_blocking(move || {
            vault.mark_needs_reauth(&c, &o)?;
            vault.audit(
                "connection.needs_reauth",
                Some(&c),
                Some(o.as_str()),
                Some(why),
            )
        })
        .await;
        tracing::warn!(connector, owner = %owner, "connection needs re-authorization");
        if let Ok(Err(e)) = done {
            self.inner.metrics.vault_errors.inc();
            tracing::error!(connector, error = %e, "cannot record needs_reauth");
        }
    }

    /// Starts connecting `owner` to `connector`: the vendor URL for the authorization-code
    /// grant (the pending authorization is kept in the vault for 10 minutes), or the
    /// token itself for client credentials.
    pub async fn begin(&self, connector: &Connector, owner: &Owner) -> Result<Begun, TokenError> {
        let AuthKind::OAuth2(settings) = &connector.auth else {
            return Err(TokenError::Config(format!(
                "connector `{}` uses static keys",
                connector.id
            )));
        };
        let http = self.inner.http.with_timeout(settings.timeout);
        let endpoints = self.endpoints(settings, &http).await?;
        let exchange = self.exchange(settings, &endpoints, &http);
        match settings.grant {
            Grant::ClientCredentials => {
                let tokens = exchange.client_credentials().await?;
                let slot = self.slot(connector.id.as_str(), owner);
                let mut guard = slot.lock.clone().lock_owned().await;
                self.store(
                    connector.id.as_str(),
                    owner,
                    tokens,
                    TokenUpdate::Authorized,
                    None,
                )
                .await?;
                *guard = Renewal::default();
                self.inner
                    .vault
                    .connection(connector.id.as_str(), owner)
                    .map(Begun::Connected)
                    .ok_or(TokenError::NotConnected)
            }
            Grant::AuthorizationCode => {
                let redirect = self.redirect_uri();
                let auth = exchange.authorization(&redirect)?;
                let pending = egret_vault::PendingAuthorization {
                    connector: connector.id.to_string(),
                    owner: owner.clone(),
                    pkce_verifier: auth.pkce_verifier,
                    redirect_uri: redirect,
                    expires_at: unix_now() + crate::PENDING_TTL_SECS,
                };
                let vault = self.inner.vault.clone();
                let state = auth.state;
                tokio::task::spawn_blocking(move || vault.put_authorization(&state, &pending))
                    .await
                    .map_err(|_| TokenError::Config("the vault write stopped".to_owned()))?
                    .map_err(|e| TokenError::Config(e.to_string()))?;
                Ok(Begun::Redirect(auth.url))
            }
        }
    }

    /// `control.public_url` + `/oauth/callback`, as registered with the vendor.
    pub fn redirect_uri(&self) -> String {
        let policy = self.inner.policy.load();
        format!(
            "{}/oauth/callback",
            policy.control.public_url.trim_end_matches('/')
        )
    }

    /// Finishes an authorization from its callback. The state is spent whatever happens.
    pub async fn complete(
        &self,
        state: &str,
        outcome: Result<&str, &str>,
    ) -> Result<ConnectionInfo, crate::CallbackError> {
        use crate::CallbackError as E;
        let vault = self.inner.vault.clone();
        let taken = {
            let state = state.to_owned();
            tokio::task::spawn_blocking(move || vault.take_authorization(&state))
                .await
                .map_err(|_| E::Vault("the vault read stopped".to_owned()))?
                .map_err(|e| E::Vault(e.to_string()))?
        };
        let pending = taken.ok_or(E::UnknownState)?;
        let code = match outcome {
            Ok(code) => code,
            Err(error) => {
                let _ = self.inner.vault.audit(
                    "connection.denied",
                    Some(&pending.connector),
                    Some(pending.owner.as_str()),
                    Some(error.to_owned()),
                );
                return Err(E::Denied {
                    connector: pending.connector,
                    error: error.to_owned(),
                });
            }
        };
        let policy = self.inner.policy.load_full();
        let connector = policy
            .connector(&pending.connector)
            .ok_or_else(|| E::ConnectorGone(pending.connector.clone()))?;
        if !connector.enabled {
            return Err(E::Disabled(pending.connector.clone()));
        }
        let AuthKind::OAuth2(settings) = &connector.auth else {
            return Err(E::ConnectorGone(pending.connector.clone()));
        };
        let http = self.inner.http.with_timeout(settings.timeout);
        let exchange = async {
            let endpoints = self.endpoints(settings, &http).await?;
            self.exchange(settings, &endpoints, &http)
                .exchange_code(code, pending.pkce_verifier.as_ref(), &pending.redirect_uri)
                .await
        };
        let tokens = exchange.await.map_err(|e| E::Exchange {
            connector: pending.connector.clone(),
            error: e,
        })?;
        // Waits out any renewal of the old grant so it cannot overwrite the new one.
        let slot = self.slot(&pending.connector, &pending.owner);
        let mut guard = slot.lock.clone().lock_owned().await;
        self.store(
            &pending.connector,
            &pending.owner,
            tokens,
            TokenUpdate::Authorized,
            None,
        )
        .await
        .map_err(|e| E::Vault(e.to_string()))?;
        *guard = Renewal::default();
        self.inner
            .vault
            .connection(&pending.connector, &pending.owner)
            .ok_or_else(|| E::Vault("the connection vanished".to_owned()))
    }

    /// Disconnects: revokes the grant at the vendor (RFC 7009) when a revocation endpoint
    /// is known, then erases the connection and its placeholders whatever the vendor said.
    /// Returns whether a connection existed, and the revocation's outcome when one was
    /// attempted (OAuth connection, revocation endpoint known).
    pub async fn disconnect(
        &self,
        connector: Option<&Connector>,
        connector_id: &str,
        owner: &Owner,
    ) -> Result<(bool, Option<Result<(), TokenError>>), egret_vault::VaultError> {
        let slot = self.slot(connector_id, owner);
        let _guard = slot.lock.clone().lock_owned().await;
        let mut revocation = None;
        if let (Some(c), Some(credential)) =
            (connector, self.inner.vault.credential(connector_id, owner))
            && let AuthKind::OAuth2(settings) = &c.auth
            && credential.kind == ConnectionKind::Oauth2
            && credential.status == ConnectionStatus::Connected
        {
            revocation = self.revoke(settings, &credential).await;
            if let Some(Err(e)) = &revocation {
                tracing::warn!(connector = connector_id, error = %e, "revocation at the vendor failed; erasing the tokens anyway");
            }
        }
        let vault = self.inner.vault.clone();
        let (c, o) = (connector_id.to_owned(), owner.clone());
        let existed = tokio::task::spawn_blocking(move || vault.remove_connection(&c, &o))
            .await
            .map_err(|_| {
                egret_vault::VaultError::Invalid("the vault write stopped".to_owned())
            })??;
        Ok((existed, revocation))
    }

    /// `None` when the vendor has no revocation endpoint.
    async fn revoke(
        &self,
        settings: &OAuthSettings,
        credential: &Credential,
    ) -> Option<Result<(), TokenError>> {
        let http = self.inner.http.with_timeout(settings.timeout);
        let endpoints = match self.endpoints(settings, &http).await {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        endpoints.revocation.as_ref()?;
        let exchange = self.exchange(settings, &endpoints, &http);
        Some(match &credential.refresh_token {
            Some(r) => exchange.revoke(r, true).await,
            None => exchange.revoke(&credential.secret, false).await,
        })
    }

    /// Renews in the background, every `every`: connections used within the last hour
    /// whose token expires within the skew plus two rounds, and any connection not
    /// renewed for 24 hours. Runs until the process ends.
    pub fn spawn_background(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.renew_due(every).await;
            }
        })
    }

    /// One background round: renews what is due, one connection at a time. `every` is
    /// the time to the next round, which "due" must cover.
    pub async fn renew_due(&self, every: Duration) {
        let policy = self.inner.policy.load_full();
        let now = unix_now();
        let rounds = i64::try_from(every.as_secs().saturating_mul(2)).unwrap_or(i64::MAX);
        for info in self.inner.vault.connections(None, None) {
            if info.kind != ConnectionKind::Oauth2 || info.status != ConnectionStatus::Connected {
                continue;
            }
            let Some(connector) = policy.connector(&info.connector) else {
                continue;
            };
            let AuthKind::OAuth2(settings) = &connector.auth else {
                continue;
            };
            let skew = i64::try_from(settings.refresh_skew.as_secs()).unwrap_or(i64::MAX);
            let used = self
                .slot(&info.connector, &info.owner)
                .last_used
                .load(Ordering::Relaxed);
            let renewed = info.refreshed_at.unwrap_or(info.connected_at);
            let need = if now - used < RECENT_USE && info.expires_at.is_some() {
                Need::Ahead(skew.saturating_add(rounds))
            } else if now - renewed >= KEEPALIVE {
                Need::Keepalive
            } else {
                continue;
            };
            if let Err(e) = self.fresh(connector, &info.owner, need).await {
                tracing::debug!(connector = %info.connector, error = %e, "background renewal did not succeed");
            }
        }
    }
}

/// The current token while it is still valid, else the renewal's error.
fn usable_or(
    current: Arc<Credential>,
    e: TokenError,
    now: i64,
) -> Result<Arc<Credential>, TokenError> {
    if current.usable_at(now) {
        Ok(current)
    } else {
        Err(e)
    }
}
