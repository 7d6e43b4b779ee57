/// Everything the vault can refuse. Messages say what to do; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("vault storage failed: {0}; check the disk and the vault file's permissions")]
    Storage(#[from] redb::Error),
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
    #[error("placeholder not found; it may have been revoked already")]
    NoPlaceholder,
}

/// Every redb error is a storage failure: `?` turns each kind into one.
macro_rules! storage_from {
    ($($kind:ty),* $(,)?) => {$(
        impl From<$kind> for VaultError {
            fn from(e: $kind) -> Self {
                Self::Storage(e.into())
            }
        }
    )*};
}

storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError,
    redb::SavepointError,
    redb::SetDurabilityError,
);
