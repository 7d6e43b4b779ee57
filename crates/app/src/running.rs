//! Both planes on their listeners, stopped together.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use egret_clock::Clock;
use egret_control::{ControlState, Lifecycle};
use egret_policy::Policy;
use egret_proxy::{Limits, Proxy, Services};
use egret_tls::{CertificateAuthority, LeafCache};
use egret_vault::{AuditWriter, Vault, VaultError};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What both planes are built from.
pub struct Parts {
    /// Holds the file's policy; API connectors are merged in by [`assemble`].
    pub policy: Arc<ArcSwap<Policy>>,
    pub vault: Arc<Vault>,
    pub ca: CertificateAuthority,
    /// Trust toward upstreams and token endpoints.
    pub upstream_tls: rustls::ClientConfig,
    pub limits: Limits,
    pub admin_token: SecretString,
    /// `Clock::system()` in `egret serve`; tests may pass a clock they control.
    pub clock: Clock,
}

/// The proxy and the control plane, sharing one broker, one metrics registry, one
/// audit writer and one clock.
pub struct Assembled {
    pub proxy: Arc<Proxy>,
    pub control: Arc<ControlState>,
    pub audit: AuditWriter,
    /// Installs new policies (the reload watcher's way in).
    pub lifecycle: Arc<Lifecycle>,
}

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error(transparent)]
    Tls(#[from] egret_tls::TlsError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Wires everything the way `egret serve` runs it; the test harness calls the same.
pub fn assemble(p: Parts) -> Result<Assembled, AssembleError> {
    let lifecycle = Arc::new(Lifecycle::new(p.policy.clone(), p.vault.clone()));
    // API connectors join the file's; nothing is erased at start-up (connectors with
    // stored connections but not in the file start their retention).
    let file = (**p.policy.load()).clone();
    lifecycle.install(file, egret_control::Install::Start)?;
    let metrics = Arc::new(egret_metrics::Metrics::new());
    let leaves = Arc::new(
        LeafCache::new(p.ca, p.limits.leaf_cache_capacity)?
            .with_counters(metrics.leaf_hits.clone(), metrics.leaf_misses.clone()),
    );
    let oauth_http = egret_oauth::HttpClient::new(
        p.policy.clone(),
        p.upstream_tls.clone(),
        Duration::from_secs(10),
    );
    let audit = AuditWriter::start(p.vault.clone(), metrics.audit_dropped.clone());
    let webhooks = Arc::new(egret_webhooks::Webhooks::new(
        p.policy.clone(),
        p.vault.clone(),
        metrics.clone(),
        p.clock.clone(),
        p.upstream_tls.clone(),
    ));
    let vendor = Arc::new(egret_oauth::HttpVendor::new(oauth_http, p.clock.clone()));
    let broker = egret_oauth::Broker::new(
        p.policy.clone(),
        p.vault.clone(),
        vendor,
        metrics.clone(),
        p.clock.clone(),
        webhooks.clone(),
    );
    let services = Services {
        broker: broker.clone(),
        metrics: metrics.clone(),
        audit: audit.clone(),
        clock: p.clock,
    };
    let proxy = Arc::new(Proxy::new(
        p.policy.clone(),
        p.vault.clone(),
        leaves,
        p.upstream_tls,
        p.limits,
        services,
    ));
    let control = Arc::new(ControlState {
        policy: p.policy,
        lifecycle: lifecycle.clone(),
        vault: p.vault,
        broker,
        metrics,
        admin_token: p.admin_token,
        tester: Arc::new(ProxyTester(proxy.clone())),
        webhooks,
    });
    Ok(Assembled {
        proxy,
        control,
        audit,
        lifecycle,
    })
}

/// Connection tests for the control plane, made by the proxy (its upstream client,
/// resolution and address checks).
struct ProxyTester(Arc<Proxy>);

impl egret_control::ConnectionTester for ProxyTester {
    fn test<'a>(
        &'a self,
        connector: &'a egret_policy::Connector,
        conn: &'a egret_vault::ConnectionId,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Option<egret_control::TestOutcome>> + Send + 'a>,
    > {
        Box::pin(async move {
            let o = egret_proxy::probe::test_connection(&self.0, connector, conn).await?;
            Some(egret_control::TestOutcome {
                ok: o.ok,
                status: o.status,
                latency_ms: o.latency_ms,
                message: o.message,
                identity: o.identity,
            })
        })
    }
}

/// Both planes running; [`Running::stop`] ends them.
pub struct Running {
    stop: watch::Sender<bool>,
    proxy: JoinHandle<()>,
    control: JoinHandle<std::io::Result<()>>,
    renewer: JoinHandle<()>,
    /// Erases what removed connectors kept once their retention ends.
    purger: JoinHandle<()>,
    /// Delivers webhook events.
    webhooks: JoinHandle<()>,
    /// The policy file's watcher, when one runs ([`Running::watch_policy`]).
    reloader: Option<JoinHandle<()>>,
}

impl Running {
    /// Spawns the proxy (on `workers` threads of its own; with 0, on the caller's
    /// runtime) and the control plane (on the caller's runtime); they run until
    /// [`Running::stop`].
    pub fn start(
        proxy: Arc<Proxy>,
        proxy_listener: TcpListener,
        workers: usize,
        control: Arc<ControlState>,
        control_listener: TcpListener,
    ) -> Self {
        let (stop, rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let proxy = tokio::spawn(egret_proxy::serve(
            proxy,
            proxy_listener,
            workers,
            rx.clone(),
        ));
        let renewer = control.broker.spawn_background(egret_oauth::RENEW_EVERY);
        let purger = tokio::spawn(purge_expired(
            control.lifecycle.clone(),
            control.webhooks.clone(),
        ));
        let webhooks = tokio::spawn(control.webhooks.clone().run(stopped(rx.clone())));
        let routes = egret_control::router(control.clone()).merge(egret_ui::router(control));
        let control = tokio::spawn(egret_control::serve(control_listener, routes, stopped(rx)));
        Self {
            stop,
            proxy,
            control,
            renewer,
            purger,
            webhooks,
            reloader: None,
        }
    }

    /// Keeps the policy file at `path` in force: reloaded on change and on SIGHUP
    /// (see [`crate::watch`]) until egret stops. `None` (the embedded default policy)
    /// watches nothing.
    pub fn watch_policy(
        &mut self,
        path: Option<PathBuf>,
        listen: egret_policy::ListenOverride,
        lifecycle: Arc<Lifecycle>,
        vault: Arc<Vault>,
    ) {
        self.reloader = Some(tokio::spawn(crate::watch(path, listen, lifecycle, vault)));
    }

    /// Stops accepting on both listeners and returns the proxy's drain, to await.
    pub fn begin_stop(self) -> JoinHandle<()> {
        let _ = self.stop.send(true);
        self.renewer.abort();
        self.purger.abort();
        if let Some(r) = &self.reloader {
            r.abort();
        }
        // The control plane's requests are short, and the webhook deliverer writes what
        // it holds to the outbox: both end on their own.
        drop(self.control);
        drop(self.webhooks);
        self.proxy
    }

    /// Stops both and waits for in-flight requests (bounded by the proxy's drain timeout).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.renewer.abort();
        self.purger.abort();
        if let Some(r) = &self.reloader {
            r.abort();
        }
        let _ = self.proxy.await;
        let _ = self.control.await;
        let _ = self.webhooks.await;
    }
}

/// Every second, erases what connectors gone from the policy kept once their retention
/// has ended (a cheap look at memory when none is due).
async fn purge_expired(lifecycle: Arc<Lifecycle>, webhooks: Arc<egret_webhooks::Webhooks>) {
    use egret_webhooks::{Event, EventSink};
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let l = lifecycle.clone();
        // One replica at a time erases (and tells the webhooks once).
        let purge = move || {
            if !l.vault().lead("purge", Duration::from_secs(5))? {
                return Ok(Vec::new());
            }
            l.purge_expired()
        };
        match tokio::task::spawn_blocking(purge).await {
            Ok(Ok(erased)) => {
                for (connector, n) in erased {
                    let n = u64::try_from(n).unwrap_or(u64::MAX);
                    webhooks.emit(Event::connector_deleted(
                        &connector,
                        "removed from the policy file, and its retention ended",
                        n,
                    ));
                }
            }
            Ok(Err(e)) if e.is_unavailable() => {
                tracing::debug!(error = %e, "the purge of removed connectors waits for the vault database")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot erase the connections of a removed connector whose retention ended; retrying")
            }
            Err(_) => {}
        }
    }
}
