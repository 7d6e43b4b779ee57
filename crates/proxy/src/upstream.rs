//! egret's side toward upstreams: name resolution (operator overrides, private-range
//! guard on the addresses actually connected) and the pooled hyper-util clients.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use egret_policy::Policy;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::limits::Limits;
use crate::refusal::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{host} resolves only to private or local addresses")]
    Private { host: String },
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
}

impl ResolveError {
    /// The answer a sandbox gets when its destination cannot be resolved or is private.
    pub fn refusal(&self, host: &str) -> Refusal {
        match self {
            Self::Private { .. } => Refusal::private_address(host),
            Self::Lookup { .. } => Refusal::upstream_unreachable(host, "its name does not resolve"),
        }
    }
}

/// Resolves upstream names: `upstream.resolve` first (trusted, operator-set), then DNS,
/// dropping private addresses when `network.deny_private_ranges` is on. The check runs
/// on the very addresses the connector dials, so DNS rebinding has no gap to use.
#[derive(Clone)]
pub struct Resolver {
    policy: Arc<ArcSwap<Policy>>,
}

impl Resolver {
    pub fn new(policy: Arc<ArcSwap<Policy>>) -> Self {
        Self { policy }
    }

    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let policy = self.policy.load_full();
        if let Some(ip) = policy.upstream.resolve.get(host) {
            return Ok(vec![SocketAddr::new(*ip, port)]);
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: host.to_owned(),
                source,
            })?
            .collect();
        if !policy.network.deny_private_ranges {
            return Ok(found);
        }
        // Private addresses go, unless the operator named them in an address rule.
        let public: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| !is_private(a.ip()) || policy.network.allows_ip(a.ip()))
            .collect();
        if public.is_empty() && !found.is_empty() {
            return Err(ResolveError::Private {
                host: host.to_owned(),
            });
        }
        Ok(public)
    }
}

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ResolveError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ResolveError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        // HttpConnector puts the URI's port on the addresses it gets back.
        Box::pin(async move { this.resolve(name.as_str(), 0).await.map(Vec::into_iter) })
    }
}

/// Address blocks an upstream name must not resolve into (`network.deny_private_ranges`):
/// one row per block, each with why it is here.
const PRIVATE_BLOCKS: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this network, and the unspecified address"),
    ("10.0.0.0/8", "RFC 1918 private"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local, where cloud metadata services live",
    ),
    ("172.16.0.0/12", "RFC 1918 private"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.168.0.0/16", "RFC 1918 private"),
    (
        "198.18.0.0/15",
        "benchmarking (RFC 2544), used inside data centres",
    ),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, and the broadcast address"),
    (
        "::/96",
        "IPv4-compatible IPv6 (deprecated), and the unspecified address",
    ),
    ("::1/128", "loopback"),
    (
        "64:ff9b::/96",
        "NAT64: reaches IPv4 addresses, private ones included, through a translator",
    ),
    (
        "2002::/16",
        "6to4: reaches IPv4 addresses, private ones included, through a relay",
    ),
    ("fc00::/7", "unique local (ULA)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

static PRIVATE: std::sync::LazyLock<Vec<ipnet::IpNet>> = std::sync::LazyLock::new(|| {
    PRIVATE_BLOCKS
        .iter()
        .filter_map(|(block, _)| block.parse().ok())
        .collect()
});

/// True for an address in one of [`PRIVATE_BLOCKS`], or the IPv4-mapped IPv6 form
/// (`::ffff:a.b.c.d`) of one.
pub fn is_private(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    PRIVATE.iter().any(|block| block.contains(&ip))
}

pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;
/// A request body toward an upstream: streamed from the sandbox, or buffered so the
/// request can be sent again (see `forward::replay`).
pub type UpstreamBody = http_body_util::Either<Incoming, http_body_util::Full<bytes::Bytes>>;
pub type UpstreamClient = Client<HttpsConnector, UpstreamBody>;

/// The pooled clients: one that speaks HTTP/2 where the server offers it, else HTTP/1.1,
/// and an HTTP/1.1-only one for upgrades (WebSocket needs an HTTP/1.1 connection).
///
/// Each proxy worker thread has its own (see [`Upstream::new_pool`]): a pooled
/// connection's task then runs on the thread whose requests use it.
pub struct Upstream {
    pub client: UpstreamClient,
    pub upgrade_client: UpstreamClient,
    pub resolver: Resolver,
    /// The trust the clients were built with, to build another pool.
    tls: rustls::ClientConfig,
}

impl Upstream {
    pub fn new(tls: rustls::ClientConfig, resolver: Resolver, limits: &Limits) -> Self {
        let http = || {
            let mut http = HttpConnector::new_with_resolver(resolver.clone());
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(limits.upstream_connect_timeout));
            http.set_keepalive(Some(Duration::from_secs(60)));
            http
        };
        let both = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http());
        let h1 = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http());
        let build = |connector| {
            Client::builder(TokioExecutor::new())
                .timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(limits.upstream_pool_idle)
                .build(connector)
        };
        Self {
            client: build(both),
            upgrade_client: build(h1),
            resolver,
            tls,
        }
    }

    /// The same trust and resolver with empty pools.
    pub fn new_pool(&self, limits: &Limits) -> Self {
        Self::new(self.tls.clone(), self.resolver.clone(), limits)
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
    let sent = proxy.upstream.client.request(req);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_of_the_table_parses() {
        assert_eq!(PRIVATE.len(), PRIVATE_BLOCKS.len());
    }

    /// One address inside each block, and the first address past it, which is public.
    #[test]
    fn each_private_block_is_refused_and_its_neighbour_is_not() {
        for (inside, past) in [
            ("0.1.2.3", "1.0.0.0"),
            ("10.1.2.3", "11.0.0.0"),
            ("100.64.0.1", "100.128.0.1"),
            ("127.0.0.1", "128.0.0.1"),
            ("169.254.169.254", "169.255.0.1"),
            ("172.16.0.1", "172.32.0.1"),
            ("192.0.0.8", "192.0.1.1"),
            ("192.0.2.1", "192.0.3.1"),
            ("192.168.1.1", "192.169.0.1"),
            ("198.19.255.1", "198.20.0.1"),
            ("198.51.100.1", "198.51.101.1"),
            ("203.0.113.1", "203.0.114.1"),
            ("224.0.0.1", "223.255.255.1"),
            ("255.255.255.255", "223.1.1.1"),
            ("240.0.0.1", "223.0.0.1"),
            ("::7f00:1", "::1:0:0:1"),
            ("::1", "::ffff:8.8.8.8"),
            ("64:ff9b::a00:1", "64:ff9b:0:0:0:1::1"),
            ("2002:a00:1::1", "2003::1"),
            ("fd00::1", "fe00::1"),
            ("fe80::1", "fec0::1"),
            ("ff02::1", "2606:4700::1111"),
            ("::ffff:127.0.0.1", "::ffff:1.1.1.1"),
            ("::ffff:169.254.169.254", "::ffff:8.8.4.4"),
        ] {
            assert!(is_private(inside.parse().expect("ip")), "{inside}");
            assert!(!is_private(past.parse().expect("ip")), "{past}");
        }
    }
}
