//! Delivery: events into the outbox (one delivery per receiver that wants it), then
//! every due delivery sent, signed, and kept until the receiver answers 2xx.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use egret_policy::Webhook;
use egret_vault::OutboxEntry;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::{Event, Webhooks};

/// How long a receiver has to answer one delivery.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a delivery is retried before it is given up.
const GIVE_UP_AFTER: i64 = 24 * 3600;
/// Wait after the n-th failed attempt (the last repeats until the day is over).
const BACKOFF: [i64; 8] = [1, 5, 30, 120, 600, 1800, 3600, 3 * 3600];
/// Deliveries kept at most; beyond, the oldest are dropped (and counted).
const OUTBOX_CAP: usize = 10_000;
/// Deliveries sent at once, and looked at per round.
const IN_FLIGHT: usize = 8;
const PER_ROUND: usize = 200;
/// How often due retries are looked for.
const TICK: Duration = Duration::from_secs(1);

/// A pooled HTTP/1.1 client toward receivers, over TLS when the URL says `https`.
pub(crate) struct Client(
    hyper_util::client::legacy::Client<egret_outbound::HttpsConnector, Full<Bytes>>,
);

impl Client {
    pub(crate) fn new(outbound: &egret_outbound::Outbound) -> Self {
        let use_ = egret_outbound::Use::Webhook;
        let https = outbound.https(use_, outbound.http(use_, ANSWER_TIMEOUT), false);
        Self(
            hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
        )
    }
}

