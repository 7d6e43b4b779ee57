//! One intercepted request, top to bottom: host binding -> route still allowed ->
//! placeholder swap -> upstream (pooled, HTTP/2 where offered) -> streamed response.

use std::convert::Infallible;
use std::sync::Arc;

use egret_policy::Route;
use egret_vault::unix_now;
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tracing::{debug, info};

use crate::Proxy;
use crate::binding::{self, Bound};
use crate::body::{ProxyBody, stream};
use crate::hop;
use crate::idle::{InFlight, hold};
use crate::refusal::Refusal;
use crate::swap::{self, Destination, Lookup, redacted};

pub(crate) async fn handle(
    proxy: Arc<Proxy>,
    bound: Arc<Bound>,
    guard: InFlight,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    // Cheap clones (a shared buffer, an enum): log fields are only built when enabled.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let resp = forward(&proxy, &bound, req, guard).await.unwrap_or_else(|refusal| {
        info!(host = %bound.host, %method, code = refusal.code, status = refusal.status.as_u16(), "request refused");
        refusal.into_response()
    });
    debug!(host = %bound.host, %method, path = %redacted(uri.path()), status = resp.status().as_u16(), "request done");
    Ok(resp)
}

async fn forward(
    proxy: &Proxy,
    bound: &Bound,
    req: Request<Incoming>,
    guard: InFlight,
) -> Result<Response<ProxyBody>, Refusal> {
    let (mut parts, body) = req.into_parts();
    binding::check(&parts, bound)?;
    let policy = proxy.policy.load();
    // The policy may have changed since the CONNECT: the tunnel keeps no privilege.
    if policy.route(&bound.host, bound.port) != Route::Intercept {
        return Err(Refusal::egress_denied(
            &bound.host,
            bound.port,
            &policy.allowed_hosts(),
        ));
    }
    let dest = Destination {
        host: &bound.host,
        port: bound.port,
    };
    let lookup = Lookup {
        policy: &policy,
        vault: &proxy.vault,
        now_unix: unix_now(),
    };
    let report = swap::swap_request(&mut parts, dest, &lookup)?;
    for s in &report.swapped {
        debug!(connector = s.connector(), owner = s.owner(), field = %s.field, "credential injected");
    }
    drop(policy);

    let upgrade = parts.version == Version::HTTP_11 && hop::is_upgrade(&parts.headers);
    hop::strip(&mut parts.headers, upgrade);
    // The client derives Host (HTTP/1.1) or :authority (HTTP/2) from the URI.
    parts.headers.remove(http::header::HOST);
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTPS)
        .authority(bound.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| Refusal::bad_request("the request target is not a valid URI"))?;
    // The pooled client picks HTTP/2 or HTTP/1.1 per upstream; it needs an HTTP/1.1 request.
    parts.version = Version::HTTP_11;

    if upgrade {
        return forward_upgrade(proxy, bound, parts, body, guard).await;
    }
    let resp = send(proxy, &bound.host, Request::from_parts(parts, body)).await?;
    Ok(resp.map(|body| hold(stream(body), guard)))
}

/// Sends a request through the pooled client, waiting at most the response-head timeout,
/// and strips the answer's hop-by-hop headers.
pub(crate) async fn send(
    proxy: &Proxy,
    host: &str,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, Refusal> {
    let sent = proxy.upstream.client.request(req);
    let mut resp = tokio::time::timeout(proxy.limits.upstream_response_timeout, sent)
        .await
        .map_err(|_| Refusal::upstream_timeout(host, "answer"))?
        .map_err(|e| upstream_refusal(host, &e))?;
    hop::strip(resp.headers_mut(), false);
    Ok(resp)
}

/// WebSocket and other HTTP/1.1 upgrades: the handshake goes through the swap like any
/// request; after 101 both sides are relayed as bytes.
async fn forward_upgrade(
    proxy: &Proxy,
    bound: &Bound,
    mut parts: http::request::Parts,
    body: Incoming,
    guard: InFlight,
) -> Result<Response<ProxyBody>, Refusal> {
    // The sandbox side's half of the upgrade; it must not travel upstream.
    let client_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| Refusal::bad_request("this connection cannot be upgraded"))?;
    let upstream_req = Request::from_parts(parts, body);
    let sent = proxy.upstream.upgrade_client.request(upstream_req);
    let mut resp = tokio::time::timeout(proxy.limits.upstream_response_timeout, sent)
        .await
        .map_err(|_| Refusal::upstream_timeout(&bound.host, "answer the upgrade"))?
        .map_err(|e| upstream_refusal(&bound.host, &e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (mut parts, body) = resp.into_parts();
        hop::strip(&mut parts.headers, false);
        return Ok(Response::from_parts(parts, stream(body)));
    }
    let upstream_upgrade = hyper::upgrade::on(&mut resp);
    let idle = proxy.limits.tunnel_idle_timeout;
    tokio::spawn(async move {
        let _guard = guard;
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

/// Maps a client error to the refusal a sandbox can act on, walking its causes.
pub(crate) fn upstream_refusal(host: &str, err: &hyper_util::client::legacy::Error) -> Refusal {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut innermost = err.to_string();
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<crate::upstream::ResolveError>() {
            return r.refusal(host);
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return Refusal::upstream_timeout(host, "accept the connection");
        }
        if let Some(tls) = tls_error(c) {
            let hint = if matches!(tls, rustls::Error::InvalidCertificate(_)) {
                "; if it uses a private CA, add that CA to upstream.extra_ca"
            } else {
                ""
            };
            let why = format!("the TLS handshake failed: {tls}{hint}");
            return Refusal::upstream_unreachable(host, &why);
        }
        innermost = c.to_string();
        cause = c.source();
    }
    Refusal::upstream_unreachable(host, &innermost)
}

/// Finds a rustls error, looking inside `io::Error`s too: their `source()` skips the
/// error they wrap, and connectors nest them.
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    tls_error(inner)
}
