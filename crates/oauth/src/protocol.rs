//! The OAuth 2.0 exchanges themselves, over the `oauth2` crate: the authorization URL
//! (PKCE S256 + state), the code exchange, client credentials, refresh, revocation.

use std::time::Duration;

use egret_policy::{ClientAuth, OAuthSettings};
use egret_vault::TokenSet;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RevocationUrl,
    Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

use crate::endpoints::Endpoints;
use crate::error::TokenError;
use crate::http::HttpClient;

/// The token response's extra field egret reads: an OpenID Connect ID token, for the
/// identity of who signed in ("connected as").
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl oauth2::ExtraTokenFields for IdTokenField {}

type TokenResponseWithId =
    oauth2::StandardTokenResponse<IdTokenField, oauth2::basic::BasicTokenType>;

/// The client as built, before its endpoints are set.
type NewClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    TokenResponseWithId,
    oauth2::basic::BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
>;

type Client = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    TokenResponseWithId,
    oauth2::basic::BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Random bytes in a state: 256 bits, well above the 128 a guess must beat.
const STATE_BYTES: u32 = 32;

/// One connector's view of its authorization server.
pub struct Exchange<'a> {
    pub settings: &'a OAuthSettings,
    pub endpoints: &'a Endpoints,
    pub http: &'a HttpClient,
    /// Now, in unix seconds: a token's `expires_in` counts from here.
    pub now_unix: i64,
}

/// The URL the user opens, with the secrets its callback will need.
pub struct Authorization {
    pub url: String,
    pub state: SecretString,
    pub pkce_verifier: Option<SecretString>,
}

impl Exchange<'_> {
    fn client(&self, redirect_uri: Option<&str>) -> Result<Client, TokenError> {
        let bad = |what: &str, url: &str| {
            TokenError::Config(format!("{what} `{url}` is not a valid URL"))
        };
        let token = TokenUrl::new(self.endpoints.token.clone())
            .map_err(|_| bad("token_url", &self.endpoints.token))?;
        let auth = self
            .endpoints
            .authorize
            .as_ref()
            .map(|u| AuthUrl::new(u.clone()).map_err(|_| bad("authorize_url", u)))
            .transpose()?;
        let revocation = self
            .endpoints
            .revocation
            .as_ref()
            .map(|u| RevocationUrl::new(u.clone()).map_err(|_| bad("revocation_url", u)))
            .transpose()?;
        let mut client = NewClient::new(ClientId::new(self.settings.client_id.clone()))
            .set_auth_uri_option(auth)
            .set_token_uri_option(Some(token))
            .set_revocation_url_option(revocation)
            .set_auth_type(match self.settings.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Post => AuthType::RequestBody,
            });
        if let Some(reference) = &self.settings.client_secret {
            let secret = reference
                .read()
                .map_err(|e| {
                    TokenError::Config(format!("cannot read the client secret {reference}: {e}"))
                })?
                .ok_or_else(|| {
                    TokenError::Config(format!(
                        "the client secret {reference} is not set; set it where egret serve runs"
                    ))
                })?;
            client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        if let Some(uri) = redirect_uri {
            let uri =
                RedirectUrl::new(uri.to_owned()).map_err(|_| bad("control.public_url", uri))?;
            client = client.set_redirect_uri(uri);
        }
        Ok(client)
    }

    fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.settings.scopes.iter().cloned().map(Scope::new)
    }

    /// The vendor's authorization URL for a new grant.
    pub fn authorization(&self, redirect_uri: &str) -> Result<Authorization, TokenError> {
        let client = self.client(Some(redirect_uri))?;
        let mut request = client
            .authorize_url(|| CsrfToken::new_random_len(STATE_BYTES))
            .map_err(|_| {
                TokenError::Config(
                    "the connector has no authorize_url; set it or an issuer with discovery"
                        .to_owned(),
                )
            })?
            .add_scopes(self.scopes());
        let mut verifier = None;
        if self.settings.pkce {
            let (challenge, v) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            verifier = Some(SecretString::from(v.into_secret()));
        }
        for (k, v) in &self.settings.extra_params {
            request = request.add_extra_param(k, v);
        }
        let (url, state) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            state: SecretString::from(state.into_secret()),
            pkce_verifier: verifier,
        })
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: Option<&SecretString>,
        redirect_uri: &str,
    ) -> Result<TokenSet, TokenError> {
        let client = self.client(Some(redirect_uri))?;
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(config)?;
        if let Some(v) = verifier {
            request =
                request.set_pkce_verifier(PkceCodeVerifier::new(v.expose_secret().to_owned()));
        }
        let response = request.request_async(self.http).await?;
        let mut set = self.token_set(&response, None);
        // An ID token that names only a subject: the userinfo endpoint may say more.
        let named = set.identity.as_ref().is_some_and(|i| {
            i.email.is_some() || i.preferred_username.is_some() || i.name.is_some()
        });
        if !named && let Some(url) = &self.endpoints.userinfo {
            set.identity = self
                .userinfo(url, &set.access_token, set.identity.take())
                .await;
        }
        Ok(set)
    }

    /// Asks the userinfo endpoint who signed in and fills what `known` (the ID token's
    /// claims) lacks. Its `sub` must be the ID token's (OpenID Connect Core §5.3.2);
    /// any failure keeps `known` as it was: a label is a nicety, never a reason to fail.
    async fn userinfo(
        &self,
        url: &str,
        access_token: &SecretString,
        known: Option<egret_vault::Identity>,
    ) -> Option<egret_vault::Identity> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", access_token.expose_secret()),
            )
            .body(Vec::new())
            .ok()?;
        let answer = match self.http.send(request).await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::debug!(status = %r.status(), "the userinfo endpoint did not answer who signed in");
                return known;
            }
            Err(e) => {
                tracing::debug!(error = %e, "the userinfo endpoint could not be reached");
                return known;
            }
        };
        let Ok(claims) = serde_json::from_slice::<serde_json::Value>(answer.body()) else {
            return known;
        };
        let claim = |name: &str| claims[name].as_str().map(str::to_owned);
        let mut identity = known.unwrap_or_default();
        if identity.sub.is_some() && claim("sub") != identity.sub {
            return Some(identity);
        }
        identity.sub = identity.sub.or_else(|| claim("sub"));
        identity.email = identity.email.or_else(|| claim("email"));
        identity.preferred_username = identity
            .preferred_username
            .or_else(|| claim("preferred_username"));
        identity.name = identity.name.or_else(|| claim("name"));
        Some(identity)
    }

    pub async fn client_credentials(&self) -> Result<TokenSet, TokenError> {
        let client = self.client(None)?;
        let response = client
            .exchange_client_credentials()
            .map_err(config)?
            .add_scopes(self.scopes())
            .request_async(self.http)
            .await?;
        Ok(self.token_set(&response, None))
    }

    /// Renews with `refresh_token`. A vendor that does not rotate refresh tokens answers
    /// without one; the old one then stays.
    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
        scopes: &[String],
    ) -> Result<TokenSet, TokenError> {
        let client = self.client(None)?;
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let response = client
            .exchange_refresh_token(&token)
            .map_err(config)?
            .request_async(self.http)
            .await?;
        let mut set = self.token_set(&response, Some(refresh_token));
        if response.scopes().is_none() && !scopes.is_empty() {
            set.scopes = scopes.to_vec();
        }
        Ok(set)
    }

    /// RFC 7009: asks the vendor to revoke `token` (the refresh token revokes the grant).
    pub async fn revoke(&self, token: &SecretString, is_refresh: bool) -> Result<(), TokenError> {
        let client = self.client(None)?;
        let value = token.expose_secret().to_owned();
        let token = if is_refresh {
            StandardRevocableToken::RefreshToken(RefreshToken::new(value))
        } else {
            StandardRevocableToken::AccessToken(oauth2::AccessToken::new(value))
        };
        client
            .revoke_token(token)
            .map_err(config)?
            .request_async(self.http)
            .await
            .map_err(|e| match e {
                oauth2::RequestTokenError::Request(h) => TokenError::from(h),
                oauth2::RequestTokenError::ServerResponse(r) => {
                    TokenError::Rejected(r.error().to_string())
                }
                other => TokenError::Malformed(other.to_string()),
            })
    }

    fn token_set(
        &self,
        response: &TokenResponseWithId,
        previous_refresh: Option<&SecretString>,
    ) -> TokenSet {
        let now = self.now_unix;
        let expires_at = response
            .expires_in()
            .map(|d: Duration| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
        // RFC 6749 §5.1: no `scope` in the answer means the requested scopes were granted.
        let scopes = match response.scopes() {
            Some(s) => s.iter().map(|s| s.to_string()).collect(),
            None => self.settings.scopes.clone(),
        };
        TokenSet {
            identity: response
                .extra_fields()
                .id_token
                .as_deref()
                .and_then(identity_of),
            access_token: SecretString::from(response.access_token().secret().clone()),
            refresh_token: response
                .refresh_token()
                .map(|r| SecretString::from(r.secret().clone()))
                .or_else(|| previous_refresh.cloned()),
            expires_at,
            scopes,
        }
    }
}

