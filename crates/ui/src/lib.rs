//! The web UI, served by the control plane under `/ui`: pages rendered on the server
//! (maud), one stylesheet embedded in the binary, every action a plain form post.
//!
//! Owns who is looking (`session`: the admin token exchanged for a session cookie, CSRF
//! tokens, the same-origin check), the headers every page carries (`headers`: a strict
//! Content-Security-Policy, no framing, no caching, no referrer) and the pages (`pages`).
//! It reads and changes everything through the service layer (`egret-service`), as the
//! session's principal (an administrator, or a user for one owner), and never renders a
//! secret: connectors' secrets stay references or masks, connections show metadata only.

mod headers;
mod marks;
mod pages;
mod session;
mod throttle;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use egret_service::Service;
use secrecy::SecretString;

pub use session::{COOKIE, is_admin_session};

/// What every page handler reads.
pub struct UiState {
    pub service: Arc<Service>,
    /// What an administrator signs in with.
    pub(crate) admin_token: SecretString,
    pub(crate) sessions: session::Sessions,
    /// Failed sign-ins per client address.
    pub(crate) sign_ins: throttle::Throttle,
}

impl UiState {
    /// Whether cookies must be `Secure`: egret is reached over https.
    pub(crate) fn secure(&self) -> bool {
        self.service.served_over_https()
    }
}

/// The `/ui` routes, to merge into the control plane's router.
pub fn router(service: Arc<Service>, admin_token: SecretString) -> Router {
    let state = Arc::new(UiState {
        sessions: session::Sessions(service.clone()),
        admin_token,
        service,
        sign_ins: throttle::Throttle::default(),
    });
    Router::new()
        .route("/ui", get(pages::home))
        .route("/ui/", get(pages::home))
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/oidc/start", get(pages::oidc::start))
        .route("/ui/oidc/callback", get(pages::oidc::callback))
        .route("/ui/connectors", get(pages::connectors::list))
        .route(
            "/ui/connectors/new",
            get(pages::new_connector::form).post(pages::new_connector::create),
        )
        .route(
            "/ui/connectors/{id}/delete",
            get(pages::connectors::confirm_delete).post(pages::connectors::delete),
        )
        .route("/ui/connectors/{id}/link", post(pages::connectors::link))
        .route(
            "/ui/connectors/{id}/rules",
            post(pages::connectors::set_rules),
        )
        .route(
            "/ui/connectors/{id}/enabled",
            post(pages::connectors::set_enabled),
        )
        .route(
            "/ui/connect/{ticket}",
            get(pages::connections::link).post(pages::connections::open),
        )
        .route("/ui/connections", get(pages::connections::list))
        .route("/ui/all-connections", get(pages::all_connections::list))
        .route("/ui/activity", get(pages::activity::page))
        .route("/ui/approvals", get(pages::approvals::list))
        .route("/ui/approvals/{id}", get(pages::approvals::show))
        .route("/ui/approvals/{id}/decide", post(pages::approvals::decide))
        .route("/ui/sandboxes", get(pages::sandboxes::page))
        .route(
            "/ui/tokens",
            get(pages::tokens::list).post(pages::tokens::create),
        )
        .route("/ui/tokens/{name}/revoke", post(pages::tokens::revoke))
        .route(
            "/ui/sandboxes/{id}/revoke",
            post(pages::sandboxes::revoke_sandbox),
        )
        .route(
            "/ui/placeholders/{id}/revoke",
            post(pages::sandboxes::revoke_placeholder),
        )
        .route(
            "/ui/all-connections/{connector}/{action}",
            post(pages::all_connections::act),
        )
        .route(
            "/ui/connections/{connector}/{action}",
            post(pages::connections::act),
        )
        .route("/ui/egret.css", get(pages::stylesheet))
        .route("/ui/egret.js", get(pages::script))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::secure,
        ))
        .with_state(state)
}
