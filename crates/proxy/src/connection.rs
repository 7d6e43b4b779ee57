//! One sandbox connection: HTTP/1.1 as a forward proxy. A CONNECT goes to `connect`,
//! an absolute-form `http://` request to `plain`; anything else is a `400`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpStream;
use tracing::debug;

use crate::Proxy;
use crate::body::ProxyBody;
use crate::drain::Drain;
use crate::guard::{Held, Load};
use crate::idle::{Busy, IdleIo, InFlight, hold};
use crate::refusal::Refusal;

/// What every request on one sandbox connection needs, held for the connection's life.
pub(crate) struct SandboxConnection {
    /// Everything the proxy's connections share (policy, vault, pools, metrics).
    proxy: Arc<Proxy>,
    /// The worker's shutdown: a tunnel opened on this connection is watched by it too.
    drain: Arc<Drain>,
    /// Requests in flight: the request-head timeout runs only while there are none.
    busy: Busy,
    /// The connection's place under the limits and in the counts; a tunnel takes a
    /// share, since it outlives the HTTP/1.1 part of the connection.
    held: Arc<Held>,
}

/// Serves one sandbox connection on this worker; false once shutdown has begun.
pub(crate) fn serve(
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
        // Counted, not logged: under a flood every turned-away connection would be a line.
        let refusal = Refusal::too_many_connections();
        proxy
            .metrics
            .refusal(refusal.code.as_str(), refusal.source().as_str());
        tokio::spawn(turn_away(stream, refusal));
        return true;
    };
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let busy = Busy::default();
    let io = IdleIo::new(stream, proxy.limits.request_head_timeout, busy.clone());
    let connection = Arc::new(SandboxConnection {
        proxy: proxy.clone(),
        drain: drain.clone(),
        busy,
        held: Arc::new(Held {
            _permit: permit,
            _open: egret_metrics::Open::new(&proxy.metrics.client_connections),
            _load: load,
        }),
    });
    let limits = &proxy.limits;
    // The auto builder (HTTP/1.1 only here) is the one whose upgradeable connections
    // support graceful shutdown. No hyper timer: the head timeout lives in `IdleIo`.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    tokio::spawn(async move {
        let service = service_fn(move |req| connection.clone().handle(req));
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        if let Err(e) = watcher.watch(conn).await {
            debug!(%peer, error = %e, "client connection ended with an error");
        }
    });
    true
}

impl SandboxConnection {
    /// Counts the request in flight at once (not when the future first runs), so the
    /// head timeout cannot fire between the head's arrival and its handling.
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<ProxyBody>, Infallible>> {
        let guard = self.busy.enter();
        async move { self.answer(req, guard).await }
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        guard: InFlight,
    ) -> Result<Response<ProxyBody>, Infallible> {
        let proxy = &self.proxy;
        let target = req.uri().authority().map(ToString::to_string);
        // Where the request was going, for the audit of a refusal.
        let context = || json!({ "target": target });
        let sandbox = match crate::proxy_auth::identify(proxy, &req) {
            Ok(s) => s,
            Err(r) => {
                let host = target.as_deref().unwrap_or("-");
                return Ok(proxy.refused(r, "request", host, None, context()));
            }
        };
        if req.method() == Method::CONNECT {
            // The guard rides with the tunnel: this connection is busy for its life.
            let tunnel = (guard, self.held.clone());
            let id = sandbox.as_ref().map(|s| s.id.clone());
            let answer = crate::connect::handle(proxy, &self.drain, tunnel, req, sandbox);
            return Ok(answer.await.unwrap_or_else(|r| {
                let host = target.as_deref().unwrap_or("-");
                proxy.refused(r, "CONNECT", host, id.as_deref(), context())
            }));
        }
        let answer = if req.uri().scheme_str() == Some("http")
            && crate::discovery::is_for_egret(&req)
        {
            // Answered by egret itself, never forwarded.
            let id = sandbox.as_ref().map(|s| &*s.id);
            Ok(crate::discovery::answer(proxy, &req, id).await)
        } else if req.uri().scheme_str() == Some("http") && req.uri().authority().is_some() {
            crate::plain::forward(proxy, req).await
        } else if req.uri().scheme_str() == Some("https") {
            Err(Refusal::bad_request(
                "https:// URLs must be sent through a CONNECT tunnel, not as a plain proxy request",
            ))
        } else {
            Err(Refusal::bad_request(
                "this is egret's proxy port and the request names no host",
            ))
        };
        let answer = answer.unwrap_or_else(|r| {
            let host = target.as_deref().unwrap_or("-");
            let id = sandbox.as_ref().map(|s| &*s.id);
            proxy.refused(r, "request", host, id, context())
        });
        Ok(answer.map(|body| hold(body, guard)))
    }
}

/// Answers a connection over `max_client_connections` with 503 and closes it. The
/// request is drained briefly first, so the client reads the answer instead of a reset.
async fn turn_away(mut stream: TcpStream, refusal: Refusal) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let answer = refusal.to_http1_bytes();
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
