//! What a forwarded request leaves behind: the swap counted and logged per credential,
//! the request counted by connector, and one `request.swap` audit event when it
//! carried a credential (connector, owner, host, method, path without the query,
//! status, latency, fields — never a value).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use egret_vault::PlaceholderEntry;
use http::{Method, Response};
use tracing::debug;

use crate::Proxy;
use crate::binding::Bound;
use crate::swap::{SwapReport, redacted};

/// Which credential a forwarded request carried: for metrics and the audit log.
pub(crate) struct SwapSummary {
    /// The first placeholder swapped: names the connector and owner (shared, not copied).
    placeholder: Arc<PlaceholderEntry>,
    fields: Vec<Cow<'static, str>>,
}

/// The `data` of a `request.swap` audit event, serialized as it is (no map built).
#[derive(serde::Serialize)]
struct SwapEvent<'a> {
    sandbox: Option<&'a str>,
    host: &'a str,
    method: &'a str,
    path: Cow<'a, str>,
    status: u16,
    latency_ms: u64,
    fields: &'a [Cow<'static, str>],
}

/// Counts and logs each credential the swap put on the request.
pub(super) fn swapped(proxy: &Proxy, report: &SwapReport) -> Option<SwapSummary> {
    for s in &report.swapped {
        debug!(connector = s.connector(), owner = s.owner(), field = %s.field, "credential injected");
        proxy.metrics.swap(s.connector());
    }
    let first = report.swapped.first()?;
    Some(SwapSummary {
        placeholder: first.placeholder.clone(),
        fields: report.swapped.iter().map(|s| s.field.clone()).collect(),
    })
}

/// Counts a forwarded request and audits it when it carried a credential.
pub(super) fn forwarded<B>(
    proxy: &Proxy,
    bound: &Bound,
    method: &Method,
    path: &str,
    resp: &Response<B>,
    latency: Duration,
    swapped: Option<SwapSummary>,
) {
    let Some(swap) = swapped else {
        proxy.metrics.request("", "forwarded");
        return;
    };
    let info = &swap.placeholder.info;
    proxy.metrics.request(&info.connector, "forwarded");
    let data = SwapEvent {
        sandbox: bound.sandbox.as_deref(),
        host: &bound.host,
        method: method.as_str(),
        path: redacted(path),
        status: resp.status().as_u16(),
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        fields: &swap.fields,
    };
    proxy.audit.record(
        "request.swap",
        Some(&info.connector),
        Some(info.owner.as_str()),
        &data,
    );
}
