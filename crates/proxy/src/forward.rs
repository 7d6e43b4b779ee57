//! One intercepted request, top to bottom: host binding -> route still allowed ->
//! placeholder swap (renewing OAuth tokens first where due) -> upstream (pooled, HTTP/2
//! where offered) -> streamed response. An upstream 401 on an OAuth token egret thought
//! valid gets one forced renewal and one retry, when the request can be replayed.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;

use arc_swap::Guard;
use bytes::Bytes;
use egret_oauth::{Need, TokenError};
use egret_policy::{AuthKind, Policy, Route};
use egret_vault::{ConnectionKind, Credential, PlaceholderEntry, unix_now};
use futures_util::FutureExt;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tracing::{debug, info};

use crate::Proxy;
use crate::binding::{self, Bound};
use crate::body::{ProxyBody, stream};
use crate::hop;
use crate::idle::{InFlight, hold};
use crate::redact::Redactor;
use crate::refusal::Refusal;
use crate::swap::{self, Destination, Halt, Lookup, SwapReport, redacted};
use crate::upstream::UpstreamBody;

/// Bodies up to this size are buffered when a retry after a 401 may be needed.
const REPLAY_MAX: u64 = 64 * 1024;

/// A placeholder's connection and the credential the broker handed out for it.
type Renewed = Vec<(Arc<PlaceholderEntry>, Arc<Credential>)>;

pub(crate) async fn handle(
    proxy: Arc<Proxy>,
    bound: Arc<Bound>,
    guard: InFlight,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    // Cheap clones (a shared buffer, an enum): log fields are only built when enabled.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let started = std::time::Instant::now();
    let resp = match forward(&proxy, &bound, req, guard).await {
        Ok((resp, None)) => {
            proxy.metrics.request("", "forwarded");
            resp
        }
        Ok((resp, Some(swap))) => {
            let info = &swap.placeholder.info;
            proxy.metrics.request(&info.connector, "forwarded");
            let data = SwapEvent {
                sandbox: bound.sandbox.as_deref(),
                host: &bound.host,
                method: method.as_str(),
                path: redacted(uri.path()),
                status: resp.status().as_u16(),
                latency_ms: started.elapsed().as_millis() as u64,
                fields: &swap.fields,
            };
            proxy.audit.record(
                "request.swap",
                Some(&info.connector),
                Some(info.owner.as_str()),
                &data,
            );
            resp
        }
        Err(refusal) => {
            info!(host = %bound.host, %method, code = refusal.code, status = refusal.status.as_u16(), "request refused");
            proxy.metrics.request("", refusal.code);
            let context = json!({
                "host": bound.host,
                "method": method.as_str(),
                "path": redacted(uri.path()),
            });
            crate::server::refused(&proxy, refusal, bound.sandbox.as_deref(), context)
        }
    };
    debug!(host = %bound.host, %method, path = %redacted(uri.path()), status = resp.status().as_u16(), "request done");
    Ok(resp)
}

/// Which credential a forwarded request carried: for metrics and the audit log.
pub(crate) struct SwapSummary {
    /// The first placeholder swapped: names the connector and owner (shared, not copied).
    placeholder: Arc<PlaceholderEntry>,
    fields: Vec<Cow<'static, str>>,
}

/// The `data` of a `request.swap` audit event, serialized as it is (no map built).
#[derive(serde::Serialize)]
struct SwapEvent<'a> {
    sandbox: Option<&'a str>,
    host: &'a str,
    method: &'a str,
    path: Cow<'a, str>,
    status: u16,
    latency_ms: u64,
    fields: &'a [Cow<'static, str>],
}

