//! Testing a connection: one real, read-only request to the vendor with the
//! connection's credential — renewed first when it is due, sent through the same
//! upstream client, name resolution and address checks as a sandbox's request — and an
//! answer a person can read: did it work, the status, how long it took, and the vendor's
//! error text without any credential in it.

use std::time::Duration;

use bytes::Bytes;
use egret_oauth::{Need, sanitized};
use egret_policy::{Connector, Probe};
use egret_vault::ConnectionId;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Either, Full, Limited};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::Proxy;
use crate::upstream;

/// At most this much of the vendor's answer is read.
const MAX_ANSWER: usize = 64 * 1024;
/// And for at most this long, once its head has come.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a test says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub ok: bool,
    /// The vendor's status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub message: String,
    /// Who the vendor says is connected, when the test is an identity request.
    pub identity: Option<String>,
}

/// Makes `connector`'s test request for the connection `conn`. `None` when the connector
/// has no test request (neither its own `test:` nor a template's identity request).
pub async fn test_connection(
    proxy: &Proxy,
    connector: &Connector,
    conn: &ConnectionId,
) -> Option<Outcome> {
    let probe = connector.test.as_ref()?;
    let started = proxy.clock.instant();
    let elapsed =
        || u64::try_from((proxy.clock.instant() - started).as_millis()).unwrap_or(u64::MAX);
    let unusable = |e: &dyn std::fmt::Display| {
        Some(Outcome {
            ok: false,
            status: None,
            latency_ms: elapsed(),
            message: format!("no usable credential: {e}"),
            identity: None,
        })
    };
    let credential = match proxy.broker.fresh(connector, conn, Need::Fresh).await {
        Ok(c) => c,
        Err(e) => return unusable(&e),
    };
    // A value kept in an external store is fetched as a request would.
    let credential = if credential.refs.is_empty() {
        credential
    } else {
        let policy = proxy.policy.load();
        match proxy.secrets.resolve(&policy, connector, &credential).await {
            Ok(c) => c,
            Err(e) => return unusable(&e),
        }
    };
    let secret = credential.secret.expose_secret();
    // What the vendor writes back must not carry any secret of the connection or of its
    // OAuth app, in any form.
    let client_secret = match &connector.auth {
        egret_policy::AuthKind::OAuth2(settings) => settings.client_secret_now(),
        _ => None,
    };
    let secrets: Vec<&str> = [Some(secret)]
        .into_iter()
        .chain(
            [credential.refresh_token.as_ref(), client_secret.as_ref()]
                .map(|s| s.map(|s| s.expose_secret())),
        )
        .flatten()
        .collect();
    let req = match request(probe, secret) {
        Ok(r) => r,
        Err(why) => {
            return Some(Outcome {
                ok: false,
                status: None,
                latency_ms: elapsed(),
                message: why,
                identity: None,
            });
        }
    };
    let host = req.uri().host().unwrap_or_default().to_owned();
    let resp = match upstream::send(proxy, &host, req).await {
        Ok(r) => r,
        Err(refusal) => {
            return Some(Outcome {
                ok: false,
                status: None,
                latency_ms: elapsed(),
                message: sanitized(&refusal.message, &secrets),
                identity: None,
            });
        }
    };
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(resp.into_body(), MAX_ANSWER).collect(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|b| b.to_bytes())
    .unwrap_or_default();
    let latency_ms = elapsed();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // Slack and others answer 200 with `"ok": false` and the reason in `error`.
    let ok = status == probe.expect && json.get("ok") != Some(&Value::Bool(false));
    let identity = ok
        .then_some(probe.identity_field.as_deref())
        .flatten()
        .and_then(|field| json.get(field))
        .and_then(Value::as_str)
        .map(|s| sanitized(s, &secrets));
    let message = if ok {
        match &identity {
            Some(who) => format!("works: connected as {who}"),
            None => format!("works: {} answered {status}", probe.url),
        }
    } else {
        let said = ["error_description", "message", "error"]
            .iter()
            .find_map(|k| json.get(*k).and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        sanitized(
            &format!(
                "{} answered {status} (expected {}): {said}",
                probe.url, probe.expect
            ),
            &secrets,
        )
    };
    Some(Outcome {
        ok,
        status: Some(status),
        latency_ms,
        message,
        identity,
    })
}

/// The test request, the credential in its field (a sensitive header value).
fn request(probe: &Probe, secret: &str) -> Result<Request<upstream::UpstreamBody>, String> {
    let method = Method::from_bytes(probe.method.as_bytes()).map_err(|e| e.to_string())?;
    let uri: http::Uri = probe
        .url
        .parse()
        .map_err(|e| format!("bad test URL: {e}"))?;
    let (name, value) = match &probe.header {
        Some(h) => (
            header::HeaderName::from_bytes(h.as_bytes()).map_err(|e| e.to_string())?,
            secret.to_owned(),
        ),
        None => (header::AUTHORIZATION, format!("Bearer {secret}")),
    };
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| "the credential cannot be sent in a header".to_owned())?;
    value.set_sensitive(true);
    let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, "egret-connection-test")
        .header(name, value)
        .body(Either::Right(Full::new(Bytes::new())))
        .map_err(|e| e.to_string())
}
