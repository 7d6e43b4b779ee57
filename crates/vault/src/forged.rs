//! The vault's side of row authentication (`mac`): reading a row only when its MAC
//! holds, reporting a forged one once (audit event, metric, log line), and giving rows
//! from before MACs theirs, once.

use std::sync::atomic::Ordering;

use crate::db::Vault;
use crate::error::VaultError;
use crate::mac::{AUTHENTICATED, UPGRADED, unauthenticated};
use crate::store::Table;

impl Vault {
    /// The content of `table`'s row `key`, when it is authentic; a forged row is
    /// reported (once) and read as absent.
    pub(crate) fn authentic<'a>(&self, table: Table, key: &str, row: &'a [u8]) -> Option<&'a [u8]> {
        let opened = self.mac.open(table, key, row);
        if opened.is_none() {
            self.report_forged(table, key);
        }
        opened
    }

    fn report_forged(&self, table: Table, key: &str) {
        let first = self
            .forgeries
            .reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((table, key.to_owned()));
        if !first {
            return;
        }
        self.forgeries.count.fetch_add(1, Ordering::Relaxed);
        // Keys here are hashes (placeholders, links) or sandbox ids: nothing secret.
        tracing::warn!(
            table = table.name(),
            key,
            "a row in the vault's store fails its authentication and is ignored: it was written by something without the master key"
        );
        let detail = format!(
            "{}/{key} fails its authentication (written without the master key) and is ignored",
            table.name()
        );
        self.forgeries
            .unaudited
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(detail);
    }

    /// Writes the audit events of forged rows found since the last call. Never under
    /// the writer lock.
    pub(crate) fn audit_forged(&self) {
        let found = std::mem::take(
            &mut *self
                .forgeries
                .unaudited
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for detail in found {
            if let Err(e) = self.audit("vault.row_forged", None, None, Some(detail)) {
                tracing::warn!(error = %e, "cannot audit a forged row");
            }
        }
    }

    /// Rows found forged since start (the metric `egret_vault_forged_rows_total`).
    pub fn forged_rows(&self) -> u64 {
        self.forgeries.count.load(Ordering::Relaxed)
    }

    /// Once per vault: gives every row written before MACs existed its MAC, then records
    /// that it did. Replicas starting together do the same work; each row is replaced
    /// only over what was read.
    pub(crate) fn authenticate_old_rows(&self) -> Result<(), VaultError> {
        if self.store.get(Table::Meta, UPGRADED)?.is_some() {
            return Ok(());
        }
        let mut upgraded = 0usize;
        for table in AUTHENTICATED {
            for (k, v) in self.store.scan(table)? {
                if unauthenticated(&v) {
                    let row = self.mac.wrap(table, &k, &v);
                    if self.store.swap(table, &k, &v, &row)? {
                        upgraded += 1;
                    }
                }
            }
        }
        let flag = self.sealer.seal(&crate::db::aad("meta", UPGRADED), b"1");
        self.store.put_if_absent(Table::Meta, UPGRADED, &flag)?;
        if upgraded > 0 {
            tracing::info!(
                rows = upgraded,
                "authenticated the vault's rows written before row MACs"
            );
        }
        Ok(())
    }
}
