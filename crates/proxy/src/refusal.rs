//! Every answer egret gives instead of the upstream's: one status, one `x-egret-error`
//! code and one sentence that tells a person or an agent what to do.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::body::ProxyBody;

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
    RateLimited,
    TooManyConnections,
    UpstreamUnreachable,
    UpstreamTimeout,
    ResponseUnscannable,
    TokenRefreshFailed,
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
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::ResponseUnscannable => "response_unscannable",
            Self::TokenRefreshFailed => "token_refresh_failed",
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
            | Self::RateLimited
            | Self::TooManyConnections => Source::Policy,
            Self::UpstreamUnreachable
            | Self::UpstreamTimeout
            | Self::ResponseUnscannable
            | Self::TokenRefreshFailed => Source::Upstream,
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

    /// A host the policy does not let out. The sandbox is not handed the list of
    /// allowed hosts; it is told which connector names the host on another port, if
    /// one does, else where the operator allows hosts.
    pub fn egress_denied(host: &str, port: u16, policy: &egret_policy::Policy) -> Self {
        let elsewhere = policy.allows_elsewhere(host, port);
        let hint = match elsewhere {
            Some((c, entry)) => format!(
                "connector {} allows {entry}, not port {port}; use that port, or ask the operator to add {host}:{port} to its egress",
                c.id
            ),
            None => "if the sandbox needs it, ask the operator to add it to network.allow (tunneled untouched) or to a connector's egress (credentials injected)".to_owned(),
        };
        let mut r = Self::new(
            StatusCode::FORBIDDEN,
            Code::EgressDenied,
            format!("egret does not allow traffic to {host}:{port}; {hint}."),
        )
        .with("host", host)
        .short(format!("{host} is not an allowed host"));
        if let Some((c, _)) = elsewhere {
            r = r.with("connector", c.id.as_str());
        }
        r
    }

    pub fn ip_literal(host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::EgressDenied,
            format!("egret does not allow connections to the IP address {host}; connect by host name to a host the policy allows, or ask the operator to add the address or its CIDR block to network.allow."),
        )
        .with("host", host)
    }

    pub fn private_address(host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::EgressDenied,
            format!("{host} resolves to a private, loopback or link-local address, which egret refuses (network.deny_private_ranges); use a public host, or have the operator map it in upstream.resolve."),
        )
        .with("host", host)
    }

    pub fn host_mismatch(expected: &str, got: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::HostMismatch,
            format!("this tunnel was opened to {expected} but the request names {got}; send each request through a tunnel to its own host (CONNECT, TLS SNI and Host must agree)."),
        )
        .with("host", expected)
    }

    pub fn placeholder_unknown() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderUnknown,
            "the placeholder on this request is unknown, expired or revoked; ask for a new one (egret placeholder mint) and use it instead.".to_owned(),
        )
        .about_connection()
    }

    /// The placeholder's connector left the policy; its connections are kept, refused,
    /// until it returns or its retention ends.
    pub fn connector_removed(connector: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::ConnectorRemoved,
            format!("connector {connector} is no longer in egret's policy, so its credential is not sent; ask the operator to restore the connector (its connections are kept for a while) or to give you another one."),
        )
        .with("connector", connector)
        .short(format!("connector {connector} was removed from the policy"))
        .about_connection()
    }

    pub fn placeholder_wrong_host(connector: &str, host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderWrongHost,
            format!("the placeholder belongs to connector {connector}, which may not send its credential to {host}; send it only to that connector's egress hosts."),
        )
        .with("connector", connector)
        .with("host", host)
        .about_connection()
    }

    pub fn placeholder_misplaced(connector: &str, field: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderMisplaced,
            format!("a placeholder of connector {connector} was found in {field}, where egret does not put credentials; send it in the Authorization header (or the connector's configured header or query parameter)."),
        )
        .with("connector", connector)
        .about_connection()
    }

    pub fn placeholder_plain_http() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderPlainHttp,
            "this plain-http request carries a placeholder, and egret never puts credentials on unencrypted requests; use https:// for this host.".to_owned(),
        )
    }

    pub fn https_only(host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::EgressDenied,
            format!("{host} is a connector host and egret reaches it over https only; use https://{host}/ instead."),
        )
        .with("host", host)
    }

    pub fn bad_request(what: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Code::BadRequest,
            format!(
                "{what}; send an absolute-form http:// request or CONNECT host:port to this proxy."
            ),
        )
    }

    pub fn upstream_unreachable(host: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Code::UpstreamUnreachable,
            format!(
                "egret could not reach {host} ({why}); check that the host is up, or retry later."
            ),
        )
        .with("host", host)
    }

    pub fn upstream_timeout(host: &str, what: &str) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            Code::UpstreamTimeout,
            format!("{host} did not {what} in time; retry later or check the upstream."),
        )
        .with("host", host)
    }

    /// The upstream compressed an answer to a request that carried a credential, though
    /// egret asked for `identity`: it cannot be scanned for an echoed credential.
    pub fn response_unscannable(host: &str, encoding: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Code::ResponseUnscannable,
            format!("{host} answered with a {encoding}-encoded body although egret asked for an uncompressed one; egret must check answers to requests that carry a credential and cannot check this one, so it withheld it. Ask the operator to report the upstream, or send the request without a placeholder."),
        )
        .with("host", host)
    }

    /// An upgrade egret cannot watch: a protocol other than WebSocket, or WebSocket with
    /// an extension (compression) the upstream took though egret did not offer it.
    pub fn upgrade_unscannable(host: &str, what: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Code::ResponseUnscannable,
            format!("the upgrade to {host} {what}, which egret cannot scan; egret must check what comes back to requests that carry a credential (or to a connector host that scans all answers), so it refused the upgrade. Send it without a placeholder, or ask the operator about the connector's scan_answers."),
        )
        .with("host", host)
    }

    /// The connector's `rate_limit` is used up for now.
    pub fn rate_limited(connector: &str, retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let mut r = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::RateLimited,
            format!("connector {connector} allows only so many requests at a time and this one is over its rate limit; retry after {seconds} s."),
        )
        .with("connector", connector)
        .with("retry_after", seconds);
        r.retry_after = Some(seconds);
        r
    }

    /// The proxy holds as many sandbox connections as it may (`limits.max_client_connections`).
    pub fn too_many_connections() -> Self {
        let mut r = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::TooManyConnections,
            "egret is serving as many connections as it is configured for; close idle connections or retry in a moment.".to_owned(),
        );
        r.retry_after = Some(1);
        r
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

    /// Proxy authentication is on and the sandbox did not present valid credentials.
    pub fn proxy_auth_required(why: &str) -> Self {
        Self::new(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Code::ProxyAuthRequired,
            format!(
                "{why}; send Proxy-Authorization: Basic <sandbox-id>:<secret> (the proxy URL `egret sandbox-env --sandbox ID` prints carries it)."
            ),
        )
    }

    /// A placeholder bound to one sandbox, sent from another (or from none).
    pub fn placeholder_wrong_sandbox(connector: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Code::PlaceholderWrongSandbox,
            format!("this {connector} placeholder belongs to another sandbox and was not used; mint one for this sandbox (`egret sandbox-env --sandbox ID`)."),
        )
        .with("connector", connector)
        .about_connection()
    }

    /// The user's grant is gone (revoked, expired refresh token): only they can fix it.
    pub fn connection_needs_reauth(conn: &egret_vault::ConnectionId) -> Self {
        let (connector, owner) = (&conn.connector, conn.owner.as_str());
        let which = if conn.name.is_default() {
            String::new()
        } else {
            format!(" (`{}`)", conn.name)
        };
        let flag = conn.name.flag();
        let refusal = Self::new(
            StatusCode::UNAUTHORIZED,
            Code::ConnectionNeedsReauth,
            format!("the connection of {owner} to {connector}{which} is no longer authorized by the vendor; the user must connect again (`egret connection connect {connector} --owner {owner}{flag}`), then retry."),
        )
        .with("connector", connector.as_str())
        .with("owner", owner);
        let refusal = if conn.name.is_default() {
            refusal
        } else {
            refusal.with("name", conn.name.as_str())
        };
        refusal.about_connection()
    }

    /// The vendor's token endpoint failed while the token had to be renewed.
    pub fn token_refresh_failed(connector: &str, timed_out: bool, why: &str) -> Self {
        let status = if timed_out {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::BAD_GATEWAY
        };
        Self::new(
            status,
            Code::TokenRefreshFailed,
            format!("the access token for {connector} expired and the vendor's token endpoint failed to renew it ({why}); the request was not sent. Retry in a little while."),
        )
        .with("connector", connector)
        .about_connection()
    }

    /// A renewed token could not be stored (full disk, vault error): egret's own failure,
    /// not the vendor's, and the request was not sent.
    pub fn credentials_not_stored(connector: &str, why: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            format!("egret renewed the access token for {connector} but could not store it ({why}), so the request was not sent. This is a fault in egret's vault, not at the vendor: retry shortly, and ask the operator to check egret's log and the vault's disk."),
        )
        .with("connector", connector)
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
