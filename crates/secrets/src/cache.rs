//! Fetched values, by reference, with when each was fetched; and one fetch at a time
//! per reference.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

#[derive(Default)]
pub(crate) struct Cache {
    values: Mutex<HashMap<String, (SecretString, Instant)>>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Cache {
    fn values(&self) -> MutexGuard<'_, HashMap<String, (SecretString, Instant)>> {
        // A panic elsewhere while holding it leaves plain data: still usable.
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value, if fetched less than `ttl` ago.
    pub(crate) fn fresh(&self, reference: &str, ttl: Duration) -> Option<SecretString> {
        self.usable(reference, ttl)
    }

    /// The last good value, if fetched less than `ttl` ago (the failure TTL).
    pub(crate) fn usable(&self, reference: &str, ttl: Duration) -> Option<SecretString> {
        let values = self.values();
        let (value, at) = values.get(reference)?;
        (at.elapsed() < ttl).then(|| value.clone())
    }

    pub(crate) fn put(&self, reference: &str, value: SecretString) {
        self.values()
            .insert(reference.to_owned(), (value, Instant::now()));
    }

    /// Held while fetching `reference`: others wait, then read the cache.
    pub(crate) async fn flight(&self, reference: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            flights.retain(|_, l| Arc::strong_count(l) > 1);
            flights
                .entry(reference.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test(start_paused = true)]
    async fn a_value_is_fresh_for_its_cache_ttl_and_usable_for_its_failure_ttl() {
        let cache = Cache::default();
        cache.put("vault://s/a#k", SecretString::from("v1".to_owned()));
        let (cache_ttl, failure_ttl) = (Duration::from_secs(300), Duration::from_secs(3600));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(
            cache
                .fresh("vault://s/a#k", cache_ttl)
                .expect("fresh")
                .expose_secret(),
            "v1"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.fresh("vault://s/a#k", cache_ttl).is_none());
        assert!(cache.usable("vault://s/a#k", failure_ttl).is_some());
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(cache.usable("vault://s/a#k", failure_ttl).is_none());
        assert!(cache.usable("vault://s/other#k", failure_ttl).is_none());
    }
}
