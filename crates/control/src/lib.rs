//! The control plane: the admin HTTP API (axum) that operators, the CLI and the agent
//! platform use — a thin JSON front-end over the service layer (`egret-service`), which
//! decides and does everything.
//!
//! `auth` guards every `/v1` route with the admin token (the acting principal is then
//! the administrator); one module per resource (`connectors`, `connections`,
//! `placeholders`, `sandboxes`, `links`, `audit`) turns a request into the service's
//! typed input and its answer into JSON; `oauth` serves egret's sign-in link
//! (`/oauth/start`) and the vendor's redirect back (`/oauth/callback`, the routes without
//! the admin token: the `state` they carry is their credential); `error` maps the
//! service's errors to a status and a code, in one place.
//!
//! It must never return or log a secret: keys go in, only metadata comes out. It knows
//! nothing of the data plane (no proxy, TLS or sockets of sandboxes): `egret-app`
//! assembles both planes.

mod approvals;
mod audit;
mod auth;
mod connections;
mod connectors;
pub mod cookies;
mod error;
mod links;
mod oauth;
mod placeholders;
mod sandboxes;
mod tokens;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use egret_service::Service;
use secrecy::SecretString;
use serde_json::json;
use tokio::net::TcpListener;

pub use connectors::connector_view;
pub use error::{ApiError, status_of};
pub use oauth::{return_cookie, sign_in_binding};

/// What every control-plane route reads.
pub struct ControlState {
    pub service: Arc<Service>,
    pub admin_token: SecretString,
}

/// The control plane's routes. Every `/v1` route acts as the principal `auth` found
/// (the admin token or an API token); the service layer decides what it may do.
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
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::show))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route("/v1/sandboxes", get(sandboxes::list).post(sandboxes::issue))
        .route("/v1/sandboxes/{id}", delete(sandboxes::revoke))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{name}", delete(tokens::revoke))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_principal,
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
                match state.service.ready().await {
                    Ok(()) => {
                        let policy = state.service.policy.load();
                        let ready = json!({
                            "status": "ready",
                            "connectors": policy.connectors.len(),
                            // Where sandboxes connect: the bound address (a `:0` resolved).
                            "proxy": policy.proxy.listen.to_string(),
                            // The file's last reload, when refused and not fixed since.
                            "policy_reload_refused": state.service.lifecycle.refused_reload(),
                        });
                        (StatusCode::OK, axum::Json(ready))
                    }
                    Err(e) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({ "status": "not_ready", "error": "vault_error", "message": e.to_string() })),
                    ),
                }
            }),
        )
        .route(
            "/oauth/start",
            get(oauth::start).post(oauth::continue_sign_in),
        )
        .route("/oauth/callback", get(oauth::callback))
        // No token: the numbers carry no secret, and scrapers rarely hold one.
        .route(
            "/metrics",
            get(|State(state): State<Arc<ControlState>>| async move {
                let metrics = &state.service.metrics;
                metrics.forged_rows(state.service.forged_rows());
                if let Some(s) = state.service.store_stats() {
                    metrics.database(egret_metrics::DatabaseFigures {
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
                    metrics.render(),
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
