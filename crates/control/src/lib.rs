//! The control plane: the admin HTTP API (axum) that operators and the agent platform
//! use to see connectors, store users' connections and mint placeholders.
//!
//! `auth` guards every `/v1` route with the admin token; one module per resource
//! (`connectors`, `connections`, `placeholders`, `sandboxes`, `audit`); `oauth` starts
//! OAuth connections and serves the vendor's redirect back (`/oauth/callback`, the one
//! route without the admin token: the `state` it carries is its credential);
//! `lifecycle` installs policies (file + API connectors, the kill switch, the retention
//! of connectors gone from the file); `error` is
//! the JSON error answer.
//!
//! It must never return or log a secret: keys go in, only metadata comes out. It knows
//! nothing of the data plane (no proxy, TLS or sockets of sandboxes): `egret-app`
//! assembles both planes.

pub mod actions;
mod audit;
mod auth;
mod connections;
mod connectors;
mod error;
pub mod lifecycle;
mod links;
mod oauth;
mod placeholders;
mod sandboxes;

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use egret_policy::Policy;
use egret_vault::Vault;
use secrecy::SecretString;
use serde_json::json;
use tokio::net::TcpListener;

pub use connections::missing_scopes;
pub use connectors::{connector_view, create_connector, delete_connector, patch_connector};
pub use egret_vault::ConnectionName;
pub use error::ApiError;
pub use lifecycle::{Install, Lifecycle};
pub use links::{MadeLink, make_connect_link};
pub use oauth::{cookie, return_cookie};

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
        conn: &'a egret_vault::ConnectionId,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<TestOutcome>> + Send + 'a>>;
}

/// What every control-plane route reads and changes.
pub struct ControlState {
    pub policy: Arc<ArcSwap<Policy>>,
    /// Installs policy changes made through the API (and, in `egret-app`, reloads).
    pub lifecycle: Arc<Lifecycle>,
    pub vault: Arc<Vault>,
    pub broker: egret_oauth::Broker,
    pub metrics: Arc<egret_metrics::Metrics>,
    pub admin_token: SecretString,
    /// Tests connections (`POST /v1/connections/{c}/{o}/test`).
    pub tester: Arc<dyn ConnectionTester>,
    /// Tells the platform's receivers what happened (and delivers, in `egret-app`).
    pub webhooks: Arc<egret_webhooks::Webhooks>,
}

impl ControlState {
    /// Runs vault work (which fsyncs) off the async workers.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&ControlState) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the operation was interrupted; retry it",
                )
            })?;
        if let Err(e) = &result
            && e.code == "vault_error"
        {
            self.metrics.vault_errors.inc();
        }
        result
    }
}

pub fn router(state: Arc<ControlState>) -> Router {
    let admin = Router::new()
        .route(
            "/v1/connectors",
            get(connectors::list).post(connectors::create),
        )
        .route(
            "/v1/connectors/{id}",
            get(connectors::get)
                .patch(connectors::update)
                .delete(connectors::remove),
        )
        .route("/v1/connectors/{id}/purge", post(connectors::purge))
        .route("/v1/connections", get(connections::list))
        .route(
            "/v1/connections/{connector}/{owner}/key",
            put(connections::put_key),
        )
        .route(
            "/v1/connections/{connector}/{owner}/authorize",
            post(oauth::authorize),
        )
        .route(
            "/v1/connections/{connector}/{owner}/test",
            post(connections::test),
        )
        .route(
            "/v1/connections/{connector}/{owner}",
            delete(connections::remove).patch(connections::update),
        )
        .route(
            "/v1/placeholders",
            get(placeholders::list).post(placeholders::mint),
        )
        .route(
            "/v1/placeholders/{placeholder}",
            delete(placeholders::revoke),
        )
        .route("/v1/connect-links", post(links::create))
        .route("/v1/audit", get(audit::list))
        .route("/v1/sandboxes", get(sandboxes::list).post(sandboxes::issue))
        .route("/v1/sandboxes/{id}", delete(sandboxes::revoke))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .route(
            "/readyz",
            get(|State(state): State<Arc<ControlState>>| async move {
                // Listeners are bound before this answers at all; the policy is always
                // loaded (a bad file never replaces a good one); the vault must answer.
                match state.blocking(|s| Ok(s.vault.ping()?)).await {
                    Ok(()) => {
                        let policy = state.policy.load();
                        let ready = json!({
                            "status": "ready",
                            "connectors": policy.connectors.len(),
                            // Where sandboxes connect: the bound address (a `:0` resolved).
                            "proxy": policy.proxy.listen.to_string(),
                        });
                        (StatusCode::OK, axum::Json(ready))
                    }
                    Err(e) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({ "status": "not_ready", "error": "vault_error", "message": e.message })),
                    ),
                }
            }),
        )
        .route("/oauth/start", get(oauth::start))
        .route("/oauth/callback", get(oauth::callback))
        // No token: the numbers carry no secret, and scrapers rarely hold one.
        .route(
            "/metrics",
            get(|State(state): State<Arc<ControlState>>| async move {
                if let Some(s) = state.vault.store().stats() {
                    state.metrics.database(egret_metrics::DatabaseFigures {
                        errors: s.errors,
                        pool: s.pool_size,
                        idle: s.pool_idle,
                        listening: s.listening,
                        heard: s.changes_heard,
                        lost: s.listener_lost,
                        lag_ms: s.change_lag_ms,
                    });
                }
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    state.metrics.render(),
                )
            }),
        )
        .merge(admin)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route; see the control-plane routes in README.md",
            )
        })
        .with_state(state)
}

/// Serves the control plane's `routes` (its [`router`], and whatever the composition
/// root merges in) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    routes: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        // Peer addresses: the web UI believes `ui.user_header` only from trusted proxies.
        routes.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
