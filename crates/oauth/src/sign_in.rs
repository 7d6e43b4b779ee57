//! egret as a relying party of the organisation's identity provider (`ui.oidc`): the
//! authorization-code flow with PKCE (S256), state and nonce for people signing in to the
//! web UI. The issuer's discovery document and keys are fetched once and kept (the keys
//! fetched again when a token names one not yet seen: a rotation); each ID token is
//! checked by [`crate::id_token::verify`], and `email_verified` is required when the
//! owner claim is `email`. The caller keeps state, nonce and verifier between the two
//! halves and binds them to the browser.

use std::sync::Mutex;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use egret_policy::OidcSettings;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::http::HttpClient;
use crate::id_token::{self, IdTokenError, Jwks};

/// Why a sign-in did not finish. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the identity provider {issuer} cannot be reached or read: {reason}")]
    Provider { issuer: String, reason: String },
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("{0}")]
    IdToken(#[from] IdTokenError),
    #[error(
        "the identity provider says the email {0} is not verified; verify it there, then sign in again"
    )]
    EmailUnverified(String),
    #[error("the ID token has no `{0}` claim, which names who signed in (`ui.oidc.owner_claim`)")]
    NoOwner(String),
}

#[derive(Deserialize, Clone)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

struct Known {
    issuer: String,
    meta: Metadata,
    jwks: Jwks,
}

/// The start of a sign-in: where to send the browser, and what to keep until it returns.
pub struct Begun {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// What the browser brought back, and what this sign-in kept since it began.
#[derive(Clone, Copy)]
pub struct Returned<'a> {
    pub code: &'a str,
    pub verifier: &'a str,
    pub nonce: &'a str,
    pub redirect_uri: &'a str,
}

/// Who signed in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The owner claim's value (`user:<value>` is the owner).
    pub subject: String,
    pub email: Option<String>,
    pub claims: Value,
}

/// Sign-in with one identity provider, its documents kept.
pub struct OidcClient {
    http: HttpClient,
    known: Mutex<Option<std::sync::Arc<Known>>>,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The unreserved characters of RFC 3986, left bare in a query or form value.
const VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A query or form value, every byte but the unreserved ones percent-encoded.
fn encode(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, VALUE).to_string()
}

impl OidcClient {
    pub fn new(http: HttpClient) -> Self {
        Self {
            http,
            known: Mutex::new(None),
        }
    }

    /// The authorization URL for a new sign-in returning to `redirect_uri`.
    pub async fn begin(&self, s: &OidcSettings, redirect_uri: &str) -> Result<Begun, SignInError> {
        let known = self.known(s, false).await?;
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge =
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
        let sep = if known.meta.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!(
            "{}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
            known.meta.authorization_endpoint,
            encode(&s.client_id),
            encode(redirect_uri),
            encode(&s.scopes.join(" ")),
            state,
            nonce,
            challenge
        );
        Ok(Begun {
            url,
            state,
            nonce,
            verifier,
        })
    }

    /// Exchanges the code the browser brought back and checks the ID token; who signed in.
    pub async fn finish(
        &self,
        s: &OidcSettings,
        secret: Option<&SecretString>,
        back: &Returned<'_>,
        now: i64,
    ) -> Result<SignedIn, SignInError> {
        let Returned {
            code,
            verifier,
            nonce,
            redirect_uri,
        } = *back;
        let known = self.known(s, false).await?;
        let mut form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            encode(code),
            encode(redirect_uri),
            encode(verifier)
        );
        let mut req = http::Request::builder()
            .method(http::Method::POST)
            .uri(&known.meta.token_endpoint)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        match secret {
            Some(secret) => {
                // RFC 6749 §2.3.1: both parts form-encoded before Basic.
                let pair = format!(
                    "{}:{}",
                    encode(&s.client_id),
                    encode(secret.expose_secret())
                );
                req = req.header(
                    http::header::AUTHORIZATION,
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ),
                );
            }
            None => form.push_str(&format!("&client_id={}", encode(&s.client_id))),
        }
        let req = req
            .body(form.into_bytes())
            .map_err(|e| SignInError::Refused(e.to_string()))?;
        let resp = self
            .http
            .send(req)
            .await
            .map_err(|e| SignInError::Provider {
                issuer: s.issuer.clone(),
                reason: e.to_string(),
            })?;
        let body: Value = serde_json::from_slice(resp.body()).unwrap_or(Value::Null);
        if !resp.status().is_success() {
            let why = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("an error")
                .to_owned();
            return Err(SignInError::Refused(why));
        }
        let jwt = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or(SignInError::IdToken(IdTokenError::Malformed))?;
        let claims =
            match id_token::verify(jwt, &known.jwks, &known.issuer, &s.client_id, nonce, now) {
                // A key not seen yet: the provider may have rotated; read its keys again once.
                Err(IdTokenError::UnknownKey) => {
                    let fresh = self.known(s, true).await?;
                    id_token::verify(jwt, &fresh.jwks, &fresh.issuer, &s.client_id, nonce, now)?
                }
                other => other?,
            };
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if s.owner_claim == "email" {
            let verified = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
            if !verified {
                return Err(SignInError::EmailUnverified(email.unwrap_or_default()));
            }
        }
        let subject = claims
            .get(&s.owner_claim)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SignInError::NoOwner(s.owner_claim.clone()))?
            .to_owned();
        Ok(SignedIn {
            subject,
            email,
            claims,
        })
    }

    /// Where single sign-out goes, when the provider offers it.
    pub async fn end_session_url(&self, s: &OidcSettings) -> Option<String> {
        self.known(s, false)
            .await
            .ok()
            .and_then(|k| k.meta.end_session_endpoint.clone())
    }

    async fn known(
        &self,
        s: &OidcSettings,
        refresh: bool,
    ) -> Result<std::sync::Arc<Known>, SignInError> {
        if !refresh && let Some(k) = self.lock().as_ref().filter(|k| k.issuer == s.issuer) {
            return Ok(k.clone());
        }
        let fail = |reason: String| SignInError::Provider {
            issuer: s.issuer.clone(),
            reason,
        };
        let meta: Metadata = self
            .get_json(&format!("{}/.well-known/openid-configuration", s.issuer))
            .await
            .map_err(fail)?;
        if meta.issuer.trim_end_matches('/') != s.issuer {
            return Err(fail(format!(
                "its discovery document names the issuer `{}`; `ui.oidc.issuer` must be exactly that",
                meta.issuer
            )));
        }
        let jwks: Jwks = self.get_json(&meta.jwks_uri).await.map_err(fail)?;
        let known = std::sync::Arc::new(Known {
            issuer: s.issuer.clone(),
            meta,
            jwks,
        });
        *self.lock() = Some(known.clone());
        Ok(known)
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, String> {
        let req = http::Request::builder()
            .uri(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let resp = self.http.send(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered HTTP {}", resp.status()));
        }
        serde_json::from_slice(resp.body())
            .map_err(|e| format!("{url} is not what was expected: {e}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<std::sync::Arc<Known>>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}
