//! Sign-in with the organisation's identity provider (`ui.oidc`): the two halves of the
//! flow, and who the person is once the provider's ID token is believed — owner
//! `user:<owner_claim>`, role `admin` or `auditor` when the policy's `admins` or
//! `auditors` list their email or one of their groups, `user` otherwise.

use std::sync::Arc;

use egret_oauth::sign_in::{Begun, SignInError};
use egret_vault::Owner;

use crate::principal::Role;
use crate::{Service, ServiceError};

/// Who signed in, with the role the policy gives them.
#[derive(Debug, Clone)]
pub struct SignedInPerson {
    pub owner: Owner,
    pub role: Role,
}

fn refused(e: &SignInError) -> ServiceError {
    match e {
        SignInError::Provider { .. } => ServiceError::Vendor {
            timeout: false,
            message: e.to_string(),
        },
        _ => ServiceError::Forbidden(e.to_string()),
    }
}

impl Service {
    fn oidc_settings(&self) -> Result<egret_policy::OidcSettings, ServiceError> {
        self.policy.load().ui.oidc.clone().ok_or_else(|| {
            ServiceError::not_found(
                "oidc_not_configured",
                "sign-in with an identity provider is not set up; an administrator adds `ui.oidc` to the policy",
            )
        })
    }

    /// Whether the policy offers sign-in with an identity provider, and its name.
    pub fn oidc_name(&self) -> Option<String> {
        self.policy.load().ui.oidc.as_ref().map(|o| o.name.clone())
    }

    /// The URL that starts a sign-in, with the state, nonce and PKCE verifier to keep.
    pub async fn oidc_begin(&self, redirect_uri: &str) -> Result<Begun, ServiceError> {
        let s = self.oidc_settings()?;
        self.oidc
            .begin(&s, redirect_uri)
            .await
            .map_err(|e| refused(&e))
    }

    /// Finishes a sign-in: the code exchanged, the ID token checked, the person and role.
    pub async fn oidc_finish(
        self: &Arc<Self>,
        code: &str,
        verifier: &str,
        nonce: &str,
        redirect_uri: &str,
    ) -> Result<SignedInPerson, ServiceError> {
        let s = self.oidc_settings()?;
        let secret = match &s.client_secret {
            Some(r) => r.read().map_err(|e| {
                ServiceError::Misconfigured(format!("`ui.oidc.client_secret` cannot be read: {e}"))
            })?,
            None => None,
        };
        let who = self
            .oidc
            .finish(
                &s,
                secret.as_ref(),
                &egret_oauth::sign_in::Returned {
                    code,
                    verifier,
                    nonce,
                    redirect_uri,
                },
                self.now(),
            )
            .await
            .map_err(|e| refused(&e))?;
        let owner = Owner::parse(&format!("user:{}", who.subject)).map_err(|why| {
            ServiceError::Forbidden(format!(
                "the identity provider names you `{}`, which cannot be an owner here ({why})",
                who.subject
            ))
        })?;
        let email = who.email.as_deref();
        let role = if s.admins.matches(email, &who.claims) {
            Role::Admin
        } else if s.auditors.matches(email, &who.claims) {
            Role::Auditor
        } else {
            Role::User
        };
        let label = owner.to_string();
        let detail = format!("signed in with {} as {}", s.issuer, role.as_str());
        self.blocking(move |s| {
            s.vault
                .audit_by(&label, "ui.sign_in", None, Some(&label), Some(detail))?;
            Ok(())
        })
        .await?;
        Ok(SignedInPerson { owner, role })
    }

    /// Where single sign-out goes, when the provider offers it.
    pub async fn oidc_end_session(&self) -> Option<String> {
        let s = self.oidc_settings().ok()?;
        self.oidc.end_session_url(&s).await
    }
}
