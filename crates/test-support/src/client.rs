//! Clients that reach upstreams through egret: a raw CONNECT, TLS that trusts egret's CA,
//! and HTTP/1.1 or HTTP/2 on top — the same steps curl takes with `-x`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub type ReqBody = UnsyncBoxBody<Bytes, crate::Error>;

pub fn full(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into())
        .map_err(|n| match n {})
        .boxed_unsync()
}

pub fn empty() -> ReqBody {
    full(Bytes::new())
}

/// The answer to a CONNECT, with the stream when the tunnel opened.
pub struct Connected {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub stream: TcpStream,
}

/// Sends `CONNECT authority` and reads the answer head (and body, if it has one).
pub async fn connect(proxy: SocketAddr, authority: &str) -> crate::Result<Connected> {
    connect_as(proxy, authority, None).await
}

/// `CONNECT` with `Proxy-Authorization: Basic id:secret` when `credentials` is given.
pub async fn connect_as(
    proxy: SocketAddr,
    authority: &str,
    credentials: Option<(&str, &str)>,
) -> crate::Result<Connected> {
    use base64::Engine;
    let mut stream = TcpStream::connect(proxy).await?;
    stream.set_nodelay(true)?;
    let auth = credentials.map_or_else(String::new, |(id, secret)| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        format!("Proxy-Authorization: Basic {token}\r\n")
    });
    stream
        .write_all(
            format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n").as_bytes(),
        )
        .await?;
    let (status, headers, body) = read_response(&mut stream).await?;
    Ok(Connected {
        status,
        headers,
        body,
        stream,
    })
}

/// Reads one HTTP/1.1 response head byte by byte (so nothing after it is consumed), then
/// a `content-length` body.
pub async fn read_response(
    stream: &mut TcpStream,
) -> crate::Result<(StatusCode, HeaderMap, Vec<u8>)> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = stream.read_u8().await?;
        head.push(b);
        if head.len() > 64 * 1024 {
            return Err("response head too large".into());
        }
    }
    let mut headers_buf = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers_buf);
    parsed.parse(&head)?;
    let status = StatusCode::from_u16(parsed.code.ok_or("no status")?)?;
    let mut headers = HeaderMap::new();
    for h in parsed.headers.iter() {
        headers.append(
            http::HeaderName::from_bytes(h.name.as_bytes())?,
            http::HeaderValue::from_bytes(h.value)?,
        );
    }
    let len = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    Ok((status, headers, body))
}

