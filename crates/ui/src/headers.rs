//! The headers every UI answer carries: scripts and styles from egret only (no inline
//! script or style), never framed, never cached, no referrer sent to another site.
//!
//! `Referrer-Policy: same-origin` rather than `no-referrer`: under `no-referrer`
//! browsers send `Origin: null` with form posts, and every post is checked against
//! egret's origin. `same-origin` sends nothing to any other site all the same.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// `form-action` also governs the redirects a form's submission follows, and Connect
/// goes on to the vendor's sign-in page: https origins are allowed for that.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self' https:; base-uri 'none'; object-src 'none'";

pub(crate) async fn secure(
    State(state): State<Arc<crate::UiState>>,
    req: Request,
    next: Next,
) -> Response {
    // Framed by no site, unless the operator lists the platforms that embed the pages.
    let embedders = state.service.policy.load().ui.frame_ancestors.join(" ");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let frame = if embedders.is_empty() {
        "'none'".to_owned()
    } else {
        embedders
    };
    // Origins were checked by the policy (no quote, semicolon or space inside one).
    if let Ok(csp) = HeaderValue::from_str(&format!("{CSP}; frame-ancestors {frame}")) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    if frame == "'none'" {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}
