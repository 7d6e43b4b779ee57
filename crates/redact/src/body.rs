//! Scanning as bytes stream: an HTTP body (`Redacted`) or any other stream of bytes
//! (`Scanner`: WebSocket payloads). Between chunks only a tail that could still grow into
//! a credential is held back, so a credential split across chunks is still found, memory
//! stays flat whatever the size, and a chunk whose end begins no credential — nearly
//! all — passes on without being copied.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::Redactor;

/// A stream of bytes that is not an HTTP body (WebSocket payloads) through one or more
/// redactors in turn, each holding back the tail that could begin a credential until
/// more bytes, or the end, come.
pub struct Scanner {
    stages: Vec<(Arc<Redactor>, Bytes)>,
}

impl Scanner {
    pub fn new(redactors: &[Arc<Redactor>]) -> Self {
        Self {
            stages: redactors
                .iter()
                .map(|r| (r.clone(), Bytes::new()))
                .collect(),
        }
    }

    /// The scanned bytes that can go out now.
    pub fn push(&mut self, mut data: Bytes) -> Bytes {
        for (redactor, held) in &mut self.stages {
            let buf = joined(held, data);
            let (out, covered) = redactor.replace(&buf, false);
            *held = buf.slice(covered..);
            data = out;
        }
        data
    }

    /// Everything still held back, scanned: the end of the stream (or message).
    pub fn finish(&mut self) -> Bytes {
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

impl<B> Redacted<B> {
    pub(crate) fn new(inner: B, redactor: Arc<Redactor>) -> Self {
        Self {
            inner,
            redactor,
            held: Bytes::new(),
            trailers: None,
            ended: false,
        }
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
