//! Nothing leaks back: an upstream that echoes a request (debug endpoints, error pages,
//! httpbin-style APIs) must not hand the sandbox the credential egret injected. Every
//! form of a credential sent on a request that an upstream can trivially apply (see
//! `forms`) is replaced in the response's headers, body and trailers by the same form
//! of what the sandbox sent in its place.
//!
//! The body scan streams: between chunks it holds back only a tail that could begin a
//! credential (at most the longest pattern minus one byte), so a credential split across
//! chunks is still found, memory stays flat whatever the body size, and a chunk whose
//! end begins no credential — nearly all — passes on without being copied. Compressed bodies cannot be scanned as they stream, so
//! egret asks for `identity` on requests that carry a credential and refuses an answer
//! that is encoded anyway (`response_unscannable`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::swap::Echo;

/// What replaces a connector's stored credential found in an answer to a request that
/// did not carry it (there is no placeholder of the sandbox's to put back).
pub const WITHHELD: &[u8] = b"egret-credential-withheld";

/// Redactors already built, by a digest of their credential pairs: building one costs
/// tens of microseconds, and the same credential and placeholder come back request
/// after request. The digest, not the credential, is the key.
pub struct Redactors {
    by_echoes: quick_cache::sync::Cache<[u8; 32], Arc<Redactor>>,
    /// Per connector: every live credential of it, built at a vault generation.
    by_connector: std::sync::Mutex<std::collections::HashMap<String, Arc<Stored>>>,
}

/// A connector's live credentials and their redactor, as of a vault generation.
pub struct Stored {
    generation: u64,
    /// The credentials scanned for (to tell when a request already carries them all).
    pub credentials: Vec<Arc<egret_vault::Credential>>,
    pub redactor: Option<Arc<Redactor>>,
}

impl Redactors {
    pub fn new(capacity: usize) -> Self {
        Self {
            by_echoes: quick_cache::sync::Cache::new(capacity.max(1)),
            by_connector: std::sync::Mutex::default(),
        }
    }

    /// The redactor for every live credential of `connector` (each replaced by
    /// [`WITHHELD`]), rebuilt only when the vault has changed since.
    pub fn for_connector(&self, vault: &egret_vault::Vault, connector: &str) -> Arc<Stored> {
        let now = vault.generation();
        {
            let cached = self.by_connector.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(hit) = cached.get(connector).filter(|s| s.generation == now) {
                return hit.clone();
            }
        }
        let (generation, credentials) = vault.live_credentials(connector);
        let echoes: Vec<Echo> = credentials
            .iter()
            .map(|c| Echo {
                sent: Zeroizing::new(
                    secrecy::ExposeSecret::expose_secret(&c.secret)
                        .as_bytes()
                        .to_vec(),
                ),
                shown: WITHHELD.to_vec(),
            })
            .collect();
        let stored = Arc::new(Stored {
            generation,
            redactor: Redactor::new(&echoes),
            credentials,
        });
        let mut cached = self.by_connector.lock().unwrap_or_else(|p| p.into_inner());
        cached.insert(connector.to_owned(), stored.clone());
        stored
    }

    /// The redactor for `echoes`; `None` when the request carried no credential.
    pub fn for_echoes(&self, echoes: &[Echo]) -> Option<Arc<Redactor>> {
        if echoes.is_empty() {
            return None;
        }
        let mut digest = Sha256::new();
        for echo in echoes {
            for part in [echo.sent.as_slice(), &echo.shown] {
                digest.update((part.len() as u64).to_le_bytes());
                digest.update(part);
            }
        }
        let key: [u8; 32] = digest.finalize().into();
        if let Some(hit) = self.by_echoes.get(&key) {
            return Some(hit);
        }
        let built = Redactor::new(echoes)?;
        self.by_echoes.insert(key, built.clone());
        Some(built)
    }
}

/// The credentials of one request and what goes back in their place.
pub struct Redactor {
    finder: AhoCorasick,
    /// The credential forms, to tell whether a chunk's tail could begin one.
    patterns: Vec<Zeroizing<Vec<u8>>>,
    /// Which bytes begin a pattern: most tail bytes are ruled out by this alone.
    starts: [bool; 256],
    /// Indexed by pattern id: the placeholder-side text for each credential form.
    shown: Vec<Bytes>,
    longest: usize,
    /// Header values shorter than this cannot hold a credential (most of them: dates,
    /// lengths, types) and are not scanned.
    shortest: usize,
}

