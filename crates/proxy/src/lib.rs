//! The data plane: what a sandbox talks to through `HTTPS_PROXY`.
//!
//! Modules, in the order a request meets them (each imports only modules below it):
//! - `workers`: one event loop per thread, each accepting from the one socket; new
//!   connections go to the least busy worker (`guard` counts them).
//! - `connection`: one sandbox connection speaking HTTP/1.1 as a forward proxy;
//!   `proxy_auth` says which sandbox it is.
//! - `connect`: one CONNECT — refuse, relay bytes (`tunnel`), or intercept.
//! - `intercept`: TLS with a leaf from the CA, then HTTP/1.1 or HTTP/2 inside.
//! - `forward`: one intercepted request as a list of named steps (binding, route, rate
//!   limit, what it asks for the request rules, fresh credentials + `swap` — where the
//!   connector's and the owner's rules decide, and a request to be approved is held —,
//!   the connection's budget, response scan via `redact`, upstream send, one replay
//!   after a 401, an MCP tools list filtered).
//! - `plain`: absolute-form `http://` requests to `network.allow` hosts.
//! - `discovery`: `http://egret.internal/connections`, answered by egret itself: what a
//!   sandbox's placeholders stand for, never a credential.
//! - `probe`: a connection's test request (the control plane's "test"), sent with the
//!   upstream client a sandbox's requests use.
//! - `websocket`: frames from an upstream scanned after a credentialed upgrade.
//! - `upstream`: name resolution, the pooled clients and sending a request upstream.
//! - `refusal`: every "no" as one status, code and message (README, "What the proxy
//!   does"); `binding`, `hop`, `body`, `idle`, `drain`, `limits`, `rate`, `budget`
//!   (requests per connection, shared by replicas), `log_budget`: the pieces.
//!
//! It must not write to the vault on the hot path (audit events are queued), log a
//! header value, or hold a body in memory beyond a bound: answers of known length up
//! to 64 KiB and replayable request bodies up to 64 KiB are buffered whole; everything
//! else streams, with at most one credential form's length held back by the scan.

mod binding;
pub mod body;
pub mod budget;
mod connect;
mod connection;
pub mod discovery;
mod drain;
mod forward;
mod guard;
mod hop;
mod idle;
mod intercept;
mod limits;
mod log_budget;
mod plain;
pub mod probe;
mod proxy_auth;
mod rate;
pub mod redact;
pub mod refusal;
mod sandbox_body;
pub mod swap;
#[cfg(test)]
mod testing;
mod tunnel;
pub mod upstream;
mod websocket;
mod workers;

use std::sync::Arc;

use arc_swap::ArcSwap;
use egret_clock::Clock;
use egret_policy::Policy;
use egret_tls::LeafCache;
use egret_vault::Vault;
use http::Response;

pub use limits::Limits;
#[cfg(test)]
pub(crate) use testing::test_proxy;
pub use workers::serve;

use crate::body::ProxyBody;
use crate::refusal::Refusal;

/// The proxy's collaborators beyond policy, vault and TLS: the token broker that renews
/// OAuth tokens, the metrics registry, the audit writer and the clock.
pub struct Services {
    pub broker: egret_oauth::Broker,
    pub metrics: Arc<egret_metrics::Metrics>,
    pub audit: egret_vault::AuditWriter,
    pub clock: Clock,
    /// Where requests a rule holds for a person's approval wait.
    pub approvals: Arc<egret_approvals::Approvals>,
    /// Where events the proxy sees (a budget used up) are told.
    pub events: Arc<dyn egret_webhooks::EventSink>,
    /// Where values kept in external secret stores are fetched.
    pub secrets: Arc<egret_secrets::Secrets>,
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
    pub(crate) approvals: Arc<egret_approvals::Approvals>,
    pub(crate) events: Arc<dyn egret_webhooks::EventSink>,
    pub(crate) secrets: Arc<egret_secrets::Secrets>,
    /// Requests per connection in their windows, and in flight (`connectors[].limits`).
    pub(crate) budgets: Arc<budget::Budgets>,
    pub(crate) metrics: Arc<egret_metrics::Metrics>,
    pub(crate) audit: egret_vault::AuditWriter,
    pub(crate) clock: Clock,
    pub(crate) redactors: Arc<redact::Redactors>,
    pub(crate) rate: Arc<rate::RateLimiter>,
    /// One permit per sandbox connection (`limits.max_client_connections`).
    pub(crate) connections: Arc<tokio::sync::Semaphore>,
    /// How many refusal log lines may be written now (shared by the workers).
    pub(crate) log_budget: Arc<log_budget::LogBudget>,
}

