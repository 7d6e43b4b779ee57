//! Budgets: how many requests each connection made in a window, kept in the store so
//! that replicas share one count. A row per connection and window
//! (`<connection key>@<window start>`, and `@h<hour start>` for the hourly counts the
//! listings sum into "the last 24 hours"), its value the count in decimal; a replica
//! adds what it counted since its last flush with a compare-and-set, so two replicas
//! adding at once both land. Rows of windows that ended are pruned.

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
        self.add_count(format!("{}@{window_start}", conn.key()), delta)
    }

    /// Adds `delta` requests to `conn`'s count of the hour that starts at `hour_start`.
    pub fn add_hourly_use(
        &self,
        conn: &ConnectionId,
        hour_start: i64,
        delta: u64,
    ) -> Result<u64, VaultError> {
        self.add_count(format!("{}@h{hour_start}", conn.key()), delta)
    }

    /// What every replica recorded for `conn` in the window that starts at
    /// `window_start`, and in the 24 hours before `now` (hourly rows, read only).
    pub fn budget_use(
        &self,
        conn: &ConnectionId,
        window_start: i64,
        now: i64,
    ) -> Result<(u64, u64), VaultError> {
        let read = |key: String| -> Result<u64, VaultError> {
            Ok(self
                .store
                .get(Table::Budgets, &key)?
                .map_or(0, |v| parse(&v)))
        };
        let window = read(format!("{}@{window_start}", conn.key()))?;
        let this_hour = now - now.rem_euclid(3600);
        let mut day = 0;
        for h in 0..24 {
            day += read(format!("{}@h{}", conn.key(), this_hour - h * 3600))?;
        }
        Ok((window, day))
    }

    fn add_count(&self, key: String, delta: u64) -> Result<u64, VaultError> {
        let conn = key
            .rsplit_once('@')
            .map_or(key.as_str(), |(c, _)| c)
            .to_owned();
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
            "the budget count of `{conn}` changed {TRIES} times while this replica added to it; it is added at the next flush"
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
                    .and_then(|(_, at)| at.trim_start_matches('h').parse::<i64>().ok())
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
