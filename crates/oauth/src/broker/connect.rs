//! Connecting and disconnecting: the first step of an authorization (the vendor's URL,
//! or the token at once for client credentials), the callback that completes it, and
//! disconnect with revocation at the vendor.

use egret_policy::{AuthKind, Connector, Grant};
use egret_vault::{ConnectionId, ConnectionInfo, ConnectionKind, ConnectionStatus, TokenUpdate};

use secrecy::{ExposeSecret, SecretString};

use super::{Broker, Renewal};
use crate::error::TokenError;
use crate::{CallbackError, PENDING_TTL_SECS};

/// The first step of connecting: where to send the user, or done already.
pub enum Begun {
    /// egret's sign-in link, for whoever the user is to open it: it shows a page naming
    /// the connector and the owner, and goes on to the vendor only when they continue.
    Redirect(String),
    /// Bound already to the browser that asked (the web UI's session, whose binding
    /// cookie was given): send it straight to the vendor; no other browser can finish.
    Bound {
        vendor_url: String,
    },
    Connected(ConnectionInfo),
}

/// A sign-in link not yet followed: what its page names.
pub struct SignInStart {
    pub connector: String,
    pub owner: egret_vault::Owner,
    pub name: egret_vault::ConnectionName,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Broker {
    /// Starts connecting `conn` (an owner's connection to `connector`): for the
    /// authorization-code grant, egret's sign-in link — or, `here` (the binding secret of
    /// the caller's own browser, kept in its cookie), the vendor's URL — with the pending
    /// authorization kept in the store for 10 minutes; for client credentials, the token
    /// itself.
    pub async fn begin(
        &self,
        connector: &Connector,
        conn: &ConnectionId,
        here: Option<&SecretString>,
    ) -> Result<Begun, TokenError> {
        let AuthKind::OAuth2(settings) = &connector.auth else {
            return Err(TokenError::Config(format!(
                "connector `{}` uses static keys",
                connector.id
            )));
        };
        match settings.grant {
            Grant::ClientCredentials => {
                let tokens = self.inner.vendor.client_credentials(settings).await?;
                let slot = self.slot(conn);
                let mut guard = slot.lock.clone().lock_owned().await;
                self.store(conn, tokens, TokenUpdate::Authorized, None)
                    .await?;
                *guard = Renewal::default();
                self.inner
                    .store
                    .connection(conn)
                    .map(Begun::Connected)
                    .ok_or(TokenError::NotConnected)
            }
            Grant::AuthorizationCode => {
                let redirect = self.redirect_uri();
                let auth = self.inner.vendor.authorization(settings, &redirect).await?;
                let pending = egret_vault::PendingAuthorization {
                    connector: conn.connector.clone(),
                    owner: conn.owner.clone(),
                    name: conn.name.clone(),
                    pkce_verifier: auth.pkce_verifier,
                    redirect_uri: redirect,
                    expires_at: self.inner.clock.unix() + PENDING_TTL_SECS,
                    vendor_url: Some(auth.url.clone()),
                    binding: here.map(|b| egret_vault::sha256_hex(b.expose_secret())),
                };
                let store = self.inner.store.clone();
                let state = auth.state;
                let start = self.start_url(state.expose_secret());
                tokio::task::spawn_blocking(move || store.put_authorization(&state, &pending))
                    .await
                    .map_err(|_| TokenError::Store("the store write stopped".to_owned()))?
                    .map_err(|e| self.store_error(&e))?;
                Ok(match here {
                    Some(_) => Begun::Bound {
                        vendor_url: auth.url,
                    },
                    None => Begun::Redirect(start),
                })
            }
        }
    }

    /// egret's start link for a sign-in: opened in a browser, it binds the sign-in to
    /// that browser (a cookie) and redirects to the vendor. The vendor's own URL is
    /// never handed out, so a sign-in cannot be finished in a browser that did not start it.
    fn start_url(&self, state: &str) -> String {
        let policy = self.inner.policy.load();
        let base = policy.control.public_url.trim_end_matches('/');
        format!("{base}/oauth/start?state={state}")
    }

    /// What an unfollowed sign-in link is for, read without spending or binding it: a
    /// link previewer, or a person who opens the link and goes no further, changes
    /// nothing.
    pub async fn sign_in_start(&self, state: &str) -> Result<SignInStart, CallbackError> {
        let pending = self.peek(state).await?;
        match pending {
            Some(p) if p.binding.is_none() => Ok(SignInStart {
                connector: p.connector,
                owner: p.owner,
                name: p.name,
                expires_at: p.expires_at,
            }),
            _ => Err(CallbackError::StartUsed),
        }
    }

    /// The person who opened a sign-in link continues: binds the sign-in to their
    /// browser (`binding`, its cookie's secret) and answers the vendor URL to send it to.
    /// A link is followed once, within the sign-in's 10 minutes.
    pub async fn start(
        &self,
        state: &str,
        binding: &SecretString,
    ) -> Result<String, CallbackError> {
        let hash = egret_vault::sha256_hex(binding.expose_secret());
        let store = self.inner.store.clone();
        let state = state.to_owned();
        let vendor = tokio::task::spawn_blocking(move || store.bind_authorization(&state, &hash))
            .await
            .map_err(|_| CallbackError::Vault("the vault write stopped".to_owned()))?
            .map_err(|e| CallbackError::Vault(e.to_string()))?;
        vendor.ok_or(CallbackError::StartUsed)
    }

    async fn peek(
        &self,
        state: &str,
    ) -> Result<Option<egret_vault::PendingAuthorization>, CallbackError> {
        let store = self.inner.store.clone();
        let state = state.to_owned();
        tokio::task::spawn_blocking(move || store.peek_authorization(&state))
            .await
            .map_err(|_| CallbackError::Vault("the vault read stopped".to_owned()))?
            .map_err(|e| CallbackError::Vault(e.to_string()))
    }

    /// The OAuth app's client secret of `connector`, when it has one that can be read.
    fn client_secret(&self, connector: &str) -> Option<SecretString> {
        let policy = self.inner.policy.load();
        match &policy.connector(connector)?.auth {
            AuthKind::OAuth2(settings) => settings.client_secret_now(),
            _ => None,
        }
    }

    /// `control.public_url` + `/oauth/callback`, as registered with the vendor.
    pub fn redirect_uri(&self) -> String {
        let policy = self.inner.policy.load();
        format!(
            "{}/oauth/callback",
            policy.control.public_url.trim_end_matches('/')
        )
    }

    /// Finishes an authorization from its callback. Only the browser that started the
    /// sign-in may finish it: anywhere else the callback is refused and the sign-in is
    /// left as it was, for that browser to finish. Past that check the state is spent,
    /// whatever happens next.
    pub async fn complete(
        &self,
        state: &str,
        outcome: Result<&str, &str>,
        binding: Option<&str>,
    ) -> Result<ConnectionInfo, CallbackError> {
        use CallbackError as E;
        let peeked = self.peek(state).await?.ok_or(E::UnknownState)?;
        // A vendor URL passed on to someone else (login CSRF), or a callback replayed
        // elsewhere, finishes nothing and spends nothing.
        let bound = peeked.binding.as_deref().is_some_and(|expected| {
            let given = egret_vault::sha256_hex(binding.unwrap_or_default());
            subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into()
        });
        if !bound {
            let _ = self.inner.store.audit(
                "connection.denied",
                &peeked.connection(),
                "the sign-in was finished in a browser that did not start it".to_owned(),
            );
            return Err(E::OtherBrowser(peeked.connector.clone()));
        }
        let store = self.inner.store.clone();
        let taken = {
            let state = state.to_owned();
            tokio::task::spawn_blocking(move || store.take_authorization(&state))
                .await
                .map_err(|_| E::Vault("the vault read stopped".to_owned()))?
                .map_err(|e| E::Vault(e.to_string()))?
        };
        // Taken meanwhile by the same browser's other tab, or another replica.
        let pending = taken.ok_or(E::UnknownState)?;
        let conn = pending.connection();
        let code = match outcome {
            Ok(code) => code,
            Err(error) => {
                // The vendor's words (`error`, `error_description`): never its app's secret.
                let client_secret = self.client_secret(&pending.connector);
                let secrets: Vec<&str> = client_secret.iter().map(|s| s.expose_secret()).collect();
                let error = crate::sanitized(error, &secrets);
                let _ = self
                    .inner
                    .store
                    .audit("connection.denied", &conn, error.clone());
                return Err(E::Denied {
                    connector: pending.connector,
                    error,
                });
            }
        };
        let policy = self.inner.policy.load_full();
        let connector = policy
            .connector(&pending.connector)
            .ok_or_else(|| E::ConnectorGone(pending.connector.clone()))?;
        if !connector.enabled {
            return Err(E::Disabled(pending.connector.clone()));
        }
        let AuthKind::OAuth2(settings) = &connector.auth else {
            return Err(E::ConnectorGone(pending.connector.clone()));
        };
        // Checked when the sign-in started too; another may have finished meanwhile.
        if !connector.multiple_connections
            && let Some(other) = self.inner.store.other_connection(&conn)
        {
            return Err(E::SecondConnection {
                connector: conn.connector.clone(),
                owner: conn.owner.to_string(),
                existing: other.name.to_string(),
            });
        }
        let verifier = pending.pkce_verifier.as_ref();
        let tokens = self
            .inner
            .vendor
            .exchange_code(settings, code, verifier, &pending.redirect_uri)
            .await
            .map_err(|e| E::Exchange {
                connector: pending.connector.clone(),
                error: e,
            })?;
        if let Some(claim) = settings.identity_match
            && let Err(e) = identity_matches(claim, tokens.identity.as_ref(), &pending)
        {
            let _ = self
                .inner
                .store
                .audit("connection.denied", &conn, e.to_string());
            return Err(e);
        }
        // Waits out any renewal of the old grant so it cannot overwrite the new one.
        let slot = self.slot(&conn);
        let mut guard = slot.lock.clone().lock_owned().await;
        self.store(&conn, tokens, TokenUpdate::Authorized, None)
            .await
            .map_err(|e| E::Vault(e.to_string()))?;
        *guard = Renewal::default();
        self.inner
            .store
            .connection(&conn)
            .ok_or_else(|| E::Vault("the connection vanished".to_owned()))
    }

    /// Disconnects: revokes the grant at the vendor (RFC 7009) when a revocation endpoint
    /// is known, then erases the connection and its placeholders whatever the vendor said.
    /// Returns whether a connection existed, and the revocation's outcome when one was
    /// attempted (OAuth connection, revocation endpoint known).
    pub async fn disconnect(
        &self,
        connector: Option<&Connector>,
        conn: &ConnectionId,
    ) -> Result<(bool, Option<Result<(), TokenError>>), egret_vault::VaultError> {
        let slot = self.slot(conn);
        let _guard = slot.lock.clone().lock_owned().await;
        let mut revocation = None;
        if let (Some(c), Some(credential)) = (connector, self.inner.store.credential(conn))
            && let AuthKind::OAuth2(settings) = &c.auth
            && credential.kind == ConnectionKind::Oauth2
            && credential.status == ConnectionStatus::Connected
        {
            let (token, is_refresh) = match &credential.refresh_token {
                Some(r) => (r, true),
                None => (&credential.secret, false),
            };
            revocation = self
                .inner
                .vendor
                .revoke(settings, token, is_refresh)
                .await
                .transpose();
            if let Some(Err(e)) = &revocation {
                tracing::warn!(connection = %conn, error = %e, "revocation at the vendor failed; erasing the tokens anyway");
            }
        }
        let store = self.inner.store.clone();
        let c = conn.clone();
        let existed = tokio::task::spawn_blocking(move || store.remove_connection(&c))
            .await
            .map_err(|_| {
                egret_vault::VaultError::Invalid("the vault write stopped".to_owned())
            })??;
        Ok((existed, revocation))
    }
}

/// `identity_match`: the vendor identity's `claim` must be the owner's id (`user:<id>`;
/// emails compared without regard to case; an email the ID token says is not verified
/// is no proof of who signed in, and counts as none).
fn identity_matches(
    claim: egret_policy::IdentityClaim,
    identity: Option<&egret_vault::Identity>,
    pending: &egret_vault::PendingAuthorization,
) -> Result<(), CallbackError> {
    use egret_policy::IdentityClaim as C;
    let given = identity.and_then(|i| match claim {
        C::Email => i.email.clone().filter(|_| i.email_verified != Some(false)),
        C::PreferredUsername => i.preferred_username.clone(),
        C::Sub => i.sub.clone(),
    });
    let expected = pending.owner.as_str().strip_prefix("user:");
    let same = match (&given, expected) {
        (Some(g), Some(e)) if claim == C::Email => g.eq_ignore_ascii_case(e),
        (Some(g), Some(e)) => g == e,
        _ => false,
    };
    if same {
        return Ok(());
    }
    let signed_in_as = identity
        .and_then(egret_vault::Identity::label)
        .unwrap_or_else(|| format!("an account the vendor gave no `{}` for", claim.name()));
    Err(CallbackError::IdentityMismatch {
        connector: pending.connector.clone(),
        owner: pending.owner.to_string(),
        signed_in_as,
        claim: claim.name(),
    })
}

#[cfg(test)]
mod identity_tests {
    use egret_policy::IdentityClaim;
    use egret_vault::{ConnectionName, Identity, Owner, PendingAuthorization};

    fn pending(owner: &str) -> PendingAuthorization {
        PendingAuthorization {
            connector: "idp".to_owned(),
            owner: Owner::parse(owner).expect("owner"),
            name: ConnectionName::default(),
            pkce_verifier: None,
            redirect_uri: "http://127.0.0.1/oauth/callback".to_owned(),
            expires_at: 0,
            vendor_url: None,
            binding: None,
        }
    }

    #[test]
    fn an_unverified_email_does_not_match_the_owner() {
        let alice = pending("user:alice@example.com");
        let id = |verified| Identity {
            email: Some("Alice@Example.com".to_owned()),
            email_verified: verified,
            ..Identity::default()
        };
        for (verified, matches) in [(None, true), (Some(true), true), (Some(false), false)] {
            let got = super::identity_matches(IdentityClaim::Email, Some(&id(verified)), &alice);
            assert_eq!(got.is_ok(), matches, "email_verified: {verified:?}");
        }
    }
}
