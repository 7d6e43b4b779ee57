//! Connectors created through the control plane, and the kill switch that erases
//! everything a connector's users stored, in one transaction.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::db::{Vault, aad, placeholder_removals};
use crate::error::VaultError;
use crate::store::{Change, Table};

impl Vault {
    /// Stores (or replaces) a connector entry. Sealed whole: it may hold a client secret.
    pub fn put_api_connector(&self, id: &str, entry: &serde_json::Value) -> Result<(), VaultError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(entry).map_err(|e| VaultError::Invalid(e.to_string()))?,
        );
        let sealed = self.sealer.seal(&aad("connectors", id), &plain);
        let _w = self.lock_writer();
        Ok(self
            .store
            .commit(vec![Change::put(Table::Connectors, id, sealed)])?)
    }

    /// Every stored connector entry, opened.
    pub fn api_connectors(&self) -> Result<Vec<(String, serde_json::Value)>, VaultError> {
        let mut out = Vec::new();
        for (id, v) in self.store.scan(Table::Connectors)? {
            let plain = self
                .sealer
                .open(&aad("connectors", &id), &v)
                .ok_or_else(|| VaultError::Corrupt(format!("connector {id}")))?;
            let entry = serde_json::from_slice(&plain)
                .map_err(|_| VaultError::Corrupt(format!("connector {id}")))?;
            out.push((id, entry));
        }
        Ok(out)
    }

    /// The kill switch: erases the connector's stored entry (if it came from the API), all
    /// its connections (tokens, keys) and all their placeholders, in one transaction.
    /// A note that it left the policy goes too. Returns how many connections were erased.
    pub fn erase_connector(&self, id: &str) -> Result<usize, VaultError> {
        let prefix = format!("{id}/");
        let _w = self.lock_writer();
        let conns: Vec<Arc<str>> = self
            .read_index()
            .connections
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        let doomed = self.placeholders_where(|e| e.info.connector == id);
        let mut changes = vec![
            Change::remove(Table::Connectors, id),
            Change::remove(Table::RemovedConnectors, id),
        ];
        changes.extend(
            conns
                .iter()
                .map(|k| Change::remove(Table::Connections, &**k)),
        );
        changes.extend(placeholder_removals(&doomed));
        self.store.commit(changes)?;
        let mut index = self.write_credentials();
        for k in &conns {
            index.connections.remove(k);
            index.credentials.remove(k);
        }
        for h in &doomed {
            index.placeholders.remove(h);
        }
        index.removed.remove(id);
        Ok(conns.len())
    }
}
