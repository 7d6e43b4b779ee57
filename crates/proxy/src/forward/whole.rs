//! A request body read whole before it is sent on: for the request rules (up to 64 KiB)
//! and for a request held for approval (up to 1 MiB). Bounded in size and by the head
//! timeout, so a sandbox that trickles a body cannot hold a worker.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use crate::Proxy;
use crate::refusal::Refusal;

/// `body`, whole: `Ok(None)` when it is bigger than `max` (the caller says why that is
/// refused), a refusal when it does not arrive in time or breaks off.
pub(super) async fn read<B>(proxy: &Proxy, body: B, max: usize) -> Result<Option<Bytes>, Refusal>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let collected = tokio::time::timeout(
        proxy.limits.request_head_timeout,
        Limited::new(body, max).collect(),
    )
    .await
    .map_err(|_| Refusal::bad_request("the request body did not arrive in time"))?;
    match collected {
        Ok(c) => Ok(Some(c.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Ok(None),
        Err(_) => Err(Refusal::bad_request("the request body broke off")),
    }
}

/// A request body on its way upstream, whole: the bytes read already (for the rules or
/// a held request, within their own bounds), or the sandbox's stream read up to `max`
/// (`Ok(None)` beyond it, as [`read`]).
pub(super) async fn upstream(
    proxy: &Proxy,
    body: crate::upstream::UpstreamBody,
    max: usize,
) -> Result<Option<Bytes>, Refusal> {
    match body {
        http_body_util::Either::Right(full) => Ok(Some(
            full.collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default(),
        )),
        http_body_util::Either::Left(sandbox) => read(proxy, sandbox, max).await,
    }
}
