//! The vault: everything egret must remember, over a store (`store`): one redb file by
//! default, or a PostgreSQL database shared by replicas (the `egret-postgres` crate).
//!
//! Owns the master key (`key`, and its rotation in `rotate`), the AEAD envelope (`seal`),
//! the in-memory index the proxy reads on every request (`db`), connections in it
//! (`connections`), placeholders minted, resolved and revoked (`minted`), other replicas' changes
//! brought into it (`changes`), the renewal lease with its fence (`renewal`), OAuth
//! tokens and pending authorizations (`oauth`), connectors created through the API
//! (`connectors`) and those gone from the policy file, kept until their retention ends
//! (`retained`), sandbox identities (`sandboxes`), webhook deliveries owed (`outbox`),
//! connect links (`links`), web UI sessions (`ui_sessions`), requests held for approval
//! (`approvals`), scoped API tokens (`api_tokens`), requests counted against budgets (`budgets`), sealed values the vault
//! shares such as a replicated CA (`meta`), copying between stores (`copy`), the audit
//! log and its batching writer (`audit`), the record types (`records`, `placeholder`, and
//! `names`: which connection a record is about) and its errors (`error`).
//! Timestamps and expiries come from its [`egret_clock::Clock`]. Every secret field is
//! sealed with XChaCha20-Poly1305 under the master key, with the record's table and key
//! as associated data, before a store sees it. It must not log, print or return a secret
//! except through [`Resolved`] to the proxy, and it knows nothing of HTTP or SQL.

mod api_tokens;
mod approvals;
mod audit;
mod budgets;
mod changes;
mod connections;
mod connectors;
mod copy;
mod db;
mod error;
mod forged;
mod key;
mod links;
mod mac;
mod meta;
mod minted;
mod names;
mod oauth;
mod outbox;
mod pending;
mod placeholder;
mod records;
mod renewal;
mod retained;
mod rotate;
mod sandboxes;
mod seal;
pub mod store;
mod ui_sessions;

pub use api_tokens::{API_TOKEN_PREFIX, ApiTokenInfo, valid_token_name};
pub use approvals::{Approval, ApprovalStatus};
pub use audit::{AuditRecord, AuditWriter};
pub use copy::{Copied, copy_store};
pub use db::{PlaceholderEntry, Resolved, Vault};
pub use error::VaultError;
pub use key::MasterKey;
pub use links::{ConnectLink, LinkUse};
pub use minted::Shape;
pub use outbox::OutboxEntry;
pub use placeholder::{
    AWS_KEY_ID_PREFIX, MIN_BODY as PLACEHOLDER_MIN_BODY, PREFIX as PLACEHOLDER_PREFIX, Placeholder,
    PlaceholderHash, is_aws_key_id,
};
pub use records::SandboxInfo;
pub use records::{
    AuditEvent, ConnectionId, ConnectionInfo, ConnectionKind, ConnectionName, ConnectionStatus,
    Credential, Identity, KeyValue, Labels, Owner, PendingAuthorization, PlaceholderInfo, TokenSet,
    TokenUpdate,
};
pub use rotate::{Rotated, rotate_key, rotate_store_key};
pub use sandboxes::{SandboxIssue, random_token, sha256_hex, valid_sandbox_id};

/// Current time in unix seconds, the unit of every timestamp the vault stores.
pub fn unix_now() -> i64 {
    records::now()
}

#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;
