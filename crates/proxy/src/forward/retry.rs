//! Step 6: the upstream send, within the connector's response timeout, and retried where
//! the connector says so — requests without a body on idempotent methods, on the
//! statuses it names — after the upstream's `Retry-After` (when it asks for no more
//! than `max_wait`; a longer wait goes back to the sandbox as the vendor sent it) or a
//! short backoff. Each retry is counted and audited.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response};
use http_body::Body;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tracing::info;

use super::head::Head;
use super::settings::Plan;
use crate::Proxy;
use crate::binding::Bound;
use crate::refusal::Refusal;
use crate::swap::redacted;
use crate::upstream::{self, UpstreamBody};

/// The wait before retry n (0-based) when the upstream names none.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// The `data` of a `request.retry` audit event.
#[derive(serde::Serialize)]
struct RetryEvent<'a> {
    host: &'a str,
    method: &'a str,
    path: Cow<'a, str>,
    status: u16,
    attempt: u32,
    wait_ms: u64,
}

/// Sends the request as `plan` says; the last answer is returned whatever its status.
pub(super) async fn send(
    proxy: &Proxy,
    bound: &Bound,
    plan: &Plan,
    parts: Parts,
    body: UpstreamBody,
) -> Result<Response<Incoming>, Refusal> {
    let retries = plan.retries.as_ref().filter(|_| {
        idempotent(&parts.method) && (body.is_end_stream() || body.size_hint().exact() == Some(0))
    });
    let Some(retries) = retries else {
        let req = Request::from_parts(parts, body);
        return upstream::send_within(proxy, &bound.host, req, plan.timeout).await;
    };
    let head = Head::of(parts);
    let mut attempt = 0;
    loop {
        // Without a body: an empty one on each attempt.
        let req = head.request(Either::Right(Full::new(Bytes::new())));
        let resp = upstream::send_within(proxy, &bound.host, req, plan.timeout).await?;
        let status = resp.status().as_u16();
        if attempt >= retries.max || !retries.on.contains(&status) {
            return Ok(resp);
        }
        let wait = match retry_after(resp.headers(), SystemTime::now()) {
            Some(asked) if asked > retries.max_wait => return Ok(resp),
            Some(asked) => asked,
            None => {
                BACKOFF[usize::try_from(attempt)
                    .unwrap_or(usize::MAX)
                    .min(BACKOFF.len() - 1)]
            }
        };
        drop(resp);
        attempt += 1;
        note(proxy, bound, plan, &head, status, attempt, wait);
        tokio::time::sleep(wait).await;
    }
}

fn note(
    proxy: &Proxy,
    bound: &Bound,
    plan: &Plan,
    head: &Head,
    status: u16,
    attempt: u32,
    wait: Duration,
) {
    let connector = plan.connection().map_or("", |c| c.connector.as_str());
    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    proxy.metrics.upstream_retry(connector);
    info!(host = %bound.host, connector, status, attempt, wait_ms, "retrying the request upstream");
    let data = RetryEvent {
        host: &bound.host,
        method: head.method().as_str(),
        path: redacted(head.path()),
        status,
        attempt,
        wait_ms,
    };
    proxy
        .audit
        .record("request.retry", plan.connection(), &data);
}

/// Safe to send twice (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// `Retry-After` as a wait: delay-seconds, or an HTTP-date (a date past is no wait).
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().expect("value"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        h.insert("retry-after", later.parse().expect("value"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        h.insert("retry-after", earlier.parse().expect("value"));
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().expect("value"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn only_idempotent_methods_are_retried() {
        assert!(idempotent(&Method::GET) && idempotent(&Method::DELETE));
        assert!(!idempotent(&Method::POST) && !idempotent(&Method::PATCH));
    }
}
