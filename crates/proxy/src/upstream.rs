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
    pub fn refusal(&self, host: &str) -> crate::refusal::Refusal {
        use crate::refusal::Refusal;
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

/// Loopback, RFC 1918, CGNAT, link-local (cloud metadata), ULA, unspecified, multicast,
/// broadcast, documentation, and the IPv4-mapped forms of all of those.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;
/// A request body toward an upstream: streamed from the sandbox, or buffered so the
/// request can be sent again (see `forward::replayable`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_cover_the_usual_suspects() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(is_private(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_private(ip.parse().expect("ip")), "{ip}");
        }
    }
}
