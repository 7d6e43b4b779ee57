//! Hearing other replicas' changes: one connection of its own (outside the pool) that
//! `LISTEN`s on [`crate::CHANNEL`], passing each notification to the vault's memory.
//!
//! Notifications sent while that connection is down are lost: after reconnecting, the
//! vault reads everything again. While it is down longer than [`crate::DEAF_BOUND`],
//! [`Hearing::current`] says memory cannot be trusted and the vault reads through to the
//! database. A keepalive query every second finds a connection that died silently.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use egret_vault::store::{ChangeSink, Table};
use futures_util::StreamExt as _;
use tokio_postgres::AsyncMessage;

/// How often the listening connection is checked with a query.
const KEEPALIVE: Duration = Duration::from_secs(1);
/// Waits between reconnection attempts, doubling up to the last.
const RECONNECT: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// Whether this replica hears other replicas' changes, and since when it has not. Read
/// on every proxied request (through `memory_current`): atomics, no lock.
pub struct Hearing {
    /// The listener was started (a one-shot command never starts one).
    watching: AtomicBool,
    listening: AtomicBool,
    /// The last attempt to connect failed: the database is away, and reading through
    /// to it would only make each request wait for the same failure.
    unreachable: AtomicBool,
    /// Milliseconds after `base` since when nothing has been heard (while not listening).
    deaf_since_ms: AtomicU64,
    base: Instant,
    stopped: AtomicBool,
    /// Notifications applied from other replicas.
    pub heard: AtomicU64,
    /// Milliseconds between the newest applied notification's commit and its arrival.
    pub lag_ms: AtomicU64,
    /// Times the listening connection was lost.
    pub lost: AtomicU64,
}

impl Default for Hearing {
    fn default() -> Self {
        Self {
            watching: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            unreachable: AtomicBool::new(false),
            deaf_since_ms: AtomicU64::new(0),
            base: Instant::now(),
            stopped: AtomicBool::new(false),
            heard: AtomicU64::new(0),
            lag_ms: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }
}

impl Hearing {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn deaf_for(&self) -> Duration {
        let since = self.deaf_since_ms.load(Ordering::Acquire);
        Duration::from_millis(self.now_ms().saturating_sub(since))
    }

    /// Whether memory may be trusted: listening, or deaf for less than `bound` (or not
    /// watching at all: a one-shot command reads what it loaded). While the database
    /// cannot be reached at all memory is all there is: nobody can commit a change
    /// there either (a replica cut off alone is the exception the README names).
    pub fn current(&self, bound: Duration) -> bool {
        !self.watching.load(Ordering::Relaxed)
            || self.listening.load(Ordering::Acquire)
            || self.unreachable.load(Ordering::Acquire)
            || self.deaf_for() < bound
    }

