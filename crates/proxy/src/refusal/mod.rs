//! Every answer egret gives instead of the upstream's: one status, one `x-egret-error`
//! code and one sentence that tells a person or an agent what to do.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::body::ProxyBody;

mod catalog;

/// Where a failure came from, set where the refusal is made. It decides the log level
/// and the `egret_refusals_by_source_total` label; a code always has the same source.
/// Where an agent asks egret what its placeholders stand for (see `discovery`).
pub const DISCOVERY: &str = "http://egret.internal/connections";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The sandbox sent something malformed or unauthenticated.
    Client,
    /// The policy (or a connection's state) says no.
    Policy,
    /// An upstream or a vendor's token endpoint could not be reached or misbehaved.
    Upstream,
    /// egret itself failed (its vault could not be written): not the sandbox's fault,
    /// nor the vendor's.
    Internal,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Policy => "policy",
            Self::Upstream => "upstream",
            Self::Internal => "internal",
        }
    }
}

/// Every `x-egret-error` code egret answers with (the README's list of codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    ProxyAuthRequired,
    EgressDenied,
    HostMismatch,
    PlaceholderUnknown,
    PlaceholderWrongHost,
    PlaceholderMisplaced,
    PlaceholderPlainHttp,
    PlaceholderWrongSandbox,
    ConnectorRemoved,
    ConnectionNeedsReauth,
    RequestDenied,
    ApprovalPending,
    ApprovalDenied,
    BudgetExhausted,
    TooManyInFlight,
    RateLimited,
    TooManyConnections,
    UpstreamUnreachable,
    UpstreamTimeout,
    ResponseUnscannable,
    TokenRefreshFailed,
    SignatureInvalid,
    SecretSourceFailed,
    Internal,
}

