//! The request audit writer: the proxy appends each event, already serialized, to one
//! shared buffer; a thread of its own stores the buffer every few milliseconds as one
//! vault row.
//!
//! Why not a channel of records: each record was a handful of heap allocations made on a
//! proxy thread and freed on the writer's, and each send woke the writer. Here an event
//! costs one copy into a buffer whose capacity is reused; the writer is woken once per
//! batch, when the buffer stops being empty.

use std::cell::RefCell;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use egret_metrics::Counter;

use super::{RETENTION, Unnumbered, push_line};
use crate::db::Vault;

/// Events waiting for the writer; beyond this they are dropped (and counted) rather
/// than slow the proxy down.
const QUEUE: usize = 10_000;
/// This many waiting events are written at once, without waiting for more.
const BATCH: usize = 4096;
/// How often request events are synced to disk: a crash loses at most this much of
/// them (never a connection or token change: those sync on every commit).
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Queues request audit events for the vault; cloning shares the one writer thread,
/// which ends (after a last write) when the last clone is dropped.
#[derive(Clone)]
pub struct AuditWriter {
    shared: Arc<Shared>,
    _last: Arc<Closer>,
    /// The metrics registry's `egret_audit_dropped_total`.
    dropped: Counter,
    /// The vault's clock, for each event's time.
    clock: egret_clock::Clock,
}

struct Shared {
    pending: Mutex<Pending>,
    /// The writer waits here for events, a flush or the end.
    work: Condvar,
    /// Flushes wait here for their ticket to be written.
    written: Condvar,
}

#[derive(Default)]
struct Pending {
    /// Events as JSON lines, without sequence numbers.
    lines: Vec<u8>,
    count: usize,
    /// Flush tickets handed out, and the newest one whose events are stored.
    flush_asked: u64,
    flush_done: u64,
    closed: bool,
}

impl Pending {
    fn flush_waiting(&self) -> bool {
        self.flush_asked > self.flush_done
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Dropped with the last [`AuditWriter`] clone: tells the thread to write and stop.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.work.notify_one();
    }
}

thread_local! {
    /// Each proxy thread serializes its events here, outside the lock.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl AuditWriter {
    pub fn start(vault: Arc<Vault>, dropped: Counter) -> Self {
        let gather = vault.store.audit_gather();
        Self::start_gathering(vault, dropped, gather)
    }

    /// As [`AuditWriter::start`], gathering each batch for `gather` whatever the store says.
    fn start_gathering(vault: Arc<Vault>, dropped: Counter, gather: Duration) -> Self {
        let clock = vault.clock().clone();
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            work: Condvar::new(),
            written: Condvar::new(),
        });
        let theirs = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("egret-audit".to_owned())
            .spawn(move || write_loop(&vault, &theirs, gather));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the audit writer; request events will be dropped");
            shared.lock().closed = true;
        }
        Self {
            _last: Arc::new(Closer(shared.clone())),
            shared,
            dropped,
            clock,
        }
    }

    /// Queues an event (never a secret or a placeholder in `data`); `false` when it had
    /// to be dropped. Never blocks on the vault.
    pub fn record(
        &self,
        event: &str,
        connection: Option<&crate::ConnectionId>,
        data: &(impl serde::Serialize + ?Sized),
    ) -> bool {
        let event = Unnumbered {
            at: self.clock.unix(),
            event,
            connector: connection.map(|c| c.connector.as_str()),
            owner: connection.map(|c| c.owner.as_str()),
            name: connection
                .filter(|c| !c.name.is_default())
                .map(|c| c.name.as_str()),
            detail: None,
            data: Some(data),
            by: None,
        };
        let queued = SCRATCH.with_borrow_mut(|line| {
            line.clear();
            if push_line(line, &event).is_err() {
                return false;
            }
            let mut pending = self.shared.lock();
            if pending.closed || pending.count >= QUEUE {
                return false;
            }
            if !pending.lines.is_empty() {
                pending.lines.push(b'\n');
            }
            pending.lines.extend_from_slice(line);
            pending.count += 1;
            // The writer waits for the first event of a batch, then for a full batch.
            let wake = pending.count == 1 || pending.count == BATCH;
            drop(pending);
            if wake {
                self.shared.work.notify_one();
            }
            true
        });
        if !queued {
            self.dropped.inc();
        }
        queued
    }

    /// Waits (at most `timeout`) until everything queued so far is stored and synced.
    pub fn flush(&self, timeout: Duration) {
        let mut pending = self.shared.lock();
        pending.flush_asked += 1;
        let ticket = pending.flush_asked;
        self.shared.work.notify_one();
        let _stored = self
            .shared
            .written
            .wait_timeout_while(pending, timeout, |p| p.flush_done < ticket && !p.closed);
    }
}

