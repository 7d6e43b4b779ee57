//! Steps 5 and 7: the answer to a request that carried a credential is scanned for it
//! before the sandbox sees it (see `redact` for the forms looked for). Step 5 prepares
//! the scan and asks the upstream for an uncompressed answer; step 7 applies it to the
//! answer's headers, its body (whole when small and of known length, else streamed)
//! and its trailers.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tracing::debug;

use crate::Proxy;
use crate::binding::Bound;
use crate::body::{BoxError, ProxyBody, stream};
use crate::idle::{InFlight, hold};
use crate::redact::Redactor;
use crate::refusal::Refusal;
use crate::swap::SwapReport;
use crate::upstream::Codings;

/// Answers of at most this many bytes with a known length are scanned whole: they keep
/// an exact `content-length` (and go out in one write) instead of streaming chunked.
const SCAN_WHOLE_MAX: u64 = 64 * 1024;

/// Scanning state for one response: the credentials to look for, and whether the
/// request's method lets the response carry a body.
pub(super) struct Scan {
    /// First the request's own credentials (each replaced by what the sandbox sent),
    /// then, where a connector scans all its answers, its other live credentials.
    redactors: Vec<Arc<Redactor>>,
    head: bool,
}

impl Scan {
    /// The scan for the answer to a request that carries `report`'s credentials, and
    /// for the live credentials of every connector serving `bound` that scans all its
    /// answers (`scan_answers`): an upstream may have stored a key from one request and
    /// hand it back on another. `None` when there is nothing to look for. A compressed
    /// answer cannot be scanned as it streams, so the request asks for an uncompressed one.
    pub(super) fn prepare(
        proxy: &Proxy,
        bound: &Bound,
        report: &SwapReport,
        parts: &mut http::request::Parts,
    ) -> Option<Self> {
        let mut redactors: Vec<Arc<Redactor>> = proxy
            .redactors
            .for_echoes(&report.echoes)
            .into_iter()
            .collect();
        let policy = proxy.policy.load();
        let scanning = policy
            .connectors
            .iter()
            .filter(|c| c.scan_answers && c.serves(&bound.host, bound.port));
        for connector in scanning {
            let stored = proxy
                .redactors
                .for_connector(&proxy.vault, connector.id.as_str());
            let Some(redactor) = &stored.redactor else {
                continue;
            };
            // When the request carries every credential the connector has (one key, or
            // one user's token: the usual case), the first pass finds them all.
            let carried = stored.credentials.len() <= report.swapped.len()
                && stored.credentials.iter().all(|live| {
                    report
                        .swapped
                        .iter()
                        .any(|s| Arc::ptr_eq(&s.credential, live))
                });
            if !carried {
                redactors.push(redactor.clone());
            }
        }
        if redactors.is_empty() {
            return None;
        }
        parts
            .headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        Some(Self {
            redactors,
            head: parts.method == Method::HEAD,
        })
    }

    /// The redactors, in the order they apply.
    pub(super) fn redactors(&self) -> &[Arc<Redactor>] {
        &self.redactors
    }

    /// Replaces credentials in `bytes`, all of them at once (the end of a body).
    fn replace_all(&self, bytes: Bytes) -> Bytes {
        self.redactors
            .iter()
            .fold(bytes, |text, r| r.replace(&text, true).0)
    }

    /// Replaces echoed credentials in an answer's head — header names and values, and
    /// an HTTP/1 reason phrase (hyper keeps a non-canonical one and writes it back out)
    /// — counting the answers that had one (a counter, not a log line: an echoing
    /// upstream does it every time).
    pub(super) fn answer_head(&self, proxy: &Proxy, host: &str, head: &mut http::response::Parts) {
        let mut in_headers = false;
        for redactor in &self.redactors {
            in_headers |= redactor.headers(&mut head.headers);
        }
        let in_reason = self.reason_phrase(&mut head.extensions);
        if in_headers || in_reason {
            proxy.metrics.echoed_headers.inc();
            debug!(%host, "upstream echoed a credential in a response head; replaced");
        }
    }

    /// Scans the reason phrase; one that still cannot be written is dropped (the
    /// canonical one goes out instead).
    fn reason_phrase(&self, extensions: &mut http::Extensions) -> bool {
        let Some(reason) = extensions.get::<hyper::ext::ReasonPhrase>() else {
            return false;
        };
        let text = Bytes::copy_from_slice(reason.as_bytes());
        let out = self.replace_all(text.clone());
        if out == text {
            return false;
        }
        match hyper::ext::ReasonPhrase::try_from(out) {
            Ok(scanned) => extensions.insert(scanned),
            Err(_) => extensions.remove::<hyper::ext::ReasonPhrase>(),
        };
        true
    }
}

/// The upstream's response as the sandbox gets it: scanned (when the request carried a
/// credential), and held open against the connection's idle timeout.
pub(super) async fn answer<B>(
    proxy: &Proxy,
    bound: &Bound,
    resp: Response<B>,
    scan: Option<&Scan>,
    guard: InFlight,
) -> Result<Response<ProxyBody>, Refusal>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + std::fmt::Display,
{
    let resp = scanned(proxy, bound, resp, scan).await?;
    Ok(resp.map(|body| hold(body, guard)))
}

