//! A request body as it comes from the sandbox: as it is, or with its `aws-chunked`
//! chunks signed again on the way ([`egret_signing::sigv4::chunks`]). Both stream;
//! neither changes the body's length.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use egret_signing::sigv4::chunks::ChunkResigner;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;

use crate::body::BoxError;

pin_project! {
    #[project = Projected]
    pub enum SandboxBody {
        Plain { #[pin] body: Incoming },
        Resigned { #[pin] body: Incoming, resigner: Box<ChunkResigner>, ended: bool },
    }
}

impl From<Incoming> for SandboxBody {
    fn from(body: Incoming) -> Self {
        Self::Plain { body }
    }
}

impl SandboxBody {
    /// `body`'s chunks re-signed by `resigner` as they pass.
    pub fn resigned(body: Incoming, resigner: ChunkResigner) -> Self {
        Self::Resigned {
            body,
            resigner: Box::new(resigner),
            ended: false,
        }
    }

    /// The sandbox's body as it came, when nothing is done to it.
    pub fn into_plain(self) -> Option<Incoming> {
        match self {
            Self::Plain { body } => Some(body),
            Self::Resigned { .. } => None,
        }
    }
}

impl Body for SandboxBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            Projected::Plain { body } => body.poll_frame(cx).map_err(Into::into),
            Projected::Resigned {
                mut body,
                resigner,
                ended,
            } => loop {
                if *ended {
                    return Poll::Ready(None);
                }
                match ready!(body.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => {
                            let out = resigner.push(&data)?;
                            // A chunk still incomplete: read on.
                            if !out.is_empty() {
                                return Poll::Ready(Some(Ok(Frame::data(out))));
                            }
                        }
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    },
                    Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                    None => {
                        *ended = true;
                        resigner.finish()?;
                        return Poll::Ready(None);
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Plain { body } => body.is_end_stream(),
            Self::Resigned { ended, .. } => *ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        // Re-signing keeps every length: the sandbox's size is the one sent.
        match self {
            Self::Plain { body } | Self::Resigned { body, .. } => body.size_hint(),
        }
    }
}
