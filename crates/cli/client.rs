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
    /// `None` for routes without the admin token (`/healthz`).
    token: Option<SecretString>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl ControlClient {
    pub fn new(policy: &egret_policy::Policy, server: Option<&str>) -> Result<Self> {
        let mut client = Self::without_token(policy, server);
        client.token = Some(client_admin_token(policy)?);
        Ok(client)
    }

    /// A client for the running server, for a command whose policy file may not parse:
    /// the server keeps running its previous policy, and a client needs only its address
    /// (`--server`, or `EGRET_CONTROL_LISTEN`) and, `with_token`, `EGRET_ADMIN_TOKEN`. The
    /// file's error is said on stderr.
    pub fn despite_policy(
        error: &anyhow::Error,
        config: &std::path::Path,
        server: Option<&str>,
        with_token: bool,
    ) -> Result<Self> {
        // The first problem is enough to say why; `egret policy check` lists them all.
        let text = format!("{error:#}");
        let mut problems = text.lines();
        let first = problems.next().unwrap_or_default();
        let more = match problems.count() {
            0 => String::new(),
            1 => " (and 1 more problem)".to_owned(),
            n => format!(" (and {n} more problems)"),
        };
        let hint = format!(
            "{} has an error: {first}{more}; the server keeps running the previous policy (fix the file, `egret policy check`)",
            config.display()
        );
        let base = match (server, std::env::var("EGRET_CONTROL_LISTEN")) {
            (Some(s), _) => s.trim_end_matches('/').to_owned(),
            (None, Ok(listen)) if !listen.is_empty() => format!("http://{listen}"),
            _ => bail!("{hint}; to reach the server meanwhile, pass --server http://HOST:PORT"),
        };
        let token = match std::env::var("EGRET_ADMIN_TOKEN") {
            Ok(t) if !t.is_empty() => Some(SecretString::from(t)),
            _ if with_token => bail!(
                "{hint}; to reach the server meanwhile, set EGRET_ADMIN_TOKEN (the admin token cannot be read from the file)"
            ),
            _ => None,
        };
        eprintln!("note: {hint}");
        Ok(Self {
            base,
            token,
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// A client for the routes that need no admin token, at `server`; no policy read.
    pub fn at_server(server: &str) -> Self {
        Self {
            base: server.trim_end_matches('/').to_owned(),
            token: None,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The server this client talks to (`http://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A client for the routes that need no admin token. The server is `--server`, else
    /// `EGRET_CONTROL_LISTEN` (as `serve` reads it), else the policy's `control.listen`.
    pub fn without_token(policy: &egret_policy::Policy, server: Option<&str>) -> Self {
        let base = match server {
            Some(s) => s.trim_end_matches('/').to_owned(),
            None => match std::env::var("EGRET_CONTROL_LISTEN") {
                Ok(listen) if !listen.is_empty() => format!("http://{listen}"),
                _ => format!("http://{}", policy.control.listen),
            },
        };
        Self {
            base,
            token: None,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// GET `path`; the answer's JSON (`null` for an empty body).
    pub async fn get(&self, path: &str) -> Result<Value> {
        Ok(self
            .call(Method::GET, path, None)
            .await?
            .unwrap_or(Value::Null))
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
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            req = req.header(
                header::AUTHORIZATION,
                format!("Bearer {}", token.expose_secret()),
            );
        }
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
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the egret control plane at {} ({}); is `egret serve` running?",
                    self.base,
                    root_cause(&e)
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
        let message = in_cli_words(&message);
        if status == StatusCode::UNAUTHORIZED {
            bail!("the server refused the admin token: {message}");
        }
        bail!("{message} (HTTP {})", status.as_u16())
    }
}

/// The server's advice is written for API clients ("GET /v1/connectors lists them"); a
/// person at the CLI is told the command that does the same.
fn in_cli_words(message: &str) -> String {
    const SAID_AS: [(&str, &str); 2] = [
        ("GET /v1/connectors", "`egret connector list`"),
        ("GET /v1/sandboxes", "`egret sandbox list`"),
    ];
    SAID_AS
        .iter()
        .fold(message.to_owned(), |m, (api, cli)| m.replace(api, cli))
}

/// `?a=1&b=2` from the pairs that have a value; empty when none has.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

/// Percent-encodes one path segment (owners contain `:`; ids are plain).
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The innermost reason a request failed (`Connection refused (os error 111)`), without
/// the layers around it (`client error (Connect): tcp connect error: …`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
