//! Budgets: how many requests each connection made in a window, kept in the store so
//! that replicas share one count. A row per connection and window
//! (`<connection key>@<window start>`), its value the count in decimal; a replica adds
//! what it counted since its last flush with a compare-and-set, so two replicas adding
//! at once both land. Rows of windows that ended are pruned by the next flush.

use crate::db::Vault;
use crate::error::VaultError;
use crate::names::ConnectionId;
use crate::store::{Change, Table};

/// Tries of a compare-and-set before a flush gives up (and keeps its count for later).
const TRIES: usize = 16;

impl Vault {
    /// Adds `delta` requests to `conn`'s count in the window that starts at
    /// `window_start` (unix seconds); returns the count all replicas have recorded.
    pub fn add_budget_use(
        &self,
        conn: &ConnectionId,
        window_start: i64,
        delta: u64,
    ) -> Result<u64, VaultError> {
        let key = format!("{}@{window_start}", conn.key());
        for _ in 0..TRIES {
            let current = self.store.put_if_absent(Table::Budgets, &key, b"0")?;
            let count = parse(&current);
            if delta == 0 {
                return Ok(count);
            }
            let next = count.saturating_add(delta);
            if self
                .store
                .swap(Table::Budgets, &key, &current, next.to_string().as_bytes())?
            {
                return Ok(next);
            }
        }
        Err(VaultError::Invalid(format!(
            "the budget count of `{}` changed {TRIES} times while this replica added to it; it is added at the next flush",
            conn.key()
        )))
    }

    /// Erases the counts of windows that started before `before` (unix seconds).
    pub fn prune_budget_windows(&self, before: i64) -> Result<usize, VaultError> {
        let doomed: Vec<Change> = self
            .store
            .scan(Table::Budgets)?
            .into_iter()
            .filter(|(k, _)| {
                k.rsplit_once('@')
                    .and_then(|(_, at)| at.parse::<i64>().ok())
                    .is_none_or(|at| at < before)
            })
            .map(|(k, _)| Change::remove(Table::Budgets, k))
            .collect();
        let n = doomed.len();
        if n > 0 {
            self.store.commit(doomed)?;
        }
        Ok(n)
    }
}

fn parse(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
