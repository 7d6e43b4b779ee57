//! The webhook outbox: deliveries egret owes the platform's receivers, kept until a
//! receiver takes them (or egret gives up on them), so a receiver that is down, or an
//! egret that restarts, loses nothing. Nothing in it is secret: events carry ids,
//! statuses and reasons, and the signing secret stays in the policy.

use serde::{Deserialize, Serialize};

use crate::db::Vault;
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
        let rows = entries
            .iter()
            .map(|e| serde_json::to_vec(e).map_err(|e| VaultError::Invalid(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.store.outbox_push(rows, cap)?)
    }

    /// Deliveries due at `now`, oldest first, at most `limit`.
    pub fn outbox_due(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(u64, OutboxEntry)>, VaultError> {
        let mut due = Vec::new();
        // The outbox is capped (10 000 rows): reading it whole is bounded.
        for (k, v) in self.store.outbox_rows(usize::MAX)? {
            let entry: OutboxEntry = serde_json::from_slice(&v)
                .map_err(|_| VaultError::Corrupt(format!("webhook_outbox/{k}")))?;
            if entry.next_at <= now {
                due.push((k, entry));
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
        let row = entry
            .map(|e| serde_json::to_vec(e).map_err(|e| VaultError::Invalid(e.to_string())))
            .transpose()?;
        Ok(self.store.outbox_update(key, row.as_deref())?)
    }

    /// Deliveries waiting.
    pub fn outbox_len(&self) -> Result<u64, VaultError> {
        Ok(self.store.outbox_len()?)
    }
}
