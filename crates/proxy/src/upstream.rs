//! egret's side toward upstreams: the pooled hyper-util clients on `egret-outbound`'s
//! connectors for sandbox traffic (`Use::Upstream`: operator overrides, then DNS with
//! the private-range guard on the addresses actually connected), and the refusals for
//! what resolution and connection say.

use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::guard::WorkerLoad;
use crate::limits::Limits;
use crate::refusal::Refusal;

use egret_outbound::{Outbound, Use};
pub use egret_outbound::{ResolveError, Resolver, is_private};

/// The answer a sandbox gets when its destination cannot be resolved or is private.
pub(crate) fn unresolved(e: &ResolveError, host: &str) -> Refusal {
    match e {
        ResolveError::Private { .. } => Refusal::private_address(host),
        ResolveError::Lookup { .. } => {
            Refusal::upstream_unreachable(host, "its name does not resolve")
        }
    }
}

pub use egret_outbound::HttpsConnector;
/// A request body toward an upstream: streamed from the sandbox, or buffered so the
/// request can be sent again (see `forward::replay`).
pub type UpstreamBody =
    http_body_util::Either<crate::sandbox_body::SandboxBody, http_body_util::Full<bytes::Bytes>>;
pub type UpstreamClient = Client<HttpsConnector, UpstreamBody>;

/// From this many sandbox connections open on one worker, HTTP/1.1 requests too are
/// multiplexed over HTTP/2 (where the upstream offers it).
pub const MULTIPLEX_FROM: usize = 8;

/// The pooled clients: one that speaks HTTP/2 where the server offers it, else HTTP/1.1,
/// and an HTTP/1.1-only one (upgrades need an HTTP/1.1 connection).
///
/// Which one a request takes ([`Upstream::request`]): a sandbox's HTTP/2 request goes
/// over HTTP/2 where offered. Its HTTP/1.1 request gets an HTTP/1.1 connection of its
/// own while this worker serves fewer than [`MULTIPLEX_FROM`] sandbox connections, else
/// shares the worker's HTTP/2 connection. Why: HTTP/1.1 costs less per request (no
/// stream state, no HPACK), streams large answers in large reads (over HTTP/2, nginx's
/// 8 KiB frames each cost a wake-up and a write: 1 MiB answers over 4 connections ran at
/// 0.29–0.35× direct instead of 0.39×), and an upstream sees one connection per request
/// in flight, as without egret. Under many connections at once HTTP/2 wins: one read or
/// write of the shared connection carries many requests' frames (small requests over 32
/// connections: 56,000 requests/s against 49,500 with a connection each). The count is
/// of connections, not of requests waiting: a count that changes with every request
/// split the load between both pools, slower than either.
///
/// Each proxy worker thread has its own (see [`Upstream::new_pool`]): a pooled
/// connection's task then runs on the thread whose requests use it.
pub struct Upstream {
    /// HTTP/2 where the upstream offers it.
    pub client: UpstreamClient,
    /// HTTP/1.1 only: for HTTP/1.1 requests on a lightly loaded worker, and upgrades.
    pub http1_client: UpstreamClient,
    pub resolver: Resolver,
    /// The worker's open sandbox connections (none: requests never multiplex).
    load: Option<WorkerLoad>,
    /// Where the clients' connectors come from, to build another pool.
    outbound: Outbound,
}

impl Upstream {
    pub fn new(outbound: Outbound, limits: &Limits) -> Self {
        let http = || {
            let mut http = outbound.http(Use::Upstream, limits.upstream_connect_timeout);
            http.set_keepalive(Some(Duration::from_secs(60)));
            http
        };
        let both = outbound.https(Use::Upstream, http(), true);
        let h1 = outbound.https(Use::Upstream, http(), false);
        let build = |connector| {
            Client::builder(TokioExecutor::new())
                .timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(limits.upstream_pool_idle)
                .build(connector)
        };
        Self {
            client: build(both),
            http1_client: build(h1),
            resolver: outbound.resolver(Use::Upstream),
            load: None,
            outbound,
        }
    }

