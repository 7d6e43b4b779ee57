//! Other replicas' changes, heard (a shared store) or not (one file), and how the store
//! is doing: readiness and the figures metrics show.

use std::sync::Arc;

use super::{Records, StoreError, Table};

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

/// A local store hears nothing and has nothing to tell: the defaults.
pub trait ChangeFeed: Records {
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