fn write_loop(vault: &Vault, shared: &Shared, gather: Duration) {
    // Swapped with the shared buffer: both keep their capacity from batch to batch.
    let mut batch = Vec::new();
    let mut synced = Instant::now();
    let mut unsynced = false;
    loop {
        let mut pending = shared.lock();
        loop {
            if pending.closed || pending.flush_waiting() || !pending.lines.is_empty() {
                break;
            }
            if !unsynced {
                pending = shared.work.wait(pending).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            let left = SYNC_EVERY.saturating_sub(synced.elapsed());
            if left.is_zero() {
                break;
            }
            pending = shared
                .work
                .wait_timeout(pending, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let hurry = pending.closed || pending.flush_waiting();
        if !hurry && !pending.lines.is_empty() {
            // After the first event of a batch, everything that comes within the store's
            // gathering time (or until a batch is full) is written at once: one vault
            // write per batch, not per request.
            pending = shared
                .work
                .wait_timeout_while(pending, gather, |p| {
                    !(p.closed || p.flush_waiting() || p.count >= BATCH)
                })
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let ticket = pending.flush_asked;
        let flush_waiting = pending.flush_waiting();
        let closing = pending.closed;
        std::mem::swap(&mut pending.lines, &mut batch);
        pending.count = 0;
        drop(pending);

        let wrote = !batch.is_empty();
        let due = flush_waiting || closing || synced.elapsed() >= SYNC_EVERY;
        let durable = due && (unsynced || wrote);
        let stored = if wrote {
            vault.store_lines(&batch, durable, RETENTION).map(|_| ())
        } else if durable {
            // Nothing new, but earlier events wait for their sync.
            vault.store.commit(Vec::new()).map_err(Into::into)
        } else {
            Ok(())
        };
        batch.clear();
        match stored {
            Ok(()) if durable => (synced, unsynced) = (Instant::now(), false),
            Ok(()) => unsynced |= wrote,
            Err(e) => tracing::error!(error = %e, "audit events could not be written"),
        }
        let mut pending = shared.lock();
        pending.flush_done = pending.flush_done.max(ticket);
        drop(pending);
        shared.written.notify_all();
        if closing {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    #[test]
    fn queued_events_are_numbered_stored_and_readable_after_a_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = Arc::new(
            Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("open"),
        );
        vault
            .audit("policy.reload", None, None, None)
            .expect("audit");
        let dropped = Counter::default();
        let writer = AuditWriter::start(vault.clone(), dropped.clone());
        let conn =
            crate::ConnectionId::default_of("openai", &crate::Owner::parse("org").expect("owner"));
        for i in 0..50 {
            let data = serde_json::json!({ "path": format!("/v1/{i}"), "status": 200 });
            assert!(writer.record("request.swap", Some(&conn), &data));
        }
        writer.flush(Duration::from_secs(5));
        let events = vault
            .audit_since(1, 100, Some("openai"), None)
            .expect("read");
        assert_eq!(events.len(), 50);
        assert_eq!(events[0].seq, 2);
        assert_eq!(events[49].seq, 51);
        assert_eq!(events[49].event, "request.swap");
        assert_eq!(events[49].owner.as_deref(), Some("org"));
        let data = events[49].data.as_ref().expect("data");
        assert_eq!(data["path"], "/v1/49");
        assert_eq!(dropped.get(), 0);
        // A later admin event follows the batch.
        let next = vault
            .audit("policy.reload", None, None, None)
            .expect("audit");
        assert_eq!(next.seq, 52);
    }

    #[test]
    fn a_full_batch_is_written_without_waiting_for_the_gathering_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = Arc::new(
            Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("open"),
        );
        let dropped = Counter::default();
        // Far longer than the test may take: only a full batch gets written.
        let writer =
            AuditWriter::start_gathering(vault.clone(), dropped.clone(), Duration::from_secs(600));
        let data = serde_json::json!({ "status": 200 });
        let stored = || {
            vault
                .audit_since(0, 10_000, None, None)
                .expect("read")
                .len()
        };
        for _ in 0..BATCH - 1 {
            assert!(writer.record("request.swap", None, &data));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(stored(), 0, "a batch short of full waits for its time");
        assert!(writer.record("request.swap", None, &data));
        let deadline = Instant::now() + Duration::from_secs(10);
        while stored() < BATCH && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(stored(), BATCH, "the full batch is written at once");
        assert_eq!(dropped.get(), 0);
    }
}
