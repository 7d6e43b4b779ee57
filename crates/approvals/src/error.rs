//! What an approval operation can refuse.

use egret_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(transparent)]
    Store(#[from] VaultError),
    #[error(
        "there is no approval `{0}`; it may have been pruned (decided approvals are kept a week)"
    )]
    NotFound(String),
    #[error("approval `{id}` is {status} already; nothing was changed")]
    Settled { id: String, status: &'static str },
    #[error("{0}")]
    Invalid(String),
}
