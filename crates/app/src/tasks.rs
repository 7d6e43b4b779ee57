//! Every background task of a running egret, started in one place and ended the same
//! way: one stop signal that each task watches, and one wait for all of them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use egret_service::Lifecycle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Resolves once egret is told to stop.
pub type Stopped = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) struct Tasks {
    stop: watch::Sender<bool>,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Tasks {
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            running: Vec::new(),
        }
    }

    /// The stop signal, for a task that ends itself gracefully (drains, flushes).
    pub fn stopped(&self) -> Stopped {
        let mut rx = self.stop.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        })
    }

    /// The stop signal as a receiver (the proxy's workers each watch one).
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Runs `task`, which must end once the signal it is given resolves.
    pub fn spawn<F>(&mut self, name: &'static str, task: impl FnOnce(Stopped) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let fut = task(self.stopped());
        self.running.push((name, tokio::spawn(fut)));
    }

    /// Runs a loop that has nothing to finish: it is left at its next await on stop.
    pub fn spawn_loop(
        &mut self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.spawn(name, |stopped| async move {
            tokio::select! {
                () = task => {}
                () = stopped => {}
            }
        });
    }

    /// Signals every task to stop and waits for all of them (the proxy's drain is
    /// bounded by its drain timeout; the others end at their next await).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (name, task) in self.running {
            if let Err(e) = task.await
                && e.is_panic()
            {
                tracing::error!(task = name, "a background task panicked");
            }
        }
    }
}

/// Every [`egret_proxy::budget::FLUSH`], adds what this replica counted against
/// connections' budgets to the store and reads back every replica's totals; every ten
/// minutes, erases the counts of windows long ended.
pub(crate) async fn flush_budgets(
    budgets: Arc<egret_proxy::budget::Budgets>,
    vault: Arc<egret_vault::Vault>,
    policy: Arc<arc_swap::ArcSwap<egret_policy::Policy>>,
    clock: egret_clock::Clock,
) {
    let mut rounds: u64 = 0;
    loop {
        tokio::time::sleep(egret_proxy::budget::FLUSH).await;
        rounds += 1;
        let (b, v, p, now) = (
            budgets.clone(),
            vault.clone(),
            policy.load_full(),
            clock.unix(),
        );
        let prune = rounds.is_multiple_of(600);
        let _ = tokio::task::spawn_blocking(move || {
            b.flush(&v, &p, now);
            if prune {
                b.prune(&v, &p, now);
            }
        })
        .await;
    }
}

/// Every second, fetches again the policy's secrets kept in external stores whose
/// cached value is older than their source's `cache_ttl` (see [`egret_secrets`]).
pub(crate) async fn keep_secrets_current(
    secrets: Arc<egret_secrets::Secrets>,
    policy: Arc<arc_swap::ArcSwap<egret_policy::Policy>>,
) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        secrets.keep_current(&policy.load_full()).await;
    }
}

/// Every second, erases what connectors gone from the policy kept once their retention
/// has ended (a cheap look at memory when none is due).
pub(crate) async fn purge_expired(
    lifecycle: Arc<Lifecycle>,
    webhooks: Arc<egret_webhooks::Webhooks>,
) {
    use egret_webhooks::{Event, EventSink};
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let l = lifecycle.clone();
        // One replica at a time erases (and tells the webhooks once).
        let purge = move || {
            if !l.vault().lead("purge", Duration::from_secs(5))? {
                return Ok(Vec::new());
            }
            l.purge_expired()
        };
        match tokio::task::spawn_blocking(purge).await {
            Ok(Ok(erased)) => {
                for (connector, n) in erased {
                    let n = u64::try_from(n).unwrap_or(u64::MAX);
                    webhooks.emit(Event::connector_deleted(
                        &connector,
                        "removed from the policy file, and its retention ended",
                        n,
                    ));
                }
            }
            Ok(Err(e)) if e.is_unavailable() => {
                tracing::debug!(error = %e, "the purge of removed connectors waits for the vault database")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot erase the connections of a removed connector whose retention ended; retrying")
            }
            Err(_) => {}
        }
    }
}
