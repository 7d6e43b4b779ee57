//! The token broker: keeps every OAuth connection's access token fresh.
//!
//! One renewal per connection at a time: callers queue on the connection's lock, and the
//! first one in runs the refresh in a task of its own that holds the lock until the new
//! tokens are committed to the store. Cancelling a caller (its sandbox hung up) can
//! therefore never lose a rotated refresh token, and nobody after it can reuse the old
//! one — which would make vendors with single-use refresh tokens revoke the grant.
//!
//! `mod.rs` holds inline renewal ([`Broker::fresh`]); `lease` claims the renewal and
//! records its outcome; `connect` starts, completes and removes connections; `background` renews ahead of expiry. The broker reaches the
//! vendor through [`Vendor`] and storage through [`TokenStore`], and reads the time from
//! its [`Clock`]: `tests` drives it with a scripted vendor, an in-memory store and
//! paused time.

mod background;
mod connect;
mod health;
mod lease;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use egret_clock::Clock;
use egret_policy::{AuthKind, Connector, Grant, Policy};
use egret_vault::{
    ConnectionId, ConnectionKind, ConnectionStatus, Credential, TokenSet, TokenUpdate,
};
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

pub use connect::{Begun, SignInStart};
pub use health::{Health, sanitized};

use crate::error::TokenError;
use crate::store::{Claim, TokenStore};
use crate::vendor::Vendor;
use egret_policy::EventKind;
use egret_webhooks::{Event, EventSink};

/// Backoff after a failed renewal of a token that is still valid: 1 s, doubling, at
/// most this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A request that needs an expired token (it cannot be served otherwise) tries the
/// vendor again this soon after a failure, whatever the backoff: a vendor that is back
/// must be used at once, not a minute later. Still one try at a time per connection.
pub const EXPIRED_RETRY_EVERY: Duration = Duration::from_secs(1);
/// A renewal forced by an upstream 401 happens at most this often per connection: a
/// vendor endpoint that refuses every token must not let a sandbox drive renewals (and
/// get the operator's OAuth app rate-limited) at its request rate.
pub const FORCED_RENEWAL_EVERY: Duration = Duration::from_secs(30);
/// How often a broker looks whether another replica's renewal has been committed.
const CLAIM_POLL: Duration = Duration::from_millis(50);
/// How long a waiter watches for another replica's commit before claiming again.
const CLAIM_AGAIN_AFTER: Duration = Duration::from_secs(1);
/// A renewal lease outlasts the renewal's calls by this much: the holder has committed
/// or given up before anyone else may claim.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How long a renewal may hold its lease, with `timeout` the connector's per-call
/// timeout: a renewal may first fetch the issuer's discovery document and then call the
/// token endpoint, each bounded by `timeout`, and the lease outlasts both.
fn renewal_lease(timeout: Duration) -> Duration {
    timeout * 2 + LEASE_MARGIN
}

