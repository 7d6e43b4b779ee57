//! Scoped API tokens: made, listed and revoked by administrators; each acts with its
//! role (`admin`, `auditor`, `platform`, or `user` for one owner) wherever the admin token
//! would, within what that role may. The token is shown once; the vault keeps its hash.

use std::sync::Arc;

use egret_vault::{ApiTokenInfo, Owner};
use secrecy::SecretString;

use crate::principal::{Operation, Principal, Role, UserScope, authorize};
use crate::{Service, ServiceError};

/// What `POST /v1/tokens` asks for.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: String,
    /// `user` tokens: the owner they act for.
    pub owner: Option<String>,
    /// e.g. `90d`; none: never expires.
    pub ttl: Option<String>,
}

/// A new token, shown once.
pub struct MadeToken {
    pub info: ApiTokenInfo,
    pub token: SecretString,
}

/// The longest a token may live.
const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

impl Service {
    pub async fn create_token(
        self: &Arc<Self>,
        who: &Principal,
        new: NewToken,
    ) -> Result<MadeToken, ServiceError> {
        authorize(who, Operation::Tokens, None)?;
        let role = Role::parse(&new.role).ok_or_else(|| {
            ServiceError::invalid(
                "role",
                format!(
                    "`{}` is not a role; expected `admin`, `auditor`, `platform` or `user`",
                    new.role
                ),
            )
        })?;
        let owner = match (role, new.owner.as_deref()) {
            (Role::User, Some(o)) => {
                Some(Owner::parse(o).map_err(|e| ServiceError::invalid("owner", e))?)
            }
            (Role::User, None) => {
                return Err(ServiceError::invalid(
                    "owner",
                    "a `user` token acts for one owner; give `owner`, e.g. `user:alice`",
                ));
            }
            (_, Some(_)) => {
                return Err(ServiceError::invalid(
                    "owner",
                    "only `user` tokens are bound to an owner; leave `owner` out",
                ));
            }
            (_, None) => None,
        };
        let now = self.now();
        let expires_at = match new.ttl.as_deref() {
            None => None,
            Some(t) => {
                let d = crate::ttl::ttl_or(Some(t), MAX_TTL, MAX_TTL)?;
                Some(now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
            }
        };
        let info = ApiTokenInfo {
            name: new.name,
            role: role.as_str().to_owned(),
            owner,
            created_at: now,
            expires_at,
            last_used_at: None,
        };
        let by = who.label();
        self.blocking(move |s| {
            let token = s.vault.create_api_token(&info)?;
            s.vault.audit_by(
                &by,
                "token.create",
                None,
                None,
                Some(format!("{} ({})", info.name, info.role)),
            )?;
            Ok(MadeToken { info, token })
        })
        .await
    }

    pub async fn tokens(
        self: &Arc<Self>,
        who: &Principal,
    ) -> Result<Vec<ApiTokenInfo>, ServiceError> {
        authorize(who, Operation::Tokens, None)?;
        self.blocking(|s| Ok(s.vault.api_token_list()?)).await
    }

    pub async fn revoke_token(
        self: &Arc<Self>,
        who: &Principal,
        name: String,
    ) -> Result<(), ServiceError> {
        authorize(who, Operation::Tokens, None)?;
        let by = who.label();
        self.blocking(move |s| {
            if !s.vault.revoke_api_token(&name)? {
                return Err(ServiceError::not_found(
                    "token_not_found",
                    format!("there is no token named `{name}`; GET /v1/tokens lists them"),
                ));
            }
            s.vault
                .audit_by(&by, "token.revoke", None, None, Some(name.clone()))?;
            Ok(())
        })
        .await
    }

    /// The principal an API token acts as, or `None` when it is unknown, expired or
    /// revoked (read from the store: a revocation on any replica counts at once).
    pub async fn token_principal(
        self: &Arc<Self>,
        token: String,
    ) -> Result<Option<Principal>, ServiceError> {
        self.blocking(move |s| {
            let Some(info) = s.vault.use_api_token(&token)? else {
                return Ok(None);
            };
            let Some(role) = Role::parse(&info.role) else {
                return Ok(None);
            };
            let scope = info.owner.map(|owner| UserScope {
                owner,
                connector: None,
                name: None,
            });
            Ok(Some(Principal::Token {
                name: info.name,
                role,
                scope,
            }))
        })
        .await
    }
}
