//! egret's own HTTP client toward authorization servers, and the `oauth2` crate's
//! transport over it. Every call is bounded in time and in answer size.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use oauth2::{HttpRequest, HttpResponse};

/// An authorization server's answer is small JSON; anything larger is refused.
const MAX_ANSWER: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("answered HTTP {0}")]
    Status(http::StatusCode),
    #[error("the answer is larger than 1 MiB or broke off: {0}")]
    Body(String),
}

type Inner = Client<egret_outbound::HttpsConnector, Full<Bytes>>;

/// A pooled HTTP/1.1 + HTTP/2 client; every request is bounded by `timeout`.
#[derive(Clone)]
pub struct HttpClient {
    inner: Inner,
    timeout: Duration,
}

impl HttpClient {
    /// Toward authorization servers (`Use::TokenEndpoint`: `upstream.resolve`, then DNS,
    /// private addresses allowed, since the operator set them).
    pub fn new(outbound: &egret_outbound::Outbound, timeout: Duration) -> Self {
        Self::for_use(outbound, egret_outbound::Use::TokenEndpoint, timeout)
    }

    /// Toward what `use_` names (its trust and resolution), bounded by `timeout`.
    pub fn for_use(
        outbound: &egret_outbound::Outbound,
        use_: egret_outbound::Use,
        timeout: Duration,
    ) -> Self {
        Self::with_tls(outbound, use_, outbound.tls(use_), timeout)
    }

    /// As [`HttpClient::for_use`], trusting what `tls` trusts.
    pub fn with_tls(
        outbound: &egret_outbound::Outbound,
        use_: egret_outbound::Use,
        tls: rustls::ClientConfig,
        timeout: Duration,
    ) -> Self {
        let https = outbound.https_with(tls, outbound.http(use_, timeout), true);
        let inner = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Self { inner, timeout }
    }

    /// A copy that waits at most `timeout` for each answer.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            inner: self.inner.clone(),
            timeout,
        }
    }

    /// Sends `request` and reads the whole answer. 5xx and 429 answers are errors here,
    /// so callers can tell "the server is failing" from "the server said no".
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        tokio::time::timeout(self.timeout, self.send_unbounded(request))
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }

    async fn send_unbounded(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let response = self
            .inner
            .request(request)
            .await
            .map_err(|e| HttpError::Connect(describe(&e)))?;
        let status = response.status();
        if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
            return Err(HttpError::Status(status));
        }
        let (parts, body) = response.into_parts();
        let bytes = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| HttpError::Body(e.to_string()))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, bytes.to_vec()))
    }
}

/// The innermost cause, which names what actually failed (refused, TLS, DNS).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
