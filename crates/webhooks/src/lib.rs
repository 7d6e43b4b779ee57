//! Webhooks: telling the platform what happened to connections.
//!
//! Owns the events (`Event`, and the [`EventSink`] every crate that sees something happen
//! reports through), their signing as the Standard Webhooks specification says (`sign`)
//! and their delivery (`deliver`): each event is written to the vault's outbox, one
//! delivery per receiver that wants it, before anything is sent, and stays there until
//! the receiver answers 2xx — retried with backoff for a day — so a receiver that is down
//! loses nothing. It must never put a secret in an event, a log line or the audit log
//! (events carry ids, statuses and reasons; a receiver's URL is shown without its query).

mod deliver;
mod sign;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use egret_clock::Clock;
use egret_policy::{EventKind, Policy};
use egret_vault::{ConnectionId, Vault};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub use sign::{key as signing_key, signature};

/// Events waiting to be written to the outbox; beyond this they are dropped (counted):
/// `emit` never blocks the request path or a renewal.
const QUEUE: usize = 10_000;

/// Something that happened, for the receivers that want it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    /// The payload's `data`: ids, owner, name, status, reason — never a secret.
    pub data: Value,
}

impl Event {
    /// An event about one connection; `reason` says why, in words.
    pub fn connection(kind: EventKind, conn: &ConnectionId, status: &str, reason: &str) -> Self {
        Self {
            kind,
            data: json!({
                "connector": conn.connector,
                "owner": conn.owner,
                "name": conn.name,
                "status": status,
                "reason": reason,
            }),
        }
    }

    /// A connector and every connection to it are gone.
    pub fn connector_deleted(connector: &str, reason: &str, connections_erased: u64) -> Self {
        Self {
            kind: EventKind::ConnectorDeleted,
            data: json!({
                "connector": connector,
                "status": "deleted",
                "reason": reason,
                "connections_erased": connections_erased,
            }),
        }
    }
}

/// Where crates report what happened. Never blocks.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Reports nowhere: for tests and tools that run without receivers.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _: Event) {}
}

/// The policy's receivers, their outbox in the vault, and the task that delivers it.
pub struct Webhooks {
    policy: Arc<ArcSwap<Policy>>,
    vault: Arc<Vault>,
    metrics: Arc<egret_metrics::Metrics>,
    clock: Clock,
    client: deliver::Client,
    queue: mpsc::Sender<Event>,
    /// Taken by [`Webhooks::run`].
    events: Mutex<Option<mpsc::Receiver<Event>>>,
}

impl Webhooks {
    /// `outbound`: how receivers are reached (`Use::Webhook`: the upstream trust,
    /// `upstream.resolve` honoured like everywhere else).
    pub fn new(
        policy: Arc<ArcSwap<Policy>>,
        vault: Arc<Vault>,
        metrics: Arc<egret_metrics::Metrics>,
        clock: Clock,
        outbound: &egret_outbound::Outbound,
    ) -> Self {
        let (queue, events) = mpsc::channel(QUEUE);
        Self {
            policy,
            vault,
            metrics,
            clock,
            client: deliver::Client::new(outbound),
            queue,
            events: Mutex::new(Some(events)),
        }
    }
}

impl EventSink for Webhooks {
    fn emit(&self, event: Event) {
        let wanted = self
            .policy
            .load()
            .webhooks
            .iter()
            .any(|w| w.wants(event.kind));
        if !wanted {
            return;
        }
        if self.queue.try_send(event).is_err() {
            self.metrics.webhook("dropped");
            tracing::warn!("a webhook event was dropped: the outbox writer is behind");
        }
    }
}
