//! Budgets per connection (`connectors[].limits: {requests, per, concurrent}`): how many
//! requests a connection may make in a window, and how many may be in flight at once.
//!
//! Counts are shared by replicas through the vault's store, without a write per request:
//! each replica counts locally and, every [`FLUSH`], adds what it counted to the
//! connection's row and reads back the total every replica recorded. A request is
//! allowed while the last total read plus what this replica counted since is under the
//! budget — so under load on several replicas a window may overshoot by what the others
//! served within one flush (documented). Windows are fixed, aligned to the epoch (a
//! `1d` budget renews at 00:00 UTC). In-flight counts are per replica: they guard a
//! vendor's concurrency limit, which a replica's connection pool meets alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use egret_policy::Policy;
use egret_vault::{ConnectionId, Vault};

use crate::refusal::Refusal;

/// How often counts are written to the store and read back.
pub const FLUSH: Duration = Duration::from_secs(1);

/// One connection's count in its current window.
struct Window {
    start: i64,
    per: i64,
    /// The total all replicas had recorded at the last flush.
    shared: u64,
    /// Counted here since then.
    local: u64,
    /// Whether `connection.budget_exhausted` was told for this window (by this replica).
    told: bool,
    /// Requests of this connection in flight on this replica.
    in_flight: Arc<AtomicU32>,
}

/// A request's place in its connection's concurrency limit, released when dropped.
pub(crate) struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a refused request was over.
pub(crate) enum Over {
    /// The window's count; `first` when this replica had not said so yet this window.
    Count {
        refusal: Refusal,
        first: bool,
    },
    Concurrency(Refusal),
}

/// Every connection's window, on this replica.
#[derive(Default)]
pub struct Budgets {
    windows: Mutex<HashMap<ConnectionId, Window>>,
}

/// What a listing shows of a connection's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    pub used: u64,
    pub budget: u64,
    pub window_ends_at: i64,
}

