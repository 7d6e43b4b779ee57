//! Absolute-form `http://` requests: forwarded to `network.allow` hosts only, and never
//! with a credential — a placeholder on plain HTTP is refused, not swapped.

use egret_policy::{Route, is_ip_literal, normalize_host};
use http::{Request, Response, Version};
use http_body_util::Either;
use hyper::body::Incoming;

use crate::Proxy;
use crate::binding::{self, Bound};
use crate::body::{ProxyBody, stream};
use crate::hop;
use crate::refusal::Refusal;
use crate::swap::carries_placeholder;
use crate::upstream::send;

pub(crate) async fn forward(
    proxy: &Proxy,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Refusal> {
    let (mut parts, body) = req.into_parts();
    let authority = parts
        .uri
        .authority()
        .cloned()
        .ok_or_else(|| Refusal::bad_request("the URL names no host"))?;
    let host = normalize_host(authority.host());
    let port = authority.port_u16().unwrap_or(80);
    if carries_placeholder(&parts) {
        return Err(Refusal::placeholder_plain_http());
    }
    let policy = proxy.policy.load();
    match policy.route(&host, port) {
        Route::Tunnel => {}
        Route::Intercept => return Err(Refusal::https_only(&host)),
        Route::Deny if is_ip_literal(&host) => return Err(Refusal::ip_literal(&host)),
        Route::Deny => return Err(Refusal::egress_denied(&host, port, &policy)),
    }
    drop(policy);
    let bound = Bound::new(host, port)
        .ok_or_else(|| Refusal::bad_request("the URL names an invalid host"))?;
    binding::check(&parts, &bound)?;
    hop::strip(&mut parts.headers, false);
    parts.version = Version::HTTP_11;
    let resp = send(
        proxy,
        &bound.host,
        Request::from_parts(parts, Either::Left(body.into())),
    )
    .await?;
    Ok(resp.map(stream))
}
