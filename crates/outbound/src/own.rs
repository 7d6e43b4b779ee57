//! egret's own listeners are never a destination: a sandbox must not reach the control
//! plane or the web UI through the proxy (it would act as any user), whatever
//! `network.allow` or `upstream.resolve` say. [`is_own`] says whether an address is one
//! egret listens on; [`Guarded`] refuses every connection that lands on one, before a
//! byte is sent.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use egret_policy::Policy;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Resolver;

/// A connection that would have reached egret itself.
#[derive(Debug, thiserror::Error)]
#[error("{addr} is egret's own {what}; no request through egret may go there")]
pub struct OwnAddress {
    pub addr: SocketAddr,
    /// `proxy` or `control plane`.
    pub what: &'static str,
}

/// Whether `addr` is where egret itself listens (its proxy or its control plane and
/// web UI): the very address, or its port on any address of this machine when egret
/// listens on all of them.
pub fn is_own(policy: &Policy, addr: SocketAddr) -> Option<OwnAddress> {
    let ip = canonical(addr.ip());
    [
        (policy.proxy.listen, "proxy"),
        (policy.control.listen, "control plane"),
    ]
    .into_iter()
    .find(|(listen, _)| {
        listen.port() == addr.port()
            && (canonical(listen.ip()) == ip || (listen.ip().is_unspecified() && is_local(ip)))
    })
    .map(|(_, what)| OwnAddress { addr, what })
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` belongs to this machine: loopback, unspecified, or an address one of its
/// interfaces holds (only such an address can be bound to).
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// A TCP connector that refuses a connection that reached one of egret's own listeners
/// (it is closed before anything is written on it).
#[derive(Clone)]
pub struct Guarded {
    inner: HttpConnector<Resolver>,
    policy: Arc<ArcSwap<Policy>>,
}

impl Guarded {
    pub(crate) fn new(inner: HttpConnector<Resolver>, policy: Arc<ArcSwap<Policy>>) -> Self {
        Self { inner, policy }
    }
}

type Connecting = Pin<
    Box<
        dyn Future<Output = Result<TokioIo<TcpStream>, Box<dyn std::error::Error + Send + Sync>>>
            + Send,
    >,
>;

impl tower::Service<http::Uri> for Guarded {
    type Response = TokioIo<TcpStream>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let policy = self.policy.clone();
        Box::pin(async move {
            let io = connecting.await?;
            if let Ok(peer) = io.inner().peer_addr()
                && let Some(own) = is_own(&policy.load(), peer)
            {
                return Err(own.into());
            }
            Ok(io)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(proxy: &str, control: &str) -> Policy {
        let dir = std::env::temp_dir();
        let mut p = egret_policy::parse("version: 1\n", &dir.join("t.yaml"), &dir).expect("policy");
        p.bound_to(proxy.parse().expect("addr"), control.parse().expect("addr"));
        p
    }

    #[test]
    fn egrets_own_listeners_are_recognised_in_every_spelling() {
        let p = policy("127.0.0.1:3128", "127.0.0.1:3129");
        let own = |a: &str| is_own(&p, a.parse().expect("addr")).map(|o| o.what);
        assert_eq!(own("127.0.0.1:3129"), Some("control plane"));
        assert_eq!(own("127.0.0.1:3128"), Some("proxy"));
        assert_eq!(own("[::ffff:127.0.0.1]:3129"), Some("control plane"));
        assert_eq!(own("127.0.0.1:8443"), None, "another port");
        assert_eq!(own("127.0.0.2:3129"), None, "another address");
        // Listening on every address: the port on any of this machine's.
        let all = policy("0.0.0.0:3128", "[::]:3129");
        let own = |a: &str| is_own(&all, a.parse().expect("addr")).map(|o| o.what);
        assert_eq!(own("127.0.0.1:3128"), Some("proxy"));
        assert_eq!(own("127.0.0.53:3129"), Some("control plane"));
        assert_eq!(own("[::1]:3129"), Some("control plane"));
        assert_eq!(own("192.0.2.1:3129"), None, "not this machine's");
    }
}
