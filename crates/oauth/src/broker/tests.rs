//! The broker alone: a scripted vendor, an in-memory store and paused tokio time, so
//! renewal, backoff and expiry are tested in milliseconds of wall time.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use egret_clock::Clock;
use egret_policy::{Connector, OAuthSettings, Policy};
use egret_vault::{
    ConnectionId, ConnectionInfo, ConnectionKind, ConnectionStatus, Credential, Owner,
    PendingAuthorization, TokenSet, TokenUpdate, VaultError,
};
use secrecy::{ExposeSecret, SecretString};

use super::{Broker, Need, backoff_after};
use crate::error::TokenError;
use crate::protocol::Authorization;
use crate::store::{Claim, TokenStore};
use crate::vendor::{Vendor, VendorCall};

const CONNECTOR: &str = "crm";

/// The owner's default connection to [`CONNECTOR`].
fn conn(owner: &Owner) -> ConnectionId {
    ConnectionId::default_of(CONNECTOR, owner)
}
const SKEW: i64 = 60;

/// Connections in memory, with switches for the failures a real store can have.
struct MemoryStore {
    clock: Clock,
    connections: Mutex<HashMap<String, (ConnectionInfo, Arc<Credential>)>>,
    commits: AtomicUsize,
    fail_commits: AtomicBool,
    held_elsewhere: AtomicBool,
    events: Mutex<Vec<String>>,
}

impl MemoryStore {
    fn new(clock: &Clock) -> Self {
        Self {
            clock: clock.clone(),
            connections: Mutex::default(),
            commits: AtomicUsize::new(0),
            fail_commits: AtomicBool::new(false),
            held_elsewhere: AtomicBool::new(false),
            events: Mutex::default(),
        }
    }

    fn key(connector: &str, owner: &Owner) -> String {
        format!("{connector}/{owner}")
    }

    fn put(&self, owner: &Owner, access: &str, refresh: Option<&str>, expires_at: Option<i64>) {
        let tokens = TokenSet {
            identity: None,
            access_token: SecretString::from(access),
            refresh_token: refresh.map(SecretString::from),
            expires_at,
            scopes: Vec::new(),
        };
        self.write(CONNECTOR, owner, tokens, TokenUpdate::Authorized);
    }

    fn write(
        &self,
        connector: &str,
        owner: &Owner,
        tokens: TokenSet,
        update: TokenUpdate,
    ) -> Arc<Credential> {
        let at = self.clock.unix();
        let mut all = self.connections.lock().expect("lock");
        let connected_at = all
            .get(&Self::key(connector, owner))
            .map_or(at, |(info, _)| info.connected_at);
        let info = ConnectionInfo {
            connector: connector.to_owned(),
            owner: owner.clone(),
            name: Default::default(),
            kind: ConnectionKind::Oauth2,
            status: ConnectionStatus::Connected,
            connected_at,
            refreshed_at: (update == TokenUpdate::Refreshed).then_some(at),
            expires_at: tokens.expires_at,
            scopes: tokens.scopes,
            identity_label: None,
            description: None,
        };
        let credential = Arc::new(Credential {
            values: Default::default(),
            refs: Default::default(),
            secret: tokens.access_token,
            refresh_token: tokens.refresh_token,
            kind: ConnectionKind::Oauth2,
            status: ConnectionStatus::Connected,
            expires_at: tokens.expires_at,
            narrowed: None,
        });
        all.insert(Self::key(connector, owner), (info, credential.clone()));
        credential
    }

    fn access_token(&self, owner: &Owner) -> String {
        let c = self.credential(&conn(owner)).expect("connected");
        c.secret.expose_secret().to_owned()
    }

    fn refresh_token(&self, owner: &Owner) -> Option<String> {
        let c = self.credential(&conn(owner)).expect("connected");
        c.refresh_token
            .as_ref()
            .map(|r| r.expose_secret().to_owned())
    }

    fn status(&self, owner: &Owner) -> ConnectionStatus {
        self.credential(&conn(owner)).expect("connected").status
    }
}

impl TokenStore for MemoryStore {
    fn credential(&self, id: &ConnectionId) -> Option<Arc<Credential>> {
        let all = self.connections.lock().expect("lock");
        all.get(&Self::key(&id.connector, &id.owner))
            .map(|(_, c)| c.clone())
    }

