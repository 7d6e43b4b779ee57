//! Absolute-form `http://` requests: forwarded to `network.allow` hosts only, and never
//! with a credential — a placeholder on plain HTTP is refused, not swapped.

use egret_policy::{Route, is_ip_literal, normalize_host};
use http::{Request, Response, Version};
use hyper::body::Incoming;

use crate::Proxy;
use crate::body::{ProxyBody, stream};
use crate::forward::send;
use crate::hop;
use crate::refusal::Refusal;
use crate::swap::contains_prefix;

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
    if is_ip_literal(&host) {
        return Err(Refusal::ip_literal(&host));
    }
    let carries_placeholder = contains_prefix(parts.uri.to_string().as_bytes())
        || parts
            .headers
            .values()
            .any(|v| contains_prefix(v.as_bytes()) || is_basic(v.as_bytes()));
    if carries_placeholder && carries_real_placeholder(&parts) {
        return Err(Refusal::placeholder_plain_http());
    }
    let policy = proxy.policy.load();
    match policy.route(&host, port) {
        Route::Tunnel => {}
        Route::Intercept => return Err(Refusal::https_only(&host)),
        Route::Deny => return Err(Refusal::egress_denied(&host, port, &policy.allowed_hosts())),
    }
    drop(policy);
    if let Some(h) = parts.headers.get(http::header::HOST) {
        let same = h
            .to_str()
            .ok()
            .and_then(|v| v.parse::<http::uri::Authority>().ok())
            .is_some_and(|a| {
                normalize_host(a.host()) == host && a.port_u16().is_none_or(|p| p == port)
            });
        if !same {
            return Err(Refusal::host_mismatch(
                authority.as_str(),
                &String::from_utf8_lossy(h.as_bytes()),
            ));
        }
    }
    hop::strip(&mut parts.headers, false);
    parts.version = Version::HTTP_11;
    let resp = send(proxy, &host, Request::from_parts(parts, body)).await?;
    Ok(resp.map(stream))
}

fn is_basic(value: &[u8]) -> bool {
    value.len() > 6 && value[..6].eq_ignore_ascii_case(b"basic ")
}

/// Looks for a well-formed placeholder anywhere: in the URL, in header values, and
/// inside Basic credentials.
fn carries_real_placeholder(parts: &http::request::Parts) -> bool {
    use base64::Engine;
    let in_uri = !crate::swap::placeholder_ranges(parts.uri.to_string().as_bytes()).is_empty();
    in_uri
        || parts.headers.values().any(|v| {
            let bytes = v.as_bytes();
            !crate::swap::placeholder_ranges(bytes).is_empty()
                || (is_basic(bytes)
                    && base64::engine::general_purpose::STANDARD
                        .decode(bytes[6..].trim_ascii())
                        .is_ok_and(|d| !crate::swap::placeholder_ranges(&d).is_empty()))
        })
}
