//! Step 8: one replay after an upstream 401 on an OAuth token egret believed valid.
//! The vendor may have revoked the token early (a rotated secret, a reset session):
//! renew it once (unless another request did already) and send the request once more.
//! Only requests whose body is known to be small are held for this; a streamed body
//! cannot be sent twice.

use std::sync::Arc;

use bytes::Bytes;
use egret_oauth::{Need, TokenError};
use egret_policy::{AuthKind, Policy};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use tracing::{debug, info};

use super::fresh::{self, Renewed};
use super::head::Head;
use super::retry;
use super::scan::{self, Scan};
use super::settings::{self, Plan};
use super::target;
use crate::Proxy;
use crate::binding::Bound;
use crate::body::ProxyBody;
use crate::idle::{InFlight, hold};
use crate::refusal::Refusal;
use crate::upstream::UpstreamBody;

/// Bodies up to this size are held when a replay after a 401 may be needed.
const REPLAY_MAX: u64 = 64 * 1024;

/// The sandbox's own request head (placeholders, not tokens), to swap again for a replay.
pub(super) struct Original(Head);

impl Original {
    /// Kept only where a replay could happen: a host of an OAuth connector, and a body
    /// known to be at most [`REPLAY_MAX`].
    pub(super) fn keep(
        policy: &Policy,
        bound: &Bound,
        parts: &Parts,
        body: &impl http_body::Body,
    ) -> Option<Self> {
        let oauth_host = policy
            .connectors
            .iter()
            .any(|c| matches!(c.auth, AuthKind::OAuth2(_)) && c.serves(&bound.host, bound.port));
        let small = body.size_hint().upper().is_some_and(|n| n <= REPLAY_MAX);
        (oauth_host && small).then(|| Self(Head::copy(parts)))
    }

    /// The head to swap again: the same request as the sandbox sent it.
    fn parts(self) -> Parts {
        self.0.into_parts()
    }
}

/// A request that may be replayed once: the sandbox's own head, the OAuth tokens it
/// carries, and how it is sent.
pub(super) struct Replay {
    pub(super) original: Original,
    pub(super) used: Renewed,
    pub(super) plan: Plan,
}

impl Replay {
    /// Sends the request with its body held, and replays it once if the upstream
    /// answers 401 to one of the OAuth tokens it carries.
    pub(super) async fn send(
        self,
        proxy: &Proxy,
        bound: &Bound,
        parts: Parts,
        body: UpstreamBody,
        scan: Option<Scan>,
        guard: InFlight,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let Self {
            original,
            used,
            plan,
        } = self;
        let body = tokio::time::timeout(proxy.limits.request_head_timeout, body.collect())
            .await
            .map_err(|_| Refusal::bad_request("the request body did not arrive in time"))?
            .map_err(|_| Refusal::bad_request("the request body broke off"))?
            .to_bytes();
        let resp = retry::send(proxy, bound, &plan, parts, full(&body)).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return scan::answer(proxy, bound, resp, scan.as_ref(), guard).await;
        }
        replay(
            proxy,
            bound,
            (original, used, plan),
            body,
            resp,
            scan,
            guard,
        )
        .await
    }
}

/// After the upstream's 401: renew, swap again, send once more.
async fn replay(
    proxy: &Proxy,
    bound: &Bound,
    (original, used, plan): (Original, Renewed, Plan),
    body: Bytes,
    resp: Response<Incoming>,
    scan: Option<Scan>,
    guard: InFlight,
) -> Result<Response<ProxyBody>, Refusal> {
    let first = scan::scanned(proxy, bound, resp, scan.as_ref()).await?;
    let Some(renewed) = renew(proxy, used).await? else {
        // Renewal failed for a passing reason: the upstream's 401 goes back as it was.
        return Ok(first.map(|body| hold(body, guard)));
    };
    info!(host = %bound.host, "upstream refused the token; retrying once with a renewed one");
    let mut parts = original.parts();
    let policy = proxy.policy.load();
    // The rules passed on the first send; the same request is not judged again.
    let report = fresh::swap(proxy, policy, &mut parts, bound, renewed, None, &[])
        .await
        .map_err(fresh::Stop::refusal)?;
    let scan = Scan::prepare(proxy, bound, &report, &mut parts);
    settings::apply(&proxy.policy.load(), &report, &mut parts, plan.timeout);
    target::upstream_head(&mut parts, bound)?;
    drop(first);
    let resp = retry::send(proxy, bound, &plan, parts, full(&body)).await?;
    scan::answer(proxy, bound, resp, scan.as_ref(), guard).await
}