    fn connection(&self, id: &ConnectionId) -> Option<ConnectionInfo> {
        let all = self.connections.lock().expect("lock");
        all.get(&Self::key(&id.connector, &id.owner))
            .map(|(i, _)| i.clone())
    }

    fn connections(&self) -> Vec<ConnectionInfo> {
        let all = self.connections.lock().expect("lock");
        all.values().map(|(i, _)| i.clone()).collect()
    }

    fn claim_renewal(&self, _: &ConnectionId, _: std::time::Duration) -> Result<Claim, VaultError> {
        Ok(if self.held_elsewhere.load(Ordering::SeqCst) {
            Claim::HeldElsewhere
        } else {
            Claim::Granted
        })
    }

    fn commit_tokens(
        &self,
        id: &ConnectionId,
        tokens: TokenSet,
        update: TokenUpdate,
        _data: serde_json::Value,
    ) -> Result<Arc<Credential>, VaultError> {
        if self.fail_commits.load(Ordering::SeqCst) {
            return Err(VaultError::Invalid("No space left on device".to_owned()));
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(self.write(&id.connector, &id.owner, tokens, update))
    }

    fn mark_needs_reauth(&self, id: &ConnectionId, why: String) -> Result<(), VaultError> {
        let mut all = self.connections.lock().expect("lock");
        let (info, credential) = all
            .get_mut(&Self::key(&id.connector, &id.owner))
            .ok_or(VaultError::NoPlaceholder)?;
        info.status = ConnectionStatus::NeedsReauth;
        *credential = Arc::new(Credential {
            values: Default::default(),
            refs: Default::default(),
            secret: SecretString::from("revoked"),
            refresh_token: None,
            kind: ConnectionKind::Oauth2,
            status: ConnectionStatus::NeedsReauth,
            expires_at: info.expires_at,
            narrowed: None,
        });
        self.events
            .lock()
            .expect("lock")
            .push(format!("needs_reauth: {why}"));
        Ok(())
    }

    fn audit(&self, event: &str, _: &ConnectionId, detail: String) -> Result<(), VaultError> {
        self.events
            .lock()
            .expect("lock")
            .push(format!("{event}: {detail}"));
        Ok(())
    }

    fn put_authorization(
        &self,
        _: &SecretString,
        _: &PendingAuthorization,
    ) -> Result<(), VaultError> {
        Ok(())
    }

    fn bind_authorization(&self, _: &str, _: &str) -> Result<Option<String>, VaultError> {
        Ok(None)
    }

    fn take_authorization(&self, _: &str) -> Result<Option<PendingAuthorization>, VaultError> {
        Ok(None)
    }

    fn peek_authorization(&self, _: &str) -> Result<Option<PendingAuthorization>, VaultError> {
        Ok(None)
    }

    fn remove_connection(&self, id: &ConnectionId) -> Result<bool, VaultError> {
        let mut all = self.connections.lock().expect("lock");
        Ok(all.remove(&Self::key(&id.connector, &id.owner)).is_some())
    }
}

/// A vendor whose refresh answers come from a script (then succeed), each after
/// `delay` of (paused) time. Every token it issues lives an hour and rotates the
/// refresh token.
struct ScriptedVendor {
    clock: Clock,
    delay: Mutex<Duration>,
    script: Mutex<VecDeque<TokenError>>,
    calls: AtomicUsize,
    /// The refresh tokens it was asked to use, in order.
    used: Mutex<Vec<String>>,
}

impl ScriptedVendor {
    fn new(clock: &Clock) -> Self {
        Self {
            clock: clock.clone(),
            delay: Mutex::new(Duration::from_millis(100)),
            script: Mutex::new(VecDeque::new()),
            calls: AtomicUsize::new(0),
            used: Mutex::new(Vec::new()),
        }
    }

    fn fail_next(&self, errors: impl IntoIterator<Item = TokenError>) {
        self.script.lock().expect("lock").extend(errors);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Vendor for ScriptedVendor {
    fn authorization<'a>(
        &'a self,
        _: &'a OAuthSettings,
        _: &'a str,
    ) -> VendorCall<'a, Authorization> {
        Box::pin(async { Err(TokenError::Config("not scripted".into())) })
    }

