//! A small JSON client for the control plane, used by every command that manages a
//! running server.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::client_admin_token;

pub struct ControlClient {
    base: String,
    token: SecretString,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl ControlClient {
    pub fn new(policy: &egret_policy::Policy, server: Option<&str>) -> Result<Self> {
        let base = match server {
            Some(s) => s.trim_end_matches('/').to_owned(),
            None => format!("http://{}", policy.control.listen),
        };
        let token = client_admin_token(policy)?;
        Ok(Self {
            base,
            token,
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Where the running server's proxy listens (`/readyz` says), for a policy whose
    /// `proxy.listen` has port 0.
    pub async fn proxy_listen(&self) -> Result<std::net::SocketAddr> {
        let ready = self.call(Method::GET, "/readyz", None).await?;
        ready
            .as_ref()
            .and_then(|r| r["proxy"].as_str())
            .and_then(|a| a.parse().ok())
            .context("the server did not say where its proxy listens; pass --proxy-url")
    }

    /// Sends a request; a non-2xx answer becomes an error carrying the server's message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>> {
        let url = format!("{}{}", self.base, path);
        let mut req = Request::builder().method(method).uri(&url).header(
            header::AUTHORIZATION,
            format!("Bearer {}", self.token.expose_secret()),
        );
        let bytes = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(&v)?)
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(bytes))
            .with_context(|| format!("bad URL {url}"))?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(30), self.http.request(req))
            .await
            .with_context(|| format!("{url} did not answer within 30s"))?
            .with_context(|| {
                format!(
                    "cannot reach the egret control plane at {}; is `egret serve` running?",
                    self.base
                )
            })?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading the answer")?
            .to_bytes();
        let value: Option<Value> = if body.is_empty() {
            None
        } else {
            serde_json::from_slice(&body).ok()
        };
        if status.is_success() {
            return Ok(value);
        }
        let message = value
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(Value::as_str)
            .map_or_else(
                || String::from_utf8_lossy(&body).into_owned(),
                str::to_owned,
            );
        if status == StatusCode::UNAUTHORIZED {
            bail!("the server refused the admin token: {message}");
        }
        bail!("{message} (HTTP {})", status.as_u16())
    }
}

/// Percent-encodes one path segment (owners contain `:`; ids are plain).
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
