//! The proxy's threads: one single-threaded event loop per worker, each accepting from
//! the one listening socket and keeping every task of its connections on its own
//! thread — the sandbox connection, the intercepted TLS inside it, and the pooled
//! upstream connections its requests use (each worker has its own pool).
//!
//! Why not one multi-threaded runtime: there a request's tasks land on whichever worker
//! is free — the sandbox connection on one, the pooled upstream connection on the
//! other — and every hop is a wake-up across cores. On 2 cores shared with the
//! sandboxes that cost a fifth of one keep-alive connection's throughput (the README's
//! "Worker threads" has the figures). Connections spread over the workers instead:
//! every worker waits on the socket, and the one that accepts a connection keeps it
//! when no other worker has fewer open, else hands it over. The kernel alone would not
//! spread them: the first worker awake accepts a whole burst.
//!
//! With zero workers the proxy runs on the caller's runtime instead: one accept loop,
//! no threads of its own (tests that pause tokio's clock use this).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::Proxy;
use crate::drain::Drain;
use crate::guard::{Load, Loads, WorkerLoad};

/// Serves the proxy on `listener` with `workers` threads (none: on the caller's
/// runtime) until `stop` turns true, then waits for every worker to drain (each within
/// `limits.drain_timeout`).
pub async fn serve(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    workers: usize,
    stop: watch::Receiver<bool>,
) {
    if workers == 0 {
        let worker = Worker::alone();
        return accept_loop(proxy, listener, worker, stopped(stop)).await;
    }
    let listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            error!(error = %e, "cannot hand the proxy socket to the worker threads");
            return;
        }
    };
    let (inboxes, receivers): (Vec<_>, Vec<_>) =
        (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
    let balance = Arc::new(Balance {
        loads: Arc::new(Loads::new(workers)),
        inboxes: inboxes.into(),
    });
    let mut finished = Vec::with_capacity(workers);
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

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Starts `worker` on its own thread with its own copy of the listening socket; the
/// receiver resolves when the worker has drained.
fn start(
    proxy: &Proxy,
    listener: &std::net::TcpListener,
    worker: Worker,
    stop: watch::Receiver<bool>,
) -> std::io::Result<oneshot::Receiver<()>> {
    let index = worker.index;
    let listener = listener.try_clone()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let load = WorkerLoad::new(worker.balance.loads.clone(), index);
    let proxy = Arc::new(proxy.for_worker(load));
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("egret-proxy-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                // Registers this copy of the socket with this thread's event loop.
                match TcpListener::from_std(listener) {
                    Ok(listener) => accept_loop(proxy, listener, worker, stopped(stop)).await,
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

/// One worker's accept loop: serves the proxy on `listener` until `shutdown` resolves,
/// then stops accepting and waits up to `limits.drain_timeout` for in-flight requests.
/// A connection this worker accepts goes to the least busy worker ([`Worker::place`]);
/// the ones other workers hand over arrive in the worker's inbox.
async fn accept_loop(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    mut worker: Worker,
    shutdown: impl Future<Output = ()>,
) {
    let drain = Arc::new(Drain::new());
    tokio::pin!(shutdown);
    loop {
        let placed = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => worker.place(stream, peer),
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    None
                }
            },
            Some(handed) = worker.inbox.recv() => match handed.register() {
                Ok(placed) => Some(placed),
                Err(e) => {
                    debug!(error = %e, "cannot take over a connection from another worker");
                    None
                }
            },
            () = &mut shutdown => break,
        };
        if let Some((stream, peer, load)) = placed
            && !crate::connection::serve(&proxy, &drain, stream, peer, load)
        {
            break;
        }
    }
    drop(listener);
    let drain_for = proxy.limits.drain_timeout;
    info!(
        pending = drain.open(),
        "proxy worker stopped accepting; draining in-flight requests"
    );
    if !drain.shutdown(drain_for).await {
        warn!(
            seconds = drain_for.as_secs(),
            "drain timeout reached; closing remaining connections"
        );
    }
}

/// What the workers know of each other: how many connections each serves, and where to
/// hand one over.
struct Balance {
    loads: Arc<Loads>,
    inboxes: Box<[mpsc::UnboundedSender<Handed>]>,
}

/// One worker's place among the others.
struct Worker {
    index: usize,
    balance: Arc<Balance>,
    /// Connections other workers accepted and handed to this one.
    inbox: mpsc::UnboundedReceiver<Handed>,
}

impl Worker {
    /// The only worker, on the caller's runtime: nobody to hand connections to.
    fn alone() -> Self {
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        Self {
            index: 0,
            balance: Arc::new(Balance {
                loads: Arc::new(Loads::new(1)),
                inboxes: Box::new([inbox_tx]),
            }),
            inbox,
        }
    }

    /// Decides who serves a connection this worker accepted: this worker, unless
    /// another has fewer open connections. `Some` when it stays here.
    fn place(&self, stream: TcpStream, peer: SocketAddr) -> Option<(TcpStream, SocketAddr, Load)> {
        let loads = &self.balance.loads;
        let Some(least) = loads.lighter_than(self.index) else {
            return Some((stream, peer, loads.add(self.index)));
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
            load: loads.add(least),
        };
        // A worker that has ended (shutdown, or a panic) takes nothing: serve it here.
        let mpsc::error::SendError(back) = self.balance.inboxes[least].send(handed).err()?;
        let Handed { stream, peer, .. } = back;
        match TcpStream::from_std(stream) {
            Ok(stream) => Some((stream, peer, loads.add(self.index))),
            Err(e) => {
                debug!(%peer, error = %e, "cannot take a connection back");
                None
            }
        }
    }
}

/// A connection on its way from the worker that accepted it to the one that serves it.
struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    load: Load,
}

impl Handed {
    /// Registers the connection with the receiving worker's event loop.
    fn register(self) -> std::io::Result<(TcpStream, SocketAddr, Load)> {
        Ok((TcpStream::from_std(self.stream)?, self.peer, self.load))
    }
}
