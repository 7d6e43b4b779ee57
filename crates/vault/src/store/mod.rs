//! The store seam: where the vault's records live. The vault seals, indexes and decides;
//! a [`Store`] only keeps bytes, atomically. Two implementations: the embedded redb file
//! ([`RedbStore`], the default) and PostgreSQL (the `egret-postgres` crate), shared by
//! several egret replicas; one conformance suite (`crates/postgres/tests/conformance.rs`)
//! runs the same tests against both.
//!
//! The seam is one small trait per concern, each a backend implements: [`Records`]
//! (keyed rows, atomic commits, single use, compare-and-set), [`Leases`] (renewal claims
//! and their fence, background-task leadership), [`AuditLog`] (numbered batch rows; the
//! line format, paging and the one pruning rule are written once, above the backends),
//! [`Outbox`] (webhook deliveries owed) and [`ChangeFeed`] (other replicas' changes,
//! health, figures). [`Store`] is all five. Failures are a [`StoreError`] of a real kind:
//! unavailable (retry), conflict, corrupt, not found, in use, broken.
//!
//! A store sees only what the vault hands it: secrets arrive sealed, and nothing here
//! opens them.

mod audit_log;
mod changes;
mod error;
mod leases;
mod outbox;
mod records;
mod redb_store;

pub use audit_log::{AuditFrom, AuditLog, Retention, number_lines, seq_of_line};
pub use changes::{ChangeFeed, ChangeSink, StoreStats};
pub use error::StoreError;
pub use leases::Leases;
pub use outbox::Outbox;
pub use records::Records;
pub use redb_store::RedbStore;

/// The vault's keyed tables. Their names are part of each sealed value's associated
/// data (a value cannot be moved between tables) and of every backend's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// The master key check and, on shared stores, the CA.
    Meta,
    /// Connectors created through the control plane (sealed: they may hold a secret).
    Connectors,
    /// Connections: the info in the clear, the credential sealed.
    Connections,
    /// Placeholders by the hex SHA-256 of the placeholder: metadata only.
    Placeholders,
    /// Sandbox identities (id -> the SHA-256 of the secret).
    Sandboxes,
    /// Connectors found gone from the policy file: id -> unix seconds (decimal text).
    RemovedConnectors,
    /// Pending OAuth authorizations by the SHA-256 of their state (sealed).
    Authorizations,
    /// Connect links by the SHA-256 of their ticket.
    ConnectLinks,
    /// Web UI sessions by the SHA-256 of their cookie (sealed: they carry a CSRF token).
    UiSessions,
    /// Requests held for a person's approval, by id (sealed: a body preview).
    Approvals,
    /// Requests counted against connections' budgets: `<connection key>@<window start>`
    /// -> the count (decimal text).
    Budgets,
    /// Scoped API tokens by the SHA-256 of the token (a MAC'd row: name, role, owner).
    ApiTokens,
}

impl Table {
    pub const ALL: [Table; 12] = [
        Table::Meta,
        Table::Connectors,
        Table::Connections,
        Table::Placeholders,
        Table::Sandboxes,
        Table::RemovedConnectors,
        Table::Authorizations,
        Table::ConnectLinks,
        Table::UiSessions,
        Table::Approvals,
        Table::Budgets,
        Table::ApiTokens,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Connectors => "connectors",
            Table::Connections => "connections",
            Table::Placeholders => "placeholders",
            Table::Sandboxes => "sandboxes",
            Table::RemovedConnectors => "removed_connectors",
            Table::Authorizations => "authorizations",
            Table::ConnectLinks => "connect_links",
            Table::UiSessions => "ui_sessions",
            Table::Approvals => "approvals",
            Table::Budgets => "budgets",
            Table::ApiTokens => "api_tokens",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether every replica keeps this table in memory (and must hear of its changes).
    pub fn indexed(self) -> bool {
        matches!(
            self,
            Table::Connectors
                | Table::Connections
                | Table::Placeholders
                | Table::Sandboxes
                | Table::RemovedConnectors
        )
    }
}

/// One write of a commit: a value put, or (`None`) a key removed.
#[derive(Debug, Clone)]
pub struct Change {
    pub table: Table,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl Change {
    pub fn put(table: Table, key: impl Into<String>, value: Vec<u8>) -> Self {
        Self {
            table,
            key: key.into(),
            value: Some(value),
        }
    }

    pub fn remove(table: Table, key: impl Into<String>) -> Self {
        Self {
            table,
            key: key.into(),
            value: None,
        }
    }
}

/// Everything the vault needs of where its bytes live: each concern's trait. Every
/// method that writes is durable (or, for the audit, as durable as asked) when it
/// returns, and may block: callers on async threads use `spawn_blocking` as for any
/// disk write.
pub trait Store: Records + Leases + AuditLog + Outbox + ChangeFeed {}

impl<T: Records + Leases + AuditLog + Outbox + ChangeFeed> Store for T {}

/// Every trait of the seam, for code that calls a concrete store's methods.
pub mod prelude {
    pub use super::{AuditLog, ChangeFeed, Leases, Outbox, Records};
}