impl Redactor {
    /// `None` when the request carried no credential (nothing to look for).
    pub fn new(echoes: &[Echo]) -> Option<Arc<Self>> {
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut shown = Vec::new();
        for echo in echoes {
            for (form, replacement) in forms::of(&echo.sent, &echo.shown) {
                // Empty or already-listed forms (the same key in two fields) add nothing.
                if form.is_empty() || patterns.iter().any(|p| **p == *form) {
                    continue;
                }
                patterns.push(form);
                shown.push(Bytes::from(replacement));
            }
        }
        if patterns.is_empty() {
            return None;
        }
        let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let shortest = patterns.iter().map(|p| p.len()).min().unwrap_or(0);
        // A handful of short patterns per request: the contiguous NFA builds in a few
        // microseconds where the default DFA takes tens, and scans as fast here (the
        // prefilter does the work on bodies without a match).
        let finder = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns.iter().map(|p| p.as_slice()))
            .ok()?;
        let mut starts = [false; 256];
        for p in &patterns {
            starts[usize::from(p[0])] = true;
        }
        Some(Arc::new(Self {
            finder,
            patterns,
            starts,
            shown,
            longest,
            shortest,
        }))
    }

    /// Replaces credentials in every header value; true when one was found.
    pub fn headers(&self, headers: &mut HeaderMap) -> bool {
        let mut found = self.header_names(headers);
        for value in headers.values_mut() {
            if value.len() < self.shortest || !self.finder.is_match(value.as_bytes()) {
                continue;
            }
            let (out, _) = self.replace(&Bytes::copy_from_slice(value.as_bytes()), true);
            if let Ok(mut v) = HeaderValue::from_bytes(&out) {
                v.set_sensitive(true);
                *value = v;
            } else {
                *value = HeaderValue::from_static("egp_redacted");
            }
            found = true;
        }
        found
    }

    /// Renames headers whose name carries a credential form (`x-<key>: 1`: keys of
    /// lowercase letters, digits and dashes are valid header names). Rare, so the map is
    /// rebuilt only when a name matches.
    fn header_names(&self, headers: &mut HeaderMap) -> bool {
        let matches = |name: &http::HeaderName| {
            name.as_str().len() >= self.shortest && self.finder.is_match(name.as_str().as_bytes())
        };
        if !headers.keys().any(matches) {
            return false;
        }
        let old = std::mem::take(headers);
        let mut name = None;
        for (key, value) in old {
            // `HeaderMap`'s iterator names only the first value of each header.
            let key = match key {
                Some(key) if matches(&key) => {
                    let (out, _) =
                        self.replace(&Bytes::copy_from_slice(key.as_str().as_bytes()), true);
                    http::HeaderName::from_bytes(&out)
                        .unwrap_or(http::HeaderName::from_static("x-egret-redacted"))
                }
                Some(key) => key,
                None => match &name {
                    Some(previous) => http::HeaderName::clone(previous),
                    None => continue,
                },
            };
            headers.append(key.clone(), value);
            name = Some(key);
        }
        true
    }

    /// Replaces matches in `buf`. Unless `last`, a match may still be growing at the end,
    /// so the tail from which `buf` could still grow into a credential is left for the
    /// next call: returns the output and how many bytes of `buf` it covers.
    pub(crate) fn replace(&self, buf: &Bytes, last: bool) -> (Bytes, usize) {
        let limit = if last {
            buf.len()
        } else {
            self.growing_from(buf)
        };
        // A match starting before `limit` cannot grow (a longer pattern starting there
        // would make the rest of `buf` its prefix, and `limit` would be at or before it),
        // so it is final; later ones are looked at again with more bytes.
        let mut matches = self
            .finder
            .find_iter(buf.as_ref())
            .take_while(|m| m.start() < limit)
            .peekable();
        if matches.peek().is_none() {
            // The common case: nothing echoed, pass the bytes on without copying.
            return (buf.slice(..limit), limit);
        }
        let mut out = BytesMut::with_capacity(buf.len());
        let mut at = 0;
        for m in matches {
            out.extend_from_slice(&buf[at..m.start()]);
            out.extend_from_slice(&self.shown[m.pattern().as_usize()]);
            at = m.end();
        }
        let covered = at.max(limit);
        out.extend_from_slice(&buf[at..covered]);
        (out.freeze(), covered)
    }

    /// The first position among the last `longest - 1` bytes of `buf` from which the
    /// rest of `buf` is the beginning of a credential form; `buf.len()` when none is.
    fn growing_from(&self, buf: &[u8]) -> usize {
        let from = buf.len().saturating_sub(self.longest - 1);
        (from..buf.len())
            .find(|&i| {
                let rest = &buf[i..];
                self.starts[usize::from(rest[0])]
                    && self
                        .patterns
                        .iter()
                        .any(|p| p.len() > rest.len() && p.starts_with(rest))
            })
            .unwrap_or(buf.len())
    }

    /// Wraps a response body so it is scanned as it streams.
    pub fn body<B>(self: Arc<Self>, inner: B) -> Redacted<B> {
        Redacted {
            inner,
            redactor: self,
            held: Bytes::new(),
            trailers: None,
            ended: false,
        }
    }
}

