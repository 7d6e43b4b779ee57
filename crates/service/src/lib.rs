//! The service layer: what egret can be asked to do — connectors, connections,
//! placeholders, sandboxes, connect links, the audit log, web UI sessions — as typed
//! operations on [`Service`]. Each takes the acting [`Principal`], decides once whether
//! it may (`principal`), does it (the vault, the token broker), audits it and tells the
//! webhooks. The JSON API (`egret-control`) and the web UI (`egret-ui`) are thin
//! front-ends over it, and the CLI reaches it through the API.
//!
//! One module per resource: `approvals` (requests held for a person), `connections`, `connectors`, `placeholders`, `sandboxes`,
//! `links` (connect links), `tokens` (scoped API tokens), `audit`, `sessions` (web UI sessions); `lifecycle`
//! installs policies (file + API connectors, the kill switch, the retention of
//! connectors gone from the file); `ttl` reads lifetimes; `error` is the one error every
//! operation returns.
//!
//! It must not know HTTP (no status codes, bodies or pages: the front-ends map
//! [`ServiceError`]) nor the data plane (connection tests go through
//! [`ConnectionTester`], which `egret-app` wires to the proxy). It never returns a
//! secret it stores: keys go in, metadata comes out (a new sandbox's secret and a new
//! placeholder are shown once, to whoever made them).

mod approvals;
mod audit;
mod connections;
mod connectors;
mod error;
pub mod lifecycle;
mod links;
mod placeholders;
pub mod principal;
mod sandboxes;
mod sessions;
mod sign_in;
mod tokens;
mod ttl;

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use egret_policy::Policy;
use egret_vault::Vault;

pub use approvals::ApprovalFilter;
pub use connections::{
    BudgetUse, ConnectionFilter, ConnectionView, GivenKey, missing_scopes, offered,
};
pub use connectors::{ConnectorEntry, NewAuth, NewConnector, RemovedConnector};
pub use egret_approvals::{Approval, ApprovalStatus, Decision, Grant};
pub use error::ServiceError;
pub use lifecycle::{Install, Lifecycle, RefusedReload};
pub use links::{DEFAULT_LINK_TTL, MadeLink, NewLink};
pub use placeholders::{Minted, NewPlaceholder, PlaceholderFilter, PlaceholderRef};
pub use principal::{Operation, Principal, Role, UserScope, authorize};
pub use sandboxes::{IssuedSandbox, NewSandbox};
pub use sign_in::SignedInPerson;
pub use tokens::{MadeToken, NewToken};
pub use ttl::DEFAULT_TTL;

/// The vocabulary of the operations: names of connections and what is known of them.
pub use egret_oauth::{Begun, CallbackError, Health, PENDING_TTL_SECS, SignInStart};
pub use egret_vault::{
    AuditEvent, ConnectLink, ConnectionId, ConnectionInfo, ConnectionName, Labels, LinkUse, Owner,
    Placeholder, PlaceholderInfo, SandboxInfo, random_token, sha256_hex,
};

/// What a connection test says (see [`ConnectionTester`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestOutcome {
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub message: String,
    /// Who the vendor says is connected, when the test is an identity request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// Makes a connection's test request through the data plane (which this crate does not
/// know): `egret-app` wires the proxy in. `None` when the connector has no test request.
pub trait ConnectionTester: Send + Sync {
    fn test<'a>(
        &'a self,
        connector: &'a egret_policy::Connector,
        conn: &'a ConnectionId,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<TestOutcome>> + Send + 'a>>;
}

/// Everything the operations read and change.
pub struct Service {
    /// The policy in force.
    pub policy: Arc<ArcSwap<Policy>>,
    /// Installs policy changes made through the API (and, in `egret-app`, reloads).
    pub lifecycle: Arc<Lifecycle>,
    pub(crate) vault: Arc<Vault>,
    pub(crate) broker: egret_oauth::Broker,
    pub metrics: Arc<egret_metrics::Metrics>,
    pub(crate) tester: Arc<dyn ConnectionTester>,
    pub(crate) webhooks: Arc<egret_webhooks::Webhooks>,
    pub(crate) approvals: Arc<egret_approvals::Approvals>,
    pub(crate) oidc: Arc<egret_oauth::sign_in::OidcClient>,
}

/// How a [`Service`] is made (by `egret-app`).
pub struct Parts {
    pub policy: Arc<ArcSwap<Policy>>,
    pub lifecycle: Arc<Lifecycle>,
    pub vault: Arc<Vault>,
    pub broker: egret_oauth::Broker,
    pub metrics: Arc<egret_metrics::Metrics>,
    pub tester: Arc<dyn ConnectionTester>,
    pub webhooks: Arc<egret_webhooks::Webhooks>,
    pub approvals: Arc<egret_approvals::Approvals>,
    /// Sign-in with the organisation's identity provider (`ui.oidc`).
    pub oidc: Arc<egret_oauth::sign_in::OidcClient>,
}

impl Service {
    pub fn new(p: Parts) -> Self {
        Self {
            policy: p.policy,
            lifecycle: p.lifecycle,
            vault: p.vault,
            broker: p.broker,
            metrics: p.metrics,
            tester: p.tester,
            webhooks: p.webhooks,
            approvals: p.approvals,
            oidc: p.oidc,
        }
    }

    /// Runs vault work (which syncs to disk or waits on the database) off the async
    /// workers: the one way every operation does.
    pub(crate) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Service) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|_| {
                ServiceError::Store("the operation was interrupted; retry it".to_owned())
            })?;
        if let Err(e) = &result
            && e.is_store_failure()
        {
            self.metrics.vault_errors.inc();
        }
        result
    }

    /// Readiness: the vault's store answers (and a shared one hears the others).
    pub async fn ready(self: &Arc<Self>) -> Result<(), ServiceError> {
        self.blocking(|s| Ok(s.vault.ping()?)).await
    }

    /// How a shared vault database is doing, for metrics (`None` for the redb file).
    pub fn store_stats(&self) -> Option<egret_vault::store::StoreStats> {
        self.vault.store().stats()
    }

    /// Rows of the store found forged (failing their MAC) since start.
    pub fn forged_rows(&self) -> u64 {
        self.vault.forged_rows()
    }

    /// Whether egret is reached over https (`control.public_url`): its cookies are then
    /// `Secure` and `__Host-` cookies.
    pub fn served_over_https(&self) -> bool {
        self.policy
            .load()
            .control
            .public_url
            .starts_with("https://")
    }

    /// The time now, as the vault stamps it (unix seconds).
    pub fn now(&self) -> i64 {
        self.vault.clock().unix()
    }
}
