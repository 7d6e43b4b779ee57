//! Sandbox identities for proxy authentication: issued (the secret shown once, to
//! whoever issues it), listed, revoked.

use std::sync::Arc;

use egret_vault::SandboxInfo;
use secrecy::SecretString;

use crate::principal::{Operation, Principal, authorize};
use crate::{DEFAULT_TTL, Service, ServiceError};

/// A sandbox identity to issue (or to issue a new secret for).
#[derive(Debug, Default)]
pub struct NewSandbox {
    /// Default: a random `sbx-…` id.
    pub id: Option<String>,
    /// e.g. `8h`; none: 24 hours. Never longer than `limits.max_ttl`.
    pub ttl: Option<String>,
}

/// A sandbox identity just issued, with its secret (shown this once).
pub struct IssuedSandbox {
    pub info: SandboxInfo,
    pub secret: SecretString,
}

impl Service {
    pub async fn issue_sandbox(
        self: &Arc<Self>,
        who: &Principal,
        new: NewSandbox,
    ) -> Result<IssuedSandbox, ServiceError> {
        let by = who.label();
        authorize(who, Operation::Sandboxes, None)?;
        let max = self.policy.load().limits.max_ttl();
        let ttl = Some(crate::ttl::ttl_or(new.ttl.as_deref(), DEFAULT_TTL, max)?.as_secs());
        let (info, secret) = self
            .blocking(move |s| {
                let issued = s.vault.issue_sandbox(new.id.as_deref(), ttl)?;
                s.vault
                    .audit_by(&by, "sandbox.issue", None, None, Some(issued.0.id.clone()))?;
                Ok(issued)
            })
            .await?;
        Ok(IssuedSandbox { info, secret })
    }

    pub fn sandboxes(&self, who: &Principal) -> Result<Vec<SandboxInfo>, ServiceError> {
        authorize(who, Operation::ListSandboxes, None)?;
        Ok(self.vault.sandboxes())
    }

    /// Revokes a sandbox identity: its requests and the placeholders bound to it stop.
    pub async fn revoke_sandbox(
        self: &Arc<Self>,
        who: &Principal,
        id: &str,
    ) -> Result<(), ServiceError> {
        let by = who.label();
        authorize(who, Operation::Sandboxes, None)?;
        let i = id.to_owned();
        let found = self
            .blocking(move |s| {
                let found = s.vault.revoke_sandbox(&i)?;
                if found {
                    s.vault
                        .audit_by(&by, "sandbox.revoke", None, None, Some(i))?;
                }
                Ok(found)
            })
            .await?;
        if found {
            Ok(())
        } else {
            Err(ServiceError::not_found(
                "sandbox_not_found",
                format!("there is no sandbox `{id}`; GET /v1/sandboxes lists them"),
            ))
        }
    }
}