impl Code {
    /// The code as it appears in `x-egret-error`, the JSON body, metrics and the audit.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::ProxyAuthRequired => "proxy_auth_required",
            Self::EgressDenied => "egress_denied",
            Self::HostMismatch => "host_mismatch",
            Self::PlaceholderUnknown => "placeholder_unknown",
            Self::PlaceholderWrongHost => "placeholder_wrong_host",
            Self::PlaceholderMisplaced => "placeholder_misplaced",
            Self::PlaceholderPlainHttp => "placeholder_plain_http",
            Self::PlaceholderWrongSandbox => "placeholder_wrong_sandbox",
            Self::ConnectorRemoved => "connector_removed",
            Self::ConnectionNeedsReauth => "connection_needs_reauth",
            Self::RequestDenied => "request_denied",
            Self::ApprovalPending => "approval_pending",
            Self::ApprovalDenied => "approval_denied",
            Self::BudgetExhausted => "budget_exhausted",
            Self::TooManyInFlight => "too_many_in_flight",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::ResponseUnscannable => "response_unscannable",
            Self::TokenRefreshFailed => "token_refresh_failed",
            Self::SignatureInvalid => "signature_invalid",
            Self::SecretSourceFailed => "secret_source_failed",
            Self::Internal => "internal_error",
        }
    }

    /// Who caused a refusal with this code.
    pub const fn source(self) -> Source {
        match self {
            Self::BadRequest | Self::ProxyAuthRequired => Source::Client,
            Self::EgressDenied
            | Self::HostMismatch
            | Self::PlaceholderUnknown
            | Self::PlaceholderWrongHost
            | Self::PlaceholderMisplaced
            | Self::PlaceholderPlainHttp
            | Self::PlaceholderWrongSandbox
            | Self::ConnectorRemoved
            | Self::ConnectionNeedsReauth
            | Self::RequestDenied
            | Self::ApprovalPending
            | Self::ApprovalDenied
            | Self::BudgetExhausted
            | Self::TooManyInFlight
            | Self::RateLimited
            | Self::TooManyConnections
            | Self::SignatureInvalid => Source::Policy,
            Self::UpstreamUnreachable
            | Self::UpstreamTimeout
            | Self::ResponseUnscannable
            | Self::TokenRefreshFailed
            | Self::SecretSourceFailed => Source::Upstream,
            Self::Internal => Source::Internal,
        }
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    /// Extra, non-secret JSON fields (host, connector, allowed hosts).
    pub extra: Vec<(&'static str, serde_json::Value)>,
    /// Seconds, sent as `retry-after` (rate limits, overload).
    pub retry_after: Option<u64>,
    /// The HTTP/1 reason phrase after the code (`403 egress_denied: … is not an allowed
    /// host`): clients that hide a refused CONNECT's body (curl, Python, Go) print it.
    pub short: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, code: Code, message: String) -> Self {
        Self {
            status,
            code,
            message,
            extra: Vec::new(),
            retry_after: None,
            short: None,
        }
    }

    /// For refusals that concern a connection: says where an agent learns what its
    /// placeholders stand for.
    fn about_connection(mut self) -> Self {
        self.message.push_str(&format!(
            " What your placeholders stand for: GET {DISCOVERY} through this proxy."
        ));
        self.with("discover", DISCOVERY)
    }

    fn short(mut self, text: String) -> Self {
        self.short = Some(text);
        self
    }

    /// The reason phrase: `<code>: <short reason>`, or the code alone; kept to
    /// printable ASCII.
    pub fn reason_phrase(&self) -> String {
        let text = match &self.short {
            Some(s) => format!("{}: {s}", self.code),
            None => self.code.as_str().to_owned(),
        };
        text.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }

    pub fn with(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    /// Who caused it: decides the log level and the metric label.
    pub fn source(&self) -> Source {
        self.code.source()
    }

    /// Logs the refusal at the level its source calls for: a sandbox's or the policy's
    /// "no" is routine (`info`), an upstream's failure is worth a look (`warn`), egret's
    /// own failure is an `error`. `what` says where it was decided.
    /// `suppressed`: refusals left out of the log since the last line (see
    /// `log_budget`), said on this one when there were any.
    pub fn log(&self, what: &str, host: &str, sandbox: Option<&str>, suppressed: u64) {
        let (code, status) = (self.code.as_str(), self.status.as_u16());
        let sandbox = sandbox.unwrap_or("-");
        let suppressed = (suppressed > 0).then_some(suppressed);
        match self.source() {
            Source::Client | Source::Policy => {
                tracing::info!(%host, code, status, sandbox, suppressed, "{what} refused")
            }
            Source::Upstream => {
                tracing::warn!(%host, code, status, sandbox, suppressed, "{what} refused")
            }
            Source::Internal => tracing::error!(
                %host, code, status, sandbox, suppressed, message = %self.message,
                "{what} refused"
            ),
        }
    }

    /// The whole answer as HTTP/1.1 bytes, for when no HTTP connection is served at all:
    /// the same head and body as [`Self::into_response`], and `connection: close`.
    pub fn to_http1_bytes(&self) -> Vec<u8> {
        let body = self.json_body();
        let reason = self.reason_phrase();
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", self.status.as_u16()).into_bytes();
        for (name, value) in &self.headers(body.len()) {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"connection: close\r\n\r\n");
        out.extend_from_slice(&body);
        out
    }

    /// Every refusal's headers; `content-length` is set so a refused CONNECT is complete.
    fn headers(&self, body_len: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-egret-error",
            HeaderValue::from_static(self.code.as_str()),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            h.insert(
                header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"egret\""),
            );
        }
        h
    }

    fn json_body(&self) -> Vec<u8> {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code.as_str().into());
        body.insert("message".into(), self.message.clone().into());
        for (k, v) in &self.extra {
            body.insert((*k).into(), v.clone());
        }
        let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The JSON body and headers.
    pub fn into_response(self) -> Response<ProxyBody> {
        let bytes = self.json_body();
        let headers = self.headers(bytes.len());
        let mut resp = Response::new(
            Full::new(Bytes::from(bytes))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *resp.status_mut() = self.status;
        *resp.headers_mut() = headers;
        if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(self.reason_phrase()) {
            resp.extensions_mut().insert(reason);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> egret_policy::Policy {
        egret_policy::parse(
            yaml,
            std::path::Path::new("t.yaml"),
            std::path::Path::new("."),
        )
        .expect("policy")
    }

    #[test]
    fn a_denied_host_names_the_connector_that_allows_it_elsewhere_and_no_list() {
        let p = policy(
            "version: 1\nconnectors:\n  - { id: crm, auth: api_key, egress: ['api.x.com:8443', other.x.com] }\n",
        );
        let r = Refusal::egress_denied("api.x.com", 443, &p);
        assert_eq!(
            r.reason_phrase(),
            "egress_denied: api.x.com is not an allowed host"
        );
        assert!(
            r.message.contains("connector crm allows api.x.com:8443"),
            "{}",
            r.message
        );
        assert!(!r.message.contains("other.x.com"), "{}", r.message);
        let r = Refusal::egress_denied("evil.x.com", 443, &p);
        assert!(
            r.message.contains("network.allow") && !r.message.contains("api.x.com"),
            "{}",
            r.message
        );
        let raw = String::from_utf8(r.to_http1_bytes()).expect("ascii");
        assert!(
            raw.starts_with("HTTP/1.1 403 egress_denied: evil.x.com is not an allowed host\r\n"),
            "{raw}"
        );
    }
}
