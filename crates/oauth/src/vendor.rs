//! The broker's way to a vendor's authorization server: a trait, so the broker's logic
//! (single flight, backoff, failure states) is tested against a scripted vendor, and
//! [`HttpVendor`], the real one (endpoints from the policy or discovery, then the
//! exchanges of `protocol` over egret's HTTP client).

use std::future::Future;
use std::pin::Pin;

use egret_clock::Clock;
use egret_policy::OAuthSettings;
use egret_vault::TokenSet;
use secrecy::SecretString;

use crate::endpoints::Discovery;
use crate::error::TokenError;
use crate::http::HttpClient;
use crate::protocol::{Authorization, Exchange};

/// A vendor call in flight.
pub type VendorCall<'a, T> = Pin<Box<dyn Future<Output = Result<T, TokenError>> + Send + 'a>>;

/// The OAuth 2.0 exchanges egret makes with a connector's authorization server. Each
/// call is bounded by the connector's `oauth.timeout`.
pub trait Vendor: Send + Sync + 'static {
    /// The URL a user opens to grant access (PKCE S256 and a fresh state).
    fn authorization<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        redirect_uri: &'a str,
    ) -> VendorCall<'a, Authorization>;

    /// Trades an authorization code from the callback for tokens.
    fn exchange_code<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        code: &'a str,
        verifier: Option<&'a SecretString>,
        redirect_uri: &'a str,
    ) -> VendorCall<'a, TokenSet>;

    /// A token for the app itself (client credentials grant).
    fn client_credentials<'a>(&'a self, settings: &'a OAuthSettings) -> VendorCall<'a, TokenSet>;

    /// Renews with a refresh token (which the vendor may rotate).
    fn refresh<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        refresh_token: &'a SecretString,
        scopes: &'a [String],
    ) -> VendorCall<'a, TokenSet>;

    /// RFC 7009 revocation; `None` when the vendor has no revocation endpoint.
    fn revoke<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        token: &'a SecretString,
        is_refresh: bool,
    ) -> VendorCall<'a, Option<()>>;
}

/// The real vendor: HTTPS to the authorization server named by the policy.
pub struct HttpVendor {
    http: HttpClient,
    discovery: Discovery,
    clock: Clock,
}

impl HttpVendor {
    pub fn new(http: HttpClient, clock: Clock) -> Self {
        Self {
            http,
            discovery: Discovery::default(),
            clock,
        }
    }

    /// Runs `f` with the connector's endpoints (discovered once per issuer) and an HTTP
    /// client bounded by its timeout.
    async fn with_exchange<T>(
        &self,
        settings: &OAuthSettings,
        f: impl AsyncFnOnce(Exchange<'_>) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let http = self.http.with_timeout(settings.timeout);
        let endpoints = self.discovery.endpoints(settings, &http).await?;
        f(Exchange {
            settings,
            endpoints: &endpoints,
            http: &http,
            now_unix: self.clock.unix(),
        })
        .await
    }
}

impl Vendor for HttpVendor {
    fn authorization<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        redirect_uri: &'a str,
    ) -> VendorCall<'a, Authorization> {
        Box::pin(self.with_exchange(settings, async move |x| x.authorization(redirect_uri)))
    }

    fn exchange_code<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        code: &'a str,
        verifier: Option<&'a SecretString>,
        redirect_uri: &'a str,
    ) -> VendorCall<'a, TokenSet> {
        Box::pin(self.with_exchange(settings, async move |x| {
            x.exchange_code(code, verifier, redirect_uri).await
        }))
    }

    fn client_credentials<'a>(&'a self, settings: &'a OAuthSettings) -> VendorCall<'a, TokenSet> {
        Box::pin(self.with_exchange(settings, async |x| x.client_credentials().await))
    }

    fn refresh<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        refresh_token: &'a SecretString,
        scopes: &'a [String],
    ) -> VendorCall<'a, TokenSet> {
        Box::pin(self.with_exchange(settings, async move |x| {
            x.refresh(refresh_token, scopes).await
        }))
    }

    fn revoke<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        token: &'a SecretString,
        is_refresh: bool,
    ) -> VendorCall<'a, Option<()>> {
        Box::pin(self.with_exchange(settings, async move |x| {
            if x.endpoints.revocation.is_none() {
                return Ok(None);
            }
            x.revoke(token, is_refresh).await.map(Some)
        }))
    }
}