fn config(e: oauth2::ConfigurationError) -> TokenError {
    TokenError::Config(format!("{e}; check the connector's oauth URLs"))
}

/// The identity claims of an ID token received straight from the token endpoint over
/// TLS (OpenID Connect Core §3.1.3.7 lets the client skip the signature check then):
/// the payload is read, nothing else. `None` for anything that is not a JWT.
fn identity_of(id_token: &str) -> Option<egret_vault::Identity> {
    use base64::Engine;
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let claim = |name: &str| claims[name].as_str().map(str::to_owned);
    Some(egret_vault::Identity {
        sub: claim("sub"),
        email: claim("email"),
        // Some providers send it as a string.
        email_verified: claims["email_verified"]
            .as_bool()
            .or_else(|| claims["email_verified"].as_str().map(|v| v == "true")),
        preferred_username: claim("preferred_username"),
        name: claim("name"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_identity_comes_from_the_id_tokens_claims() {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            br#"{"sub":"248289761001","email":"jane@example.com","preferred_username":"jane"}"#,
        );
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
        let id = super::identity_of(&token).expect("claims");
        assert_eq!(id.sub.as_deref(), Some("248289761001"));
        assert_eq!(id.email.as_deref(), Some("jane@example.com"));
        assert_eq!(id.label().as_deref(), Some("jane@example.com"));
        assert_eq!(id.email_verified, None);
        assert!(super::identity_of("not-a-jwt").is_none());
        for (given, verified) in [
            ("false", Some(false)),
            ("true", Some(true)),
            ("\"false\"", Some(false)),
        ] {
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!(r#"{{"email":"a@x.com","email_verified":{given}}}"#));
            let id = super::identity_of(&format!("h.{payload}.s")).expect("claims");
            assert_eq!(id.email_verified, verified, "{given}");
        }
    }
}
