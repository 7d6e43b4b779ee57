//! Byte relays: tunnels to `network.allow` hosts and upgraded (WebSocket) connections.
//! Bytes pass untouched; a relay with no traffic either way for the idle timeout closes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

const RELAY_BUFFER: usize = 64 * 1024;

/// Copies both ways until both sides close, or until neither moves a byte for `idle`.
pub async fn relay<A, B>(a: A, b: B, idle: Duration) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Activity::clock();
    let mut a = activity.watch(a);
    let mut b = activity.watch(b);
    let copy = tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, RELAY_BUFFER, RELAY_BUFFER);
    tokio::select! {
        done = copy => done,
        () = activity.idle_for(idle) => {
            Err(io::Error::new(io::ErrorKind::TimedOut, "tunnel idle timeout"))
        }
    }
}

/// Dials the first reachable address, with the connect timeout, Nagle off.
pub async fn dial(addrs: &[SocketAddr], timeout: Duration) -> io::Result<TcpStream> {
    let mut last_err = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Ok(Err(e)) => last_err = e,
            Err(_) => last_err = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        }
    }
    Err(last_err)
}

/// When a byte last moved on any stream it watches: one idle clock for both directions.
#[derive(Clone)]
pub(crate) struct Activity {
    /// Milliseconds after `start` of the last byte moved.
    last: Arc<AtomicU64>,
    start: Instant,
}

impl Activity {
    pub(crate) fn clock() -> Self {
        Self {
            last: Arc::new(AtomicU64::new(0)),
            start: Instant::now(),
        }
    }

    /// `inner`, reporting every byte it moves to this clock.
    pub(crate) fn watch<T>(&self, inner: T) -> Watched<T> {
        Watched {
            inner,
            activity: self.clone(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Resolves once no watched stream has moved a byte for `idle`.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        loop {
            let seen = self.last.load(Ordering::Relaxed);
            tokio::time::sleep_until(self.start + Duration::from_millis(seen) + idle).await;
            if self.last.load(Ordering::Relaxed) == seen {
                return;
            }
        }
    }
}

/// A stream whose traffic an [`Activity`] clock watches.
pub(crate) struct Watched<T> {
    inner: T,
    activity: Activity,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
