//! The audit log: an append-only table of decisions and changes, bounded in count and
//! age, each event also written as one JSON line on the `audit` tracing target (debug
//! level).
//! [`AuditWriter`] takes the proxy's per-request events off the hot path and writes them
//! in batches.

use std::sync::Arc;
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::time::Duration;

use egret_metrics::Counter;
use redb::{ReadableDatabase, ReadableTable};
use serde_json::value::RawValue;

use crate::db::{AUDIT, Vault};
use crate::error::{VaultError, storage};
use crate::records::{AuditEvent, now};

/// How much of the audit log is kept: the newest `keep` events, none older than
/// `max_age_secs`. Older ones are dropped as new ones arrive.
#[derive(Debug, Clone, Copy)]
struct Retention {
    keep: u64,
    max_age_secs: i64,
}

const RETENTION: Retention = Retention {
    keep: 100_000,
    max_age_secs: 30 * 24 * 3600,
};
/// Events waiting for the writer thread; beyond this they are dropped (and counted)
/// rather than slow the proxy down.
const QUEUE: usize = 10_000;
const BATCH: usize = 4096;

/// An event before it has a sequence number and a time.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord {
    pub event: String,
    pub connector: Option<String>,
    pub owner: Option<String>,
    pub detail: Option<String>,
    /// Structured fields of a decision (host, method, status, …), already JSON: the
    /// proxy serializes its typed request event once, where it happens, instead of
    /// building a map to serialize later. Never a secret.
    pub data: Option<Box<RawValue>>,
}

impl AuditRecord {
    /// `fields` as the record's structured data (`None` if it cannot be serialized,
    /// which typed events and JSON values never fail).
    pub fn with_data(mut self, fields: &impl serde::Serialize) -> Self {
        self.data = serde_json::value::to_raw_value(fields).ok();
        self
    }
}

/// An event as it is stored: the fields of [`AuditEvent`], borrowed, with its data
/// copied in as the JSON it already is.
#[derive(serde::Serialize)]
struct Stored<'a> {
    seq: u64,
    at: i64,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connector: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
}

impl Vault {
    /// Appends an audit event. Never pass a secret or a placeholder in `detail`.
    pub fn audit(
        &self,
        event: &str,
        connector: Option<&str>,
        owner: Option<&str>,
        detail: Option<String>,
    ) -> Result<AuditEvent, VaultError> {
        let record = AuditRecord {
            event: event.to_owned(),
            connector: connector.map(str::to_owned),
            owner: owner.map(str::to_owned),
            detail,
            data: None,
        };
        self.append_audit(vec![record])?
            .pop()
            .ok_or_else(|| VaultError::Invalid("audit write produced no event".to_owned()))
    }

    /// Appends events in one durable transaction and applies retention.
    pub fn append_audit(&self, records: Vec<AuditRecord>) -> Result<Vec<AuditEvent>, VaultError> {
        let (first, at) = self.append_audit_kept(&records, true, RETENTION)?;
        Ok(records
            .into_iter()
            .zip(first..)
            .map(|(r, seq)| AuditEvent {
                seq,
                at,
                event: r.event,
                connector: r.connector,
                owner: r.owner,
                detail: r.detail,
                data: r.data.and_then(|raw| serde_json::from_str(raw.get()).ok()),
            })
            .collect())
    }