/// The response, and which credential the request carried (if any).
async fn forward(
    proxy: &Proxy,
    bound: &Bound,
    req: Request<Incoming>,
    guard: InFlight,
) -> Result<(Response<ProxyBody>, Option<SwapSummary>), Refusal> {
    let (mut parts, body) = req.into_parts();
    binding::check(&parts, bound)?;
    // A guard, not an `Arc` clone: no shared reference count to bounce between threads.
    let policy = proxy.policy.load();
    // The policy may have changed since the CONNECT: the tunnel keeps no privilege.
    if policy.route(&bound.host, bound.port) != Route::Intercept {
        return Err(Refusal::egress_denied(
            &bound.host,
            bound.port,
            &policy.allowed_hosts(),
        ));
    }
    // Before the swap: a request over its connector's rate limit must not cost a
    // token renewal either.
    let limited = policy
        .connectors
        .iter()
        .find(|c| c.rate_limit.is_some() && c.serves(&bound.host, bound.port));
    if let Some(c) = limited
        && let Some(limit) = c.rate_limit
        && let Err(wait) = proxy
            .rate
            .take(c.id.as_str(), limit, std::time::Instant::now())
    {
        return Err(Refusal::rate_limited(c.id.as_str(), wait));
    }
    let dest = Destination {
        host: &bound.host,
        port: bound.port,
    };
    let oauth_host = policy
        .connectors
        .iter()
        .any(|c| matches!(c.auth, AuthKind::OAuth2(_)) && c.serves(&bound.host, bound.port));
    // Kept only where a 401 retry could use it: an OAuth host and no streamed body.
    let original =
        (oauth_host && replayable(&body)).then(|| (parts.uri.clone(), parts.headers.clone()));
    let report = swap_fresh(proxy, policy, &mut parts, dest, Vec::new(), &bound.sandbox).await?;
    for s in &report.swapped {
        debug!(connector = s.connector(), owner = s.owner(), field = %s.field, "credential injected");
        proxy.metrics.swap(s.connector());
    }
    let connector = report.swapped.first().map(|first| SwapSummary {
        placeholder: first.placeholder.clone(),
        fields: report.swapped.iter().map(|s| s.field.clone()).collect(),
    });
    let scan = Scan::prepare(proxy, &report, &mut parts);
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
        return forward_upgrade(proxy, bound, parts, body, guard, scan.as_ref())
            .await
            .map(|r| (r, connector));
    }
    let used: Renewed = report
        .swapped
        .iter()
        .filter(|s| s.credential.kind == ConnectionKind::Oauth2)
        .map(|s| (s.placeholder.clone(), s.credential.clone()))
        .collect();
    for (entry, _) in &used {
        proxy.broker.touch(&entry.info.connector, &entry.info.owner);
    }
    let Some((uri, headers)) = original.filter(|_| !used.is_empty()) else {
        let resp = send(
            proxy,
            &bound.host,
            Request::from_parts(parts, Either::Left(body)),
        )
        .await?;
        return Ok((
            answer(proxy, bound, resp, scan.as_ref(), guard).await?,
            connector,
        ));
    };
    let buffered = tokio::time::timeout(proxy.limits.request_head_timeout, body.collect())
        .await
        .map_err(|_| Refusal::bad_request("the request body did not arrive in time"))?
        .map_err(|_| Refusal::bad_request("the request body broke off"))?
        .to_bytes();
    let retry_parts = retry_head(&parts, uri, headers);
    let resp = send(
        proxy,
        &bound.host,
        Request::from_parts(parts, full(&buffered)),
    )
    .await?;
    if resp.status() != StatusCode::UNAUTHORIZED {
        return Ok((
            answer(proxy, bound, resp, scan.as_ref(), guard).await?,
            connector,
        ));
    }
    let first = scanned(proxy, bound, resp, scan.as_ref()).await?;
    retry_after_401(proxy, bound, first, retry_parts, used, buffered, guard)
        .await
        .map(|r| (r, connector))
}

/// Scanning state for one response: the credentials to look for, and whether the
/// request's method lets the response carry a body.
struct Scan {
    redactor: Arc<Redactor>,
    head: bool,
}

impl Scan {
    /// The scan for the answer to a request that carries `report`'s credentials (none
    /// when it carries none). A compressed answer cannot be scanned as it streams (see
    /// `redact`), so the request asks the upstream for an uncompressed one.
    fn prepare(
        proxy: &Proxy,
        report: &SwapReport,
        parts: &mut http::request::Parts,
    ) -> Option<Self> {
        let redactor = proxy.redactors.for_echoes(&report.echoes)?;
        parts
            .headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        Some(Self {
            redactor,
            head: parts.method == Method::HEAD,
        })
    }

    /// Replaces echoed credentials in an answer's headers, counting the answers that
    /// had one (a counter, not a log line: an echoing upstream does it every time).
    fn answer_headers(&self, proxy: &Proxy, host: &str, headers: &mut http::HeaderMap) {
        if self.redactor.headers(headers) {
            proxy.metrics.echoed_headers.inc();
            debug!(%host, "upstream echoed a credential in a response header; replaced");
        }
    }
}

