//! WebSocket and other HTTP/1.1 upgrades: the handshake went through the swap like any
//! request, and its answer's head is scanned like any answer's. After `101` the bytes
//! are relayed; when the answer is to be scanned, the upstream's WebSocket frames are
//! (`websocket`), compression is taken out of the offer so they can be, and any other
//! upgraded protocol is refused: egret could not read it.

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
    if scan.is_some() {
        let websocket = parts
            .headers
            .get(http::header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        if !websocket {
            return Err(Refusal::upgrade_unscannable(
                &bound.host,
                "asks for a protocol other than WebSocket",
            ));
        }
        // Compressed frames could not be scanned: the upstream is not offered it.
        parts.headers.remove(http::header::SEC_WEBSOCKET_EXTENSIONS);
    }
    let upstream_req = Request::from_parts(parts, Either::Left(body.into()));
    let sent = proxy.upstream.http1_client.request(upstream_req);
    let mut resp = tokio::time::timeout(proxy.limits.upstream_response_timeout, sent)
        .await
        .map_err(|_| Refusal::upstream_timeout(&bound.host, "answer the upgrade"))?
        .map_err(|e| crate::upstream::refusal(&bound.host, &e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        crate::upstream::received(&mut resp, &bound.host)?;
        return scan::answer(proxy, bound, resp, scan, guard).await;
    }
    let redactors = match scan {
        Some(scan) => {
            if resp
                .headers()
                .contains_key(http::header::SEC_WEBSOCKET_EXTENSIONS)
            {
                // An extension egret did not offer: its frames could not be scanned.
                return Err(Refusal::upgrade_unscannable(
                    &bound.host,
                    "was answered with a WebSocket extension (compression) egret did not offer",
                ));
            }
            let (mut parts, body) = resp.into_parts();
            scan.answer_head(proxy, &bound.host, &mut parts);
            resp = http::Response::from_parts(parts, body);
            Some(scan.redactors().to_vec())
        }
        None => None,
    };
    let upstream_upgrade = hyper::upgrade::on(&mut resp);
    let idle = proxy.limits.tunnel_idle_timeout;
    let open = egret_metrics::Open::new(&proxy.metrics.tunnels);
    tokio::spawn(async move {
        let (_guard, _open) = (guard, open);
        match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok((client, upstream)) => {
                let (client, upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                let relayed = match redactors {
                    Some(r) => crate::websocket::relay_scanned(client, upstream, idle, r).await,
                    None => crate::tunnel::relay(client, upstream, idle).await.map(drop),
                };
                if let Err(e) = relayed {
                    debug!(error = %e, "upgraded connection ended");
                }
            }
            Err(e) => debug!(error = %e, "upgrade failed"),
        }
    });
    let (parts, _) = resp.into_parts();
    Ok(Response::from_parts(parts, crate::body::empty()))
}
