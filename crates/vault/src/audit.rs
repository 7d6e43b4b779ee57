//! The audit log: an append-only table of what changed, bounded in count.

use redb::{ReadableDatabase, ReadableTable};

use crate::db::{AUDIT, Vault};
use crate::error::{VaultError, storage};
use crate::records::{AuditEvent, now};

/// Audit events kept; older ones are dropped as new ones arrive.
const AUDIT_KEEP: u64 = 100_000;

impl Vault {
    /// Appends an audit event. Never pass a secret or a placeholder in `detail`.
    pub fn audit(
        &self,
        event: &str,
        connector: Option<&str>,
        owner: Option<&str>,
        detail: Option<String>,
    ) -> Result<AuditEvent, VaultError> {
        let _w = self.lock_writer();
        let mut recorded = None;
        self.write(|tx| {
            let mut table = tx.open_table(AUDIT).map_err(storage)?;
            let seq = table
                .last()
                .map_err(storage)?
                .map_or(1, |(k, _)| k.value() + 1);
            let e = AuditEvent {
                seq,
                at: now(),
                event: event.to_owned(),
                connector: connector.map(str::to_owned),
                owner: owner.map(str::to_owned),
                detail,
            };
            let bytes = serde_json::to_vec(&e).map_err(|e| VaultError::Invalid(e.to_string()))?;
            table.insert(seq, bytes.as_slice()).map_err(storage)?;
            if seq > AUDIT_KEEP {
                table.remove(seq - AUDIT_KEEP).map_err(storage)?;
            }
            recorded = Some(e);
            Ok(())
        })?;
        recorded.ok_or_else(|| VaultError::Invalid("audit write produced no event".to_owned()))
    }

    /// Audit events with `seq > since`, oldest first, at most `limit`.
    pub fn audit_since(&self, since: u64, limit: usize) -> Result<Vec<AuditEvent>, VaultError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(AUDIT).map_err(storage)?;
        let mut out = Vec::new();
        for row in table
            .range(since.saturating_add(1)..)
            .map_err(storage)?
            .take(limit)
        {
            let (k, v) = row.map_err(storage)?;
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|_| VaultError::Corrupt(format!("audit/{}", k.value())))?,
            );
        }
        Ok(out)
    }
}
