//! The one way egret starts: `egret serve` and the test harness both call
//! [`Egret::start`], so the tests run what ships — the vault on either backend, the CA,
//! both planes, renewal, purge, webhooks, replication and the policy watcher — and
//! [`Egret::stop`] ends all of it the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use egret_clock::Clock;
use egret_policy::{ListenOverride, Policy};
use egret_proxy::Limits;
use egret_service::Lifecycle;
use egret_vault::{AuditWriter, Vault};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::assemble::{Assembled, Parts, assemble};
use crate::error::AppError;
use crate::tasks::{Tasks, purge_expired};

/// What a start needs beyond the policy; `Start::new(policy)` is what `egret serve`
/// runs with one worker.
pub struct Start {
    policy: Policy,
    watch: Option<PathBuf>,
    listen: ListenOverride,
    workers: usize,
    limits: Limits,
    clock: Clock,
    admin_token: Option<SecretString>,
}

impl Start {
    /// Starts with `policy` as loaded (relative paths resolved).
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            watch: None,
            listen: ListenOverride::default(),
            workers: 1,
            limits: Limits::default(),
            clock: Clock::system(),
            admin_token: None,
        }
    }

    /// Listen addresses that replace the file's (flags, environment), now and at every
    /// reload.
    pub fn listen(mut self, listen: ListenOverride) -> Self {
        self.listen = listen;
        self
    }

    /// Keeps the policy file at `path` in force: reloaded on change and on SIGHUP.
    pub fn watch(mut self, path: PathBuf) -> Self {
        self.watch = Some(path);
        self
    }

    /// The proxy's worker threads; 0 runs it on the caller's runtime (a test that pauses
    /// tokio's clock then pauses egret's too).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Built-in limits, before the policy's `limits` are applied (tests shorten them).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The clock egret reads (tests pass one they move).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The admin token to use instead of the configured one.
    pub fn admin_token(mut self, token: SecretString) -> Self {
        self.admin_token = Some(token);
        self
    }
}

/// A running egret: where it listens, and handles on what it shares.
pub struct Egret {
    pub proxy_addr: SocketAddr,
    pub control_addr: SocketAddr,
    pub policy: Arc<ArcSwap<Policy>>,
    pub vault: Arc<Vault>,
    /// The audit writer (flushed by [`Egret::stop`]).
    pub audit: AuditWriter,
    pub broker: egret_oauth::Broker,
    /// Installs new policies, as a reload does.
    pub lifecycle: Arc<Lifecycle>,
    pub clock: Clock,
    /// The interception CA's certificate, which sandboxes trust.
    pub ca_pem: String,
    tasks: Tasks,
}