/// A stream of bytes that is not an HTTP body (WebSocket payloads) through one or more
/// redactors in turn, each holding back the tail that could begin a credential until
/// more bytes, or the end, come.
pub(crate) struct Scanner {
    stages: Vec<(Arc<Redactor>, Bytes)>,
}

impl Scanner {
    pub(crate) fn new(redactors: &[Arc<Redactor>]) -> Self {
        Self {
            stages: redactors
                .iter()
                .map(|r| (r.clone(), Bytes::new()))
                .collect(),
        }
    }

    /// The scanned bytes that can go out now.
    pub(crate) fn push(&mut self, mut data: Bytes) -> Bytes {
        for (redactor, held) in &mut self.stages {
            let buf = joined(held, data);
            let (out, covered) = redactor.replace(&buf, false);
            *held = buf.slice(covered..);
            data = out;
        }
        data
    }

    /// Everything still held back, scanned: the end of the stream (or message).
    pub(crate) fn finish(&mut self) -> Bytes {
        let mut data = Bytes::new();
        for (redactor, held) in &mut self.stages {
            let buf = joined(held, data);
            data = redactor.replace(&buf, true).0;
            *held = Bytes::new();
        }
        data
    }
}

fn joined(held: &Bytes, more: Bytes) -> Bytes {
    if held.is_empty() {
        return more;
    }
    let mut buf = BytesMut::with_capacity(held.len() + more.len());
    buf.extend_from_slice(held);
    buf.extend_from_slice(&more);
    buf.freeze()
}

pin_project_lite::pin_project! {
    /// A response body with every credential form replaced; see the module doc.
    pub struct Redacted<B> {
        #[pin]
        inner: B,
        redactor: Arc<Redactor>,
        // Tail of the previous chunk that may start a credential.
        held: Bytes,
        trailers: Option<HeaderMap>,
        ended: bool,
    }
}

impl<B> Body for Redacted<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        loop {
            if *this.ended {
                if !this.held.is_empty() {
                    let (out, _) = this.redactor.replace(this.held, true);
                    *this.held = Bytes::new();
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    *this.ended = true;
                    continue;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let chunk = match frame.into_data() {
                Ok(chunk) => chunk,
                Err(frame) => {
                    // Trailers end the body: flush what is held first, then send them.
                    if let Ok(mut trailers) = frame.into_trailers() {
                        this.redactor.headers(&mut trailers);
                        *this.trailers = Some(trailers);
                    }
                    *this.ended = true;
                    continue;
                }
            };
            let buf = if this.held.is_empty() {
                chunk
            } else {
                let mut joined = BytesMut::with_capacity(this.held.len() + chunk.len());
                joined.extend_from_slice(this.held);
                joined.extend_from_slice(&chunk);
                joined.freeze()
            };
            let (out, covered) = this.redactor.replace(&buf, false);
            *this.held = buf.slice(covered..);
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.held.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Placeholders and credentials differ in length: the size is unknown.
        SizeHint::default()
    }
}

mod forms;
#[cfg(test)]
mod tests;
