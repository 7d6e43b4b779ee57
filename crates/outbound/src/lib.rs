//! Every connection egret makes itself, from one factory that states per use whom it
//! trusts and how it resolves names — so no client quietly follows a rule of its own.
//!
//! | use | trust | resolution |
//! | --- | --- | --- |
//! | [`Use::Upstream`]: a sandbox's requests, tunnels, connection tests | web PKI + `upstream.extra_ca` | `upstream.resolve`, then DNS without private ranges ([`Rule::NoPrivate`]) |
//! | [`Use::TokenEndpoint`]: OAuth token, revocation, discovery, userinfo | web PKI + `upstream.extra_ca` | `upstream.resolve`, then DNS, private allowed ([`Rule::PrivateAllowed`]) |
//! | [`Use::Webhook`]: webhook receivers | web PKI + `upstream.extra_ca` | `upstream.resolve`, then DNS, private allowed |
//! | [`Use::SecretSource`]: external secret stores | web PKI + `upstream.extra_ca` + the sources' `ca_file`s ([`Outbound::tls_trusting`]) | `upstream.resolve`, then DNS, private allowed |
//! | the vault database ([`database_tls`]) | web PKI + `vault.ca_file` | the database driver's (the URL's host) |
//!
//! `resolve` holds the rules and the private blocks. It owns no pools, timeouts or
//! protocols beyond the connector: each client builds its own pool on what this gives.
//! No use may reach egret's own listeners (`own`): every connector refuses them.
//! It must not read a secret or make a connection itself.

mod own;
mod resolve;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use egret_policy::Policy;
use egret_tls::TlsError;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;

pub use own::{Guarded, OwnAddress, is_own};
pub use resolve::{ResolveError, Resolver, Rule, is_private};

/// What an outbound connection is for; decides its trust and its resolution rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Toward the destinations a sandbox asks for (and connection tests made as one).
    Upstream,
    /// Toward an OAuth app's endpoints, which the operator configured.
    TokenEndpoint,
    /// Toward webhook receivers, which the operator configured.
    Webhook,
    /// Toward the external secret stores of `secret_sources`, which the operator
    /// configured.
    SecretSource,
}

impl Use {
    /// How this use resolves names.
    pub fn rule(self) -> Rule {
        match self {
            Self::Upstream => Rule::NoPrivate,
            Self::TokenEndpoint | Self::Webhook | Self::SecretSource => Rule::PrivateAllowed,
        }
    }
}

/// A connector to an HTTP(S) server with its resolver, never to egret itself.
pub type HttpsConnector = hyper_rustls::HttpsConnector<Guarded>;

/// The factory: the policy in force (for `upstream.resolve` and the network rules) and
/// the trust toward upstreams, built once at start.
#[derive(Clone)]
pub struct Outbound {
    policy: Arc<ArcSwap<Policy>>,
    tls: rustls::ClientConfig,
}

impl Outbound {
    /// Trusts the web PKI and the policy's `upstream.extra_ca` (read now: a change takes
    /// effect at the next start).
    pub fn new(policy: Arc<ArcSwap<Policy>>) -> Result<Self, TlsError> {
        let tls = egret_tls::upstream_client_config(&policy.load().upstream.extra_ca)?;
        Ok(Self { policy, tls })
    }

    /// The TLS configuration of `use_` trusting `more` CA files besides (a secret
    /// source's `ca_file`, read now).
    pub fn tls_trusting(
        &self,
        more: &[std::path::PathBuf],
    ) -> Result<rustls::ClientConfig, TlsError> {
        if more.is_empty() {
            return Ok(self.tls.clone());
        }
        let mut files = self.policy.load().upstream.extra_ca.clone();
        files.extend(more.iter().cloned());
        egret_tls::upstream_client_config(&files)
    }

    /// The TLS client configuration for `use_` (ALPN is left to the HTTP client).
    pub fn tls(&self, use_: Use) -> rustls::ClientConfig {
        match use_ {
            Use::Upstream | Use::TokenEndpoint | Use::Webhook | Use::SecretSource => {
                self.tls.clone()
            }
        }
    }

    /// The resolver for `use_`.
    pub fn resolver(&self, use_: Use) -> Resolver {
        Resolver::new(self.policy.clone(), use_.rule())
    }

    /// A TCP connector for `use_`: its resolver, no Nagle delay, connects bounded by
    /// `connect_timeout`, `https` and `http` URLs alike.
    pub fn http(&self, use_: Use, connect_timeout: Duration) -> HttpConnector<Resolver> {
        let mut http = HttpConnector::new_with_resolver(self.resolver(use_));
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http
    }

    /// An HTTP(S) connector for `use_` over `http`, speaking HTTP/1.1 and, when `h2`,
    /// HTTP/2 where the server offers it; a connection that reaches one of egret's own
    /// listeners is refused ([`OwnAddress`]).
    pub fn https(&self, use_: Use, http: HttpConnector<Resolver>, h2: bool) -> HttpsConnector {
        self.https_with(self.tls(use_), http, h2)
    }

    /// [`Outbound::https`] with a TLS configuration of the caller's (from
    /// [`Outbound::tls_trusting`]).
    pub fn https_with(
        &self,
        tls: rustls::ClientConfig,
        http: HttpConnector<Resolver>,
        h2: bool,
    ) -> HttpsConnector {
        let http = Guarded::new(http, self.policy.clone());
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1();
        if h2 {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.wrap_connector(http)
        }
    }
}

/// TLS toward the vault database: the web PKI and `vault.ca_file` (the CA that signed
/// the database's certificate, when it is a private one).
pub fn database_tls(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    egret_tls::upstream_client_config(ca_file.as_slice())
}
