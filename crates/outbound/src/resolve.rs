//! Name resolution for every outbound connection, by rule: `upstream.resolve` (the
//! operator's overrides) first, then DNS, with or without the private-range guard.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use egret_policy::Policy;
use hyper_util::client::legacy::connect::dns::Name;

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

/// How a name is turned into addresses to dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `upstream.resolve` first (trusted, operator-set), then DNS, dropping private
    /// addresses when `network.deny_private_ranges` is on (unless `network.allow` names
    /// them): for destinations a sandbox chooses.
    NoPrivate,
    /// `upstream.resolve` first, then DNS, private addresses allowed: for destinations
    /// the operator set (an identity provider or a receiver inside the company network
    /// is normal).
    PrivateAllowed,
}

/// Resolves names by its [`Rule`]. The check runs on the very addresses the connector
/// dials, so DNS rebinding has no gap to use.
#[derive(Clone)]
pub struct Resolver {
    policy: Arc<ArcSwap<Policy>>,
    rule: Rule,
}

impl Resolver {
    pub fn new(policy: Arc<ArcSwap<Policy>>, rule: Rule) -> Self {
        Self { policy, rule }
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
        if self.rule == Rule::PrivateAllowed || !policy.network.deny_private_ranges {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Arc<ArcSwap<Policy>> {
        let dir = std::env::temp_dir();
        let p = egret_policy::parse(yaml, &dir.join("t.yaml"), &dir).expect("policy");
        Arc::new(ArcSwap::from_pointee(p))
    }

    /// The rule is what differs: a name that resolves to loopback is refused toward a
    /// sandbox's destination and allowed toward the operator's.
    #[tokio::test]
    async fn private_addresses_are_refused_by_the_sandbox_rule_only() {
        let p = policy("version: 1\n");
        let sandbox = Resolver::new(p.clone(), Rule::NoPrivate);
        let operator = Resolver::new(p, Rule::PrivateAllowed);
        assert!(matches!(
            sandbox.resolve("localhost", 443).await,
            Err(ResolveError::Private { .. })
        ));
        let found = operator.resolve("localhost", 443).await.expect("allowed");
        assert!(
            found
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 443)
        );
    }

    /// `upstream.resolve` is the operator's word, whichever the rule.
    #[tokio::test]
    async fn upstream_resolve_wins_under_both_rules() {
        let p = policy("version: 1\nupstream:\n  resolve:\n    hooks.example.test: 127.0.0.7\n");
        for rule in [Rule::NoPrivate, Rule::PrivateAllowed] {
            let found = Resolver::new(p.clone(), rule)
                .resolve("hooks.example.test", 8443)
                .await
                .expect("resolved");
            assert_eq!(found, vec![SocketAddr::from(([127, 0, 0, 7], 8443))]);
        }
    }

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
