//! Other replicas' changes, brought into this replica's memory: a shared store tells the
//! vault which row changed and the vault reads it again; when changes may have been
//! missed, it reads everything again. While the store says memory cannot be trusted
//! (this replica has not heard changes for too long), the proxy's lookups read through
//! to the store.

use std::sync::{Arc, Weak};

use crate::db::{Vault, open_placeholder, open_removed, open_sandbox};
use crate::error::VaultError;
use crate::placeholder::PlaceholderHash;
use crate::store::{ChangeSink, Table};

impl Vault {
    /// Starts hearing other replicas' changes (a shared store; a no-op on redb). Call
    /// once, with the vault in the `Arc` the rest of egret shares.
    pub fn watch_changes(self: &Arc<Self>) {
        self.store.watch(Arc::new(Listener(Arc::downgrade(self))));
    }

    /// Runs `f` whenever connectors stored through the API may have changed on another
    /// replica (the policy in force must be merged again).
    pub fn on_connectors_changed(&self, f: impl Fn() + Send + Sync + 'static) {
        self.on_connectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(f));
    }

    fn connectors_changed(&self) {
        for f in self
            .on_connectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            f();
        }
    }

    /// Reads `table`'s row `key` from the store into memory (or drops it from memory
    /// when the store no longer holds it). Under the writer lock: a local write cannot
    /// interleave, so memory ends as the store is.
    pub(crate) fn reread(&self, table: Table, key: &str) -> Result<(), VaultError> {
        let read = self.reread_locked(table, key);
        self.audit_forged();
        read
    }

    fn reread_locked(&self, table: Table, key: &str) -> Result<(), VaultError> {
        let _w = self.lock_writer();
        let row = self.store.get(table, key)?;
        match table {
            Table::Connections => {
                let opened = row.map(|v| self.open_connection(key, &v)).transpose()?;
                let key: Arc<str> = Arc::from(key);
                let mut index = self.write_credentials();
                match opened {
                    Some((info, credential)) => {
                        index.credentials.insert(key.clone(), Arc::new(credential));
                        index.connections.insert(key, info);
                    }
                    None => {
                        index.credentials.remove(&key);
                        index.connections.remove(&key);
                    }
                }
            }
            Table::Placeholders => match row.as_deref().and_then(|v| self.authentic(table, key, v))
            {
                Some(v) => {
                    let (hash, entry) = open_placeholder(key, v)?;
                    self.write_index()
                        .placeholders
                        .insert(hash, Arc::new(entry));
                }
                None => {
                    if let Some(hash) = PlaceholderHash::from_hex(key) {
                        self.write_index().placeholders.remove(&hash);
                    }
                }
            },
            Table::Sandboxes => match row.as_deref().and_then(|v| self.authentic(table, key, v)) {
                Some(v) => {
                    let stored = open_sandbox(key, v)?;
                    self.write_index().sandboxes.insert(key.to_owned(), stored);
                }
                None => {
                    self.write_index().sandboxes.remove(key);
                }
            },
            Table::RemovedConnectors => match row {
                Some(v) => {
                    let at = open_removed(key, &v)?;
                    self.write_index().removed.insert(key.to_owned(), at);
                }
                None => {
                    self.write_index().removed.remove(key);
                }
            },
            // Read from the store when asked for; nothing of them is in memory.
            Table::Meta
            | Table::Connectors
            | Table::Authorizations
            | Table::ConnectLinks
            | Table::UiSessions
            | Table::Approvals
            | Table::Budgets
            | Table::ApiTokens => {}
        }
        Ok(())
    }

    /// Everything read again from the store (changes may have been missed).
    pub(crate) fn resync(&self) -> Result<(), VaultError> {
        let loaded = {
            let _w = self.lock_writer();
            self.load()
        };
        self.audit_forged();
        loaded
    }

    /// Before a lookup, when memory cannot be trusted: reads the row it depends on
    /// from the store. True when it did; false when memory is current (nothing to
    /// read) or the store did not answer, which leaves memory as it is (a store that is
    /// down takes no revocation either).
    pub(crate) fn read_through(&self, table: Table, key: &str) -> bool {
        if self.store.memory_current() {
            return false;
        }
        match self.reread(table, key) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "read-through failed; answering from memory");
                false
            }
        }
    }
}

/// The vault as the store's change sink; weak, so the store does not keep it alive.
struct Listener(Weak<Vault>);

impl ChangeSink for Listener {
    fn changed(&self, table: Table, key: &str) {
        let Some(vault) = self.0.upgrade() else {
            return;
        };
        if table == Table::Connectors {
            vault.connectors_changed();
            return;
        }
        if let Err(e) = vault.reread(table, key) {
            tracing::warn!(table = table.name(), error = %e, "could not read another replica's change; reading everything again");
            self.resync();
        }
    }

    fn resync(&self) {
        let Some(vault) = self.0.upgrade() else {
            return;
        };
        match vault.resync() {
            Ok(()) => tracing::info!("vault memory read again from the store"),
            Err(e) => tracing::warn!(error = %e, "could not read the store again"),
        }
        vault.connectors_changed();
    }
}
