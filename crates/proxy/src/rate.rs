//! Per-connector rate limits (`rate_limit: {requests, per}`): a token bucket per
//! connector that holds `requests` and refills evenly over `per`. A request over the
//! limit is answered 429 `rate_limited` with `retry-after`, never queued.
//!
//! Hand-written rather than `governor`: one bucket per connector behind one mutex is
//! a few lines, and the crate would bring its clock and lock dependencies for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use egret_policy::RateLimit;

#[derive(Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// Takes one request from `connector`'s bucket, or says how long until one is free.
    pub(crate) fn take(
        &self,
        connector: &str,
        limit: RateLimit,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = f64::from(limit.requests);
        let bucket = buckets.entry(connector.to_owned()).or_insert(Bucket {
            limit,
            tokens: capacity,
            last: now,
        });
        // A reload may have changed the limit: keep what is left, within the new size.
        if bucket.limit != limit {
            bucket.limit = limit;
            bucket.tokens = bucket.tokens.min(capacity);
        }
        let per_second = capacity / limit.per.as_secs_f64();
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_evenly() {
        let limiter = RateLimiter::default();
        let limit = RateLimit {
            requests: 3,
            per: Duration::from_secs(3),
        };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("c", limit, t0).is_ok());
        }
        let wait = limiter.take("c", limit, t0).expect_err("over the limit");
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        // Another connector has its own bucket.
        assert!(limiter.take("d", limit, t0).is_ok());
        assert!(
            limiter
                .take("c", limit, t0 + Duration::from_secs(1))
                .is_ok()
        );
        assert!(
            limiter
                .take("c", limit, t0 + Duration::from_secs(1))
                .is_err()
        );
    }
}
