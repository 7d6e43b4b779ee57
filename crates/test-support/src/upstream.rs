//! HTTPS (and plain HTTP) upstream servers for tests, with a CA of their own.
//!
//! Routes: `/bytes?n=N` streams N bytes without buffering; `/upload` counts the request
//! body; `/ws` is a WebSocket echo that reports the Authorization it saw (in a header of
//! its `101`, and in a message when sent `whoami`, or in two fragments for
//! `whoami-split`); `/slow?ms=`
//! waits first; `/reflect` echoes the head as JSON in 7-byte chunks and the request's
//! Authorization in a response header (a leaky debug endpoint); `/gzip` always answers
//! with a gzip-encoded body; `/events?n=&ms=` sends server-sent events `ms` apart;
//! `/mixed` writes the request's bearer token back in mixtures of encodings (each
//! character raw, `%XX`, `\u00XX`, `&#N;` or `&#xH;` in turn; only `+` escaped) one
//! byte per chunk; `/token-echo` is a token endpoint whose refusal quotes the refresh
//! token and the client secret it was sent, in mixtures of encodings and with control
//! characters inside (a vendor's careless error text); anything else echoes the request
//! head as JSON.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub(crate) type UpBody = http_body_util::combinators::UnsyncBoxBody<Bytes, crate::Error>;

/// A CA that only the tests' upstreams use, so egret must be told to trust it.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        // A name of its own, so two test CAs are never mistaken for one another.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("egret test upstream CA {n}"),
        );
        let cert = params.self_signed(&key).expect("self-signed");
        let pem = cert.pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `names` and its private key, both PEM, for servers outside
    /// this process (the OAuth test server).
    pub fn issue_pem(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// A server configuration for `names` with the given ALPN protocols.
    pub fn server_config(&self, names: &[&str], alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let key = KeyPair::generate().expect("key");
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(egret_tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], der)
            .expect("cert");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// Which protocols an HTTPS upstream offers by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    Http1Only,
    Http2AndHttp1,
}

/// A running upstream; it stops when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn https(ca: &TestCa, names: &[&str], offer: Offer) -> Self {
        let alpn: &[&[u8]] = match offer {
            Offer::Http1Only => &[b"http/1.1"],
            Offer::Http2AndHttp1 => &[b"h2", b"http/1.1"],
        };
        let acceptor = TlsAcceptor::from(ca.server_config(names, alpn));
        Self::start(Some(acceptor)).await
    }

    pub async fn plain() -> Self {
        Self::start(None).await
    }

    async fn start(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted2 = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                accepted2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = tcp.set_nodelay(true);
                let (tls, seen) = (tls.clone(), seen2.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, seen.clone()));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder
                                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            seen,
            accepted,
            task,
        }
    }

    /// TCP connections accepted so far (shows pooling).
    pub fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every request head the upstream received, as the echo JSON.
    pub fn seen(&self) -> Vec<Value> {
        self.seen.lock().expect("lock").clone()
    }
}

fn head_json(req: &Request<Incoming>) -> Value {
    let mut headers = BTreeMap::<String, String>::new();
    for (k, v) in req.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        headers
            .entry(k.as_str().to_owned())
            .and_modify(|e| *e = format!("{e}, {v}"))
            .or_insert(v);
    }
    json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "version": format!("{:?}", req.version()),
        "headers": headers,
    })
}

