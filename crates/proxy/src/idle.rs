//! Idle timeout for sandbox connections: a connection that moves no bytes for the idle
//! time while no request is in flight is closed. hyper's header-read timeout only runs
//! once a request has started, so a connection that never sends anything (or sits idle
//! between keep-alive requests) needs this. Requests in flight — including a tunnel or an
//! upgraded connection riding on this one — hold an [`InFlight`] guard and pause the
//! clock, so slow upstreams, long downloads and SSE are never cut.

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
        InFlight(self.0.clone())
    }

    fn idle(&self) -> bool {
        self.0.in_flight.load(Ordering::Acquire) == 0
    }

    fn finished(&self) -> u64 {
        self.0.finished.load(Ordering::Acquire)
    }
}

/// Held while a request (and its response body, tunnel or upgrade) is alive.
pub(crate) struct InFlight(Arc<Counters>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) struct IdleIo<T> {
    inner: T,
    idle: Duration,
    /// Re-armed lazily (only when the connection goes idle), not on every byte: resetting
    /// a timer costs far more than reading the clock.
    sleep: Pin<Box<Sleep>>,
    last_activity: Instant,
    busy: Busy,
    /// `busy.finished()` when the clock last restarted.
    seen_finished: u64,
}

impl<T> IdleIo<T> {
    pub(crate) fn new(inner: T, idle: Duration, busy: Busy) -> Self {
        let now = Instant::now();
        Self {
            inner,
            idle,
            sleep: Box::pin(tokio::time::sleep_until(now + idle)),
            last_activity: now,
            busy,
            seen_finished: 0,
        }
    }

    /// Bytes moved. While something is in flight the clock does not run, so skip it.
    fn touch(&mut self) {
        if self.busy.idle() {
            self.last_activity = Instant::now();
        }
    }

    /// Called when a read would wait: `Ready(())` when the idle time is up.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.busy.idle() {
            return Poll::Pending;
        }
        let finished = self.busy.finished();
        if finished != self.seen_finished {
            // The last request just ended: the idle time counts from now.
            self.seen_finished = finished;
            self.last_activity = Instant::now();
        }
        let deadline = self.last_activity + self.idle;
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
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.poll_idle(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client connection idle",
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
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
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
