//! Background renewal: every round, connections used within the last hour are renewed
//! before they come due (so requests rarely wait for a renewal), and any connection
//! not renewed for a day is renewed so its refresh token does not lapse from disuse.

use std::sync::atomic::Ordering;
use std::time::Duration;

use egret_policy::AuthKind;
use egret_vault::{ConnectionKind, ConnectionStatus};

use super::{Broker, Need};

/// Connections used within this window are renewed ahead of expiry in the background.
const RECENT_USE: i64 = 3600;
/// Idle connections are renewed at least this often so refresh tokens do not lapse.
pub(super) const KEEPALIVE: i64 = 24 * 3600;

impl Broker {
    /// Renews in the background, every `every`: connections used within the last hour
    /// whose token expires within the skew plus two rounds, and any connection not
    /// renewed for 24 hours. Runs until the future is dropped (egret's stop signal).
    pub async fn renew_in_background(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.renew_due(every).await;
        }
    }

    /// One background round: renews what is due, one connection at a time. `every` is
    /// the time to the next round, which "due" must cover.
    pub async fn renew_due(&self, every: Duration) {
        let policy = self.inner.policy.load_full();
        let now = self.inner.clock.unix();
        let rounds = i64::try_from(every.as_secs().saturating_mul(2)).unwrap_or(i64::MAX);
        for info in self.inner.store.connections() {
            if info.kind != ConnectionKind::Oauth2 || info.status != ConnectionStatus::Connected {
                continue;
            }
            let Some(connector) = policy.connector(&info.connector) else {
                continue;
            };
            let AuthKind::OAuth2(settings) = &connector.auth else {
                continue;
            };
            let skew = i64::try_from(settings.refresh_skew.as_secs()).unwrap_or(i64::MAX);
            let conn = info.id();
            let used = self.slot(&conn).last_used.load(Ordering::Relaxed);
            let renewed = info.refreshed_at.unwrap_or(info.connected_at);
            let need = if now - used < RECENT_USE && info.expires_at.is_some() {
                Need::Ahead(skew.saturating_add(rounds))
            } else if now - renewed >= KEEPALIVE {
                Need::Keepalive
            } else {
                continue;
            };
            if let Err(e) = self.fresh(connector, &conn, need).await {
                tracing::debug!(connection = %conn, error = %e, "background renewal did not succeed");
            }
        }
    }
}