/// The response with every echoed credential replaced by what the sandbox sent.
pub(super) async fn scanned<B>(
    proxy: &Proxy,
    bound: &Bound,
    resp: Response<B>,
    scan: Option<&Scan>,
) -> Result<Response<ProxyBody>, Refusal>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + std::fmt::Display,
{
    let Some(scan) = scan else {
        return Ok(resp.map(stream));
    };
    let (mut parts, body) = resp.into_parts();
    // Decided from every coding the upstream applied, noted before hop-by-hop headers
    // went (`upstream::received`); a plain header check is the belt to those braces.
    let coded = parts.extensions.get::<Codings>().map(|c| c.0.clone());
    let labelled = parts
        .headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .find(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let Some(encoding) = coded.or(labelled) {
        return Err(Refusal::response_unscannable(&bound.host, &encoding));
    }
    scan.answer_head(proxy, &bound.host, &mut parts);
    let bodiless = scan.head
        || parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if bodiless {
        return Ok(Response::from_parts(parts, stream(body)));
    }
    // Decided by the body's framing (what will arrive), never by a header alone.
    let small = body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= SCAN_WHOLE_MAX);
    if !small {
        // Placeholders and credentials differ in length: the length is known only at the end.
        parts.headers.remove(CONTENT_LENGTH);
        let mut layers = scan.redactors.iter();
        let Some(first) = layers.next() else {
            return Ok(Response::from_parts(parts, stream(body)));
        };
        let mut body = stream(first.clone().body(body));
        for redactor in layers {
            body = stream(redactor.clone().body(body));
        }
        return Ok(Response::from_parts(parts, body));
    }
    // A small answer usually arrives with its head: then no timer is set up at all.
    // The cap holds whatever the framing claimed.
    let limited = http_body_util::Limited::new(body, SCAN_WHOLE_MAX as usize);
    let mut collect = std::pin::pin!(limited.collect());
    let collected = match collect.as_mut().now_or_never() {
        Some(done) => done,
        None => tokio::time::timeout(proxy.limits.upstream_response_timeout, collect)
            .await
            .map_err(|_| Refusal::upstream_timeout(&bound.host, "send its answer"))?,
    }
    .map_err(|e| {
        Refusal::upstream_unreachable(&bound.host, &format!("its answer broke off: {e}"))
    })?;
    let trailers = collected.trailers().cloned();
    let out = scan.replace_all(collected.to_bytes());
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
    let Some(mut trailers) = trailers else {
        return Ok(Response::from_parts(parts, stream(Full::new(out))));
    };
    for redactor in &scan.redactors {
        redactor.headers(&mut trailers);
    }
    let frames = [
        http_body::Frame::data(out),
        http_body::Frame::trailers(trailers),
    ];
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(
        frames.map(Ok::<_, Infallible>),
    ));
    Ok(Response::from_parts(parts, stream(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::Code;
    use crate::swap::Echo;

    const KEY: &[u8] = b"sk-live-0123456789abcdef";
    const SHOWN: &[u8] = b"egp_placeholder0123456789abcdefghijklmnop";

    fn scan(head: bool) -> Scan {
        let echo = Echo::new(KEY, SHOWN);
        Scan {
            redactors: vec![Redactor::new(&[echo]).expect("redactor")],
            head,
        }
    }

    fn response(headers: &[(&str, &str)], body: &'static [u8]) -> Response<Full<Bytes>> {
        let mut b = Response::builder().status(200);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Full::new(Bytes::from_static(body)))
            .expect("response")
    }

    async fn run<B>(
        scan: &Scan,
        resp: Response<B>,
    ) -> Result<(http::response::Parts, Bytes), Refusal>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + std::fmt::Display,
    {
        let proxy = crate::test_proxy();
        let bound = Bound::new("api.x.com".into(), 443).expect("bound");
        let (parts, body) = scanned(&proxy, &bound, resp, Some(scan))
            .await?
            .into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        Ok((parts, bytes))
    }

    #[tokio::test]
    async fn a_small_answer_is_scanned_whole_with_its_new_length() {
        let body: &'static [u8] = b"{\"echo\":\"sk-live-0123456789abcdef\"}";
        let (parts, bytes) = run(
            &scan(false),
            response(
                &[
                    ("content-length", "35"),
                    ("x-echo", "sk-live-0123456789abcdef"),
                ],
                body,
            ),
        )
        .await
        .expect("scanned");
        let expected = String::from_utf8_lossy(body).replace(
            "sk-live-0123456789abcdef",
            std::str::from_utf8(SHOWN).expect("ascii"),
        );
        assert_eq!(bytes, expected.as_bytes());
        assert_eq!(
            parts.headers["content-length"],
            expected.len().to_string().as_str()
        );
        assert_eq!(parts.headers["x-echo"].as_bytes(), SHOWN);
    }

    #[tokio::test]
    async fn a_long_answer_streams_without_a_length_and_head_answers_keep_theirs() {
        // Of unknown length (chunked), whatever its size: it streams.
        let chunk = Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(
            b"a sk-live-0123456789abcdef b",
        )));
        let body = http_body_util::StreamBody::new(futures_util::stream::iter([chunk]));
        let streamed = Response::builder()
            .status(200)
            .body(body)
            .expect("response");
        let (parts, bytes) = run(&scan(false), streamed).await.expect("scanned");
        assert!(!parts.headers.contains_key("content-length"));
        assert!(!bytes.windows(KEY.len()).any(|w| w == KEY));
        let (parts, _) = run(&scan(true), response(&[("content-length", "999")], b""))
            .await
            .expect("head");
        assert_eq!(parts.headers["content-length"], "999");
    }

    #[tokio::test]
    async fn a_compressed_answer_is_withheld() {
        let refused = run(
            &scan(false),
            response(&[("content-encoding", "gzip")], b"\x1f\x8b"),
        )
        .await
        .expect_err("unscannable");
        assert_eq!(refused.code, Code::ResponseUnscannable);
    }
}
