//! Webhook deliveries owed, in order, kept until delivered or dropped past a cap.

use super::StoreError;

pub trait Outbox: Send + Sync {
    /// Appends webhook deliveries (JSON), dropping the oldest beyond `cap`; returns how
    /// many were dropped.
    fn outbox_push(&self, rows: Vec<Vec<u8>>, cap: usize) -> Result<usize, StoreError>;

    /// Up to `max` deliveries, oldest first, with their sequence numbers.
    fn outbox_rows(&self, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// Replaces a delivery that is still there (`Some`), or removes it (`None`).
    fn outbox_update(&self, seq: u64, row: Option<&[u8]>) -> Result<(), StoreError>;

    fn outbox_len(&self) -> Result<u64, StoreError>;
}
