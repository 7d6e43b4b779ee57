//! Leases: who renews a connection's token now (with the fence that makes a late
//! commit lose), and which replica leads a background task.

use std::time::Duration;

use super::StoreError;

pub trait Leases: Send + Sync {
    /// Claims the renewal of connection `key` for `holder` for `lease`, unless another
    /// holder's lease runs; returns the row's version when granted.
    fn claim_renewal(
        &self,
        key: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<Option<u64>, StoreError>;

    /// Writes the renewed connection only if `holder` still holds the lease and the row
    /// is still at `version` (the fence), releasing the lease; false when it was lost.
    fn commit_renewal(
        &self,
        key: &str,
        holder: &str,
        version: u64,
        value: &[u8],
    ) -> Result<bool, StoreError>;

    /// Gives up a renewal lease (the call failed) so another holder need not wait.
    fn release_renewal(&self, key: &str, holder: &str) -> Result<(), StoreError>;

    /// Whether `holder` leads background `task` for the next `lease` (one replica runs
    /// webhook deliveries and purges at a time).
    fn lead(&self, task: &str, holder: &str, lease: Duration) -> Result<bool, StoreError>;
}
