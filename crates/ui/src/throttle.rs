//! Failed sign-ins per client address: a few a minute, then `429` until the minute is
//! over, so the admin token cannot be guessed at speed from one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed sign-ins one address may make in a window.
pub const FAILURES: u32 = 5;
/// The window, in seconds.
pub const WINDOW: i64 = 60;
/// Addresses remembered at most; beyond, those whose window has passed are forgotten.
const TRACKED: usize = 10_000;

#[derive(Default)]
pub(crate) struct Throttle {
    /// Address -> (when its window started, failures in it).
    failures: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl Throttle {
    /// Seconds `ip` must wait before it may try again (at `now`), if any.
    pub(crate) fn wait(&self, ip: IpAddr, now: i64) -> Option<i64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(&ip) {
            Some(&(start, n)) if n >= FAILURES && now - start < WINDOW => {
                Some(WINDOW - (now - start))
            }
            _ => None,
        }
    }

    /// Counts a failed sign-in from `ip` at `now`.
    pub(crate) fn failed(&self, ip: IpAddr, now: i64) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= TRACKED {
            failures.retain(|_, (start, _)| now - *start < WINDOW);
        }
        let entry = failures.entry(ip).or_insert((now, 0));
        if now - entry.0 >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_five_failures_until_its_minute_is_over() {
        let t = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        for _ in 0..FAILURES {
            assert_eq!(t.wait(a, 100), None);
            t.failed(a, 100);
        }
        assert_eq!(t.wait(a, 100), Some(60));
        assert_eq!(t.wait(a, 130), Some(30));
        assert_eq!(t.wait(b, 130), None, "another address is not held up");
        assert_eq!(t.wait(a, 160), None, "the minute is over");
        t.failed(a, 160);
        assert_eq!(t.wait(a, 160), None, "a new window starts");
    }
}
