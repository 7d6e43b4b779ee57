//! One CONNECT: refuse before any tunnel opens, or answer 200 and then intercept
//! (connector hosts) or relay bytes (`network.allow` hosts).

use std::sync::Arc;

use egret_policy::{Route, ip_literal, normalize_host};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tracing::{Instrument, debug, debug_span};

use crate::Proxy;
use crate::binding::Bound;
use crate::body::{ProxyBody, empty};
use crate::drain::Drain;
use crate::guard::Held;
use crate::idle::InFlight;
use crate::refusal::Refusal;

/// `guard` keeps the sandbox connection busy (no request-head timeout) and counted
/// (`guard::Held`) for as long as the tunnel lives.
pub(crate) async fn handle(
    proxy: &Arc<Proxy>,
    drain: &Drain,
    guard: (InFlight, Arc<Held>),
    req: Request<Incoming>,
    sandbox: Option<crate::proxy_auth::Sandbox>,
) -> Result<Response<ProxyBody>, Refusal> {
    let authority = req
        .uri()
        .authority()
        .ok_or_else(|| Refusal::bad_request("CONNECT needs a host:port target"))?;
    let host = normalize_host(authority.host());
    let port = authority.port_u16().unwrap_or(443);
    // One snapshot decides the route and names what is allowed in a refusal.
    let policy = proxy.policy.load_full();
    let literal = ip_literal(&host);
    let route = policy.route(&host, port);
    // Debug level: an enabled span is entered on every poll of the connection task.
    let span = debug_span!("tunnel", %host, port);
    match route {
        Route::Deny if literal.is_some() => Err(Refusal::ip_literal(&host)),
        Route::Deny => Err(Refusal::egress_denied(&host, port, &policy)),
        Route::Tunnel => {
            // Connect first, so a dead or private upstream is refused before the 200.
            let addrs = match literal {
                Some(ip) => vec![std::net::SocketAddr::new(ip, port)],
                None => proxy
                    .upstream
                    .resolver
                    .resolve(&host, port)
                    .await
                    .map_err(|e| crate::upstream::unresolved(&e, &host))?,
            };
            if let Some(own) = addrs
                .iter()
                .find_map(|a| egret_outbound::is_own(&policy, *a))
            {
                return Err(Refusal::own_address(&host, &own));
            }
            let upstream = crate::tunnel::dial(&addrs, proxy.limits.upstream_connect_timeout)
                .await
                .map_err(|e| Refusal::upstream_unreachable(&host, &e.to_string()))?;
            let idle = proxy.limits.tunnel_idle_timeout;
            let open = egret_metrics::Open::new(&proxy.metrics.tunnels);
            tokio::spawn(
                async move {
                    let (_guard, _open) = (guard, open);
                    match hyper::upgrade::on(req).await {
                        Ok(upgraded) => {
                            match crate::tunnel::relay(TokioIo::new(upgraded), upstream, idle).await
                            {
                                Ok((up, down)) => debug!(up, down, "tunnel closed"),
                                Err(e) => debug!(error = %e, "tunnel ended"),
                            }
                        }
                        Err(e) => debug!(error = %e, "CONNECT upgrade failed"),
                    }
                }
                .instrument(span),
            );
            Ok(established())
        }
        Route::Intercept => {
            let mut bound = Bound::new(host, port)
                .ok_or_else(|| Refusal::bad_request("CONNECT names an invalid host"))?;
            bound.sandbox = sandbox;
            let watcher = drain.watcher();
            let proxy = proxy.clone();
            tokio::spawn(
                async move {
                    let _guard = guard;
                    match hyper::upgrade::on(req).await {
                        Ok(upgraded) => {
                            crate::intercept::serve(proxy, watcher, bound, upgraded).await
                        }
                        Err(e) => debug!(error = %e, "CONNECT upgrade failed"),
                    }
                }
                .instrument(span),
            );
            Ok(established())
        }
    }
}

fn established() -> Response<ProxyBody> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::OK;
    resp
}
