//! The proxy's threads: one single-threaded event loop per worker, each accepting from
//! the one listening socket and keeping every task of its connections on its own
//! thread — the sandbox connection, the intercepted TLS inside it, and the pooled
//! upstream connections its requests use (each worker has its own pool).
//!
//! Why not one multi-threaded runtime: there a request's tasks land on whichever worker
//! is free — the sandbox connection on one, the pooled upstream connection on the
//! other — and every hop is a wake-up across cores. On 2 cores shared with the
//! sandboxes that cost a fifth of one keep-alive connection's throughput (measured with
//! `../shared/bench/`, see the README's operations section). Connections spread over the
//! workers instead: every worker waits on the socket, and the one that accepts a
//! connection keeps it when no other worker has fewer open, else hands it over. The
//! kernel alone would not spread them: the first worker awake accepts a whole burst.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, warn};

use crate::Proxy;

/// Serves the proxy on `listener` with `workers` threads until `stop` turns true, then
/// waits for every worker to drain (each within `limits.drain_timeout`).
pub async fn serve(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    workers: NonZeroUsize,
    stop: watch::Receiver<bool>,
) {
    let listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            error!(error = %e, "cannot hand the proxy socket to the worker threads");
            return;
        }
    };
    let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..workers.get())
        .map(|_| mpsc::unbounded_channel())
        .unzip();
    let balance = Arc::new(Balance {
        open: (0..workers.get()).map(|_| AtomicUsize::new(0)).collect(),
        inboxes: inboxes.into(),
    });
    let mut finished = Vec::with_capacity(workers.get());
    for (index, inbox) in receivers.into_iter().enumerate() {
        let worker = Worker {
            index,
            balance: balance.clone(),
            inbox,
        };
        match start(&proxy, &listener, worker, stop.clone()) {
            Ok(done) => finished.push(done),
            Err(e) => error!(worker = index, error = %e, "cannot start a proxy worker thread"),
        }
    }
    if finished.is_empty() {
        error!("no proxy worker thread is running; the proxy port accepts nothing");
    }
    drop(listener);
    for done in finished {
        // An error here means the worker ended without saying so: it panicked.
        if done.await.is_err() {
            warn!("a proxy worker thread ended abnormally");
        }
    }
}

/// Starts `worker` on its own thread with its own copy of the listening socket; the
/// receiver resolves when the worker has drained.
fn start(
    proxy: &Proxy,
    listener: &std::net::TcpListener,
    worker: Worker,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<oneshot::Receiver<()>> {
    let index = worker.index;
    let listener = listener.try_clone()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let proxy = Arc::new(proxy.for_worker());
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("egret-proxy-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                // Registers this copy of the socket with this thread's event loop.
                match TcpListener::from_std(listener) {
                    Ok(listener) => {
                        let stopped = async move {
                            let _ = stop.wait_for(|s| *s).await;
                        };
                        crate::server::serve(proxy, listener, worker, stopped).await;
                    }
                    Err(e) => error!(worker = index, error = %e, "proxy worker cannot listen"),
                }
            });
            // Ends the connections' leftover tasks (pooled upstream connections) here,
            // before saying done; a vault write still running gets a moment to finish.
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            let _ = done.send(());
        })?;
    Ok(finished)
}

/// What the workers know of each other: how many connections each serves, and where to
/// hand one over.
struct Balance {
    open: Box<[AtomicUsize]>,
    inboxes: Box<[mpsc::UnboundedSender<Handed>]>,
}

/// One worker's place among the others.
pub(crate) struct Worker {
    index: usize,
    balance: Arc<Balance>,
    /// Connections other workers accepted and handed to this one.
    pub(crate) inbox: mpsc::UnboundedReceiver<Handed>,
}

impl Worker {
    /// Decides who serves a connection this worker accepted: this worker, unless
    /// another has fewer open connections. `Some` when it stays here.
    pub(crate) fn place(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(TcpStream, SocketAddr, Load)> {
        let open = &self.balance.open;
        let mine = open[self.index].load(Ordering::Relaxed);
        let least = (0..open.len())
            .map(|i| (open[i].load(Ordering::Relaxed), i))
            .min()
            .filter(|&(n, _)| n < mine);
        let Some((_, least)) = least else {
            return Some((stream, peer, self.load(self.index)));
        };
        // Off this thread's event loop; the other worker registers it with its own.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                debug!(%peer, error = %e, "cannot hand a connection to another worker");
                return None;
            }
        };
        let handed = Handed {
            stream,
            peer,
            load: self.load(least),
        };
        // A worker that has ended (shutdown, or a panic) takes nothing: serve it here.
        let mpsc::error::SendError(back) = self.balance.inboxes[least].send(handed).err()?;
        let Handed { stream, peer, .. } = back;
        match TcpStream::from_std(stream) {
            Ok(stream) => Some((stream, peer, self.load(self.index))),
            Err(e) => {
                debug!(%peer, error = %e, "cannot take a connection back");
                None
            }
        }
    }

    fn load(&self, index: usize) -> Load {
        self.balance.open[index].fetch_add(1, Ordering::Relaxed);
        Load {
            balance: self.balance.clone(),
            index,
        }
    }
}

/// A connection on its way from the worker that accepted it to the one that serves it.
pub(crate) struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    load: Load,
}

impl Handed {
    /// Registers the connection with the receiving worker's event loop.
    pub(crate) fn register(self) -> std::io::Result<(TcpStream, SocketAddr, Load)> {
        Ok((TcpStream::from_std(self.stream)?, self.peer, self.load))
    }
}

/// Counts one open connection against a worker while it lives.
pub(crate) struct Load {
    balance: Arc<Balance>,
    index: usize,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.balance.open[self.index].fetch_sub(1, Ordering::Relaxed);
    }
}
