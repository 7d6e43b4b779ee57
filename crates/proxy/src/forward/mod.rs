//! One intercepted request, top to bottom. [`forward`] is the list of steps, each a
//! small function in a file of its own with its own tests, and [`handle`] is the one
//! place where a failed step becomes the sandbox's answer.

mod asked;
mod budgeted;
mod fresh;
mod head;
mod held;
mod limit;
mod record;
mod replay;
mod retry;
mod route;
mod scan;
mod settings;
mod signed;
mod target;
mod tools;
mod upgrade;
mod whole;

use http::{Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;
use serde_json::json;
use tracing::debug;

use crate::Proxy;
use crate::binding::{self, Bound};
use crate::body::ProxyBody;
use crate::idle::InFlight;
use crate::refusal::Refusal;
use crate::swap::redacted;

use record::SwapSummary;
use scan::Scan;

/// Forwards one request from an intercepted tunnel and answers the sandbox: the
/// upstream's (scanned) response, or the refusal of the step that said no.
pub(crate) async fn handle(
    proxy: &Proxy,
    bound: &Bound,
    guard: InFlight,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    // Cheap clones (a shared buffer, an enum): log fields are only built when enabled.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let started = proxy.clock.instant();
    let resp = match forward(proxy, bound, req, guard).await {
        Ok((resp, swapped)) => {
            let latency = proxy.clock.instant() - started;
            record::forwarded(proxy, bound, &method, uri.path(), &resp, latency, swapped);
            resp
        }
        Err(refusal) => {
            proxy.metrics.request("", refusal.code.as_str());
            let context = json!({
                "host": bound.host,
                "method": method.as_str(),
                "path": redacted(uri.path()),
            });
            let sandbox = bound.sandbox_id();
            proxy.refused(refusal, "request", &bound.host, sandbox, context)
        }
    };
    debug!(host = %bound.host, %method, path = %redacted(uri.path()), status = resp.status().as_u16(), "request done");
    resp
}

/// The steps, in order; each returns early with the refusal that stops the request.
async fn forward(
    proxy: &Proxy,
    bound: &Bound,
    req: Request<Incoming>,
    mut guard: InFlight,
) -> Result<(Response<ProxyBody>, Option<SwapSummary>), Refusal> {
    let (mut parts, body) = req.into_parts();
    // 1. CONNECT, SNI and Host name one host: a tunnel never carries a credential elsewhere;
    //    and the sandbox that opened it still holds the credentials it opened it with.
    binding::check(&parts, bound)?;
    if let Some(sandbox) = &bound.sandbox {
        sandbox.still_valid(proxy)?;
    }
    // A guard, not an `Arc` clone: no shared reference count to bounce between threads.
    let policy = proxy.policy.load();
    // 2. The policy may have changed since the CONNECT: the tunnel keeps no privilege.
    route::still_intercepted(&policy, bound)?;
    // 3. Before the swap: a request over its connector's rate limit costs no renewal either.
    limit::take(&proxy.rate, &policy, bound, proxy.clock.instant())?;
    // The sandbox's own head (placeholders, not tokens), kept for step 8 when it may come.
    let original = replay::Original::keep(&policy, bound, &parts, &body);
    // 3b. What the request asks, for its connector's request rules (decided in step 4,
    //     before any token is renewed); the body is read only where a rule looks into it.
    let (asking, body) = asked::take(proxy, &policy, bound, &parts, body).await?;
    let asked = asking.asked();
    // 4. Fresh credentials in place of placeholders, renewing OAuth tokens that are due;
    //    a request a rule holds for a person's approval waits here for the decision.
    drop(policy);
    let (report, body) = held::swap(proxy, &mut parts, bound, Some(&asked), body).await?;
    // 4b. Each connection it spends counts against its budget, and holds a place in flight.
    budgeted::take(proxy, &proxy.policy.load(), &report, &mut guard)?;
    // 4c. Credentials computed, not swapped: an AWS signature checked and made again
    //     with the real keys, an HMAC signature made with the connection's secret.
    let body = signed::sign(proxy, &report, &mut parts, body).await?;
    let swapped = record::swapped(proxy, &report);
    // An MCP server's tools/list answer will show only the tools its connector allows.
    let tools = tools::to_filter(proxy, &report, asking.lists_tools());
    // 5. The connector's request settings: base headers, user agent, and how step 6 sends.
    let plan = settings::apply(
        &proxy.policy.load(),
        &report,
        &mut parts,
        proxy.limits.upstream_response_timeout,
    );
    // The answer will be scanned for the credentials sent (and the connector's stored
    // ones, where it says so), so ask for it uncompressed.
    let scan = Scan::prepare(proxy, bound, &report, &mut parts);
    let upgrade = target::upstream_head(&mut parts, bound)?;
    if upgrade {
        // An upgrade is a GET: its body is never read for the rules.
        let Some(body) = (match body {
            Either::Left(sandbox) => sandbox.into_plain(),
            Either::Right(_) => None,
        }) else {
            return Err(Refusal::bad_request(
                "an upgrade request may not carry a body",
            ));
        };
        let resp = upgrade::forward(proxy, bound, parts, body, guard, scan.as_ref()).await?;
        return Ok((resp, swapped));
    }
    let used = fresh::oauth_tokens(proxy, &report);
    let Some(original) = original.filter(|_| !used.is_empty()) else {
        // 6. Upstream send, the body streamed; retried where the connector says so.
        let resp = retry::send(proxy, bound, &plan, parts, body).await?;
        // 7. The answer scanned on its way back.
        let resp = scan::answer(proxy, bound, resp, scan.as_ref(), guard).await?;
        // 9. An MCP tools list filtered to the tools a call could pass.
        let resp = tools::filter(bound, resp, tools).await?;
        return Ok((resp, swapped));
    };
    // 6-8. Upstream send with the body held, and one replay after a 401 on a token.
    let resp = replay::Replay {
        original,
        used,
        plan,
    }
    .send(proxy, bound, parts, body, scan, guard)
    .await?;
    let resp = tools::filter(bound, resp, tools).await?;
    Ok((resp, swapped))
}
