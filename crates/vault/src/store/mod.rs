//! The store seam: where the vault's records live. The vault seals, indexes and decides;
//! a [`Store`] only keeps bytes, atomically. Two implementations: the embedded redb file
//! ([`RedbStore`], the default) and PostgreSQL (the `egret-postgres` crate), shared by
//! several egret replicas.
//!
//! A store sees only what the vault hands it: secrets arrive sealed, and nothing here
//! opens them.

mod redb_store;

use std::sync::Arc;
use std::time::Duration;

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
}

impl Table {
    pub const ALL: [Table; 9] = [
        Table::Meta,
        Table::Connectors,
        Table::Connections,
        Table::Placeholders,
        Table::Sandboxes,
        Table::RemovedConnectors,
        Table::Authorizations,
        Table::ConnectLinks,
        Table::UiSessions,
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

/// Which end of the audit log to read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFrom {
    /// Events with a sequence number above this, oldest first.
    After(u64),
    /// Events with a sequence number below this, newest first.
    Before(u64),
}

/// How much of the audit log is kept: the newest `keep` events, none older than
/// `max_age_secs` (the newest always stays, so numbering never starts over).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub keep: u64,
    pub max_age_secs: i64,
}

/// A store-level failure: what failed, in words a person can act on. Never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("vault storage failed: {0}; check the disk and the vault file's permissions")]
    Redb(#[from] redb::Error),
    /// The database did not answer, or refused: a connection, a timeout, a constraint.
    #[error("the vault database failed: {0}")]
    Database(String),
    /// Another process holds the redb file open.
    #[error("the vault file is in use by another process")]
    InUse,
    #[error("stored record `{0}` is corrupt")]
    Corrupt(String),
}

/// How a shared store is doing, for metrics: cumulative counts and current levels.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Queries that failed (the database refused, did not answer, or was away).
    pub errors: u64,
    /// Connections the pool holds, and how many of them are idle.
    pub pool_size: u64,
    pub pool_idle: u64,
    /// Whether the change listener is connected and listening.
    pub listening: bool,
    /// Other replicas' changes heard.
    pub changes_heard: u64,
    /// Milliseconds from the newest heard change's commit to its arrival.
    pub change_lag_ms: u64,
    /// Times the listening connection was lost.
    pub listener_lost: u64,
}

/// What the vault's memory is told when another replica changed the store.
pub trait ChangeSink: Send + Sync {
    /// `table`'s row `key` changed (or went): read it again.
    fn changed(&self, table: Table, key: &str);
    /// Changes may have been missed (the listener was away): read everything again.
    fn resync(&self);
}

/// Where the vault's bytes live. Every method that writes is durable (or, for the
/// audit, as durable as asked) when it returns, and may block: callers on async threads
/// use `spawn_blocking` as for any disk write.
pub trait Store: Send + Sync {
    /// `redb file /var/lib/egret/egret.redb`, `postgres db@host`: for logs and errors,
    /// never a password.
    fn describe(&self) -> String;

    /// Readiness: the store answers.
    fn ping(&self) -> Result<(), StoreError>;

    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every row of `table`, in key order.
    fn scan(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Applies `changes` in one transaction: all or none.
    fn commit(&self, changes: Vec<Change>) -> Result<(), StoreError>;

    /// Puts `value` under `key` unless a row is there; returns what is there after.
    fn put_if_absent(&self, table: Table, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Removes the row and returns what it held, atomically: a second taker gets `None`.
    fn take(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replaces the row with `new` only if it still holds `expected`; false otherwise.
    fn swap(
        &self,
        table: Table,
        key: &str,
        expected: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError>;

    /// Claims the renewal of connection `key` for `holder` for `lease`, unless another
    /// holder's lease runs; returns the row's version when granted.
    fn claim_renewal(
        &self,
        key: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<Option<u64>, StoreError>;

    /// Writes the renewed connection only if `holder` still holds the lease and the row
    /// is still at `version` (the fence), releasing the lease; false when it was lost.
    fn commit_renewal(
        &self,
        key: &str,
        holder: &str,
        version: u64,
        value: &[u8],
    ) -> Result<bool, StoreError>;

    /// Gives up a renewal lease (the call failed) so another holder need not wait.
    fn release_renewal(&self, key: &str, holder: &str) -> Result<(), StoreError>;

    /// Whether `holder` leads background `task` for the next `lease` (one replica runs
    /// renewal rounds, webhook deliveries and purges at a time).
    fn lead(&self, task: &str, holder: &str, lease: Duration) -> Result<bool, StoreError>;

    /// Appends audit events (JSON objects without `seq`, one a line), numbering them,
    /// and applies `retention`. Returns the first number given and the stored lines
    /// (with their numbers). `durable: false` may skip the disk sync.
    fn audit_append(
        &self,
        lines: &[u8],
        at: i64,
        durable: bool,
        retention: Retention,
    ) -> Result<(u64, Vec<u8>), StoreError>;

    /// Up to `max` stored audit events (JSON lines with `seq`) from `from`.
    fn audit_page(&self, from: AuditFrom, max: usize) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Appends webhook deliveries (JSON), dropping the oldest beyond `cap`; returns how
    /// many were dropped.
    fn outbox_push(&self, rows: Vec<Vec<u8>>, cap: usize) -> Result<usize, StoreError>;

    /// Up to `max` deliveries, oldest first, with their sequence numbers.
    fn outbox_rows(&self, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// Replaces a delivery that is still there (`Some`), or removes it (`None`).
    fn outbox_update(&self, seq: u64, row: Option<&[u8]>) -> Result<(), StoreError>;

    fn outbox_len(&self) -> Result<u64, StoreError>;

    /// Stores audit events that already carry their sequence numbers (a copy from
    /// another store), oldest first, and numbers later ones after them.
    fn audit_import(&self, _lines: &[Vec<u8>]) -> Result<(), StoreError> {
        Err(StoreError::Database(format!(
            "{} cannot take a copied audit log",
            self.describe()
        )))
    }

    /// Starts telling `sink` of other processes' changes (a shared store only).
    fn watch(&self, _sink: Arc<dyn ChangeSink>) {}

    /// Whether memory may be trusted now: false when this replica has not been able to
    /// hear other replicas' changes for longer than the store's bound, so reads go to
    /// the store.
    fn memory_current(&self) -> bool {
        true
    }

    /// How a shared store is doing (`None`: a local store has nothing to tell).
    fn stats(&self) -> Option<StoreStats> {
        None
    }

    /// Whether the store is healthy for readiness (it answers, and a shared store
    /// hears the others' changes), with the reason when not.
    fn health(&self) -> Result<(), StoreError> {
        self.ping()
    }
}

/// Prefixes each line of `lines` (JSON objects) with `"seq":N,` from `first` on;
/// returns the numbered lines and the last number given (`first - 1` for none).
pub fn number_lines(lines: &[u8], first: u64) -> (Vec<u8>, u64) {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(lines.len() + lines.len() / 16);
    let mut seq = first.saturating_sub(1);
    for line in lines.split(|b| *b == b'\n').filter(|l| l.len() > 2) {
        seq += 1;
        if !out.is_empty() {
            out.push(b'\n');
        }
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{{\"seq\":{seq},");
        out.extend_from_slice(&line[1..]);
    }
    (out, seq)
}

/// The sequence number a stored audit line starts with (`{"seq":N,`).
pub fn seq_of_line(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}
