//! The data plane: what a sandbox talks to through `HTTPS_PROXY`.
//!
//! Reads top to bottom along a request's way: `workers` runs one event loop per thread,
//! each with its own upstream pool; `server` accepts and speaks HTTP/1.1 to the sandbox;
//! `connect` decides each CONNECT (intercept, tunnel, refuse); `intercept` terminates
//! TLS with a leaf from the CA and serves HTTP/1.1 or HTTP/2 inside; `forward`
//! runs each intercepted request through host binding (`binding`), the placeholder swap
//! (`swap`) and the pooled upstream client (`upstream`); `plain` handles absolute-form
//! `http://` requests; `tunnel` relays bytes. `refusal` turns every "no" into the
//! contract's answer. It must not write to the vault on the hot path, buffer a body, or
//! log a header value.

mod binding;
pub mod body;
mod connect;
mod drain;
mod forward;
mod hop;
mod idle;
mod intercept;
mod limits;
mod plain;
mod proxy_auth;
mod rate;
pub mod redact;
pub mod refusal;
mod server;
pub mod swap;
mod tunnel;
pub mod upstream;
mod workers;

use std::sync::Arc;

use arc_swap::ArcSwap;
use egret_policy::Policy;
use egret_tls::LeafCache;
use egret_vault::Vault;

pub use limits::Limits;

pub use workers::serve;

/// The proxy's collaborators beyond policy, vault and TLS: the token broker that renews
/// OAuth tokens, the metrics registry and the audit writer.
pub struct Services {
    pub broker: egret_oauth::Broker,
    pub metrics: Arc<egret_metrics::Metrics>,
    pub audit: egret_vault::AuditWriter,
}

/// What the proxy's connections share. Everything here is shared by all worker threads
/// except the upstream pools: each worker has its own copy (see [`Proxy::for_worker`]).
pub struct Proxy {
    pub(crate) policy: Arc<ArcSwap<Policy>>,
    pub(crate) vault: Arc<Vault>,
    pub(crate) leaves: Arc<LeafCache>,
    pub(crate) upstream: upstream::Upstream,
    pub(crate) limits: Limits,
    pub(crate) broker: egret_oauth::Broker,
    pub(crate) metrics: Arc<egret_metrics::Metrics>,
    pub(crate) audit: egret_vault::AuditWriter,
    pub(crate) redactors: Arc<redact::Redactors>,
    pub(crate) rate: Arc<rate::RateLimiter>,
    /// One permit per sandbox connection (`limits.max_client_connections`).
    pub(crate) connections: Arc<tokio::sync::Semaphore>,
}

impl Proxy {
    /// `upstream_tls` is the trust toward upstreams (see `egret_tls::upstream_client_config`).
    pub fn new(
        policy: Arc<ArcSwap<Policy>>,
        vault: Arc<Vault>,
        leaves: Arc<LeafCache>,
        upstream_tls: rustls::ClientConfig,
        limits: Limits,
        services: Services,
    ) -> Self {
        let Services {
            broker,
            metrics,
            audit,
        } = services;
        let limits_connections = limits.max_client_connections;
        let resolver = upstream::Resolver::new(policy.clone());
        let upstream = upstream::Upstream::new(upstream_tls, resolver, &limits);
        Self {
            policy,
            vault,
            leaves,
            upstream,
            limits,
            broker,
            metrics,
            audit,
            redactors: Arc::new(redact::Redactors::new(1024)),
            rate: Arc::default(),
            connections: Arc::new(tokio::sync::Semaphore::new(limits_connections)),
        }
    }

    /// The proxy one worker thread serves with: everything shared with `self` except
    /// the upstream pools, which start empty and fill on this worker only.
    pub fn for_worker(&self) -> Self {
        Self {
            policy: self.policy.clone(),
            vault: self.vault.clone(),
            leaves: self.leaves.clone(),
            upstream: self.upstream.new_pool(&self.limits),
            limits: self.limits.clone(),
            broker: self.broker.clone(),
            metrics: self.metrics.clone(),
            audit: self.audit.clone(),
            redactors: self.redactors.clone(),
            rate: self.rate.clone(),
            connections: self.connections.clone(),
        }
    }
}