    fn exchange_code<'a>(
        &'a self,
        _: &'a OAuthSettings,
        _: &'a str,
        _: Option<&'a SecretString>,
        _: &'a str,
    ) -> VendorCall<'a, TokenSet> {
        Box::pin(async { Err(TokenError::Config("not scripted".into())) })
    }

    fn client_credentials<'a>(&'a self, _: &'a OAuthSettings) -> VendorCall<'a, TokenSet> {
        Box::pin(async { Err(TokenError::Config("not scripted".into())) })
    }

    fn refresh<'a>(
        &'a self,
        _: &'a OAuthSettings,
        refresh_token: &'a SecretString,
        _: &'a [String],
    ) -> VendorCall<'a, TokenSet> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let used = refresh_token.expose_secret().to_owned();
            self.used.lock().expect("lock").push(used);
            let delay = *self.delay.lock().expect("lock");
            tokio::time::sleep(delay).await;
            if let Some(e) = self.script.lock().expect("lock").pop_front() {
                return Err(e);
            }
            Ok(TokenSet {
                identity: None,
                access_token: SecretString::from(format!("access-{n}")),
                refresh_token: Some(SecretString::from(format!("refresh-{n}"))),
                expires_at: Some(self.clock.unix() + 3600),
                scopes: Vec::new(),
            })
        })
    }

    fn revoke<'a>(
        &'a self,
        _: &'a OAuthSettings,
        _: &'a SecretString,
        _: bool,
    ) -> VendorCall<'a, Option<()>> {
        Box::pin(async { Ok(None) })
    }
}

/// The events the broker told, as `type` and `data.status`.
#[derive(Default)]
struct Told(Mutex<Vec<(String, String)>>);

impl egret_webhooks::EventSink for Told {
    fn emit(&self, e: egret_webhooks::Event) {
        let status = e.data["status"].as_str().unwrap_or_default().to_owned();
        self.0
            .lock()
            .expect("lock")
            .push((e.kind.name().to_owned(), status));
    }
}

impl Told {
    fn kinds(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }
}

struct Fixture {
    told: Arc<Told>,
    broker: Broker,
    store: Arc<MemoryStore>,
    vendor: Arc<ScriptedVendor>,
    clock: Clock,
    connector: Connector,
    owner: Owner,
}

impl Fixture {
    fn new() -> Self {
        let yaml = format!(
            "version: 1\nconnectors:\n  - id: {CONNECTOR}\n    auth: oauth2\n    egress: [crm.x.com]\n    oauth:\n      authorize_url: https://id.x.com/a\n      token_url: https://id.x.com/t\n      client_id: app\n      refresh_skew: {SKEW}s\n      timeout: 5s\n"
        );
        let dir = std::path::Path::new(".");
        let policy: Policy = egret_policy::parse(&yaml, &dir.join("t.yaml"), dir).expect("policy");
        let connector = policy.connector(CONNECTOR).expect("connector").clone();
        let clock = Clock::for_tests();
        let store = Arc::new(MemoryStore::new(&clock));
        let vendor = Arc::new(ScriptedVendor::new(&clock));
        let told = Arc::new(Told::default());
        let broker = Broker::new(
            Arc::new(ArcSwap::from_pointee(policy)),
            store.clone(),
            vendor.clone(),
            Arc::new(egret_metrics::Metrics::new()),
            clock.clone(),
            told.clone(),
        );
        let owner = Owner::parse("user:ann").expect("owner");
        Self {
            told,
            broker,
            store,
            vendor,
            clock,
            connector,
            owner,
        }
    }

    /// Connects with a token expiring `in_secs` from now (negative: expired already).
    fn connected(self, in_secs: i64) -> Self {
        let expires = self.clock.unix() + in_secs;
        self.store
            .put(&self.owner, "access-0", Some("refresh-0"), Some(expires));
        self
    }

    async fn fresh(&self, need: Need) -> Result<Arc<Credential>, TokenError> {
        self.broker
            .fresh(&self.connector, &conn(&self.owner), need)
            .await
    }
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_requests_for_an_expired_token_share_one_renewal() {
    let f = Arc::new(Fixture::new().connected(-10));
    let waiting: Vec<_> = (0..50)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.fresh(Need::Fresh).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for w in waiting {
        let credential = w.await.expect("join").expect("renewed");
        tokens.push(credential);
    }
    assert_eq!(
        f.vendor.calls(),
        1,
        "one call to the vendor for fifty requests"
    );
    assert_eq!(f.store.commits.load(Ordering::SeqCst), 1);
    assert!(
        tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])),
        "all share one credential"
    );
    assert_eq!(tokens[0].secret.expose_secret(), "access-1");
    assert_eq!(
        f.store.refresh_token(&f.owner).as_deref(),
        Some("refresh-1")
    );
}

