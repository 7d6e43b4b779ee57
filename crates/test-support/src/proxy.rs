//! An in-process egret (proxy + control plane) on 127.0.0.1:0 with its own temporary CA,
//! vault and admin token.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use egret_app::{Egret, Start};
use egret_clock::Clock;
use egret_policy::{ListenOverride, Policy};
use egret_proxy::Limits;
use egret_service::Lifecycle;
use egret_vault::{ConnectionId, Owner, Vault};
use secrecy::SecretString;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefgh";

pub struct TestProxy {
    pub proxy_addr: SocketAddr,
    pub control_addr: SocketAddr,
    pub policy: Arc<ArcSwap<Policy>>,
    pub vault: Arc<Vault>,
    /// The audit writer, to flush before reading the audit log.
    pub audit: egret_vault::AuditWriter,
    /// The token broker, for tests that drive background renewal by hand.
    pub broker: egret_oauth::Broker,
    /// The clock egret reads: a test clock, which tests may move forward.
    pub clock: Clock,
    lifecycle: Arc<Lifecycle>,
    /// egret's CA, which clients must trust.
    pub ca_pem: String,
    pub dir: tempfile::TempDir,
    egret: Egret,
}

/// Parses a policy for tests (relative paths resolve in `dir`); panics with the error.
pub fn policy(yaml: &str, dir: &Path) -> Policy {
    egret_policy::parse(yaml, Path::new("test.yaml"), dir)
        .unwrap_or_else(|e| panic!("test policy: {e}"))
}

impl TestProxy {
    /// Starts egret with `yaml`, trusting `upstream_ca_pem` for upstream TLS.
    pub async fn start(yaml: &str, upstream_ca_pem: &str) -> Self {
        Self::start_with(yaml, upstream_ca_pem, Limits::default()).await
    }

    /// Starts egret with its proxy on the caller's runtime (no worker threads of its
    /// own): a test that pauses tokio's clock then pauses egret's too.
    pub async fn start_inline(yaml: &str, upstream_ca_pem: &str) -> Self {
        Self::start_on(yaml, upstream_ca_pem, Limits::default(), 0).await
    }

    pub async fn start_with(yaml: &str, upstream_ca_pem: &str, limits: Limits) -> Self {
        // Two workers, as on the smallest machine egret ships to: connections of one
        // test land on both threads, each with its own upstream pool.
        Self::start_on(yaml, upstream_ca_pem, limits, 2).await
    }

    /// Starts egret the way `egret serve` does ([`Egret::start`]), on a policy whose
    /// vault, master key, CA and upstream trust live in a temporary directory, on
    /// 127.0.0.1:0, with the test clock and a known admin token.
    async fn start_on(yaml: &str, upstream_ca_pem: &str, limits: Limits, workers: usize) -> Self {
        crate::init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let upstream_ca = dir.path().join("upstream-ca.pem");
        std::fs::write(&upstream_ca, upstream_ca_pem).expect("write upstream CA");
        let mut policy = policy(yaml, dir.path());
        policy.vault.backend = egret_policy::VaultBackend::Redb;
        policy.vault.path = dir.path().join("egret.redb");
        policy.vault.master_key = egret_policy::SecretRef::File(dir.path().join("master.key"));
        policy.ca.dir = dir.path().join("certs");
        policy.upstream.extra_ca = vec![upstream_ca];
        let loopback = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let clock = Clock::for_tests();
        let start = Start::new(policy)
            .listen(ListenOverride {
                proxy: loopback,
                control: loopback,
            })
            .workers(workers)
            .limits(limits)
            .clock(clock)
            .admin_token(SecretString::from(ADMIN_TOKEN));
        let egret = Egret::start(start).await.expect("start egret");
        Self {
            proxy_addr: egret.proxy_addr,
            control_addr: egret.control_addr,
            policy: egret.policy.clone(),
            vault: egret.vault.clone(),
            audit: egret.audit.clone(),
            broker: egret.broker.clone(),
            clock: egret.clock.clone(),
            lifecycle: egret.lifecycle.clone(),
            ca_pem: egret.ca_pem.clone(),
            dir,
            egret,
        }
    }

    /// Stores a static key and mints a placeholder for it, straight through the vault.
    pub fn key_and_placeholder(&self, connector: &str, owner: &str, key: &str) -> String {
        let conn = ConnectionId::default_of(connector, &Owner::parse(owner).expect("owner"));
        self.vault
            .put_api_key(&conn, &SecretString::from(key))
            .expect("put key");
        let (p, _) = self.vault.mint_placeholder(&conn, None).expect("mint");
        p.expose().to_owned()
    }

    /// Replaces the policy in force, as a reload does (removed connectors are refused;
    /// their connections are kept for the retention period).
    pub fn reload(&self, yaml: &str) {
        self.lifecycle
            .install(
                policy(yaml, self.dir.path()),
                egret_service::Install::Reload,
            )
            .expect("install policy");
    }

    /// Signals shutdown and waits for the proxy to drain.
    pub async fn shutdown(self) {
        self.egret.stop().await;
    }

    /// Starts shutdown without waiting; returns the proxy's drain to await.
    pub fn begin_shutdown(self) -> (JoinHandle<()>, tempfile::TempDir) {
        (self.egret.begin_stop(), self.dir)
    }
}