    /// The same trust and resolver with empty pools, for the worker whose open
    /// connections `load` counts.
    pub(crate) fn new_pool(&self, limits: &Limits, load: Option<WorkerLoad>) -> Self {
        Self {
            load,
            ..Self::new(self.outbound.clone(), limits)
        }
    }

    /// Sends `req` on the pool its version and this worker's load call for (see
    /// [`Upstream`]).
    pub fn request(
        &self,
        mut req: http::Request<UpstreamBody>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        let multiplex = req.version() == http::Version::HTTP_2
            || self
                .load
                .as_ref()
                .is_some_and(|l| l.open() >= MULTIPLEX_FROM);
        // The pooled client picks HTTP/2 or HTTP/1.1 per upstream from an HTTP/1.1
        // request (one marked HTTP/2 fails on an HTTP/1.1-only upstream); HTTP/1.0 goes
        // out as HTTP/1.1.
        *req.version_mut() = http::Version::HTTP_11;
        if multiplex {
            self.client.request(req)
        } else {
            self.http1_client.request(req)
        }
    }
}

/// The codings an upstream applied to an answer's body (every `Content-Encoding`
/// value, every `Transfer-Encoding` coding but `chunked`), other than `identity`: read
/// before hop-by-hop headers are stripped, since `Connection` can name
/// `Content-Encoding`. Present only when there is one; the scan withholds such answers.
#[derive(Debug, Clone)]
pub(crate) struct Codings(pub(crate) String);

/// What egret checks on every answer head as it arrives, before anything of it is
/// passed on: a length that conflicts with the framing is an upstream error (it can
/// smuggle or truncate answers, and a scan must not trust it), the body's codings are
/// noted, and hop-by-hop headers are stripped.
pub(crate) fn received<B>(resp: &mut http::Response<B>, host: &str) -> Result<(), Refusal> {
    let headers = resp.headers();
    if headers.contains_key(http::header::CONTENT_LENGTH)
        && headers.contains_key(http::header::TRANSFER_ENCODING)
    {
        return Err(Refusal::upstream_unreachable(
            host,
            "it answered with both Content-Length and Transfer-Encoding, which RFC 9112 §6.3 treats as an error",
        ));
    }
    let content = headers.get_all(http::header::CONTENT_ENCODING).iter();
    let transfer = headers.get_all(http::header::TRANSFER_ENCODING).iter();
    let codings: Vec<String> = content
        .chain(transfer)
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|c| !c.is_empty() && c != "identity" && c != "chunked")
        .collect();
    if !codings.is_empty() {
        resp.extensions_mut().insert(Codings(codings.join(", ")));
    }
    crate::hop::strip(resp.headers_mut(), false);
    Ok(())
}

/// Sends a request through the worker's pooled client, waiting at most the
/// response-head timeout, and checks the answer head ([`received`]).
pub(crate) async fn send(
    proxy: &crate::Proxy,
    host: &str,
    req: http::Request<UpstreamBody>,
) -> Result<http::Response<Incoming>, Refusal> {
    send_within(proxy, host, req, proxy.limits.upstream_response_timeout).await
}

/// As [`send`], waiting at most `timeout` for the answer head (a connector's own).
pub(crate) async fn send_within(
    proxy: &crate::Proxy,
    host: &str,
    req: http::Request<UpstreamBody>,
    timeout: std::time::Duration,
) -> Result<http::Response<Incoming>, Refusal> {
    let started = proxy.clock.instant();
    let sent = proxy.upstream.request(req);
    let mut resp = tokio::time::timeout(timeout, sent)
        .await
        .map_err(|_| Refusal::upstream_timeout(host, "answer"))?
        .map_err(|e| refusal(host, &e))?;
    let took = proxy.clock.instant() - started;
    proxy.metrics.upstream_seconds.observe(took.as_secs_f64());
    received(&mut resp, host)?;
    Ok(resp)
}

/// Maps a client error to the refusal a sandbox can act on, walking its causes.
pub(crate) fn refusal(host: &str, err: &hyper_util::client::legacy::Error) -> Refusal {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut innermost = err.to_string();
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<ResolveError>() {
            return unresolved(r, host);
        }
        if let Some(own) = c.downcast_ref::<egret_outbound::OwnAddress>() {
            return Refusal::own_address(host, own);
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