/// The upstream's response as the sandbox gets it: credentials replaced (when the
/// request carried any), and held open against the connection's idle timeout.
async fn answer(
    proxy: &Proxy,
    bound: &Bound,
    resp: Response<Incoming>,
    scan: Option<&Scan>,
    guard: InFlight,
) -> Result<Response<ProxyBody>, Refusal> {
    let resp = scanned(proxy, bound, resp, scan).await?;
    Ok(resp.map(|body| hold(body, guard)))
}

/// Answers of at most this many bytes with a known length are scanned whole: they keep
/// an exact `content-length` (and go out in one write) instead of streaming chunked.
const SCAN_WHOLE_MAX: u64 = 64 * 1024;

async fn scanned(
    proxy: &Proxy,
    bound: &Bound,
    resp: Response<Incoming>,
    scan: Option<&Scan>,
) -> Result<Response<ProxyBody>, Refusal> {
    let Some(scan) = scan else {
        return Ok(resp.map(stream));
    };
    let (mut parts, body) = resp.into_parts();
    if let Some(encoding) = parts.headers.get(CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        let encoding = String::from_utf8_lossy(encoding.as_bytes()).into_owned();
        return Err(Refusal::response_unscannable(&bound.host, &encoding));
    }
    scan.answer_headers(proxy, &bound.host, &mut parts.headers);
    let bodiless = scan.head
        || parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if bodiless {
        return Ok(Response::from_parts(parts, stream(body)));
    }
    let small = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= SCAN_WHOLE_MAX);
    if small {
        // A small answer usually arrives with its head: then no timer is set up at all.
        let mut collect = body.collect();
        let collected = match (&mut collect).now_or_never() {
            Some(done) => done,
            None => tokio::time::timeout(proxy.limits.upstream_response_timeout, collect)
                .await
                .map_err(|_| Refusal::upstream_timeout(&bound.host, "send its answer"))?,
        }
        .map_err(|e| upstream_body_refusal(&bound.host, &e))?;
        let trailers = collected.trailers().cloned();
        let (out, _) = scan.redactor.replace(&collected.to_bytes(), true);
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
        let Some(mut trailers) = trailers else {
            return Ok(Response::from_parts(parts, stream(Full::new(out))));
        };
        scan.redactor.headers(&mut trailers);
        let frames = [
            http_body::Frame::data(out),
            http_body::Frame::trailers(trailers),
        ];
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(
            frames.map(Ok::<_, Infallible>),
        ));
        return Ok(Response::from_parts(parts, stream(body)));
    }
    // Placeholders and credentials differ in length: the length is known only at the end.
    parts.headers.remove(CONTENT_LENGTH);
    let body = scan.redactor.clone().body(body);
    Ok(Response::from_parts(parts, stream(body)))
}

/// The upstream said 401 to a token egret believed valid: renew it once (unless another
/// request did already) and send the request once more. If renewal fails the upstream's
/// 401 goes back as it was, except when the grant is gone.
async fn retry_after_401(
    proxy: &Proxy,
    bound: &Bound,
    first: Response<ProxyBody>,
    mut parts: http::request::Parts,
    used: Renewed,
    body: Bytes,
    guard: InFlight,
) -> Result<Response<ProxyBody>, Refusal> {
    let policy = proxy.policy.load_full();
    let mut renewed = Renewed::new();
    for (entry, credential) in used {
        let Some(connector) = policy.connector(&entry.info.connector) else {
            continue;
        };
        match proxy
            .broker
            .fresh(connector, &entry.info.owner, Need::Replace(credential))
            .await
        {
            Ok(c) => renewed.push((entry, c)),
            Err(e @ (TokenError::InvalidGrant(_) | TokenError::NeedsReauth)) => {
                return Err(token_refusal(&entry, &e));
            }
            Err(e) => {
                debug!(connector = %entry.info.connector, error = %e, "renewal after 401 failed");
                return Ok(first.map(|body| hold(body, guard)));
            }
        }
    }
    info!(host = %bound.host, "upstream refused the token; retrying once with a renewed one");
    let dest = Destination {
        host: &bound.host,
        port: bound.port,
    };
    let policy = proxy.policy.load();
    let report = swap_fresh(proxy, policy, &mut parts, dest, renewed, &bound.sandbox).await?;
    let scan = Scan::prepare(proxy, &report, &mut parts);
    drop(first);
    let resp = send(proxy, &bound.host, Request::from_parts(parts, full(&body))).await?;
    answer(proxy, bound, resp, scan.as_ref(), guard).await
}

