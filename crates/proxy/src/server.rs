//! Accepting sandbox connections and speaking HTTP/1.1 to them as a forward proxy;
//! graceful shutdown that drains in-flight requests within a bound.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::Proxy;
use crate::body::ProxyBody;
use crate::drain::Drain;
use crate::idle::{Busy, IdleIo, InFlight, hold};
use crate::refusal::Refusal;
use crate::workers::{Load, Worker};

/// One worker's accept loop: serves the proxy on `listener` until `shutdown` resolves,
/// then stops accepting and waits up to `limits.drain_timeout` for in-flight requests.
/// A connection this worker accepts goes to the least busy worker (`Worker::place`);
/// the ones other workers hand over arrive in `worker`'s inbox.
pub(crate) async fn serve(
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
            && !connection(&proxy, &drain, stream, peer, load)
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

/// Serves one sandbox connection on this worker; false once shutdown has begun.
fn connection(
    proxy: &Arc<Proxy>,
    drain: &Arc<Drain>,
    stream: TcpStream,
    peer: SocketAddr,
    load: Load,
) -> bool {
    let Some(watcher) = drain.watcher() else {
        return false;
    };
    let Ok(permit) = proxy.connections.clone().try_acquire_owned() else {
        proxy.metrics.refusal("too_many_connections");
        tokio::spawn(turn_away(stream));
        return true;
    };
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let proxy = proxy.clone();
    let drain = drain.clone();
    let busy = Busy::default();
    let io = IdleIo::new(stream, proxy.limits.request_head_timeout, busy.clone());
    let held = Arc::new(Held {
        _permit: permit,
        _open: egret_metrics::Open::new(&proxy.metrics.client_connections),
        _load: load,
    });
    tokio::spawn(async move {
        // The auto builder (HTTP/1.1 only here) is the one whose upgradeable
        // connections support graceful shutdown.
        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        // No hyper timer: the request-head timeout lives in `IdleIo`.
        builder
            .http1()
            .max_buf_size(proxy.limits.max_header_bytes.max(8192))
            .max_headers(proxy.limits.max_headers);
        let service = service_fn(move |req| {
            handle(
                proxy.clone(),
                drain.clone(),
                busy.enter(),
                held.clone(),
                req,
            )
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        if let Err(e) = watcher.watch(conn).await {
            debug!(%peer, error = %e, "client connection ended with an error");
        }
    });
    true
}

/// What a sandbox connection holds while it lives: its place under
/// `max_client_connections`, its count in `egret_client_connections` and in its
/// worker's load. A CONNECT tunnel takes a share: the connection's HTTP/1.1 part ends
/// when the tunnel opens, and the tunnel is the same connection.
pub(crate) struct Held {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _open: egret_metrics::Open,
    _load: Load,
}

/// Answers a connection over `max_client_connections` with 503 and closes it. The
/// request is drained briefly first, so the client reads the answer instead of a reset.
async fn turn_away(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let answer = Refusal::too_many_connections().to_http1_bytes();
    let bounded = async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), bounded).await;
}

async fn handle(
    proxy: Arc<Proxy>,
    drain: Arc<Drain>,
    guard: InFlight,
    held: Arc<Held>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    // Where the request was going, for the audit of a refusal.
    let target = json!({ "target": req.uri().authority().map(|a| a.as_str()) });
    let sandbox = match crate::proxy_auth::identify(&proxy, &req) {
        Ok(s) => s,
        Err(refusal) => return Ok(refused(&proxy, refusal, None, target)),
    };
    if req.method() == Method::CONNECT {
        // The guard rides with the tunnel: this connection is busy for the tunnel's life.
        let (shared, who) = (proxy.clone(), sandbox.clone());
        let response = crate::connect::handle(proxy, drain, (guard, held), req, sandbox).await;
        return Ok(response.unwrap_or_else(|refusal| {
            debug!(
                code = refusal.code,
                status = refusal.status.as_u16(),
                "CONNECT refused"
            );
            refused(&shared, refusal, who.as_deref(), target)
        }));
    }
    let response = if req.uri().scheme_str() == Some("http") && req.uri().authority().is_some() {
        crate::plain::forward(&proxy, req).await
    } else if req.uri().scheme_str() == Some("https") {
        Err(Refusal::bad_request(
            "https:// URLs must be sent through a CONNECT tunnel, not as a plain proxy request",
        ))
    } else {
        Err(Refusal::bad_request(
            "this is egret's proxy port and the request names no host",
        ))
    };
    let response = response.unwrap_or_else(|refusal| {
        debug!(
            code = refusal.code,
            status = refusal.status.as_u16(),
            "refused"
        );
        refused(&proxy, refusal, sandbox.as_deref(), target)
    });
    Ok(response.map(|body| hold(body, guard)))
}

/// Every refusal the proxy answers, wherever it is decided: counted, audited (code,
/// status, sandbox and the `context` object: target, or host/method/path) and answered.
pub(crate) fn refused(
    proxy: &Proxy,
    refusal: Refusal,
    sandbox: Option<&str>,
    mut context: serde_json::Value,
) -> Response<ProxyBody> {
    proxy.metrics.refusal(refusal.code);
    if let Some(fields) = context.as_object_mut() {
        fields.insert("code".into(), refusal.code.into());
        fields.insert("status".into(), refusal.status.as_u16().into());
        fields.insert("sandbox".into(), sandbox.into());
    }
    proxy.audit.record("request.refused", None, None, &context);
    refusal.into_response()
}
