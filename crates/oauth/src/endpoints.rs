//! Where a connector's authorization server lives: the URLs the policy names, completed
//! from the issuer's discovery document (OpenID Connect Discovery, RFC 8414) when the
//! policy gives an `issuer` instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use egret_policy::OAuthSettings;
use serde::Deserialize;

use crate::error::TokenError;
use crate::http::HttpClient;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorize: Option<String>,
    pub token: String,
    pub revocation: Option<String>,
    /// OpenID Connect's userinfo endpoint (from discovery): who signed in, when the ID
    /// token does not say more than a subject.
    pub userinfo: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
}

/// Discovery documents by issuer, fetched once per process (an issuer's endpoints do
/// not move while it runs; a restart or a policy naming the URLs picks up a change).
#[derive(Default)]
pub struct Discovery {
    cache: Mutex<HashMap<String, Arc<Metadata>>>,
}

impl Discovery {
    pub async fn endpoints(
        &self,
        settings: &OAuthSettings,
        http: &HttpClient,
    ) -> Result<Endpoints, TokenError> {
        let complete = settings.token_url.is_some()
            && (settings.authorize_url.is_some()
                || settings.grant == egret_policy::Grant::ClientCredentials);
        let metadata = match (&settings.issuer, complete) {
            (Some(issuer), false) => Some(self.metadata(issuer, http).await?),
            _ => None,
        };
        let from_meta =
            |f: fn(&Metadata) -> &Option<String>| metadata.as_deref().and_then(|m| f(m).clone());
        let token = settings
            .token_url
            .clone()
            .or_else(|| from_meta(|m| &m.token_endpoint))
            .ok_or_else(|| TokenError::Discovery {
                issuer: settings.issuer.clone().unwrap_or_default(),
                reason: "its metadata names no token_endpoint; set `token_url`".to_owned(),
            })?;
        Ok(Endpoints {
            authorize: settings
                .authorize_url
                .clone()
                .or_else(|| from_meta(|m| &m.authorization_endpoint)),
            token,
            revocation: settings
                .revocation_url
                .clone()
                .or_else(|| from_meta(|m| &m.revocation_endpoint)),
            userinfo: from_meta(|m| &m.userinfo_endpoint),
        })
    }

    async fn metadata(&self, issuer: &str, http: &HttpClient) -> Result<Arc<Metadata>, TokenError> {
        if let Some(m) = self.lock().get(issuer) {
            return Ok(m.clone());
        }
        let mut last = String::new();
        for well_known in ["openid-configuration", "oauth-authorization-server"] {
            let url = format!("{issuer}/.well-known/{well_known}");
            let request = http::Request::get(&url)
                .header(http::header::ACCEPT, "application/json")
                .body(Vec::new())
                .map_err(|e| TokenError::Discovery {
                    issuer: issuer.to_owned(),
                    reason: e.to_string(),
                })?;
            match http.send(request).await {
                Ok(r) if r.status().is_success() => {
                    let meta: Metadata =
                        serde_json::from_slice(r.body()).map_err(|e| TokenError::Discovery {
                            issuer: issuer.to_owned(),
                            reason: format!("{url} is not valid metadata: {e}"),
                        })?;
                    // RFC 8414 §3.3: the document must name the issuer it was fetched for.
                    if meta.issuer.trim_end_matches('/') != issuer {
                        return Err(TokenError::Discovery {
                            issuer: issuer.to_owned(),
                            reason: format!("{url} names issuer `{}` instead", meta.issuer),
                        });
                    }
                    let meta = Arc::new(meta);
                    self.lock().insert(issuer.to_owned(), meta.clone());
                    return Ok(meta);
                }
                Ok(r) => last = format!("{url} answered {}", r.status()),
                Err(e) => last = format!("{url}: {e}"),
            }
        }
        Err(TokenError::Discovery {
            issuer: issuer.to_owned(),
            reason: last,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Metadata>>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}
