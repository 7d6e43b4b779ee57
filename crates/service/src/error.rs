//! The one error every operation returns: what kind of failure it is, with a sentence
//! that says what happened and what to do. Front-ends decide how to show it (the JSON
//! API maps each kind to a status and a code in one place); nothing here knows HTTP.

use egret_vault::VaultError;
use egret_vault::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// What the call names is not there. `code` says what (`connector_not_found`,
    /// `connection_not_found`, `placeholder_not_found`, `sandbox_not_found`,
    /// `nothing_to_purge`).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The call conflicts with the state things are in; `code` is the reason
    /// (`connector_disabled`, `wrong_auth_kind`, `one_connection_per_owner`, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The input is not acceptable; `field` names it when one field is at fault.
    #[error("{message}")]
    Invalid {
        field: Option<&'static str>,
        message: String,
    },
    /// The acting principal may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The vault's store did not answer: nothing was changed, retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The vendor's authorization server did not issue a token (`timeout`: it did not
    /// answer in time).
    #[error("{message}")]
    Vendor { timeout: bool, message: String },
    /// The connector cannot reach its authorization server as configured.
    #[error("{0}")]
    Misconfigured(String),
    /// egret's own storage failed (the vault's disk or database refused).
    #[error("{0}")]
    Store(String),
}

impl ServiceError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: Some(field),
            message: message.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    /// No connector `id` in `policy`; names the one probably meant.
    pub fn unknown_connector(id: &str, policy: &egret_policy::Policy) -> Self {
        let near = egret_policy::closest(id, policy.connectors.iter().map(|c| c.id.as_str()))
            .map(|near| format!("did you mean `{near}`? "))
            .unwrap_or_default();
        Self::not_found(
            "connector_not_found",
            format!("there is no connector `{id}`; {near}GET /v1/connectors lists them"),
        )
    }

    /// Whether egret's own storage failed (counted in `egret_vault_errors_total`).
    pub fn is_store_failure(&self) -> bool {
        matches!(self, Self::Store(_))
    }
}

impl From<VaultError> for ServiceError {
    fn from(e: VaultError) -> Self {
        match &e {
            VaultError::NoConnection { .. } => {
                Self::not_found("connection_not_found", e.to_string())
            }
            VaultError::NoPlaceholder => Self::not_found("placeholder_not_found", e.to_string()),
            VaultError::Storage(StoreError::Unavailable(_)) => {
                tracing::warn!(error = %e, "vault database unavailable");
                Self::Unavailable(format!(
                    "{e}; nothing was changed, retry once the database answers"
                ))
            }
            VaultError::Storage(StoreError::Conflict(_)) => {
                Self::conflict("conflict", format!("{e}; nothing was changed, retry"))
            }
            VaultError::Superseded(_) => Self::conflict("conflict", e.to_string()),
            VaultError::Invalid(_) => Self::Invalid {
                field: None,
                message: e.to_string(),
            },
            _ => {
                tracing::error!(error = %e, "vault operation failed");
                Self::Store(e.to_string())
            }
        }
    }
}

/// A failed token request, as the service reports it.
pub(crate) fn token_error(connector: &str, e: &egret_oauth::TokenError) -> ServiceError {
    match e {
        egret_oauth::TokenError::Config(_) => ServiceError::Misconfigured(format!(
            "connector `{connector}` cannot reach its authorization server: {e}"
        )),
        egret_oauth::TokenError::Store(_) => ServiceError::Store(format!(
            "egret could not store the connection to `{connector}` ({e}); nothing at the vendor is wrong. Check egret's log and its vault's disk, then connect again"
        )),
        egret_oauth::TokenError::Timeout(_) => ServiceError::Vendor {
            timeout: true,
            message: format!("`{connector}`'s token endpoint did not answer in time; retry later"),
        },
        _ => ServiceError::Vendor {
            timeout: false,
            message: format!("`{connector}`'s authorization server did not issue a token: {e}"),
        },
    }
}
