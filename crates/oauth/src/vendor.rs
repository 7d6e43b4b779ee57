//! The broker's way to a vendor's authorization server: a trait, so the broker's logic
//! (single flight, backoff, failure states) is tested against a scripted vendor, and
//! [`HttpVendor`], the real one (endpoints from the policy or discovery, then the
//! exchanges of `protocol` over egret's HTTP client).

use std::future::Future;
use std::pin::Pin;

use egret_clock::Clock;
use egret_policy::OAuthSettings;
use egret_vault::TokenSet;
use secrecy::{ExposeSecret, SecretString};

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
    /// client bounded by its timeout. Every text the vendor wrote in the outcome — an
    /// error's description, an identity — leaves here without the OAuth app's client
    /// secret or any of `secrets` (the call's code, verifier or tokens) in any form.
    async fn with_exchange<T: VendorAnswer>(
        &self,
        settings: &OAuthSettings,
        secrets: &[&SecretString],
        f: impl AsyncFnOnce(Exchange<'_>) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let outcome = async {
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
        .await;
        let client_secret = settings.client_secret_now();
        let mut known: Vec<&str> = secrets.iter().map(|s| s.expose_secret()).collect();
        known.extend(client_secret.as_ref().map(|s| s.expose_secret()));
        match outcome {
            Ok(answer) => Ok(answer.without(&known)),
            Err(e) => Err(e.with_vendor_text(|text| crate::sanitized(text, &known))),
        }
    }
}

/// What a vendor call returns, with the vendor's texts in it cleaned.
trait VendorAnswer {
    fn without(self, secrets: &[&str]) -> Self;
}

impl VendorAnswer for Authorization {
    fn without(self, _: &[&str]) -> Self {
        self
    }
}

impl VendorAnswer for Option<()> {
    fn without(self, _: &[&str]) -> Self {
        self
    }
}

impl VendorAnswer for TokenSet {
    /// The identity (ID token or userinfo claims) is the vendor's text: it must not carry
    /// the tokens of this very answer either.
    fn without(mut self, secrets: &[&str]) -> Self {
        let mut all = secrets.to_vec();
        all.push(self.access_token.expose_secret());
        all.extend(self.refresh_token.as_ref().map(|r| r.expose_secret()));
        if let Some(identity) = self.identity.take() {
            let clean = |v: Option<String>| v.map(|v| crate::sanitized(&v, &all));
            self.identity = Some(egret_vault::Identity {
                sub: clean(identity.sub),
                email: clean(identity.email),
                email_verified: identity.email_verified,
                preferred_username: clean(identity.preferred_username),
                name: clean(identity.name),
            });
        }
        self
    }
}

impl Vendor for HttpVendor {
    fn authorization<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        redirect_uri: &'a str,
    ) -> VendorCall<'a, Authorization> {
        Box::pin(self.with_exchange(settings, &[], async move |x| x.authorization(redirect_uri)))
    }

    fn exchange_code<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        code: &'a str,
        verifier: Option<&'a SecretString>,
        redirect_uri: &'a str,
    ) -> VendorCall<'a, TokenSet> {
        Box::pin(async move {
            let code = SecretString::from(code.to_owned());
            let secrets: Vec<&SecretString> =
                [Some(&code), verifier].into_iter().flatten().collect();
            self.with_exchange(settings, &secrets, async |x| {
                x.exchange_code(code.expose_secret(), verifier, redirect_uri)
                    .await
            })
            .await
        })
    }

    fn client_credentials<'a>(&'a self, settings: &'a OAuthSettings) -> VendorCall<'a, TokenSet> {
        Box::pin(self.with_exchange(settings, &[], async |x| x.client_credentials().await))
    }

    fn refresh<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        refresh_token: &'a SecretString,
        scopes: &'a [String],
    ) -> VendorCall<'a, TokenSet> {
        Box::pin(async move {
            self.with_exchange(settings, &[refresh_token], async |x| {
                x.refresh(refresh_token, scopes).await
            })
            .await
        })
    }

    fn revoke<'a>(
        &'a self,
        settings: &'a OAuthSettings,
        token: &'a SecretString,
        is_refresh: bool,
    ) -> VendorCall<'a, Option<()>> {
        Box::pin(async move {
            self.with_exchange(settings, &[token], async |x| {
                if x.endpoints.revocation.is_none() {
                    return Ok(None);
                }
                x.revoke(token, is_refresh).await.map(Some)
            })
            .await
        })
    }
}
