//! The request-head timeout of sandbox connections: whenever nothing is in flight on a
//! connection (a new connection, or keep-alive between requests), a complete request head
//! must arrive within the timeout, or the connection is closed. Bytes do not extend it, so
//! a slowloris client trickling a head is cut as surely as a silent one.
//!
//! Requests in flight — including a tunnel or an upgraded connection riding on this one —
//! hold an [`InFlight`] guard and stop the clock, so slow upstreams, long downloads and SSE
//! are never cut. One timer per connection, moved only when a request ends: a timer per
//! request (hyper's own header timeout) costs a wake-up of the timer thread each time.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::body::{BoxError, ProxyBody};

/// Counts what is in flight on one connection, and how many have finished: the idle
/// clock restarts when the last one ends, not when it began.
#[derive(Clone, Default)]
pub(crate) struct Busy(Arc<Counters>);

#[derive(Default)]
pub(crate) struct Counters {
    in_flight: AtomicUsize,
    finished: AtomicU64,
}

impl Busy {
    pub(crate) fn enter(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.0.clone(), Vec::new())
    }

    fn idle(&self) -> bool {
        self.0.in_flight.load(Ordering::Acquire) == 0
    }

    fn finished(&self) -> u64 {
        self.0.finished.load(Ordering::Acquire)
    }
}

/// Held while a request (and its response body, tunnel or upgrade) is alive; also holds
/// the request's places in its connections' concurrency limits (`budget`).
pub(crate) struct InFlight(Arc<Counters>, Vec<crate::budget::Slot>);

impl InFlight {
    /// Keeps `slots` until the request and its response are done.
    pub(crate) fn hold(&mut self, slots: Vec<crate::budget::Slot>) {
        self.1.extend(slots);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) struct IdleIo<T> {
    inner: T,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    /// When the connection last had nothing in flight.
    idle_since: Instant,
    busy: Busy,
    /// `busy.finished()` when the clock last restarted.
    seen_finished: u64,
}

impl<T> IdleIo<T> {
    pub(crate) fn new(inner: T, timeout: Duration, busy: Busy) -> Self {
        let now = Instant::now();
        Self {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep_until(now + timeout)),
            idle_since: now,
            busy,
            seen_finished: 0,
        }
    }

    /// Called when a read would wait: `Ready(())` when the time is up.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.busy.idle() {
            return Poll::Pending;
        }
        let finished = self.busy.finished();
        if finished != self.seen_finished {
            // The last request just ended: the next head is due `timeout` from now.
            self.seen_finished = finished;
            self.idle_since = Instant::now();
        }
        let deadline = self.idle_since + self.timeout;
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => match self.poll_expired(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no complete request head within the request-head timeout",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that keeps its request "in flight" until the last byte is sent.
pub(crate) fn hold(body: ProxyBody, guard: InFlight) -> ProxyBody {
    http_body_util::BodyExt::boxed_unsync(Held {
        body,
        _guard: guard,
    })
}

struct Held {
    body: ProxyBody,
    _guard: InFlight,
}

impl Body for Held {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