impl Webhooks {
    /// Delivers until `shutdown`: events as they come, retries when due. Events still
    /// queued at shutdown are written to the outbox (and sent by the next start).
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let taken = self.events.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut events) = taken else {
            return;
        };
        self.refresh_pending().await;
        let mut tick = tokio::time::interval(TICK);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                first = events.recv() => {
                    let Some(first) = first else { break };
                    let mut batch = vec![first];
                    while let Ok(more) = events.try_recv() {
                        batch.push(more);
                    }
                    self.enqueue(batch).await;
                    self.deliver_due().await;
                }
                _ = tick.tick() => self.deliver_due().await,
            }
        }
        let mut rest = Vec::new();
        while let Ok(e) = events.try_recv() {
            rest.push(e);
        }
        if !rest.is_empty() {
            self.enqueue(rest).await;
        }
    }

    /// Writes one delivery per receiver that wants each event.
    async fn enqueue(&self, events: Vec<Event>) {
        let policy = self.policy.load_full();
        let now = self.clock.unix();
        let timestamp = time::OffsetDateTime::from_unix_timestamp(now)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let mut entries = Vec::new();
        for e in &events {
            let body = serde_json::json!({
                "type": e.kind.name(),
                "timestamp": timestamp,
                "data": e.data,
            })
            .to_string();
            for w in policy.webhooks.iter().filter(|w| w.wants(e.kind)) {
                entries.push(OutboxEntry {
                    id: message_id(),
                    url: w.url.clone(),
                    event: e.kind.name().to_owned(),
                    body: body.clone(),
                    created_at: now,
                    attempts: 0,
                    next_at: now,
                    last_error: None,
                });
            }
        }
        if entries.is_empty() {
            return;
        }
        let vault = self.vault.clone();
        let written =
            tokio::task::spawn_blocking(move || vault.outbox_push(&entries, OUTBOX_CAP)).await;
        match written {
            Ok(Ok(0)) => {}
            Ok(Ok(dropped)) => {
                for _ in 0..dropped {
                    self.metrics.webhook("dropped");
                }
                tracing::warn!(
                    dropped,
                    "the webhook outbox is full; its oldest deliveries were dropped"
                );
            }
            Ok(Err(e)) => {
                self.metrics.vault_errors.inc();
                tracing::error!(error = %e, "cannot write webhook events to the outbox; they are lost");
            }
            Err(_) => tracing::error!("the outbox write stopped"),
        }
        self.refresh_pending().await;
    }

    /// Sends every delivery that is due, a few at a time.
    async fn deliver_due(&self) {
        let vault = self.vault.clone();
        let now = self.clock.unix();
        // One replica sending at a time (the lease outlives a few ticks): a receiver
        // does not get each delivery once per replica.
        let lead = TICK * 5;
        let due = tokio::task::spawn_blocking(move || {
            if !vault.lead("webhooks", lead)? {
                return Ok(Vec::new());
            }
            vault.outbox_due(now, PER_ROUND)
        });
        let due = match due.await {
            Ok(Ok(due)) => due,
            Ok(Err(e)) if e.is_unavailable() => {
                tracing::debug!(error = %e, "webhook deliveries wait for the vault database");
                return;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the webhook outbox");
                return;
            }
            Err(_) => return,
        };
        if due.is_empty() {
            return;
        }
        futures_util::stream::iter(due)
            .for_each_concurrent(IN_FLIGHT, |(key, entry)| self.attempt(key, entry))
            .await;
        self.refresh_pending().await;
    }

    /// One attempt at one delivery, and what follows from its outcome.
    async fn attempt(&self, key: u64, mut entry: OutboxEntry) {
        let policy = self.policy.load_full();
        let Some(hook) = policy.webhooks.iter().find(|w| w.url == entry.url) else {
            self.finish(
                key,
                &entry,
                Outcome::Dropped("the receiver is no longer in the policy"),
            )
            .await;
            return;
        };
        entry.attempts = entry.attempts.saturating_add(1);
        match self.send(hook, &entry).await {
            Ok(()) => self.finish(key, &entry, Outcome::Delivered).await,
            Err(why) => {
                let now = self.clock.unix();
                if now.saturating_sub(entry.created_at) >= GIVE_UP_AFTER {
                    entry.last_error = Some(why);
                    self.finish(key, &entry, Outcome::Dropped("not delivered within a day"))
                        .await;
                    return;
                }
                let step = usize::try_from(entry.attempts).unwrap_or(usize::MAX);
                let wait = BACKOFF[step.saturating_sub(1).min(BACKOFF.len() - 1)];
                entry.next_at = now.saturating_add(wait);
                entry.last_error = Some(why.clone());
                self.metrics.webhook("failed");
                tracing::info!(
                    event = %entry.event, receiver = %egret_policy::shown_url(&entry.url), attempt = entry.attempts,
                    retry_in_secs = wait, error = %why, "webhook delivery failed; retrying"
                );
                let detail = format!(
                    "{} to {}: attempt {} failed ({why}); retry in {wait}s",
                    entry.event,
                    egret_policy::shown_url(&entry.url),
                    entry.attempts
                );
                self.store(key, Some(entry), "webhook.failed", detail).await;
            }
        }
    }

    /// Signs and sends one attempt; `Err` says why it did not take.
    async fn send(&self, hook: &Webhook, entry: &OutboxEntry) -> Result<(), String> {
        let secret = match hook.secret.read() {
            Ok(Some(s)) => s,
            Ok(None) => return Err(format!("its secret {} does not resolve", hook.secret)),
            Err(e) => return Err(format!("its secret {} cannot be read: {e}", hook.secret)),
        };
        let key = crate::sign::key(&secret);
        // Signed at each attempt: receivers refuse timestamps older than a few minutes.
        let timestamp = self.clock.unix();
        let signature = crate::sign::signature(&key, &entry.id, timestamp, &entry.body);
        let request = http::Request::post(&entry.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("egret/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", &entry.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(entry.body.clone())))
            .map_err(|e| format!("the receiver's URL is not usable: {e}"))?;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, async {
            let resp = self
                .client
                .0
                .request(request)
                .await
                .map_err(|e| innermost(&e))?;
            let status = resp.status();
            // Read (a bounded amount of) the answer so the connection can be reused.
            let _ = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
                .collect()
                .await;
            Ok::<_, String>(status)
        })
        .await
        .map_err(|_| format!("no answer within {}s", ANSWER_TIMEOUT.as_secs()))??;
        if answer.is_success() {
            Ok(())
        } else {
            Err(format!("answered HTTP {}", answer.as_u16()))
        }
    }

    async fn finish(&self, key: u64, entry: &OutboxEntry, outcome: Outcome) {
        let receiver = egret_policy::shown_url(&entry.url);
        match outcome {
            Outcome::Delivered => {
                self.metrics.webhook("delivered");
                tracing::debug!(event = %entry.event, %receiver, "webhook delivered");
                let detail = format!(
                    "{} to {receiver} after {} attempt(s)",
                    entry.event, entry.attempts
                );
                self.store(key, None, "webhook.delivered", detail).await;
            }
            Outcome::Dropped(why) => {
                self.metrics.webhook("dropped");
                tracing::warn!(event = %entry.event, %receiver, why, last_error = ?entry.last_error, "webhook delivery given up");
                let detail = format!(
                    "{} to {receiver}: {why}; last error: {}",
                    entry.event,
                    entry.last_error.as_deref().unwrap_or("none")
                );
                self.store(key, None, "webhook.dropped", detail).await;
            }
        }
    }

    /// Writes an attempt's outcome to the outbox and the audit log.
    async fn store(&self, key: u64, keep: Option<OutboxEntry>, event: &str, detail: String) {
        let vault = self.vault.clone();
        let event = event.to_owned();
        let done = tokio::task::spawn_blocking(move || {
            vault.outbox_update(key, keep.as_ref())?;
            vault.audit(&event, None, None, Some(detail)).map(drop)
        })
        .await;
        if let Ok(Err(e)) = done {
            self.metrics.vault_errors.inc();
            tracing::error!(error = %e, "cannot record a webhook delivery's outcome");
        }
    }

    async fn refresh_pending(&self) {
        let vault = self.vault.clone();
        if let Ok(Ok(n)) = tokio::task::spawn_blocking(move || vault.outbox_len()).await {
            self.metrics
                .webhook_pending
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

enum Outcome {
    Delivered,
    Dropped(&'static str),
}

/// `msg_` and 24 random letters and digits: the same on every attempt of a delivery.
fn message_id() -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("msg_{tail}")
}

/// The innermost cause, which names what actually failed (refused, TLS, DNS).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