impl Budgets {
    /// Counts one request of `conn` (whose connector's limits are `budget`) at `now`
    /// (unix seconds): its slot in the concurrency limit, or what it is over.
    pub(crate) fn take(
        &self,
        conn: &ConnectionId,
        budget: &egret_policy::Budget,
        now: i64,
    ) -> Result<Option<Slot>, Over> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let per = budget
            .requests
            .map(|(_, per)| i64::try_from(per.as_secs()).unwrap_or(i64::MAX).max(1))
            .unwrap_or(i64::MAX);
        let start = if per == i64::MAX {
            0
        } else {
            now - now.rem_euclid(per)
        };
        let w = windows.entry(conn.clone()).or_insert_with(|| Window {
            start,
            per,
            shared: 0,
            local: 0,
            told: false,
            in_flight: Arc::default(),
        });
        if w.start != start || w.per != per {
            // A new window (or new limits): what was counted belongs to the old one,
            // whose row the flush still adds to.
            *w = Window {
                start,
                per,
                shared: 0,
                local: 0,
                told: false,
                in_flight: w.in_flight.clone(),
            };
        }
        if let Some((limit, _)) = budget.requests
            && w.shared + w.local >= limit
        {
            let first = !w.told;
            w.told = true;
            let retry = u64::try_from(start.saturating_add(per) - now)
                .unwrap_or(1)
                .max(1);
            let window = humantime::format_duration(Duration::from_secs(
                u64::try_from(per).unwrap_or(u64::MAX),
            ))
            .to_string();
            return Err(Over::Count {
                refusal: Refusal::budget_exhausted(&conn.connector, limit, &window, retry),
                first,
            });
        }
        let slot = match budget.concurrent {
            Some(max) => {
                let now_in = w.in_flight.fetch_add(1, Ordering::AcqRel);
                let slot = Slot(w.in_flight.clone());
                if now_in >= max {
                    drop(slot);
                    return Err(Over::Concurrency(Refusal::too_many_in_flight(
                        &conn.connector,
                        max,
                    )));
                }
                Some(slot)
            }
            None => None,
        };
        if budget.requests.is_some() {
            w.local += 1;
        }
        Ok(slot)
    }

    /// A connection's use of its request budget in the current window, as this replica
    /// knows it (at most one flush behind the others).
    pub fn usage(
        &self,
        conn: &ConnectionId,
        budget: &egret_policy::Budget,
        now: i64,
    ) -> Option<Use> {
        let (limit, per) = budget.requests?;
        let per = i64::try_from(per.as_secs()).unwrap_or(i64::MAX).max(1);
        let start = now - now.rem_euclid(per);
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let used = windows
            .get(conn)
            .filter(|w| w.start == start)
            .map_or(0, |w| w.shared + w.local);
        Some(Use {
            used,
            budget: limit,
            window_ends_at: start + per,
        })
    }

    /// Erases the store's counts of windows that ended more than a day ago, or before
    /// the longest window in `policy` (blocking).
    pub fn prune(&self, vault: &Vault, policy: &Policy, now: i64) {
        let longest = policy
            .connectors
            .iter()
            .filter_map(|c| c.budget.and_then(|b| b.requests))
            .map(|(_, per)| i64::try_from(per.as_secs()).unwrap_or(i64::MAX))
            .max()
            .unwrap_or(0)
            .max(25 * 3600);
        if let Err(e) = vault.prune_budget_windows(now.saturating_sub(longest)) {
            tracing::debug!(error = %e, "old budget windows not pruned");
        }
    }

    /// Adds what this replica counted to the store and reads back every replica's
    /// totals, for the connections whose connector still has a request budget. Blocking
    /// (the store): run off the async workers. Errors are logged; counts stay for the
    /// next flush.
    pub fn flush(&self, vault: &Vault, policy: &Policy, now: i64) {
        let work: Vec<(ConnectionId, i64, u64)> = {
            let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            // A connection whose connector is gone, or whose window ended with nothing
            // left to add, is forgotten (the owner's own limits need no connector's).
            windows.retain(|conn, w| {
                policy.connector(&conn.connector).is_some()
                    && (w.start.saturating_add(w.per) > now
                        || w.local > 0
                        || w.in_flight.load(Ordering::Acquire) > 0)
            });
            windows
                .iter()
                .filter(|(_, w)| w.per != i64::MAX)
                .map(|(c, w)| (c.clone(), w.start, w.local))
                .collect()
        };
        let hour = now - now.rem_euclid(3600);
        for (conn, start, delta) in work {
            if delta > 0
                && let Err(e) = vault.add_hourly_use(&conn, hour, delta)
            {
                tracing::debug!(error = %e, "hourly use not recorded");
            }
            match vault.add_budget_use(&conn, start, delta) {
                Ok(total) => {
                    let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(w) = windows.get_mut(&conn).filter(|w| w.start == start) {
                        w.local = w.local.saturating_sub(delta);
                        w.shared = total;
                    }
                }
                Err(e) if e.is_unavailable() => {
                    tracing::debug!(error = %e, "budget counts not flushed: the store is away");
                }
                Err(e) => {
                    tracing::warn!(error = %e, connection = %conn.key(), "budget counts not flushed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egret_vault::Owner;

    fn conn() -> ConnectionId {
        ConnectionId::default_of("gh", &Owner::parse("org").expect("owner"))
    }

    #[test]
    fn a_window_counts_up_to_its_budget_then_renews() {
        let b = Budgets::default();
        let budget = egret_policy::Budget {
            requests: Some((2, Duration::from_secs(60))),
            concurrent: None,
        };
        assert!(b.take(&conn(), &budget, 120).is_ok());
        assert!(b.take(&conn(), &budget, 130).is_ok());
        match b.take(&conn(), &budget, 170) {
            Err(Over::Count { refusal, first }) => {
                assert!(first);
                assert_eq!(refusal.retry_after, Some(10));
            }
            _ => panic!("over its budget"),
        }
        assert!(matches!(
            b.take(&conn(), &budget, 171),
            Err(Over::Count { first: false, .. })
        ));
        assert!(b.take(&conn(), &budget, 180).is_ok(), "a new window");
        assert_eq!(b.usage(&conn(), &budget, 181).map(|u| u.used), Some(1));
    }

    #[test]
    fn slots_are_released_when_dropped() {
        let b = Budgets::default();
        let budget = egret_policy::Budget {
            requests: None,
            concurrent: Some(1),
        };
        let slot = b.take(&conn(), &budget, 0).ok().flatten().expect("a slot");
        assert!(matches!(
            b.take(&conn(), &budget, 0),
            Err(Over::Concurrency(_))
        ));
        drop(slot);
        assert!(b.take(&conn(), &budget, 0).is_ok());
    }
}