/// A TLS client configuration trusting only `ca_pem`, offering `alpn`.
pub fn tls_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in egret_tls::certs_from_pem(ca_pem) {
        roots.add(cert).expect("add root");
    }
    let mut config = ClientConfig::builder_with_provider(egret_tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

pub async fn tls(
    stream: TcpStream,
    sni: &str,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> crate::Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(tls_config(ca_pem, alpn));
    Ok(connector
        .connect(ServerName::try_from(sni.to_owned())?, stream)
        .await?)
}

/// Which HTTP version to speak inside the tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// An HTTP session inside an intercepted tunnel.
pub enum Session {
    H1(http1::SendRequest<ReqBody>),
    H2(http2::SendRequest<ReqBody>),
}

impl Session {
    /// CONNECT to `authority`, TLS with `sni` trusting `ca_pem`, then HTTP per `proto`.
    pub async fn open(
        proxy: SocketAddr,
        authority: &str,
        sni: &str,
        ca_pem: &str,
        proto: Proto,
    ) -> crate::Result<Self> {
        Self::open_as(proxy, authority, sni, ca_pem, proto, None).await
    }

    /// As [`Session::open`], presenting sandbox credentials on the CONNECT.
    pub async fn open_as(
        proxy: SocketAddr,
        authority: &str,
        sni: &str,
        ca_pem: &str,
        proto: Proto,
        credentials: Option<(&str, &str)>,
    ) -> crate::Result<Self> {
        let c = connect_as(proxy, authority, credentials).await?;
        if c.status != StatusCode::OK {
            return Err(format!(
                "CONNECT answered {}: {}",
                c.status,
                String::from_utf8_lossy(&c.body)
            )
            .into());
        }
        let alpn: &[&[u8]] = match proto {
            Proto::H1 => &[b"http/1.1"],
            Proto::H2 => &[b"h2"],
        };
        let stream = tls(c.stream, sni, ca_pem, alpn).await?;
        let negotiated = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let io = TokioIo::new(stream);
        match proto {
            Proto::H1 => {
                let (send, conn) = http1::handshake(io).await?;
                tokio::spawn(conn.with_upgrades());
                Ok(Self::H1(send))
            }
            Proto::H2 => {
                if negotiated.as_deref() != Some(b"h2") {
                    return Err("egret did not negotiate h2".into());
                }
                let (send, conn) = http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(conn);
                Ok(Self::H2(send))
            }
        }
    }

    pub async fn send(&mut self, req: Request<ReqBody>) -> crate::Result<Response<Incoming>> {
        Ok(match self {
            Self::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Self::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        })
    }

    /// A GET of `path` on `authority` inside this session, collected.
    pub async fn get(
        &mut self,
        authority: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> crate::Result<Response<Bytes>> {
        let proto = match self {
            Self::H1(_) => Proto::H1,
            Self::H2(_) => Proto::H2,
        };
        self.fetch(request("GET", authority, path, headers, empty(), proto)?)
            .await
    }

    /// Sends and collects the whole answer body.
    pub async fn fetch(&mut self, req: Request<ReqBody>) -> crate::Result<Response<Bytes>> {
        let resp = self.send(req).await?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await?.to_bytes();
        Ok(Response::from_parts(parts, bytes))
    }
}

/// The `x-egret-error` code of an answer, if egret refused.
pub fn refusal_code<B>(resp: &Response<B>) -> Option<String> {
    resp.headers()
        .get("x-egret-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A GET through egret to `https://{authority}{path}` with `headers`; h1 or h2.
pub async fn get(
    proxy: SocketAddr,
    ca_pem: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    proto: Proto,
) -> crate::Result<Response<Bytes>> {
    let host = authority.split(':').next().unwrap_or(authority);
    let mut session = Session::open(proxy, authority, host, ca_pem, proto).await?;
    session
        .fetch(request("GET", authority, path, headers, empty(), proto)?)
        .await
}

/// Builds a request the way a client inside the tunnel would: origin-form with `Host`
/// for HTTP/1.1, an absolute URI (the `:authority`) for HTTP/2.
pub fn request(
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: ReqBody,
    proto: Proto,
) -> crate::Result<Request<ReqBody>> {
    let mut b = Request::builder().method(method);
    b = match proto {
        Proto::H1 => b.uri(path).header("host", authority),
        Proto::H2 => b
            .uri(format!("https://{authority}{path}"))
            .version(http::Version::HTTP_2),
    };
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    Ok(b.body(body)?)
}

/// TLS that accepts any certificate: only for tests that must send an SNI the leaf does
/// not cover, to prove egret refuses the request itself.
pub async fn tls_unverified(
    stream: TcpStream,
    sni: &str,
    alpn: &[&[u8]],
) -> crate::Result<TlsStream<TcpStream>> {
    let mut config = ClientConfig::builder_with_provider(egret_tls::provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = TlsConnector::from(Arc::new(config));
    Ok(connector
        .connect(ServerName::try_from(sni.to_owned())?, stream)
        .await?)
}

#[derive(Debug)]
struct AcceptAnything;

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        egret_tls::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An HTTP/1.1 session over any established stream (used after `tls_unverified`).
pub async fn h1_over<S>(stream: S) -> crate::Result<Session>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn.with_upgrades());
    Ok(Session::H1(send))
}