    /// Whether the listener is up, for readiness.
    pub fn healthy(&self) -> Result<(), String> {
        if !self.watching.load(Ordering::Relaxed) || self.listening() {
            return Ok(());
        }
        Err(format!(
            "not hearing other replicas' changes for {} s (the listening database connection is down); lookups read through to the database meanwhile",
            self.deaf_for().as_secs()
        ))
    }

    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    fn set(&self, listening: bool) {
        self.watching.store(true, Ordering::Relaxed);
        let was = self.listening.swap(listening, Ordering::AcqRel);
        if !listening && (was || self.deaf_since_ms.load(Ordering::Acquire) == 0) {
            self.deaf_since_ms
                .store(self.now_ms().max(1), Ordering::Release);
        }
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// What one notification says: `origin`, the commit time (ms), and the row, or `*`
/// for "read everything again". Never a value: table names and keys only.
pub(crate) fn payload(origin: &str, row: Option<(Table, &str)>) -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    match row {
        Some((t, k)) => format!("{origin}\t{ms}\t{}\t{k}", t.name()),
        None => format!("{origin}\t{ms}\t*\t"),
    }
}

/// What the applier thread is asked to do.
enum Notice {
    Changed(Table, String),
    Resync,
}

/// Starts the listener on `handle` and the thread that applies what it hears (the
/// vault reads the database synchronously, so not on the runtime's threads).
pub(crate) fn start(
    handle: &tokio::runtime::Handle,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    origin: String,
    hearing: Arc<Hearing>,
    sink: Arc<dyn ChangeSink>,
) {
    hearing.set(false);
    let (tx, rx) = std::sync::mpsc::channel::<Notice>();
    let applier = std::thread::Builder::new()
        .name("egret-changes".to_owned())
        .spawn(move || {
            while let Ok(notice) = rx.recv() {
                match notice {
                    Notice::Changed(table, key) => sink.changed(table, &key),
                    Notice::Resync => sink.resync(),
                }
            }
        });
    if let Err(e) = applier {
        tracing::error!(error = %e, "cannot start the change applier; this replica will read through to the database");
        return;
    }
    handle.spawn(async move {
        let mut attempt = 0usize;
        let mut first = true;
        while !hearing.stopped() {
            match listen_once(&config, &tls, &origin, &hearing, &tx, first).await {
                Ok(()) => attempt = 0,
                Err(e) => {
                    if !first || attempt == 0 {
                        tracing::warn!(error = %e, "the change listener lost the database; reconnecting (lookups read through to the database meanwhile)");
                    }
                }
            }
            first = false;
            hearing.set(false);
            hearing.lost.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(RECONNECT[attempt.min(RECONNECT.len() - 1)]).await;
            attempt += 1;
        }
    });
}

/// One listening connection, until it fails. `Ok` when it had been listening.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    origin: &str,
    hearing: &Hearing,
    tx: &std::sync::mpsc::Sender<Notice>,
    first: bool,
) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(tls.clone())
        .await
        .map_err(|e| e.to_string())?;
    let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message
                && ntx.send(n.payload().to_owned()).is_err()
            {
                break;
            }
        }
    });
    let listened = client
        .batch_execute(&format!("LISTEN {}", crate::CHANNEL))
        .await;
    if let Err(e) = listened {
        driver.abort();
        return Err(e.to_string());
    }
    hearing.set(true);
    // Whatever changed while this replica was not listening was not heard.
    if !first && tx.send(Notice::Resync).is_err() {
        driver.abort();
        return Ok(());
    }
    tracing::info!("listening for other replicas' changes");
    let mut tick = tokio::time::interval(KEEPALIVE);
    let outcome = loop {
        tokio::select! {
            n = nrx.recv() => match n {
                Some(p) => apply(&p, origin, hearing, tx),
                None => break Err("the listening connection closed".to_owned()),
            },
            _ = tick.tick() => {
                if hearing.stopped() {
                    break Ok(());
                }
                let alive = tokio::time::timeout(KEEPALIVE, client.simple_query("SELECT 1")).await;
                if !matches!(alive, Ok(Ok(_))) {
                    break Err("the listening connection stopped answering".to_owned());
                }
            }
        }
    };
    driver.abort();
    outcome
}

/// Passes one notification on, unless this replica sent it.
fn apply(payload: &str, origin: &str, hearing: &Hearing, tx: &std::sync::mpsc::Sender<Notice>) {
    let mut parts = payload.splitn(4, '\t');
    let (Some(from), Some(ms), Some(table), Some(key)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    if from == origin {
        return;
    }
    if let Ok(sent) = ms.parse::<u128>() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let lag = u64::try_from(now.saturating_sub(sent)).unwrap_or(u64::MAX);
        hearing.lag_ms.store(lag, Ordering::Relaxed);
    }
    hearing.heard.fetch_add(1, Ordering::Relaxed);
    let notice = match Table::from_name(table) {
        Some(t) => Notice::Changed(t, key.to_owned()),
        None => Notice::Resync,
    };
    let _ = tx.send(notice);
}
