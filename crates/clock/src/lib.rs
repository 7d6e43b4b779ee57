//! Time, as every part of egret reads it: unix seconds for what expires (placeholders,
//! sandboxes, tokens, pending authorizations) and a monotonic instant from
//! `tokio::time` for what waits (backoff, rate buckets, the leaf cache, timeouts).
//!
//! One [`Clock`] is made at start and handed to everything that expires or backs off,
//! so a test can run egret on a paused tokio clock and advance it instead of sleeping.
//! It owns nothing else, and it must not depend on any other egret crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Where egret reads the time. Cheap to clone; clones read the same time.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system's wall clock. `Some`: a test clock.
    test: Option<Arc<TestClock>>,
}

/// Unix seconds that follow tokio's clock from the moment the clock was made (so
/// `tokio::time::pause` / `advance` move them too), plus what a test skipped.
#[derive(Debug)]
struct TestClock {
    origin_unix: i64,
    origin: Instant,
    skipped: AtomicI64,
}

impl Clock {
    /// The wall clock for unix seconds and tokio's clock for instants: what ships.
    pub fn system() -> Self {
        Self { test: None }
    }

    /// A clock for tests: unix seconds start at the wall clock's and then move only with
    /// tokio's clock (paused and advanced by the test) and with [`Clock::skip`].
    pub fn for_tests() -> Self {
        Self {
            test: Some(Arc::new(TestClock {
                origin_unix: wall_unix(),
                origin: Instant::now(),
                skipped: AtomicI64::new(0),
            })),
        }
    }

    /// Now, in unix seconds: the unit of every timestamp egret stores.
    pub fn unix(&self) -> i64 {
        match &self.test {
            None => wall_unix(),
            Some(t) => {
                let elapsed = Instant::now().saturating_duration_since(t.origin).as_secs();
                t.origin_unix
                    .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
                    .saturating_add(t.skipped.load(Ordering::Relaxed))
            }
        }
    }

    /// Now, in unix milliseconds: for signatures that carry a timestamp (HMAC). A test
    /// clock gives its seconds, times 1000.
    pub fn unix_ms(&self) -> i64 {
        match &self.test {
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Some(_) => self.unix().saturating_mul(1000),
        }
    }

    /// Now, as a monotonic instant (tokio's: it pauses with the runtime's clock).
    pub fn instant(&self) -> Instant {
        Instant::now()
    }

    /// Moves a test clock's unix seconds forward by `by` without waiting: for tests
    /// whose other party (a real OAuth server in another process) cannot share a paused
    /// clock. Does nothing on the system clock.
    pub fn skip(&self, by: Duration) {
        if let Some(t) = &self.test {
            let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
            t.skipped.fetch_add(secs, Ordering::Relaxed);
        }
    }
}

fn wall_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_test_clock_follows_paused_tokio_time_and_skips() {
        let clock = Clock::for_tests();
        let start = clock.unix();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.unix(), start + 90);
        clock.skip(Duration::from_secs(10));
        assert_eq!(
            clock.clone().unix(),
            start + 100,
            "clones read the same time"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_system_clock_ignores_paused_time_and_skips() {
        let clock = Clock::system();
        let start = clock.unix();
        tokio::time::advance(Duration::from_secs(3600)).await;
        clock.skip(Duration::from_secs(3600));
        assert!(clock.unix() - start < 5);
    }
}
