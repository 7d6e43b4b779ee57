//! Connectors created through the control plane, and the kill switch that erases
//! everything a connector's users stored, in one transaction.

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};
use zeroize::Zeroizing;

use crate::db::{CONNECTIONS, CONNECTORS, REMOVED_CONNECTORS, Vault, aad};
use crate::error::VaultError;

impl Vault {
    /// Stores (or replaces) a connector entry. Sealed whole: it may hold a client secret.
    pub fn put_api_connector(&self, id: &str, entry: &serde_json::Value) -> Result<(), VaultError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(entry).map_err(|e| VaultError::Invalid(e.to_string()))?,
        );
        let sealed = self.sealer.seal(&aad("connectors", id), &plain);
        let _w = self.lock_writer();
        self.write(|tx| {
            tx.open_table(CONNECTORS)?.insert(id, sealed.as_slice())?;
            Ok(())
        })
    }

    /// Every stored connector entry, opened.
    pub fn api_connectors(&self) -> Result<Vec<(String, serde_json::Value)>, VaultError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONNECTORS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let id = k.value().to_owned();
            let plain = self
                .sealer
                .open(&aad("connectors", &id), v.value())
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
        self.write(|tx| {
            tx.open_table(CONNECTORS)?.remove(id)?;
            tx.open_table(REMOVED_CONNECTORS)?.remove(id)?;
            let mut connections = tx.open_table(CONNECTIONS)?;
            for k in &conns {
                connections.remove(&**k)?;
            }
            Self::delete_placeholders(tx, &doomed)
        })?;
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
