//! What a sandbox connection holds while it lives, released by dropping it: its place
//! under `max_client_connections`, its count in `egret_client_connections`, and its
//! count in its worker's load (which `workers` balances new connections by).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Open connections per worker, shared by all workers.
pub(crate) struct Loads(Box<[AtomicUsize]>);

impl Loads {
    pub(crate) fn new(workers: usize) -> Self {
        Self((0..workers).map(|_| AtomicUsize::new(0)).collect())
    }

    /// The worker with the fewest open connections, when it has fewer than `mine`'s.
    pub(crate) fn lighter_than(&self, mine: usize) -> Option<usize> {
        let here = self.0[mine].load(Ordering::Relaxed);
        (0..self.0.len())
            .map(|i| (self.0[i].load(Ordering::Relaxed), i))
            .min()
            .filter(|&(n, _)| n < here)
            .map(|(_, i)| i)
    }

    /// Counts one more open connection on `worker` until the [`Load`] is dropped.
    pub(crate) fn add(self: &Arc<Self>, worker: usize) -> Load {
        self.0[worker].fetch_add(1, Ordering::Relaxed);
        Load {
            loads: self.clone(),
            worker,
        }
    }
}

/// One worker's count of open connections, read by its upstream pools.
#[derive(Clone)]
pub(crate) struct WorkerLoad {
    loads: Arc<Loads>,
    worker: usize,
}

impl WorkerLoad {
    pub(crate) fn new(loads: Arc<Loads>, worker: usize) -> Self {
        Self { loads, worker }
    }

    /// Connections open on the worker now.
    pub(crate) fn open(&self) -> usize {
        self.loads.0[self.worker].load(Ordering::Relaxed)
    }
}

/// Counts one open connection against a worker while it lives.
pub(crate) struct Load {
    loads: Arc<Loads>,
    worker: usize,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.loads.0[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything one sandbox connection holds. A CONNECT tunnel takes a share: the
/// connection's HTTP/1.1 part ends when the tunnel opens, and the tunnel is the same
/// connection, so it stays limited and counted until the tunnel closes.
pub(crate) struct Held {
    pub(crate) _permit: tokio::sync::OwnedSemaphorePermit,
    pub(crate) _open: egret_metrics::Open,
    pub(crate) _load: Load,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lightest_worker_is_found_and_loads_drop_with_their_guard() {
        let loads = Arc::new(Loads::new(3));
        assert_eq!(loads.lighter_than(0), None, "all equal: stay");
        let a = loads.add(0);
        let _b = loads.add(0);
        let _c = loads.add(1);
        assert_eq!(loads.lighter_than(0), Some(2));
        assert_eq!(loads.lighter_than(2), None);
        drop(a);
        let _d = loads.add(2);
        let _e = loads.add(2);
        assert_eq!(
            loads.lighter_than(2),
            Some(0),
            "ties go to the lowest index"
        );
    }
}