/// What a caller needs from [`Broker::fresh`].
pub enum Need {
    /// A token that does not expire within the connector's skew (a request is waiting).
    Fresh,
    /// Renew if it expires within this many seconds (background renewal).
    Ahead(i64),
    /// The upstream refused this very credential: renew unless it was replaced already,
    /// or renewed less than [`FORCED_RENEWAL_EVERY`] ago (then it comes back as it is).
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
    /// Where connections' turns (connected, failing, recovered, needs_reauth) are told.
    events: Arc<dyn EventSink>,
    policy: Arc<ArcSwap<Policy>>,
    store: Arc<dyn TokenStore>,
    vendor: Arc<dyn Vendor>,
    clock: Clock,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// Per-connection renewal state.
struct Slot {
    lock: Arc<tokio::sync::Mutex<Renewal>>,
    /// Renewals finished, so a waiter can tell one ran while it queued.
    finished: AtomicU64,
    last_used: AtomicI64,
    /// Health for listings: renewal failing or not, requests per hour.
    tally: Mutex<health::Tally>,
}

/// The outcome of the last renewal, while it failed: shared by every waiter until the
/// backoff is over.
#[derive(Default)]
struct Renewal {
    failures: u32,
    retry_at: Option<Instant>,
    /// When the last failed renewal ended.
    failed_at: Option<Instant>,
    last_error: Option<TokenError>,
    /// When the last renewal succeeded, to space renewals forced by 401s.
    renewed_at: Option<Instant>,
}

impl Broker {
    pub fn new(
        policy: Arc<ArcSwap<Policy>>,
        store: Arc<dyn TokenStore>,
        vendor: Arc<dyn Vendor>,
        metrics: Arc<egret_metrics::Metrics>,
        clock: Clock,
        events: Arc<dyn EventSink>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                metrics,
                events,
                policy,
                store,
                vendor,
                clock,
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn slot(&self, conn: &ConnectionId) -> Arc<Slot> {
        let key = conn.key();
        let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Slot {
                    lock: Arc::new(tokio::sync::Mutex::new(Renewal::default())),
                    finished: AtomicU64::new(0),
                    last_used: AtomicI64::new(0),
                    tally: Mutex::new(health::Tally::default()),
                })
            })
            .clone()
    }

    /// Records that a request used the connection's token: background renewal keeps
    /// recently used connections ahead of expiry.
    pub fn touch(&self, conn: &ConnectionId) {
        self.slot(conn)
            .last_used
            .store(self.inner.clock.unix(), Ordering::Relaxed);
    }

    /// The connection's credential, renewed first when `need` says so. Static keys are
    /// returned as they are.
    pub async fn fresh(
        &self,
        connector: &Connector,
        conn: &ConnectionId,
        need: Need,
    ) -> Result<Arc<Credential>, TokenError> {
        let store = &self.inner.store;
        let clock = &self.inner.clock;
        let AuthKind::OAuth2(settings) = &connector.auth else {
            return store.credential(conn).ok_or(TokenError::NotConnected);
        };
        let slot = self.slot(conn);
        if !matches!(need, Need::Ahead(_) | Need::Keepalive) {
            slot.last_used.store(clock.unix(), Ordering::Relaxed);
        }
        let seen = slot.finished.load(Ordering::Acquire);
        let guard = slot.lock.clone().lock_owned().await;
        let current = store.credential(conn).ok_or(TokenError::NotConnected)?;
        if current.kind != ConnectionKind::Oauth2 {
            return Ok(current);
        }
        if current.status == ConnectionStatus::NeedsReauth {
            return Err(TokenError::NeedsReauth);
        }
        let now = clock.unix();
        let skew = i64::try_from(settings.refresh_skew.as_secs()).unwrap_or(i64::MAX);
        let due = match &need {
            Need::Fresh => current.needs_renewal(now, skew),
            Need::Ahead(window) => current.needs_renewal(now, *window),
            Need::Replace(used) => {
                let spaced = guard
                    .renewed_at
                    .is_none_or(|at| clock.instant() >= at + FORCED_RENEWAL_EVERY);
                Arc::ptr_eq(used, &current) && spaced
            }
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
        if let Some(e) = &guard.last_error {
            // The backoff spares the vendor while the current token still serves; a
            // request that needs an expired one may try again after a second.
            let waiting = matches!(need, Need::Fresh | Need::Replace(_));
            let next = if waiting && !current.usable_at(now) {
                guard.failed_at.map(|at| at + EXPIRED_RETRY_EVERY)
            } else {
                guard.retry_at
            };
            if next.is_some_and(|at| clock.instant() < at) {
                return usable_or(current, e.clone(), now);
            }
        }
        if settings.grant == Grant::AuthorizationCode && current.refresh_token.is_none() {
            if current.usable_at(now) {
                return Ok(current);
            }
            let why = "the token expired and the vendor issued no refresh token";
            self.give_up(conn, why).await;
            return Err(TokenError::NeedsReauth);
        }
        // Across replicas: one renews, the others wait for its commit (and take over
        // when its lease runs out without one).
        let lease = renewal_lease(settings.timeout);
        let patience = clock.instant() + lease + settings.timeout;
        loop {
            match self.claim(conn, lease).await? {
                Claim::Granted => break,
                Claim::HeldElsewhere => {
                    self.inner.metrics.lease_waits.inc();
                }
            }
            if let Some(outcome) = self.await_other(conn, &current).await {
                return outcome;
            }
            if clock.instant() >= patience {
                let why = "another egret replica is renewing this token and has not finished";
                return usable_or(
                    current,
                    TokenError::Unreachable(why.to_owned()),
                    clock.unix(),
                );
            }
        }
        let this = self.clone();
        let connector = connector.clone();
        let conn = conn.clone();
        let task = tokio::spawn(async move {
            let result = this.renew(&connector, &conn, &current, guard).await;
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
        conn: &ConnectionId,
        current: &Arc<Credential>,
        mut guard: OwnedMutexGuard<Renewal>,
    ) -> Result<Arc<Credential>, TokenError> {
        let id = connector.id.as_str();
        let AuthKind::OAuth2(settings) = &connector.auth else {
            return Ok(current.clone());
        };
        let clock = &self.inner.clock;
        let started = clock.instant();
        let scopes = self
            .inner
            .store
            .connection(conn)
            .map(|c| c.scopes)
            .unwrap_or_default();
        let vendor = &self.inner.vendor;
        let result = match (&settings.grant, &current.refresh_token) {
            (Grant::AuthorizationCode, Some(refresh)) => {
                vendor.refresh(settings, refresh, &scopes).await
            }
            (Grant::AuthorizationCode, None) => {
                Err(TokenError::InvalidGrant("no refresh token".to_owned()))
            }
            (Grant::ClientCredentials, _) => vendor.client_credentials(settings).await,
        };
        let took = clock.instant() - started;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(TokenError::InvalidGrant(_)) => "invalid_grant",
            Err(_) => "failed",
        };
        self.inner.metrics.refresh(id, outcome, took.as_secs_f64());
        match result {
            Ok(tokens) => {
                let credential = self
                    .store(conn, tokens, TokenUpdate::Refreshed, Some(took))
                    .await?;
                *guard = Renewal {
                    renewed_at: Some(clock.instant()),
                    ..Renewal::default()
                };
                if self.set_failing(conn, None) {
                    self.tell(
                        EventKind::ConnectionRecovered,
                        conn,
                        "connected",
                        "a renewal succeeded again",
                    );
                }
                tracing::info!(connection = %conn, "token renewed");
                Ok(credential)
            }
            Err(TokenError::InvalidGrant(why)) => {
                if let Some(newer) = self.newer_elsewhere(conn, current).await {
                    self.release(conn).await;
                    tracing::info!(connection = %conn, "refresh token refused, but another replica had just renewed it; using its token");
                    *guard = Renewal {
                        renewed_at: Some(clock.instant()),
                        ..Renewal::default()
                    };
                    return Ok(newer);
                }
                // Not failing for a passing reason: the listing says needs_reauth.
                self.set_failing(conn, None);
                let why = health::sanitized(&why, &secrets_of(current));
                self.give_up(conn, &why).await;
                guard.last_error = Some(TokenError::NeedsReauth);
                guard.retry_at = None;
                Err(TokenError::InvalidGrant(why))
            }
            Err(e) => {
                self.release(conn).await;
                let e = e.with_vendor_text(|t| health::sanitized(t, &secrets_of(current)));
                let error = health::sanitized(&e.to_string(), &secrets_of(current));
                let store = self.inner.store.clone();
                let (c, why) = (conn.clone(), error.clone());
                // Off the async threads; the outcome of writing it only matters to the log.
                tokio::task::spawn_blocking(move || {
                    let _ = store.audit("connection.refresh_failed", &c, why);
                });
                guard.failures = guard.failures.saturating_add(1);
                let backoff = backoff_after(guard.failures);
                guard.retry_at = Some(clock.instant() + backoff);
                guard.failed_at = Some(clock.instant());
                guard.last_error = Some(e.clone());
                let retry_in = i64::try_from(backoff.as_secs()).unwrap_or(i64::MAX);
                let was_failing = self.set_failing(
                    conn,
                    Some(health::Failing {
                        error: error.clone(),
                        next_retry_at: clock.unix().saturating_add(retry_in),
                    }),
                );
                if !was_failing {
                    self.tell(
                        EventKind::ConnectionRefreshFailing,
                        conn,
                        "refresh_failing",
                        &error,
                    );
                }
                tracing::warn!(
                    connection = %conn, error = %e, retry_in = ?backoff,
                    "token renewal failed"
                );
                usable_or(current.clone(), e, clock.unix())
            }
        }
    }
}

/// A credential's secrets, to take out of any vendor text shown or told.
fn secrets_of(c: &Credential) -> Vec<&str> {
    [Some(&c.secret), c.refresh_token.as_ref()]
        .into_iter()
        .flatten()
        .map(secrecy::ExposeSecret::expose_secret)
        .collect()
}

/// 1 s after the first failure, doubling, at most [`MAX_BACKOFF`].
fn backoff_after(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(7).saturating_sub(1)).min(MAX_BACKOFF)
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
