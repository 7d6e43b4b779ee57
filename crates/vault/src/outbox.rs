//! The webhook outbox: deliveries egret owes the platform's receivers, kept until a
//! receiver takes them (or egret gives up on them), so a receiver that is down, or an
//! egret that restarts, loses nothing. Nothing in it is secret: events carry ids,
//! statuses and reasons, and the signing secret stays in the policy.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use crate::db::{OUTBOX, Vault};
use crate::error::VaultError;

/// One event owed to one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// `webhook-id`: the same on every attempt, so receivers can drop duplicates.
    pub id: String,
    pub url: String,
    /// The event's `type` (`connection.needs_reauth`, …).
    pub event: String,
    /// The payload, exactly as signed and sent.
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
    pub attempts: u32,
    /// Unix seconds: not tried again before.
    pub next_at: i64,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl Vault {
    /// Adds deliveries in one transaction. When the outbox would then hold more than
    /// `cap`, the oldest are dropped first; returns how many were.
    pub fn outbox_push(&self, entries: &[OutboxEntry], cap: usize) -> Result<usize, VaultError> {
        let mut dropped = 0;
        self.write(|tx| {
            let mut table = tx.open_table(OUTBOX)?;
            let first = table.last()?.map_or(1, |(k, _)| k.value() + 1);
            for (key, e) in (first..).zip(entries) {
                let row = serde_json::to_vec(e).map_err(|e| VaultError::Invalid(e.to_string()))?;
                table.insert(key, row.as_slice())?;
            }
            let len = usize::try_from(table.len()?).unwrap_or(usize::MAX);
            let excess = len.saturating_sub(cap);
            for _ in 0..excess {
                if table.pop_first()?.is_some() {
                    dropped += 1;
                }
            }
            Ok(())
        })?;
        Ok(dropped)
    }

    /// Deliveries due at `now`, oldest first, at most `limit`.
    pub fn outbox_due(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(u64, OutboxEntry)>, VaultError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(OUTBOX)?;
        let mut due = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let entry: OutboxEntry = serde_json::from_slice(v.value())
                .map_err(|_| VaultError::Corrupt(format!("webhook_outbox/{}", k.value())))?;
            if entry.next_at <= now {
                due.push((k.value(), entry));
                if due.len() >= limit {
                    break;
                }
            }
        }
        Ok(due)
    }

    /// Records an attempt's outcome: `Some` keeps the delivery for another attempt,
    /// `None` removes it (delivered, or given up on).
    pub fn outbox_update(&self, key: u64, entry: Option<&OutboxEntry>) -> Result<(), VaultError> {
        self.write(|tx| {
            let mut table = tx.open_table(OUTBOX)?;
            match entry {
                Some(e) => {
                    let row =
                        serde_json::to_vec(e).map_err(|e| VaultError::Invalid(e.to_string()))?;
                    // Only a delivery still there is kept: one dropped meanwhile stays gone.
                    if table.get(key)?.is_some() {
                        table.insert(key, row.as_slice())?;
                    }
                }
                None => {
                    table.remove(key)?;
                }
            }
            Ok(())
        })
    }

    /// Deliveries waiting.
    pub fn outbox_len(&self) -> Result<u64, VaultError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(OUTBOX)?.len()?)
    }
}
