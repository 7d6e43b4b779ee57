//! Connectors gone from the policy file whose connections are kept, refused, until they
//! come back or their retention ends: a half-saved file or a branch switch must not
//! erase users' grants. Only the time each was found gone is stored; nothing secret.

use crate::db::Vault;
use crate::error::VaultError;
use crate::store::{Change, Table};

impl Vault {
    /// Notes that connector `id` left the policy at `at` (unix seconds). An earlier note
    /// stays: the retention counts from when it first went. Returns whether it is new.
    pub fn note_connector_removed(&self, id: &str, at: i64) -> Result<bool, VaultError> {
        let _w = self.lock_writer();
        if self.read_index().removed.contains_key(id) {
            return Ok(false);
        }
        self.store.commit(vec![Change::put(
            Table::RemovedConnectors,
            id,
            at.to_string().into_bytes(),
        )])?;
        self.write_index().removed.insert(id.to_owned(), at);
        Ok(true)
    }

    /// Forgets the note: the connector is back (its connections serve again) or erased.
    /// Returns when it had been found gone, if it had.
    pub fn forget_connector_removed(&self, id: &str) -> Result<Option<i64>, VaultError> {
        let _w = self.lock_writer();
        let Some(at) = self.read_index().removed.get(id).copied() else {
            return Ok(None);
        };
        self.store
            .commit(vec![Change::remove(Table::RemovedConnectors, id)])?;
        self.write_index().removed.remove(id);
        Ok(Some(at))
    }

    /// Every connector noted as gone, with when it went (unix seconds).
    pub fn removed_connectors(&self) -> Vec<(String, i64)> {
        self.read_index()
            .removed
            .iter()
            .map(|(id, at)| (id.clone(), *at))
            .collect()
    }

    /// When connector `id` was found gone from the policy, if it is.
    pub fn connector_removed_at(&self, id: &str) -> Option<i64> {
        self.read_index().removed.get(id).copied()
    }

    /// The connectors that hold connections or placeholders in the vault.
    pub fn stored_connector_ids(&self) -> std::collections::BTreeSet<String> {
        let index = self.read_index();
        let connections = index.connections.values().map(|c| c.connector.clone());
        let placeholders = index
            .placeholders
            .values()
            .map(|p| p.info.connector.clone());
        connections.chain(placeholders).collect()
    }
}
