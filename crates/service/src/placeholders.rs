//! Placeholders: minted for a connection (shown once, to whoever mints it), listed by
//! their hint or id (never the placeholder itself), revoked at once.

use std::sync::Arc;

use egret_vault::{ConnectionId, Owner, Placeholder, PlaceholderInfo, Shape};

use crate::principal::{Operation, Principal, authorize};
use crate::{DEFAULT_TTL, Service, ServiceError};

/// A placeholder to mint.
#[derive(Debug)]
pub struct NewPlaceholder {
    pub connection: ConnectionId,
    /// e.g. `8h`; none: 24 hours. Never longer than `limits.max_ttl`.
    pub ttl: Option<String>,
    /// Only requests from this sandbox identity may use it.
    pub sandbox: Option<String>,
}

/// A placeholder just minted: the placeholder itself (shown this once) and its record.
/// For a connector of several inputs, one per input (the first is `placeholder`).
pub struct Minted {
    pub placeholder: Placeholder,
    pub info: PlaceholderInfo,
    /// Input name -> its placeholder (for AWS, the secret key's is derived from the key
    /// id's); empty for a connector of one value.
    pub inputs: Vec<(String, Placeholder)>,
}

/// Which placeholders a listing shows; `None` fields filter nothing.
#[derive(Debug, Default)]
pub struct PlaceholderFilter {
    pub connector: Option<String>,
    pub owner: Option<Owner>,
    pub sandbox: Option<String>,
}

impl Service {
    pub async fn mint_placeholder(
        self: &Arc<Self>,
        who: &Principal,
        new: NewPlaceholder,
    ) -> Result<Minted, ServiceError> {
        let by = who.label();
        authorize(who, Operation::Placeholders, Some(&new.connection))?;
        let policy = self.policy.load_full();
        if new.sandbox.is_some() && policy.proxy.auth == egret_policy::ProxyAuth::None {
            return Err(ServiceError::invalid(
                "sandbox",
                "sandbox-bound placeholders need proxy authentication (`proxy.auth: basic` in the policy); without it no request can say which sandbox it comes from",
            ));
        }
        let ttl = Some(crate::ttl::ttl_or(
            new.ttl.as_deref(),
            DEFAULT_TTL,
            policy.limits.max_ttl(),
        )?);
        let Some(connector) = policy.connector(&new.connection.connector) else {
            return Err(ServiceError::unknown_connector(
                &new.connection.connector,
                &policy,
            ));
        };
        let aws = matches!(connector.auth, egret_policy::AuthKind::AwsSigV4(_));
        // AWS: the key id is minted, the secret derived from it, no session token.
        let shapes: Vec<(Option<String>, Shape)> = if aws {
            vec![(Some("access_key_id".to_owned()), Shape::AwsKeyId)]
        } else if connector.inputs.is_empty() {
            vec![(None, Shape::Opaque)]
        } else {
            connector
                .inputs
                .iter()
                .map(|i| (Some(i.name.clone()), Shape::Opaque))
                .collect()
        };
        let (conn, sandbox) = (new.connection, new.sandbox);
        let mut minted = self
            .blocking(move |s| {
                let minted = s
                    .vault
                    .mint_placeholders(&conn, ttl, sandbox.as_deref(), &shapes)?;
                let hints: Vec<String> = minted.iter().map(|(_, i)| i.hint.clone()).collect();
                s.vault.audit_connection_by(
                    &by,
                    "placeholder.mint",
                    &conn,
                    Some(hints.join(" ")),
                )?;
                Ok(minted)
            })
            .await?;
        let mut inputs: Vec<(String, Placeholder)> = minted
            .iter()
            .filter_map(|(p, i)| Some((i.input.clone()?, p.clone())))
            .collect();
        if aws && let Some((_, key_id)) = inputs.first() {
            let secret = self.vault.aws_secret_placeholder(key_id.expose());
            inputs.push(("secret_access_key".to_owned(), secret));
        }
        if minted.is_empty() {
            return Err(ServiceError::invalid("connection", "nothing was minted"));
        }
        let (placeholder, info) = minted.swap_remove(0);
        Ok(Minted {
            placeholder,
            info,
            inputs,
        })
    }

    /// Live placeholders: who and what each stands for, its hint (`egp_AbCd…`).
    pub fn placeholders(
        &self,
        who: &Principal,
        filter: &PlaceholderFilter,
    ) -> Result<Vec<PlaceholderInfo>, ServiceError> {
        authorize(who, Operation::ListPlaceholders, None)?;
        Ok(self.vault.placeholders(
            filter.connector.as_deref(),
            filter.owner.as_ref(),
            filter.sandbox.as_deref(),
            self.now(),
        ))
    }

    /// Live placeholders with their ids (the hex SHA-256: the placeholder cannot be had
    /// from it), oldest first: what a page can offer to revoke.
    pub fn placeholders_by_id(
        &self,
        who: &Principal,
    ) -> Result<Vec<(String, PlaceholderInfo)>, ServiceError> {
        authorize(who, Operation::ListPlaceholders, None)?;
        Ok(self.vault.placeholders_by_id(self.now()))
    }

    /// Revokes a placeholder, given itself or (`by_id`) its id.
    pub async fn revoke_placeholder(
        self: &Arc<Self>,
        who: &Principal,
        which: PlaceholderRef,
    ) -> Result<(), ServiceError> {
        let by = who.label();
        authorize(who, Operation::Placeholders, None)?;
        self.blocking(move |s| {
            let info = match which {
                PlaceholderRef::Itself(p) => s.vault.revoke_placeholder(&p)?,
                PlaceholderRef::Id(id) => s.vault.revoke_placeholder_id(&id)?,
            };
            s.vault.audit_connection_by(
                &by,
                "placeholder.revoke",
                &info.connection(),
                Some(info.hint),
            )?;
            Ok(())
        })
        .await
    }
}

/// A placeholder to revoke: itself, or its id.
pub enum PlaceholderRef {
    Itself(Placeholder),
    Id(String),
}
