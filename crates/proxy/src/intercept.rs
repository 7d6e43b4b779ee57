//! Inside a CONNECT to a connector host: TLS with a leaf for the CONNECT host, the SNI
//! check, then HTTP/1.1 or HTTP/2 (by ALPN) with every request sent to `forward`.

use std::convert::Infallible;
use std::sync::Arc;

use egret_policy::normalize_host;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio_rustls::LazyConfigAcceptor;
use tracing::debug;

use crate::Proxy;
use crate::binding::Bound;
use crate::body::ProxyBody;
use crate::drain::Watcher;
use crate::idle::{Busy, IdleIo};

/// One request's handling, allocated for its time (see [`Intercepted::handle`]).
type Handling =
    std::pin::Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

/// What every request inside one intercepted tunnel needs, held for the tunnel's life.
struct Intercepted {
    /// Everything the proxy's connections share.
    proxy: Arc<Proxy>,
    /// The host the tunnel was opened to (CONNECT, SNI) and the sandbox that opened it:
    /// every request inside must name the same host.
    bound: Bound,
    /// Requests in flight: the request-head timeout runs only while there are none.
    busy: Busy,
}

impl Intercepted {
    /// Counts the request in flight at once (not when the future first runs), so the
    /// head timeout cannot fire between the head's arrival and its handling.
    ///
    /// The request's future is boxed: hyper keeps a place for it in every connection
    /// from the start, and unboxed that place is the whole request path (about 8 KiB),
    /// held by every idle connection for its life. Boxed, it is allocated per request.
    fn handle(self: Arc<Self>, req: Request<Incoming>) -> Handling {
        let guard = self.busy.enter();
        Box::pin(
            async move { Ok(crate::forward::handle(&self.proxy, &self.bound, guard, req).await) },
        )
    }
}

pub(crate) async fn serve(
    proxy: Arc<Proxy>,
    watcher: Option<Watcher>,
    mut bound: Bound,
    upgraded: Upgraded,
) {
    let Some(watcher) = watcher else { return };
    // Boxed, so the handshake's state is freed once it is done instead of sizing the
    // connection's task for its whole life.
    let handshake = Box::pin(async {
        let start =
            LazyConfigAcceptor::new(rustls::server::Acceptor::default(), TokioIo::new(upgraded))
                .await?;
        let sni = start.client_hello().server_name().map(normalize_host);
        let config = proxy
            .leaves
            .server_config(&bound.host)
            .await
            .map_err(std::io::Error::other)?;
        let stream = start.into_stream(config).await?;
        Ok::<_, std::io::Error>((stream, sni))
    });
    let (stream, sni) =
        match tokio::time::timeout(proxy.limits.tls_handshake_timeout, handshake).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return debug!(error = %e, "TLS handshake with the sandbox failed"),
            Err(_) => return debug!("TLS handshake with the sandbox timed out"),
        };
    // A missing SNI does not disagree; a different one does, and every request says so.
    bound.sni_mismatch = sni.filter(|s| *s != bound.host);
    let limits = &proxy.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No hyper timer: the request-head timeout lives in `IdleIo`, one timer per connection.
    builder
        .http1()
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .adaptive_window(true);
    let busy = Busy::default();
    let io = IdleIo::new(stream, limits.request_head_timeout, busy.clone());
    let tunnel = Arc::new(Intercepted {
        proxy: proxy.clone(),
        bound,
        busy,
    });
    let service = service_fn(move |req| tunnel.clone().handle(req));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        debug!(error = %e, "intercepted connection ended with an error");
    }
}
