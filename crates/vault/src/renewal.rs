//! Renewal across replicas: a lease with a fence. A replica claims a connection's
//! renewal for a while (the lease), calls the vendor outside any transaction, and commits
//! the new tokens only if it still holds the lease and the row is still at the version it
//! claimed (the fence). A replica killed mid-renewal is taken over when its lease runs
//! out. On the redb store the claim is always granted: one process owns the file.

use std::sync::Arc;
use std::time::Duration;

use crate::db::Vault;
use crate::error::VaultError;
use crate::records::{ConnectionId, Credential};
use crate::store::Table;

impl Vault {
    /// Claims the renewal of `id` for `lease`; false while another replica holds it.
    pub fn claim_renewal(&self, id: &ConnectionId, lease: Duration) -> Result<bool, VaultError> {
        let key = id.key();
        let version = self.store.claim_renewal(&key, &self.holder, lease)?;
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        match version {
            Some(v) => {
                claims.insert(key, v);
                Ok(true)
            }
            None => {
                claims.remove(&key);
                Ok(false)
            }
        }
    }

    /// Gives up a claimed renewal without committing (the vendor call failed).
    pub fn release_renewal(&self, id: &ConnectionId) -> Result<(), VaultError> {
        let key = id.key();
        let held = self
            .claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        if held.is_some() {
            self.store.release_renewal(&key, &self.holder)?;
        }
        Ok(())
    }

    /// Whether this process leads background `task` (webhook deliveries, purges) for the
    /// next `lease`: on a shared store one replica at a time does, so a delivery is not
    /// sent twice; on redb, always.
    pub fn lead(&self, task: &str, lease: Duration) -> Result<bool, VaultError> {
        Ok(self.store.lead(task, &self.holder, lease)?)
    }

    /// The version this process claimed `key`'s renewal at, taken (a commit uses it once).
    pub(crate) fn take_claim(&self, key: &str) -> Option<u64> {
        self.claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
    }

    /// The connection's credential as the store holds it now (memory updated to match):
    /// what another replica may have just committed.
    pub fn reread_connection(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<Arc<Credential>>, VaultError> {
        self.reread(Table::Connections, &id.key())?;
        Ok(self.credential(id))
    }
}
