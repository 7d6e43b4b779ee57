//! WebSocket and other HTTP/1.1 upgrades: the handshake went through the swap like any
//! request; after `101` both sides are relayed as bytes (not scanned: see the README's
//! security model), the handshake answer's headers scanned like any answer's.

use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::scan::{self, Scan};
use crate::Proxy;
use crate::binding::Bound;
use crate::body::ProxyBody;
use crate::idle::InFlight;
use crate::refusal::Refusal;

pub(super) async fn forward(
    proxy: &Proxy,
    bound: &Bound,
    mut parts: Parts,
    body: Incoming,
    guard: InFlight,
    scan: Option<&Scan>,
) -> Result<Response<ProxyBody>, Refusal> {
    // The sandbox side's half of the upgrade; it must not travel upstream.
    let client_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| Refusal::bad_request("this connection cannot be upgraded"))?;
    let upstream_req = Request::from_parts(parts, Either::Left(body));
    let sent = proxy.upstream.upgrade_client.request(upstream_req);
    let mut resp = tokio::time::timeout(proxy.limits.upstream_response_timeout, sent)
        .await
        .map_err(|_| Refusal::upstream_timeout(&bound.host, "answer the upgrade"))?
        .map_err(|e| crate::upstream::refusal(&bound.host, &e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        crate::upstream::received(&mut resp, &bound.host)?;
        return scan::answer(proxy, bound, resp, scan, guard).await;
    }
    if let Some(scan) = scan {
        let (mut parts, body) = resp.into_parts();
        scan.answer_head(proxy, &bound.host, &mut parts);
        resp = http::Response::from_parts(parts, body);
    }
    let upstream_upgrade = hyper::upgrade::on(&mut resp);
    let idle = proxy.limits.tunnel_idle_timeout;
    let open = egret_metrics::Open::new(&proxy.metrics.tunnels);
    tokio::spawn(async move {
        let (_guard, _open) = (guard, open);
        match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok((client, upstream)) => {
                let _ =
                    crate::tunnel::relay(TokioIo::new(client), TokioIo::new(upstream), idle).await;
            }
            Err(e) => debug!(error = %e, "upgrade failed"),
        }
    });
    let (parts, _) = resp.into_parts();
    Ok(Response::from_parts(parts, crate::body::empty()))
}