async fn handle(
    mut req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Value>>>,
) -> Result<Response<UpBody>, Infallible> {
    let head = head_json(&req);
    seen.lock().expect("lock").push(head.clone());
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let number = |k: &str| {
        query
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let resp = match req.uri().path() {
        "/bytes" => {
            let mut r = Response::new(Zeros::new(number("n")).boxed_unsync());
            r.headers_mut().insert("content-length", number("n").into());
            r
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut received = 0u64;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => received += f.data_ref().map_or(0, |d| d.len() as u64),
                    Err(_) => break,
                }
            }
            json_response(json!({ "received": received }))
        }
        "/ws" => websocket(&mut req),
        "/mcp" | "/mcp-sse" => {
            let sse = req.uri().path() == "/mcp-sse";
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            crate::mcp::answer(&body, sse)
        }
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_millis(number("ms"))).await;
            json_response(head)
        }
        "/reflect" => {
            let mut r = streamed(head.to_string().into_bytes(), 7);
            if let Some(auth) = req.headers().get("authorization") {
                r.headers_mut()
                    .insert("x-reflect-authorization", auth.clone());
            }
            r
        }
        "/mixed" => {
            let token = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            let text = format!(
                "{{\"rotating\":\"{}\",\"plus_only\":\"{}\"}}",
                mixed_forms(token),
                token.replace('+', "%2B")
            );
            streamed(text.into_bytes(), 1)
        }
        "/token-echo" => {
            let basic = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(b).ok()
                })
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let client_secret = basic.split_once(':').map(|(_, s)| s.to_owned());
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let form: BTreeMap<String, String> = String::from_utf8_lossy(&body)
                .split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            let secret = client_secret
                .or_else(|| form.get("client_secret").cloned())
                .unwrap_or_default();
            let split = |s: &str| {
                let (a, b) = s.split_at(s.len() / 2);
                format!("{a}\u{7}{b}")
            };
            let description = format!(
                "refresh token {} (or {}) for client secret {} (or {}, or {})",
                mixed_forms(&refresh),
                split(&refresh),
                mixed_forms(&secret),
                split(&secret),
                secret.to_uppercase()
            );
            let mut r = json_response(json!({
                "error": "invalid_request",
                "error_description": description,
            }));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
        "/events" => {
            // Server-sent events: `n` events, `ms` apart, on one open response.
            let (n, ms) = (number("n"), number("ms"));
            let events = futures_util::stream::unfold(0u64, move |i| async move {
                if i >= n {
                    return None;
                }
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                let frame = Frame::data(Bytes::from(format!("data: event {i}\n\n")));
                Some((Ok::<_, crate::Error>(frame), i + 1))
            });
            let mut r = Response::new(http_body_util::StreamBody::new(events).boxed_unsync());
            r.headers_mut()
                .insert("content-type", "text/event-stream".parse().expect("static"));
            r
        }
        "/gzip" => {
            let mut r = json_response(head);
            r.headers_mut()
                .insert("content-encoding", "gzip".parse().expect("static"));
            r
        }
        "/flaky" => {
            // Fails the first `fail` times this very URI is asked (with `code`, and
            // `retry-after: after` when given), then answers 200.
            let uri = head["uri"].clone();
            let attempt = seen
                .lock()
                .expect("lock")
                .iter()
                .filter(|h| h["uri"] == uri)
                .count() as u64;
            let mut r = json_response(json!({ "attempt": attempt }));
            if attempt <= number("fail") {
                *r.status_mut() = StatusCode::from_u16(number("code") as u16)
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                if let Some(after) = query.get("after") {
                    r.headers_mut()
                        .insert("retry-after", after.parse().expect("retry-after"));
                }
            }
            r
        }
        "/status" => {
            let mut r = json_response(head);
            *r.status_mut() = StatusCode::from_u16(number("code") as u16).unwrap_or(StatusCode::OK);
            r
        }
        _ => json_response(head),
    };
    Ok(resp)
}

/// An answer whose body is `text` sent in chunks of `size` bytes: a scan on the way
/// must find what is split across them.
fn streamed(text: Vec<u8>, size: usize) -> Response<UpBody> {
    let frames: Vec<Result<Frame<Bytes>, crate::Error>> = text
        .chunks(size)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
    Response::new(body.boxed_unsync())
}

/// `text` with its characters written in turn as they are, `%XX`, `\u00XX`, `&#N;` and
/// `&#xH;`: how no encoder writes, and what the answer scan must still find.
pub fn mixed_forms(text: &str) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            let n = u32::from(c);
            match i % 5 {
                0 => c.to_string(),
                1 => format!("%{n:02X}"),
                2 => format!("\\u{n:04x}"),
                3 => format!("&#{n};"),
                _ => format!("&#x{n:x};"),
            }
        })
        .collect()
}

fn json_response(v: Value) -> Response<UpBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(v.to_string()))
            .map_err(|n| match n {})
            .boxed_unsync(),
    );
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    r
}

fn websocket(req: &mut Request<Incoming>) -> Response<UpBody> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        let mut r = json_response(json!({"error": "not a websocket handshake"}));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    };
    let auth = req.headers().get("authorization").cloned();
    let seen_auth = auth.clone();
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        // What it saw, for the tests that check it never comes back to the sandbox.
        let seen = seen_auth
            .as_ref()
            .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
            .unwrap_or_default();
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
            let sent = match msg.to_text().unwrap_or_default() {
                // The Authorization it saw, as a text message.
                "whoami" => ws.send(Message::text(format!("you are {seen}"))).await,
                // The same, split over two fragments in the middle of the token.
                "whoami-split" => {
                    let text = format!("you are {seen}");
                    let (a, b) = text.split_at(text.len() - 6);
                    let first =
                        Frame::message(a.as_bytes().to_vec(), OpCode::Data(Data::Text), false);
                    let rest =
                        Frame::message(b.as_bytes().to_vec(), OpCode::Data(Data::Continue), true);
                    match ws.send(Message::Frame(first)).await {
                        Ok(()) => ws.send(Message::Frame(rest)).await,
                        Err(e) => Err(e),
                    }
                }
                _ => ws.send(msg).await,
            };
            if sent.is_err() {
                break;
            }
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut r = Response::new(
        http_body_util::Empty::new()
            .map_err(|n| match n {})
            .boxed_unsync(),
    );
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("connection", "upgrade".parse().expect("static"));
    h.insert("upgrade", "websocket".parse().expect("static"));
    h.insert("sec-websocket-accept", accept.parse().expect("accept key"));
    if let Some(a) = auth {
        h.insert("x-seen-authorization", a);
    }
    r
}

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A body of N zero bytes produced chunk by chunk: never in memory at once. The
/// upstream's `/bytes` answers with it; tests upload with it.
pub struct Zeros {
    remaining: u64,
}

impl Zeros {
    pub fn new(bytes: u64) -> Self {
        Self { remaining: bytes }
    }
}

impl Body for Zeros {
    type Data = Bytes;
    type Error = crate::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(ZEROS.len() as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}
