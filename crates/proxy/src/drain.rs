//! Graceful shutdown of sandbox connections: stop accepting, tell every open connection
//! (outer and intercepted) to finish its in-flight requests and close, wait within a
//! bound.
//!
//! hyper-util's `GracefulShutdown` does this, but its watched connection polls the
//! shutdown signal on every poll of the connection, and that signal is one
//! `tokio::sync::Notify` shared by all connections: a lock every connection takes
//! several times per request, contended across worker threads. Here the signal is
//! registered once per connection and looked at again only after an atomic flag says
//! shutdown has begun.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;

/// Hands out watchers until shutdown starts.
pub(crate) struct Drain {
    /// `None` once shutdown has started: no new connection is watched.
    tx: Mutex<Option<watch::Sender<()>>>,
    started: Arc<AtomicBool>,
}

impl Drain {
    pub(crate) fn new() -> Self {
        Self {
            tx: Mutex::new(Some(watch::channel(()).0)),
            started: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A watcher for a new connection; `None` once shutdown has started.
    pub(crate) fn watcher(&self) -> Option<Watcher> {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let rx = tx.as_ref()?.subscribe();
        Some(Watcher {
            rx,
            started: self.started.clone(),
        })
    }

    /// Connections watched now.
    pub(crate) fn open(&self) -> usize {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        tx.as_ref().map_or(0, watch::Sender::receiver_count)
    }

    /// Tells every watched connection to finish and waits until all have, at most
    /// `bound`; false when some had not.
    pub(crate) async fn shutdown(&self, bound: Duration) -> bool {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(tx) = tx else { return true };
        // The flag first: a connection woken by the signal must see it.
        self.started.store(true, Ordering::Release);
        let _ = tx.send(());
        tokio::time::timeout(bound, tx.closed()).await.is_ok()
    }
}

/// Watches one connection for the shutdown signal.
pub(crate) struct Watcher {
    rx: watch::Receiver<()>,
    started: Arc<AtomicBool>,
}

impl Watcher {
    pub(crate) fn watch<C: GracefulConnection>(self, conn: C) -> Watched<C> {
        let Watcher { mut rx, started } = self;
        Watched {
            conn,
            // Holds the receiver until the connection ends: `shutdown` waits for that.
            signal: Box::pin(async move {
                let _ = rx.changed().await;
                rx
            }),
            started,
            registered: false,
            stopping: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection that finishes gracefully once shutdown starts.
    pub(crate) struct Watched<C> {
        #[pin]
        conn: C,
        signal: Pin<Box<dyn Future<Output = watch::Receiver<()>> + Send>>,
        started: Arc<AtomicBool>,
        // The signal is polled once to register this task, then only after `started`.
        registered: bool,
        stopping: Option<watch::Receiver<()>>,
    }
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let look = !*this.registered || this.started.load(Ordering::Acquire);
        if this.stopping.is_none() && look {
            *this.registered = true;
            if let Poll::Ready(rx) = this.signal.as_mut().poll(cx) {
                *this.stopping = Some(rx);
                this.conn.as_mut().graceful_shutdown();
            }
        }
        this.conn.poll(cx)
    }
}
