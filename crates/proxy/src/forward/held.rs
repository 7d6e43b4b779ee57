//! Step 4 with approvals: the swap, and where a rule wants a person to approve the
//! request, the request held (its body buffered, up to 1 MiB) until the connection's
//! owner or an administrator decides, or the hold ends. Approved: the swap runs again
//! with the approval, and the request goes. Denied, or not decided in time: refused,
//! nothing sent, no token renewed.

use bytes::Bytes;
use egret_approvals::{Ask, BODY_MAX, Held};
use egret_policy::Verdict;
use egret_vault::PlaceholderEntry;
use http::request::Parts;
use http_body_util::{Either, Full};

use super::fresh::{self, Stop};
use crate::Proxy;
use crate::binding::Bound;
use crate::refusal::Refusal;
use crate::swap::{Asked, SwapReport, redacted};
use crate::upstream::UpstreamBody;

/// The swap, holding the request for approval where a rule says so; returns the report
/// and the body to send (buffered when it was held).
pub(super) async fn swap(
    proxy: &Proxy,
    parts: &mut Parts,
    bound: &Bound,
    asked: Option<&Asked<'_>>,
    mut body: UpstreamBody,
) -> Result<(SwapReport, UpstreamBody), Refusal> {
    let mut approved = Vec::new();
    loop {
        let policy = proxy.policy.load();
        match fresh::swap(proxy, policy, parts, bound, Vec::new(), asked, &approved).await {
            Ok(report) => return Ok((report, body)),
            Err(Stop::Refuse(r)) => return Err(r),
            Err(Stop::Hold(entry, verdict)) => {
                let bytes = buffer(proxy, body, &entry, &verdict).await?;
                wait(proxy, parts, bound, &entry, &verdict, bytes.clone()).await?;
                approved.push(entry.connection.clone());
                body = Either::Right(Full::new(bytes));
            }
        }
    }
}

/// Holds the request until a person approves it; the refusal otherwise.
async fn wait(
    proxy: &Proxy,
    parts: &Parts,
    bound: &Bound,
    entry: &PlaceholderEntry,
    verdict: &Verdict,
    body: Bytes,
) -> Result<(), Refusal> {
    let connector = entry.info.connector.as_str();
    let hold = {
        let policy = proxy.policy.load();
        policy
            .connector(connector)
            .and_then(|c| c.approval_hold)
            .unwrap_or(policy.approvals.hold)
    };
    let ask = Ask {
        connection: entry.connection.clone(),
        sandbox: bound.sandbox_id().map(str::to_owned),
        method: parts.method.as_str().to_owned(),
        host: bound.host.to_string(),
        path: redacted(parts.uri.path()).into_owned(),
        query: parts.uri.query().map(str::to_owned),
        body: body.to_vec(),
        rule: verdict.rule.clone(),
        reason: verdict.reason.clone(),
    };
    let held = proxy
        .approvals
        .hold(ask, hold)
        .await
        .map_err(|e| Refusal::internal(&format!("the approval could not be kept ({e})")))?;
    match held {
        Held::Granted { .. } => Ok(()),
        Held::Denied { id, by, note } => Err(Refusal::approval_denied(
            connector,
            &id,
            by.as_deref(),
            note.as_deref(),
        )),
        Held::Pending { id, retry_after } => Err(Refusal::approval_pending(
            connector,
            &id,
            retry_after,
            &proxy.approvals.page_url(&id),
            &verdict.reason,
        )),
    }
}

/// The body, whole, up to [`BODY_MAX`], within the head timeout.
async fn buffer(
    proxy: &Proxy,
    body: UpstreamBody,
    entry: &PlaceholderEntry,
    verdict: &Verdict,
) -> Result<Bytes, Refusal> {
    // Read already for the rules (at most their 64 KiB), or now.
    super::whole::upstream(proxy, body, BODY_MAX)
        .await?
        .ok_or_else(|| {
            Refusal::request_denied(
                &entry.info.connector,
                &verdict.rule,
                &format!(
                    "this request needs a person's approval and its body is over {} MiB, more than a held request may carry",
                    BODY_MAX / (1024 * 1024)
                ),
                "Send a body of at most 1 MiB.",
            )
        })
}