impl Egret {
    /// Opens the vault and the CA (creating what a first start needs), binds both
    /// listeners, and starts everything; on error nothing is left running.
    pub async fn start(s: Start) -> Result<Self, AppError> {
        let mut policy = s.policy;
        policy.listen_at(s.listen);
        for warning in policy.unresolved_secrets() {
            tracing::warn!("{warning}");
        }
        let opened = crate::open::open_everything(&policy, s.admin_token)?;
        let proxy_listener = bind(policy.proxy.listen, "proxy.listen").await?;
        let control_listener = bind(policy.control.listen, "control.listen").await?;
        // A `:0` port is the system's choice: from here on egret says where it really is.
        let proxy_addr = local_addr(&proxy_listener, "proxy.listen")?;
        let control_addr = local_addr(&control_listener, "control.listen")?;
        policy.bound_to(proxy_addr, control_addr);
        let limits = s.limits.with_settings(&policy.limits);
        crate::ui_sessions::end_on_token_change(&opened.vault, &opened.admin_token)?;
        let vault = Arc::new(opened.vault.with_clock(s.clock.clone()));
        let ca_pem = opened.ca.cert_pem().to_owned();
        let policy = Arc::new(ArcSwap::from_pointee(policy));
        let outbound = egret_outbound::Outbound::new(policy.clone())?;
        let Assembled {
            proxy,
            control,
            audit,
            lifecycle,
            webhooks,
            broker,
            secrets,
        } = assemble(Parts {
            policy: policy.clone(),
            vault: vault.clone(),
            ca: opened.ca,
            outbound,
            limits,
            admin_token: opened.admin_token,
            clock: s.clock.clone(),
        })?;
        replicate(&vault, &lifecycle);

        let mut tasks = Tasks::new();
        let stop = tasks.receiver();
        tasks.spawn_loop(
            "budgets",
            crate::tasks::flush_budgets(
                proxy.budgets().clone(),
                vault.clone(),
                control.service.policy.clone(),
                s.clock.clone(),
            ),
        );
        tasks.spawn("proxy", move |_| {
            egret_proxy::serve(proxy, proxy_listener, s.workers, stop)
        });
        tasks.spawn_loop(
            "renewal",
            broker.clone().renew_in_background(egret_oauth::RENEW_EVERY),
        );
        tasks.spawn_loop("purge", purge_expired(lifecycle.clone(), webhooks.clone()));
        // OAuth client secrets kept in external stores: fetched once before the first
        // request (bounded by each source's timeout), then kept current.
        secrets
            .keep_current(&control.service.policy.load_full())
            .await;
        tasks.spawn_loop(
            "secret sources",
            crate::tasks::keep_secrets_current(secrets, control.service.policy.clone()),
        );
        let deliverer = webhooks.clone();
        tasks.spawn("webhooks", move |stopped| deliverer.run(stopped));
        let routes = egret_control::router(control.clone()).merge(egret_ui::router(
            control.service.clone(),
            control.admin_token.clone(),
        ));
        tasks.spawn("control", move |stopped| async move {
            if let Err(e) = egret_control::serve(control_listener, routes, stopped).await {
                tracing::error!(error = %e, "the control plane stopped");
            }
        });
        if let Some(path) = s.watch {
            tasks.spawn_loop(
                "policy watcher",
                crate::watch(
                    path,
                    s.listen,
                    lifecycle.clone(),
                    vault.clone(),
                    control.service.metrics.clone(),
                ),
            );
        }
        Ok(Self {
            proxy_addr,
            control_addr,
            policy,
            vault,
            audit,
            broker,
            lifecycle,
            clock: s.clock,
            ca_pem,
            tasks,
        })
    }

    /// Stops accepting, waits for in-flight requests (bounded by the proxy's drain
    /// timeout) and every background task, and writes what the audit writer holds.
    pub async fn stop(self) {
        self.tasks.stop().await;
        let audit = self.audit;
        let _ = tokio::task::spawn_blocking(move || audit.flush(Duration::from_secs(5))).await;
        crate::open::remove_pid_file(&self.policy.load());
    }

    /// [`Egret::stop`] without waiting: returns the stop to await.
    pub fn begin_stop(self) -> JoinHandle<()> {
        tokio::spawn(self.stop())
    }
}

/// Replicas sharing a database: another's change to the API connectors puts a new
/// policy in force here too, and every change reaches this replica's memory. On one
/// redb file there is no other replica and nothing to hear.
fn replicate(vault: &Arc<Vault>, lifecycle: &Arc<Lifecycle>) {
    // Weak: the vault holds this callback, and the lifecycle holds the vault.
    let l: Weak<Lifecycle> = Arc::downgrade(lifecycle);
    vault.on_connectors_changed(move || {
        if let Some(l) = l.upgrade()
            && let Err(e) = l.refresh()
        {
            tracing::warn!(error = %e, "cannot install another replica's connector change; it takes effect at the next change");
        }
    });
    vault.watch_changes();
}

async fn bind(addr: SocketAddr, setting: &'static str) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind {
            addr,
            setting,
            source,
        })
}

fn local_addr(listener: &TcpListener, setting: &'static str) -> Result<SocketAddr, AppError> {
    listener.local_addr().map_err(|source| AppError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        setting,
        source,
    })
}
