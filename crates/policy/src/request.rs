//! A connector's `request:` settings: base headers and a user agent for the requests
//! that carry its credential, their upstream response timeout, and retries of
//! idempotent requests without a body.

use std::time::Duration;

use crate::error::Located;
use crate::raw::{RawRequest, S};
use crate::validate::Validator;

/// What egret adds to, and how it sends, the requests that carry a connector's
/// credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSettings {
    /// Set on each such request unless the sandbox set them itself.
    pub headers: Vec<(String, String)>,
    /// Replaces the sandbox's `User-Agent`.
    pub user_agent: Option<String>,
    /// From sending to the response head; `limits.upstream_response_timeout` otherwise.
    pub timeout: Option<Duration>,
    pub retries: Option<Retries>,
}

/// Retries of requests without a body on idempotent methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retries {
    /// Retries after the first attempt.
    pub max: u32,
    /// Upstream statuses that are retried.
    pub on: Vec<u16>,
    /// The longest wait before a retry: a `Retry-After` asking for more is answered to
    /// the sandbox as the vendor sent it, rather than holding its request that long.
    pub max_wait: Duration,
}

impl Retries {
    pub const DEFAULT_MAX: u32 = 2;
    pub const DEFAULT_ON: [u16; 4] = [429, 502, 503, 504];
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);
}

/// Headers a connector may not set: egret or HTTP itself owns them, or a credential
/// travels in them.
const OWNED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "authorization",
    "user-agent",
];

impl Validator<'_> {
    pub(crate) fn request_settings(
        &self,
        raw: &S<RawRequest>,
        inject_headers: &[String],
    ) -> Result<RequestSettings, Located> {
        let r = &raw.value;
        let mut headers = Vec::new();
        for (name, value) in &r.headers {
            let lower = name.to_ascii_lowercase();
            let token = !lower.is_empty()
                && lower
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(self.at(raw, &format!("`{name}` is not a header name")));
            }
            if OWNED.contains(&lower.as_str()) || inject_headers.contains(&lower) {
                return Err(self.at(
                    raw,
                    &format!(
                        "request.headers may not set `{name}`: egret sets it (credentials go in `inject`, the user agent in `request.user_agent`)"
                    ),
                ));
            }
            if !valid_value(value) {
                return Err(self.at(
                    raw,
                    &format!("the value of `{name}` must be printable text on one line"),
                ));
            }
            headers.push((lower, value.clone()));
        }
        let user_agent = match &r.user_agent {
            Some(ua) if !ua.is_empty() && valid_value(ua) => Some(ua.clone()),
            Some(_) => {
                return Err(self.at(raw, "request.user_agent must be printable text on one line"));
            }
            None => None,
        };
        let timeout = r
            .timeout
            .as_ref()
            .map(|t| self.positive_duration(t, "request.timeout"))
            .transpose()?;
        let retries = match &r.retries {
            None => None,
            Some(raw_retries) => {
                let rr = &raw_retries.value;
                let on = rr
                    .on
                    .clone()
                    .unwrap_or_else(|| Retries::DEFAULT_ON.to_vec());
                if let Some(bad) = on.iter().find(|s| !(400..=599).contains(*s)) {
                    return Err(self.at(
                        raw_retries,
                        &format!(
                            "request.retries.on: {bad} is not an error status; give statuses from 400 to 599, e.g. [429, 503]"
                        ),
                    ));
                }
                let max = rr.max.unwrap_or(Retries::DEFAULT_MAX);
                if max > 10 {
                    return Err(self.at(
                        raw_retries,
                        "request.retries.max is at most 10; each retry holds the sandbox's request",
                    ));
                }
                let max_wait = rr
                    .max_wait
                    .as_ref()
                    .map(|w| self.duration(w))
                    .transpose()?
                    .unwrap_or(Retries::DEFAULT_MAX_WAIT);
                Some(Retries { max, on, max_wait })
            }
        };
        Ok(RequestSettings {
            headers,
            user_agent,
            timeout,
            retries,
        })
    }
}

/// Visible ASCII, spaces and tabs: what a header value can hold without surprises.
fn valid_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}