    /// Writes `records` and applies `retention`; returns the first sequence number
    /// given and the time stamped on them. `durable: false` skips the disk sync: the events reach the disk with the
    /// next durable commit (the request writer's, between its once-a-second syncs).
    fn append_audit_kept(
        &self,
        records: &[AuditRecord],
        durable: bool,
        retention: Retention,
    ) -> Result<(u64, i64), VaultError> {
        let _w = self.lock_writer();
        let at = now();
        let mut row = Vec::with_capacity(records.len() * 256);
        let mut first = 0;
        self.write_with(durable, |tx| {
            let mut table = tx.open_table(AUDIT).map_err(storage)?;
            let mut seq = table.last().map_err(storage)?.map_or(0, |(k, _)| k.value());
            first = seq + 1;
            for r in records {
                seq += 1;
                let stored = Stored {
                    seq,
                    at,
                    event: &r.event,
                    connector: r.connector.as_deref(),
                    owner: r.owner.as_deref(),
                    detail: r.detail.as_deref(),
                    data: r.data.as_deref(),
                };
                if !row.is_empty() {
                    row.push(b'\n');
                }
                serde_json::to_writer(&mut row, &stored)
                    .map_err(|e| VaultError::Invalid(e.to_string()))?;
            }
            if !row.is_empty() {
                table.insert(seq, row.as_slice()).map_err(storage)?;
            }
            // Retention: the oldest rows past the count, then those past the age. Both
            // are a prefix of the table (sequence numbers grow with time), dropped in one
            // cursor pass. Whole rows go, so up to a batch more than `keep` may stay.
            let mut last_doomed = seq.checked_sub(retention.keep);
            let cutoff = at - retention.max_age_secs;
            let start = last_doomed.map_or(0, |k| k + 1);
            for stored in table.range(start..).map_err(storage)?.take(64) {
                let (k, v) = stored.map_err(storage)?;
                let newest = v.value().rsplit(|b| *b == b'\n').next().unwrap_or_default();
                if !serde_json::from_slice::<AuditAt>(newest).is_ok_and(|e| e.at < cutoff) {
                    break;
                }
                last_doomed = Some(k.value());
            }
            // The newest row always stays: the next sequence number follows it.
            if let Some(last) = last_doomed.map(|k| k.min(seq.saturating_sub(1))) {
                table.retain_in(..=last, |_, _| false).map_err(storage)?;
            }
            Ok(())
        })?;
        // Opt-in (`EGRET_LOG=info,audit=debug`): at the default level a line per request
        // would double the log volume of a busy proxy. The vault keeps every event anyway.
        if tracing::enabled!(target: "audit", tracing::Level::DEBUG) {
            for line in row.split(|b| *b == b'\n') {
                tracing::debug!(target: "audit", "{}", String::from_utf8_lossy(line));
            }
        }
        Ok((first, at))
    }

    /// Audit events with `seq > since`, oldest first, at most `limit`, optionally only
    /// those of one connector and/or owner.
    pub fn audit_since(
        &self,
        since: u64,
        limit: usize,
        connector: Option<&str>,
        owner: Option<&str>,
    ) -> Result<Vec<AuditEvent>, VaultError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(AUDIT).map_err(storage)?;
        let mut out = Vec::new();
        // A row's key is its newest event, so the first row past `since` may still
        // hold older ones.
        'rows: for stored in table.range(since.saturating_add(1)..).map_err(storage)? {
            let (k, v) = stored.map_err(storage)?;
            for line in v.value().split(|b| *b == b'\n') {
                if out.len() >= limit {
                    break 'rows;
                }
                let e: AuditEvent = serde_json::from_slice(line)
                    .map_err(|_| VaultError::Corrupt(format!("audit/{}", k.value())))?;
                if e.seq <= since
                    || connector.is_some_and(|c| e.connector.as_deref() != Some(c))
                    || owner.is_some_and(|o| e.owner.as_deref() != Some(o))
                {
                    continue;
                }
                out.push(e);
            }
        }
        Ok(out)
    }
}

/// Just the time of a stored event, for the age check.
#[derive(serde::Deserialize)]
struct AuditAt {
    at: i64,
}

enum Msg {
    Event(AuditRecord),
    Flush(SyncSender<()>),
}

/// Writes audit events from the proxy in batches on a thread of its own: `record` never
/// blocks; when the queue is full the event is dropped and counted.
#[derive(Clone)]
pub struct AuditWriter {
    tx: SyncSender<Msg>,
    /// The metrics registry's `egret_audit_dropped_total`.
    dropped: Counter,
}

impl AuditWriter {
    pub fn start(vault: Arc<Vault>, dropped: Counter) -> Self {
        let (tx, rx) = sync_channel(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("egret-audit".to_owned())
            .spawn(move || write_loop(&vault, &rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the audit writer; request events will be dropped");
        }
        Self { tx, dropped }
    }

    /// Queues an event; `false` when it had to be dropped.
    pub fn record(&self, record: AuditRecord) -> bool {
        match self.tx.try_send(Msg::Event(record)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.inc();
                false
            }
        }
    }

    /// Waits (at most `timeout`) until everything queued so far is written.
    pub fn flush(&self, timeout: Duration) {
        let (ack, done) = sync_channel(1);
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(timeout);
        }
    }
}

