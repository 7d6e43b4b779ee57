//! Both planes built from their parts: one broker, one metrics registry, one audit
//! writer and one clock shared by the proxy and the control plane.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use egret_clock::Clock;
use egret_control::ControlState;
use egret_policy::Policy;
use egret_proxy::{Limits, Proxy, Services};
use egret_service::{Lifecycle, Service};
use egret_tls::{CertificateAuthority, LeafCache};
use egret_vault::{AuditWriter, Vault};
use secrecy::SecretString;

/// What both planes are built from.
pub struct Parts {
    /// Holds the file's policy; API connectors are merged in by [`assemble`].
    pub policy: Arc<ArcSwap<Policy>>,
    pub vault: Arc<Vault>,
    pub ca: CertificateAuthority,
    /// Every outbound connection's trust and resolution.
    pub outbound: egret_outbound::Outbound,
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
    /// Tells the platform's receivers what happened (delivered by a background task).
    pub webhooks: Arc<egret_webhooks::Webhooks>,
    /// Renews tokens (inline, and by a background task).
    pub broker: egret_oauth::Broker,
    /// Reads external secret stores (a background task keeps the policy's current).
    pub secrets: Arc<egret_secrets::Secrets>,
}

/// Wires both planes (called by [`crate::Egret::start`]).
pub fn assemble(p: Parts) -> Result<Assembled, crate::AppError> {
    let lifecycle = Arc::new(Lifecycle::new(p.policy.clone(), p.vault.clone()));
    // API connectors join the file's; nothing is erased at start-up (connectors with
    // stored connections but not in the file start their retention).
    let file = (**p.policy.load()).clone();
    lifecycle.install(file, egret_service::Install::Start)?;
    let metrics = Arc::new(egret_metrics::Metrics::new());
    let leaves = Arc::new(
        LeafCache::new(p.ca, p.limits.leaf_cache_capacity)?
            .with_counters(metrics.leaf_hits.clone(), metrics.leaf_misses.clone()),
    );
    let oauth_http = egret_oauth::HttpClient::new(&p.outbound, Duration::from_secs(10));
    let audit = AuditWriter::start(p.vault.clone(), metrics.audit_dropped.clone());
    let webhooks = Arc::new(egret_webhooks::Webhooks::new(
        p.policy.clone(),
        p.vault.clone(),
        metrics.clone(),
        p.clock.clone(),
        &p.outbound,
    ));
    let vendor = Arc::new(egret_oauth::HttpVendor::new(
        oauth_http.clone(),
        p.clock.clone(),
    ));
    let broker = egret_oauth::Broker::new(
        p.policy.clone(),
        p.vault.clone(),
        vendor,
        metrics.clone(),
        p.clock.clone(),
        webhooks.clone(),
    );
    let approvals = Arc::new(egret_approvals::Approvals::new(
        p.vault.clone(),
        p.policy.clone(),
        webhooks.clone(),
        p.clock.clone(),
    ));
    let secrets = Arc::new(egret_secrets::Secrets::new(
        &p.outbound,
        metrics.clone(),
        egret_secrets::vault_aws_keys(p.vault.clone()),
    ));
    let services = Services {
        secrets: secrets.clone(),
        events: webhooks.clone(),
        approvals: approvals.clone(),
        broker: broker.clone(),
        metrics: metrics.clone(),
        audit: audit.clone(),
        clock: p.clock,
    };
    let proxy = Arc::new(Proxy::new(
        p.policy.clone(),
        p.vault.clone(),
        leaves,
        p.outbound,
        p.limits,
        services,
    ));
    let service = Arc::new(Service::new(egret_service::Parts {
        policy: p.policy,
        lifecycle: lifecycle.clone(),
        vault: p.vault,
        broker: broker.clone(),
        metrics,
        tester: Arc::new(ProxyTester(proxy.clone())),
        webhooks: webhooks.clone(),
        approvals,
        oidc: Arc::new(egret_oauth::sign_in::OidcClient::new(oauth_http.clone())),
    }));
    let control = Arc::new(ControlState {
        service,
        admin_token: p.admin_token,
    });
    Ok(Assembled {
        proxy,
        control,
        audit,
        lifecycle,
        webhooks,
        broker,
        secrets,
    })
}

/// Connection tests for the control plane, made by the proxy (its upstream client,
/// resolution and address checks).
struct ProxyTester(Arc<Proxy>);

impl egret_service::ConnectionTester for ProxyTester {
    fn test<'a>(
        &'a self,
        connector: &'a egret_policy::Connector,
        conn: &'a egret_service::ConnectionId,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Option<egret_service::TestOutcome>> + Send + 'a>,
    > {
        Box::pin(async move {
            let o = egret_proxy::probe::test_connection(&self.0, connector, conn).await?;
            Some(egret_service::TestOutcome {
                ok: o.ok,
                status: o.status,
                latency_ms: o.latency_ms,
                message: o.message,
                identity: o.identity,
            })
        })
    }
}