impl Proxy {
    /// `outbound` gives the connections toward upstreams (trust and resolution).
    pub fn new(
        policy: Arc<ArcSwap<Policy>>,
        vault: Arc<Vault>,
        leaves: Arc<LeafCache>,
        outbound: egret_outbound::Outbound,
        limits: Limits,
        services: Services,
    ) -> Self {
        let Services {
            broker,
            metrics,
            audit,
            clock,
            approvals,
            events,
            secrets,
        } = services;
        let limits_connections = limits.max_client_connections;
        let upstream = upstream::Upstream::new(outbound, &limits);
        Self {
            policy,
            vault,
            leaves,
            upstream,
            limits,
            broker,
            approvals,
            events,
            secrets,
            budgets: Arc::default(),
            metrics,
            audit,
            clock,
            redactors: Arc::new(redact::Redactors::new(1024)),
            rate: Arc::default(),
            connections: Arc::new(tokio::sync::Semaphore::new(limits_connections)),
            log_budget: Arc::default(),
        }
    }

    /// Budgets per connection: flushed to the store by a background task
    /// ([`budget::Budgets::flush`]).
    pub fn budgets(&self) -> &Arc<budget::Budgets> {
        &self.budgets
    }

    /// The proxy one worker thread serves with: everything shared with `self` except
    /// the upstream pools, which start empty and fill on this worker only (and read
    /// the worker's open connections, `load`, to choose between HTTP/1.1 and HTTP/2).
    pub(crate) fn for_worker(&self, load: guard::WorkerLoad) -> Self {
        Self {
            policy: self.policy.clone(),
            vault: self.vault.clone(),
            leaves: self.leaves.clone(),
            upstream: self.upstream.new_pool(&self.limits, Some(load)),
            limits: self.limits.clone(),
            broker: self.broker.clone(),
            approvals: self.approvals.clone(),
            events: self.events.clone(),
            secrets: self.secrets.clone(),
            budgets: self.budgets.clone(),
            metrics: self.metrics.clone(),
            audit: self.audit.clone(),
            clock: self.clock.clone(),
            redactors: self.redactors.clone(),
            rate: self.rate.clone(),
            connections: self.connections.clone(),
            log_budget: self.log_budget.clone(),
        }
    }

    /// Every refusal the proxy answers, wherever it is decided: logged at its source's
    /// level (within the log budget), counted, audited (code, status, sandbox and the `context` object: target,
    /// or host/method/path) and answered.
    pub(crate) fn refused(
        &self,
        refusal: Refusal,
        what: &str,
        host: &str,
        sandbox: Option<&str>,
        mut context: serde_json::Value,
    ) -> Response<ProxyBody> {
        if let Some(suppressed) = self.log_budget.take(self.clock.instant()) {
            refusal.log(what, host, sandbox, suppressed);
        }
        self.metrics
            .refusal(refusal.code.as_str(), refusal.source().as_str());
        if let Some(fields) = context.as_object_mut() {
            fields.insert("code".into(), refusal.code.as_str().into());
            fields.insert("status".into(), refusal.status.as_u16().into());
            fields.insert("sandbox".into(), sandbox.into());
        }
        self.audit.record("request.refused", None, &context);
        refusal.into_response()
    }
}