/// How often the request writer syncs to disk: a crash loses at most this much of the
/// per-request events (never a connection or token change: those sync on every commit).
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// After the first event of a batch the writer sleeps this long, then takes everything
/// queued meanwhile. Sleeping, it is not waiting on the channel, so the events that
/// arrive cost the proxy no wake-up of this thread: one wake-up per batch, not per
/// request (waking per event cost a busy proxy about a tenth of its CPU).
const GATHER: Duration = Duration::from_millis(20);

fn write_loop(vault: &Vault, rx: &Receiver<Msg>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    let mut synced = std::time::Instant::now();
    // Written since the last sync: the sync comes at most SYNC_EVERY later, even if no
    // event follows.
    let mut unsynced = false;
    // A full batch means more is waiting: take it without sleeping first.
    let mut behind = false;
    let push = |m: Msg, batch: &mut Vec<AuditRecord>, acks: &mut Vec<SyncSender<()>>| match m {
        Msg::Event(r) => batch.push(r),
        Msg::Flush(ack) => acks.push(ack),
    };
    loop {
        let first = if unsynced {
            match rx.recv_timeout(SYNC_EVERY.saturating_sub(synced.elapsed())) {
                Ok(m) => m,
                Err(timeout_or_gone) => {
                    match vault.write_with(true, |_| Ok(())) {
                        Ok(()) => (synced, unsynced) = (std::time::Instant::now(), false),
                        Err(e) => tracing::error!(error = %e, "audit events could not be synced"),
                    }
                    if timeout_or_gone == RecvTimeoutError::Disconnected {
                        return;
                    }
                    continue;
                }
            }
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => return,
            }
        };
        push(first, &mut batch, &mut acks);
        if acks.is_empty() && !behind {
            std::thread::sleep(GATHER);
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => push(m, &mut batch, &mut acks),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        behind = batch.len() >= BATCH;
        let durable = !acks.is_empty() || synced.elapsed() >= SYNC_EVERY;
        if !batch.is_empty() {
            let written = vault.append_audit_kept(&batch, durable, RETENTION);
            batch.clear();
            match written {
                Ok(_) if durable => (synced, unsynced) = (std::time::Instant::now(), false),
                Ok(_) => unsynced = true,
                Err(e) => tracing::error!(error = %e, "audit events could not be written"),
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    fn events(n: usize) -> Vec<AuditRecord> {
        (0..n)
            .map(|i| AuditRecord {
                event: format!("test.{i}"),
                ..AuditRecord::default()
            })
            .collect()
    }

    fn kept(v: &Vault) -> Vec<u64> {
        let all = v.audit_since(0, 1000, None, None).expect("read");
        all.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn retention_keeps_the_newest_by_count_and_drops_those_past_the_age() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("open");
        let five = Retention {
            keep: 5,
            max_age_secs: 3600,
        };
        for _ in 0..3 {
            v.append_audit_kept(&events(4), false, five)
                .expect("append");
        }
        // A batch is one row and goes whole: at least the newest five stay.
        assert_eq!(kept(&v), (5..=12).collect::<Vec<_>>());
        // Sequence numbers go on from the newest kept, never reused.
        v.append_audit_kept(&events(1), true, five).expect("append");
        assert_eq!(kept(&v), vec![9, 10, 11, 12, 13]);
        // Reading from the middle of a row starts after `since`.
        let after = v.audit_since(10, 2, None, None).expect("read");
        assert_eq!(
            after.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![11, 12]
        );
        // Everything is past an age below zero, whatever the count allows, but the
        // newest stays so that sequence numbers never start over.
        let expired = Retention {
            keep: 1000,
            max_age_secs: -1,
        };
        v.append_audit_kept(&events(1), true, expired)
            .expect("append");
        assert_eq!(kept(&v), vec![14]);
    }
}