/// Swaps placeholders, asking the token broker for a fresh OAuth token each time the
/// swap finds one due for renewal. `renewed` holds credentials the broker gave already.
async fn swap_fresh(
    proxy: &Proxy,
    mut policy: Guard<Arc<Policy>>,
    parts: &mut http::request::Parts,
    dest: Destination<'_>,
    mut renewed: Renewed,
    sandbox: &Option<Arc<str>>,
) -> Result<SwapReport, Refusal> {
    loop {
        let lookup = Lookup {
            policy: &policy,
            vault: &proxy.vault,
            now_unix: unix_now(),
            renewed: &renewed,
            sandbox: sandbox.as_deref(),
        };
        let entry = match swap::swap_request(parts, dest, &lookup) {
            Ok(report) => return Ok(report),
            Err(Halt::Refuse(r)) => return Err(r),
            Err(Halt::Renew(entry)) => entry,
        };
        // Each connection is renewed at most once per request; a renewed credential is
        // always accepted by the swap, so this ends.
        let connector = policy
            .connector(&entry.info.connector)
            .ok_or_else(Refusal::placeholder_unknown)?;
        let credential = proxy
            .broker
            .fresh(connector, &entry.info.owner, Need::Fresh)
            .await
            .map_err(|e| token_refusal(&entry, &e))?;
        renewed.push((entry, credential));
        policy = proxy.policy.load();
    }
}

fn token_refusal(entry: &PlaceholderEntry, e: &TokenError) -> Refusal {
    let (connector, owner) = (&entry.info.connector, entry.info.owner.as_str());
    match e {
        TokenError::InvalidGrant(_) | TokenError::NeedsReauth => {
            Refusal::connection_needs_reauth(connector, owner)
        }
        TokenError::NotConnected => Refusal::placeholder_unknown(),
        other => Refusal::token_refresh_failed(connector, other.is_timeout(), &other.to_string()),
    }
}

/// True when the body is known to be small enough to hold for a retry.
fn replayable(body: &Incoming) -> bool {
    use http_body::Body;
    body.size_hint().upper().is_some_and(|n| n <= REPLAY_MAX)
}

fn full(bytes: &Bytes) -> UpstreamBody {
    Either::Right(Full::new(bytes.clone()))
}

/// The head to retry with: the sandbox's original (placeholders, not tokens) URI and
/// headers, on the prepared request's method and version.
fn retry_head(
    prepared: &http::request::Parts,
    uri: Uri,
    headers: http::HeaderMap,
) -> http::request::Parts {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = prepared.method.clone();
    parts.version = prepared.version;
    parts.headers = headers;
    hop::strip(&mut parts.headers, false);
    parts.headers.remove(http::header::HOST);
    let path_and_query = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTPS)
        .authority(
            prepared
                .uri
                .authority()
                .cloned()
                .unwrap_or_else(|| http::uri::Authority::from_static("invalid")),
        )
        .path_and_query(path_and_query)
        .build()
        .unwrap_or_else(|_| prepared.uri.clone());
    parts
}

/// Sends a request through the pooled client, waiting at most the response-head timeout,
/// and strips the answer's hop-by-hop headers.
pub(crate) async fn send(
    proxy: &Proxy,
    host: &str,
    req: Request<UpstreamBody>,
) -> Result<Response<Incoming>, Refusal> {
    let started = std::time::Instant::now();
    let sent = proxy.upstream.client.request(req);
    let mut resp = tokio::time::timeout(proxy.limits.upstream_response_timeout, sent)
        .await
        .map_err(|_| Refusal::upstream_timeout(host, "answer"))?
        .map_err(|e| upstream_refusal(host, &e))?;
    proxy
        .metrics
        .upstream_seconds
        .observe(started.elapsed().as_secs_f64());
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
        .map_err(|e| upstream_refusal(&bound.host, &e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        hop::strip(resp.headers_mut(), false);
        return answer(proxy, bound, resp, scan, guard).await;
    }
    // The relayed frames are not scanned (see the README's security model); the
    // handshake answer's headers are.
    if let Some(scan) = scan {
        scan.answer_headers(proxy, &bound.host, resp.headers_mut());
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

fn upstream_body_refusal(host: &str, e: &hyper::Error) -> Refusal {
    Refusal::upstream_unreachable(host, &format!("its answer broke off: {e}"))
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
