/// Everything the vault can refuse. Messages say what to do; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Storage(#[from] crate::store::StoreError),
    #[error(
        "the master key does not open this vault; restore the key it was created with (or move the vault away to start empty)"
    )]
    WrongKey,
    /// Another process holds the vault file open (redb locks it): another egret.
    #[error(
        "another egret is already running with this vault; stop it first, or give this one another vault.path"
    )]
    InUse,
    #[error(
        "vault record `{0}` is corrupt or was moved from another record; restore the vault from a backup"
    )]
    Corrupt(String),
    #[error("master key is malformed: {0}")]
    BadKey(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "there is no connection `{}` for connector `{}` and owner `{}`; store one first",
        .0.name, .0.connector, .0.owner
    )]
    NoConnection(crate::ConnectionId),
    /// A renewal lost its claim: another replica wrote the connection meanwhile (its
    /// tokens are in force), or the claim ran out.
    #[error(
        "connection `{0}` was changed by another egret replica while this one renewed it; the newer tokens are in force"
    )]
    Superseded(crate::ConnectionId),
    #[error("placeholder not found; it may have been revoked already")]
    NoPlaceholder,
}

impl VaultError {
    /// The store did not answer (a shared database that is away): readiness and
    /// metrics already say so, and the caller retries, so loops that meet it every
    /// second log it quietly.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Storage(crate::store::StoreError::Unavailable(_))
        )
    }
}