#[tokio::test(start_paused = true)]
async fn waiters_share_one_failed_outcome_instead_of_asking_again() {
    let f = Arc::new(Fixture::new().connected(-10));
    f.vendor.fail_next([TokenError::Unreachable(
        "503 from the token endpoint".into(),
    )]);
    let waiting: Vec<_> = (0..10)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.fresh(Need::Fresh).await })
        })
        .collect();
    for w in waiting {
        let e = w.await.expect("join").expect_err("expired and not renewed");
        assert!(matches!(e, TokenError::Unreachable(_)), "{e}");
    }
    assert_eq!(
        f.vendor.calls(),
        1,
        "the failure was shared, not retried by each waiter"
    );
    // The failure is audited off the async threads: wait for it (paused time moves on).
    let audited = || {
        let events = f.store.events.lock().expect("lock");
        events
            .iter()
            .any(|e| e.starts_with("connection.refresh_failed"))
    };
    for _ in 0..100 {
        if audited() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(audited(), "the failed renewal is in the audit log");
}

#[tokio::test(start_paused = true)]
async fn a_failed_renewal_backs_off_1_2_4_seconds_doubling_to_60() {
    assert_eq!(
        (1..=9)
            .map(|n| backoff_after(n).as_secs())
            .collect::<Vec<_>>(),
        [1, 2, 4, 8, 16, 32, 60, 60, 60]
    );
    let f = Fixture::new().connected(30); // valid, inside the skew: due for renewal
    f.vendor
        .fail_next((0..3).map(|_| TokenError::Unreachable("down".into())));
    let used = f
        .fresh(Need::Fresh)
        .await
        .expect("the valid token is used meanwhile");
    assert_eq!(used.secret.expose_secret(), "access-0");
    assert_eq!(f.vendor.calls(), 1);
    // Within the first backoff (1 s) nobody asks the vendor.
    tokio::time::advance(Duration::from_millis(500)).await;
    f.fresh(Need::Fresh).await.expect("still valid");
    assert_eq!(f.vendor.calls(), 1, "inside the 1 s backoff");
    tokio::time::advance(Duration::from_millis(600)).await;
    f.fresh(Need::Fresh).await.expect("still valid");
    assert_eq!(f.vendor.calls(), 2, "after 1 s: the second try");
    // The second failure waits 2 s.
    tokio::time::advance(Duration::from_millis(1500)).await;
    f.fresh(Need::Fresh).await.expect("still valid");
    assert_eq!(f.vendor.calls(), 2, "inside the 2 s backoff");
    tokio::time::advance(Duration::from_millis(600)).await;
    f.fresh(Need::Fresh).await.expect("still valid");
    assert_eq!(f.vendor.calls(), 3);
    // The script is spent: after 4 s the vendor answers and the backoff is forgotten.
    tokio::time::advance(Duration::from_millis(4100)).await;
    let renewed = f.fresh(Need::Fresh).await.expect("renewed");
    assert_eq!(f.vendor.calls(), 4);
    assert_eq!(renewed.secret.expose_secret(), "access-4");
    // Three failures and a success: the platform hears of the turn each way once.
    assert_eq!(
        f.told.kinds(),
        ["connection.refresh_failing", "connection.recovered"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_for_an_expired_token_tries_again_after_a_second_whatever_the_backoff() {
    let f = Fixture::new().connected(-10);
    f.vendor
        .fail_next((0..4).map(|_| TokenError::Unreachable("down".into())));
    // Four failures a second apart: a still-valid token would now wait 8 s.
    for n in 1..=4 {
        f.fresh(Need::Fresh).await.expect_err("the vendor is down");
        assert_eq!(f.vendor.calls(), n);
        // Within the second, waiters share the failure without asking again.
        tokio::time::advance(Duration::from_millis(500)).await;
        f.fresh(Need::Fresh).await.expect_err("shared");
        assert_eq!(f.vendor.calls(), n, "at most one try a second");
        tokio::time::advance(Duration::from_millis(600)).await;
    }
    // The vendor is back: the next request, a second after the last try, is served.
    let renewed = f.fresh(Need::Fresh).await.expect("renewed at once");
    assert_eq!(f.vendor.calls(), 5);
    assert_eq!(renewed.secret.expose_secret(), "access-5");
    // Background renewal of an expired token keeps the backoff: no request waits on it.
    let g = Fixture::new().connected(-10);
    g.vendor
        .fail_next((0..2).map(|_| TokenError::Unreachable("down".into())));
    g.fresh(Need::Ahead(600)).await.expect_err("down");
    tokio::time::advance(Duration::from_millis(1100)).await;
    g.fresh(Need::Ahead(600)).await.expect_err("down");
    tokio::time::advance(Duration::from_millis(1100)).await;
    g.fresh(Need::Ahead(600))
        .await
        .expect_err("inside the 2 s backoff");
    assert_eq!(g.vendor.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn each_need_renews_only_when_it_says() {
    // A token with an hour left: not due for a request.
    let f = Fixture::new().connected(3600);
    let current = f.fresh(Need::Fresh).await.expect("fresh");
    assert_eq!(f.vendor.calls(), 0, "Fresh: not inside the skew");
    f.fresh(Need::Ahead(600)).await.expect("ahead");
    assert_eq!(f.vendor.calls(), 0, "Ahead(10 min): expires later");
    let renewed = f.fresh(Need::Ahead(7200)).await.expect("ahead");
    assert_eq!(f.vendor.calls(), 1, "Ahead(2 h): expires within the window");
    // An upstream 401 on a token already replaced: no second renewal.
    let again = f.fresh(Need::Replace(current)).await.expect("replace");
    assert_eq!(
        f.vendor.calls(),
        1,
        "Replace(old): someone renewed it already"
    );
    assert!(Arc::ptr_eq(&again, &renewed));
    // An upstream 401 on the token in force: renewed, whatever its expiry, once the
    // last renewal is far enough back.
    tokio::time::advance(super::FORCED_RENEWAL_EVERY).await;
    f.fresh(Need::Replace(renewed)).await.expect("replace");
    assert_eq!(f.vendor.calls(), 2, "Replace(current)");
    tokio::time::advance(Duration::from_secs(1)).await;
    f.fresh(Need::Keepalive).await.expect("keepalive");
    assert_eq!(f.vendor.calls(), 3, "Keepalive: always");
}

#[tokio::test(start_paused = true)]
async fn background_rounds_renew_recently_used_tokens_ahead_and_idle_ones_daily() {
    let f = Fixture::new().connected(3600);
    let every = Duration::from_secs(30);
    f.broker.renew_due(every).await;
    assert_eq!(
        f.vendor.calls(),
        0,
        "unused and renewed just now: nothing to do"
    );
    // Used, and now within skew + two rounds of expiry: renewed ahead.
    f.broker.touch(&conn(&f.owner));
    tokio::time::advance(Duration::from_secs(3600 - SKEW as u64 - 60 + 1)).await;
    f.broker.renew_due(every).await;
    assert_eq!(f.vendor.calls(), 1, "renewed before a request had to wait");
    // A day without use: renewed once to keep the refresh token alive.
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    f.broker.renew_due(every).await;
    assert_eq!(f.vendor.calls(), 1, "idle, and renewed less than a day ago");
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    f.broker.renew_due(every).await;
    assert_eq!(f.vendor.calls(), 2, "keepalive after a day");
    assert_eq!(
        f.store.refresh_token(&f.owner).as_deref(),
        Some("refresh-2")
    );
}

#[tokio::test(start_paused = true)]
async fn a_renewal_outlives_the_request_that_started_it() {
    let f = Arc::new(Fixture::new().connected(-10));
    *f.vendor.delay.lock().expect("lock") = Duration::from_secs(3);
    let first = {
        let f = f.clone();
        tokio::spawn(async move { f.fresh(Need::Fresh).await })
    };
    while f.vendor.calls() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The sandbox hangs up: its request is dropped while the vendor is being asked.
    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());
    assert_eq!(f.vendor.calls(), 1);
    tokio::time::advance(Duration::from_secs(3)).await;
    // The rotated refresh token was committed all the same, and the next request uses
    // the new token without asking the vendor (the old refresh token is never reused).
    let next = f.fresh(Need::Fresh).await.expect("renewed meanwhile");
    assert_eq!(next.secret.expose_secret(), "access-1");
    assert_eq!(f.vendor.calls(), 1);
    assert_eq!(*f.vendor.used.lock().expect("lock"), ["refresh-0"]);
    assert_eq!(
        f.store.refresh_token(&f.owner).as_deref(),
        Some("refresh-1")
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_grant_marks_the_connection_and_stops_asking() {
    let f = Fixture::new().connected(-10);
    f.vendor
        .fail_next([TokenError::InvalidGrant("refresh token revoked".into())]);
    let e = f.fresh(Need::Fresh).await.expect_err("grant gone");
    assert!(matches!(e, TokenError::InvalidGrant(_)), "{e}");
    assert_eq!(f.store.status(&f.owner), ConnectionStatus::NeedsReauth);
    tokio::time::advance(Duration::from_secs(120)).await;
    let e = f.fresh(Need::Fresh).await.expect_err("still gone");
    assert!(matches!(e, TokenError::NeedsReauth), "{e}");
    assert_eq!(f.vendor.calls(), 1, "a dead grant is not retried");
    assert_eq!(
        *f.told.0.lock().expect("lock"),
        [(
            "connection.needs_reauth".to_owned(),
            "needs_reauth".to_owned()
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn a_store_that_cannot_commit_is_a_store_error_not_a_vendor_one() {
    let f = Fixture::new().connected(-10);
    f.store.fail_commits.store(true, Ordering::SeqCst);
    let e = f.fresh(Need::Fresh).await.expect_err("not stored");
    assert!(matches!(e, TokenError::Store(_)), "{e}");
    assert!(e.to_string().contains("No space left on device"), "{e}");
    assert_eq!(
        f.store.access_token(&f.owner),
        "access-0",
        "nothing half-written"
    );
}

#[tokio::test(start_paused = true)]
async fn a_renewal_held_by_another_replica_is_awaited_not_repeated() {
    let f = Arc::new(Fixture::new().connected(-10));
    f.store.held_elsewhere.store(true, Ordering::SeqCst);
    let waiting = {
        let f = f.clone();
        tokio::spawn(async move { f.fresh(Need::Fresh).await })
    };
    tokio::time::advance(Duration::from_secs(1)).await;
    // The other replica commits its renewal.
    let tokens = TokenSet {
        identity: None,
        access_token: SecretString::from("from-the-other-replica"),
        refresh_token: Some(SecretString::from("refresh-other")),
        expires_at: Some(f.clock.unix() + 3600),
        scopes: Vec::new(),
    };
    f.store
        .write(CONNECTOR, &f.owner, tokens, TokenUpdate::Refreshed);
    let got = waiting.await.expect("join").expect("shared");
    assert_eq!(got.secret.expose_secret(), "from-the-other-replica");
    assert_eq!(f.vendor.calls(), 0, "this replica never asked the vendor");
    // Nobody commits within the connector's timeout: an expired token is refused.
    f.store.put(
        &f.owner,
        "stale",
        Some("refresh-x"),
        Some(f.clock.unix() - 1),
    );
    let e = f.fresh(Need::Fresh).await.expect_err("waited in vain");
    assert!(e.to_string().contains("another egret replica"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn forced_renewals_after_401s_are_spaced_by_the_interval() {
    let f = Fixture::new().connected(3600);
    let mut current = f.fresh(Need::Fresh).await.expect("fresh");
    // The first 401 renews; every 401 on the new token within the interval gets it back
    // unchanged (the caller passes the vendor's 401 on).
    let renewed = f
        .fresh(Need::Replace(current.clone()))
        .await
        .expect("renewed");
    assert!(!Arc::ptr_eq(&renewed, &current));
    current = renewed;
    for _ in 0..10 {
        tokio::time::advance(Duration::from_secs(2)).await;
        let again = f
            .fresh(Need::Replace(current.clone()))
            .await
            .expect("as it is");
        assert!(Arc::ptr_eq(&again, &current), "not renewed again");
    }
    assert_eq!(f.vendor.calls(), 1, "ten 401s within 30 s: one renewal");
    tokio::time::advance(super::FORCED_RENEWAL_EVERY).await;
    let later = f
        .fresh(Need::Replace(current.clone()))
        .await
        .expect("renewed");
    assert!(!Arc::ptr_eq(&later, &current));
    assert_eq!(f.vendor.calls(), 2, "after the interval: one more");
}

/// The renewal lease outlasts discovery and the token call together, each of which may
/// take the connector's whole timeout, with the margin to commit.
#[test]
fn the_renewal_lease_outlasts_discovery_and_the_token_call() {
    let timeout = Duration::from_secs(10);
    assert!(super::renewal_lease(timeout) > timeout + timeout);
    assert_eq!(super::renewal_lease(timeout), Duration::from_secs(25));
}
