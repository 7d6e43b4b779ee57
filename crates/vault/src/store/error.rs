//! What a store failure is, by kind: the kind decides what callers do (retry, answer
//! 409, refuse a record) and what the API answers.

/// A store-level failure: what failed, in words a person can act on. Never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer (the database is away, a timeout, no connection):
    /// nothing was changed; the same call may succeed later.
    #[error("the vault database failed: {0}")]
    Unavailable(String),
    /// The store refused a write that conflicts with another (a constraint, a
    /// concurrent transaction): nothing was changed.
    #[error("the vault store refused a conflicting write: {0}")]
    Conflict(String),
    /// A stored value is not what the store wrote.
    #[error("stored record `{0}` is corrupt")]
    Corrupt(String),
    /// What the call needs is not there.
    #[error("the vault store has no {0}")]
    NotFound(String),
    /// Another process holds the redb file open.
    #[error("the vault file is in use by another process")]
    InUse,
    /// The store failed in a way a retry does not mend (the disk, permissions, a
    /// database that refuses egret's queries).
    #[error("{0}")]
    Broken(String),
}

impl StoreError {
    /// Whether the same call may succeed later (the store was away, or another write
    /// came first).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Conflict(_))
    }
}
