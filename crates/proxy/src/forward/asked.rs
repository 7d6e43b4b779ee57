//! Step 3b: what the request asks, for its connector's request rules (`access`,
//! `rules`). The rules are decided in the swap (step 4), where the placeholder names the
//! connector, before any token is renewed or swapped in; here the method, the path (as
//! the rules read it) and the query are taken, and the body is read when a rule on this
//! host looks into it.

use egret_policy::{Policy, RequestFacts, normalized_path};
use http::request::Parts;
use http_body_util::{Either, Full};
use hyper::body::{Body, Incoming};

use crate::Proxy;
use crate::binding::Bound;
use crate::refusal::Refusal;
use crate::swap::Asked;
use crate::upstream::UpstreamBody;

/// The most of a body the rules read; a bigger one where a rule needs it is refused.
pub(super) const BODY_MAX: usize = 64 * 1024;

/// The request as the rules read it, owned (the head is changed by the swap).
pub(super) struct Asking {
    method: String,
    path: Option<String>,
    query: Option<String>,
    body: Option<serde_json::Value>,
}

impl Asking {
    /// Whether it asks an MCP server for its tools (the answer is then filtered).
    pub(super) fn lists_tools(&self) -> bool {
        egret_policy::McpTools::lists_tools(self.body.as_ref())
    }

    pub(super) fn asked(&self) -> Asked<'_> {
        match &self.path {
            Some(path) => Asked::Facts(RequestFacts {
                method: &self.method,
                path,
                query: self.query.as_deref(),
                body: self.body.as_ref(),
            }),
            None => Asked::Unjudgeable(
                "the path has `.` or `..` segments, an encoded `/` or `\\`, or bytes that are not UTF-8, so the rules cannot tell where it goes",
            ),
        }
    }
}

/// What the request asks (its body read only when a connector serving this host has
/// rules that look into it), and the body to send on. Always taken: a connection's owner
/// may have narrowed it even where no connector has rules (decided in the swap; without
/// the body, what needs it fails closed).
pub(super) async fn take(
    proxy: &Proxy,
    policy: &Policy,
    bound: &Bound,
    parts: &Parts,
    body: Incoming,
) -> Result<(Asking, UpstreamBody), Refusal> {
    let ruled =
        |c: &&egret_policy::Connector| !c.access.is_open() && c.serves(&bound.host, bound.port);
    let reads = !matches!(parts.method.as_str(), "GET" | "HEAD" | "OPTIONS")
        && !body.is_end_stream()
        && policy
            .connectors
            .iter()
            .filter(ruled)
            .any(|c| c.access.needs_body());
    // A body too big is refused in the name of the first connector here with rules.
    let reader = policy.connectors.iter().find(ruled).filter(|_| reads);
    let (json, body) = match reader {
        Some(c) => {
            let Some(bytes) = super::whole::read(proxy, body, BODY_MAX).await? else {
                return Err(Refusal::request_denied(
                    c.id.as_str(),
                    "body",
                    &format!(
                        "the body is over {} KiB, more than the connector's request rules read",
                        BODY_MAX / 1024
                    ),
                    "Send a smaller body, or ask the administrator about the connector's rules.",
                ));
            };
            (
                serde_json::from_slice(&bytes).ok(),
                Either::Right(Full::new(bytes)),
            )
        }
        None => (None, Either::Left(body.into())),
    };
    let asking = Asking {
        method: parts.method.as_str().to_owned(),
        path: normalized_path(parts.uri.path()),
        query: parts.uri.query().map(str::to_owned),
        body: json,
    };
    Ok((asking, body))
}
