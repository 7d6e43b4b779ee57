//! What the listener hears (`listen`) reaches the vault's memory; health and figures.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use egret_vault::store::Records as _;
use egret_vault::store::{ChangeFeed, ChangeSink, StoreError, StoreStats};

use crate::{DEAF_BOUND, PgStore, listen};

impl ChangeFeed for PgStore {
    fn watch(&self, sink: Arc<dyn ChangeSink>) {
        let mut config = self.config.clone();
        // Named apart in pg_stat_activity: the one connection that must stay up.
        config.application_name(format!(
            "{}-listen",
            self.config.get_application_name().unwrap_or("egret")
        ));
        listen::start(
            &self.handle,
            config,
            self.tls.clone(),
            self.origin.clone(),
            self.hearing.clone(),
            sink,
        );
    }

    fn stats(&self) -> Option<StoreStats> {
        let pool = self.pool.status();
        let h = &self.hearing;
        Some(StoreStats {
            errors: self.errors.load(Ordering::Relaxed),
            pool_size: pool.size as u64,
            pool_idle: pool.available as u64,
            listening: h.listening(),
            changes_heard: h.heard.load(Ordering::Relaxed),
            change_lag_ms: h.lag_ms.load(Ordering::Relaxed),
            listener_lost: h.lost.load(Ordering::Relaxed),
        })
    }

    fn memory_current(&self) -> bool {
        self.hearing.current(DEAF_BOUND)
    }

    fn health(&self) -> Result<(), StoreError> {
        self.ping()?;
        self.hearing.healthy().map_err(StoreError::Unavailable)
    }
}
