//! What a connection's listing says about its health, kept beside its renewal state:
//! whether renewal is failing (and why, and when egret tries again), when a request last
//! used it, and its requests and upstream error answers over the last 24 hours.

use std::sync::atomic::Ordering;

use egret_vault::{ConnectionId, ConnectionInfo, ConnectionStatus};
use serde::Serialize;

use super::Broker;

/// The window the request counts cover.
const WINDOW_HOURS: usize = 24;

/// A connection's health as the control plane lists it. Never a secret: `last_error` is
/// the renewal's error text with every token of the connection taken out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// The last renewal failed for a passing reason (network, timeout, 5xx, 429) and
    /// none has succeeded since: egret keeps retrying.
    pub refresh_failing: bool,
    pub last_error: Option<String>,
    /// Unix seconds: when egret may next ask the vendor (while `refresh_failing`).
    pub next_retry_at: Option<i64>,
    /// Unix seconds: the last request that carried the connection's credential.
    pub last_used_at: Option<i64>,
    /// Requests that carried the credential, over the last 24 hours.
    pub requests_24h: u64,
    /// Of those, the answers with a 4xx or 5xx status from the vendor.
    pub upstream_errors_24h: u64,
    /// The last `connection test`: `{at, ok, status}`.
    pub last_test: Option<LastTest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastTest {
    pub at: i64,
    pub ok: bool,
    pub status: Option<u16>,
}

/// Per-connection counters, in hourly buckets (`hour` is unix seconds / 3600).
#[derive(Default)]
pub(super) struct Tally {
    pub(super) failing: Option<Failing>,
    last_test: Option<LastTest>,
    buckets: [(i64, u32, u32); WINDOW_HOURS],
}

pub(super) struct Failing {
    pub(super) error: String,
    pub(super) next_retry_at: i64,
}

impl Health {
    /// The status a connection is listed with, the same for operators and agents:
    /// `connector_removed` (its connector left the policy and it is kept, refused),
    /// `needs_reauth`, `refresh_failing`, or `connected`.
    pub fn status(&self, info: &ConnectionInfo, connector_removed: bool) -> &'static str {
        if connector_removed {
            "connector_removed"
        } else if info.status == ConnectionStatus::NeedsReauth {
            "needs_reauth"
        } else if self.refresh_failing {
            "refresh_failing"
        } else {
            "connected"
        }
    }
}

impl Tally {
    fn count(&mut self, now: i64, error: bool) {
        let hour = now.div_euclid(3600);
        let slot = &mut self.buckets[usize::try_from(hour.rem_euclid(24)).unwrap_or(0)];
        if slot.0 != hour {
            *slot = (hour, 0, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        slot.2 = slot.2.saturating_add(u32::from(error));
    }

    fn window(&self, now: i64) -> (u64, u64) {
        let hour = now.div_euclid(3600);
        self.buckets
            .iter()
            .filter(|(h, _, _)| hour - h < 24 && *h <= hour)
            .fold((0, 0), |(r, e), (_, rq, er)| {
                (r + u64::from(*rq), e + u64::from(*er))
            })
    }
}

impl Broker {
    /// Counts a request that carried the connection's credential and the status the
    /// vendor answered with.
    pub fn record_use(&self, conn: &ConnectionId, status: u16) {
        let now = self.inner.clock.unix();
        let slot = self.slot(conn);
        slot.last_used.store(now, Ordering::Relaxed);
        slot.tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .count(now, status >= 400);
    }

    /// Keeps the outcome of a connection test for the listing.
    pub fn record_test(&self, conn: &ConnectionId, ok: bool, status: Option<u16>) {
        let at = self.inner.clock.unix();
        self.slot(conn)
            .tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_test = Some(LastTest { at, ok, status });
    }

    /// The connection's health as this egret has seen it.
    pub fn health(&self, conn: &ConnectionId) -> Health {
        let now = self.inner.clock.unix();
        let slot = self.slot(conn);
        let used = slot.last_used.load(Ordering::Relaxed);
        let tally = slot.tally.lock().unwrap_or_else(|p| p.into_inner());
        let (requests, errors) = tally.window(now);
        Health {
            refresh_failing: tally.failing.is_some(),
            last_error: tally.failing.as_ref().map(|f| f.error.clone()),
            next_retry_at: tally.failing.as_ref().map(|f| f.next_retry_at),
            last_used_at: (used > 0).then_some(used),
            requests_24h: requests,
            upstream_errors_24h: errors,
            last_test: tally.last_test.clone(),
        }
    }
}

/// A vendor's or an error's text fit to show (listings, test answers): control
/// characters dropped first (so none hidden inside a secret can keep it whole past the
/// redaction and then vanish), every form of each of `secrets` taken out
/// (`egret_redact`), at most 300 characters.
pub fn sanitized(text: &str, secrets: &[&str]) -> String {
    let secrets: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
    egret_redact::vendor_text(text, &secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_counts_the_last_24_hours_only() {
        let mut t = Tally::default();
        let start = 1_800_000_000;
        t.count(start, false);
        t.count(start + 10, true);
        t.count(start + 23 * 3600, false);
        assert_eq!(t.window(start + 23 * 3600), (3, 1));
        // A day later the first hour's bucket has left the window, and is reused.
        t.count(start + 24 * 3600, false);
        assert_eq!(t.window(start + 24 * 3600), (2, 0));
    }

    #[test]
    fn an_error_text_loses_the_tokens_and_control_characters_in_it() {
        let s = sanitized(
            "bad refresh token rt-SECRET-1\r\nX: y",
            &["rt-SECRET-1", ""],
        );
        assert_eq!(s, "bad refresh token [redacted]X: y");
        assert_eq!(sanitized(&"x".repeat(400), &[]).chars().count(), 300);
        assert_eq!(
            sanitized("bad token sk-REAL-1\r\nX-Evil: 1", &["sk-REAL-1"]),
            "bad token [redacted]X-Evil: 1"
        );
        // A control character inside the secret does not carry it past the redaction.
        assert_eq!(
            sanitized("token sk-RE\u{7}AL-1 refused", &["sk-REAL-1"]),
            "token [redacted] refused"
        );
    }
}