/// Renews each token the upstream refused (unless another request replaced it
/// already). `None` when there is nothing to replay with: a renewal failed for a
/// passing reason, or the token was renewed moments ago (the broker spaces forced
/// renewals); a refusal when the grant is gone.
async fn renew(proxy: &Proxy, used: Renewed) -> Result<Option<Renewed>, Refusal> {
    let policy = proxy.policy.load_full();
    let mut renewed = Renewed::new();
    for (entry, credential) in used {
        let Some(connector) = policy.connector(&entry.info.connector) else {
            continue;
        };
        let need = Need::Replace(credential.clone());
        match proxy.broker.fresh(connector, &entry.connection, need).await {
            // Renewed moments ago and refused all the same: the 401 is the vendor's
            // answer to a good token, and goes back as it is.
            Ok(c) if Arc::ptr_eq(&c, &credential) => return Ok(None),
            Ok(c) => renewed.push((entry, c)),
            Err(e @ (TokenError::InvalidGrant(_) | TokenError::NeedsReauth)) => {
                return Err(fresh::token_refusal(&entry.info, &e));
            }
            Err(e) => {
                debug!(connector = %entry.info.connector, error = %e, "renewal after 401 failed");
                return Ok(None);
            }
        }
    }
    Ok(Some(renewed))
}

fn full(bytes: &Bytes) -> UpstreamBody {
    Either::Right(Full::new(bytes.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request};

    fn policy() -> Policy {
        let yaml = "version: 1\nconnectors:\n  - id: crm\n    auth: oauth2\n    egress: [crm.x.com]\n    oauth: {authorize_url: 'https://id.x.com/a', token_url: 'https://id.x.com/t', client_id: c}\n  - id: key\n    auth: api_key\n    egress: [key.x.com]\n";
        egret_policy::parse(
            yaml,
            std::path::Path::new("t.yaml"),
            std::path::Path::new("."),
        )
        .expect("policy")
    }

    fn parts() -> Parts {
        let req = Request::post("/v1/x").header("authorization", "Bearer egp_x");
        req.body(()).expect("request").into_parts().0
    }

    #[test]
    fn only_small_requests_to_oauth_hosts_are_kept_for_a_replay() {
        let policy = policy();
        let crm = Bound::new("crm.x.com".into(), 443).expect("bound");
        let key = Bound::new("key.x.com".into(), 443).expect("bound");
        let small = Full::new(Bytes::from_static(b"{}"));
        let kept = Original::keep(&policy, &crm, &parts(), &small).expect("kept");
        let again = kept.parts();
        assert_eq!((again.method, again.uri.path()), (Method::POST, "/v1/x"));
        assert_eq!(again.headers["authorization"], "Bearer egp_x");
        assert!(
            Original::keep(&policy, &key, &parts(), &small).is_none(),
            "static key"
        );
        let large = Full::new(Bytes::from(vec![0u8; REPLAY_MAX as usize + 1]));
        assert!(
            Original::keep(&policy, &crm, &parts(), &large).is_none(),
            "too large"
        );
        let streamed = http_body_util::StreamBody::new(futures_util::stream::empty::<
            Result<http_body::Frame<Bytes>, std::convert::Infallible>,
        >());
        assert!(
            Original::keep(&policy, &crm, &parts(), &streamed).is_none(),
            "unknown length"
        );
    }
}
