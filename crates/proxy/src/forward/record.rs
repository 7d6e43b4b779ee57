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
    // The connection's own counts, for its listing (last used, requests, errors).
    proxy
        .broker
        .record_use(&swap.placeholder.connection, resp.status().as_u16());
    let data = SwapEvent {
        sandbox: bound.sandbox_id(),
        host: &bound.host,
        method: method.as_str(),
        path: redacted(path),
        status: resp.status().as_u16(),
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        fields: &swap.fields,
    };
    proxy
        .audit
        .record("request.swap", Some(&swap.placeholder.connection), &data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swap::{Destination, Lookup, swap_request};
    use egret_vault::{ConnectionId, Owner};
    use secrecy::SecretString;

    #[test]
    fn a_credentialed_request_is_audited_with_fields_and_no_values() {
        let proxy = crate::test_proxy();
        let owner = Owner::parse("org").expect("owner");
        let key = SecretString::from("sk-recorded-0123456789");
        proxy
            .vault
            .put_api_key(&ConnectionId::default_of("api", &owner), &key)
            .expect("key");
        let (placeholder, _) = proxy
            .vault
            .mint_placeholder(&ConnectionId::default_of("api", &owner), None)
            .expect("mint");
        let policy = egret_policy::parse(
            "version: 1\nconnectors:\n  - { id: api, auth: api_key, egress: [api.x.com] }\n",
            std::path::Path::new("t.yaml"),
            std::path::Path::new("."),
        )
        .expect("policy");
        let auth = format!("Bearer {}", placeholder.expose());
        let req = http::Request::get("/v1/items?token=q").header("authorization", &auth);
        let (mut parts, ()) = req.body(()).expect("request").into_parts();
        let lookup = Lookup {
            policy: &policy,
            vault: &proxy.vault,
            now_unix: proxy.clock.unix(),
            renewed: &[],
            sandbox: None,
            asked: None,
            approved: &[],
        };
        let dest = Destination {
            host: "api.x.com",
            port: 443,
        };
        let report = swap_request(&mut parts, dest, &lookup)
            .ok()
            .expect("swapped");
        let summary = swapped(&proxy, &report);
        assert!(summary.is_some());
        let bound = Bound::new("api.x.com".into(), 443).expect("bound");
        let resp = Response::builder().status(201).body(()).expect("response");
        let latency = Duration::from_millis(12);
        forwarded(
            &proxy,
            &bound,
            &Method::GET,
            "/v1/items",
            &resp,
            latency,
            summary,
        );
        proxy.audit.flush(Duration::from_secs(5));
        let events = proxy.vault.audit_since(0, 10, None, None).expect("audit");
        let event = events
            .iter()
            .find(|e| e.event == "request.swap")
            .expect("audited");
        assert_eq!(event.connector.as_deref(), Some("api"));
        let data = event.data.as_ref().expect("data");
        assert_eq!(data["status"], 201);
        assert_eq!(data["latency_ms"], 12);
        assert_eq!(data["fields"], serde_json::json!(["authorization"]));
        let text = serde_json::to_string(&events).expect("json");
        assert!(
            !text.contains(placeholder.expose()),
            "no placeholder in the audit"
        );
        assert!(!text.contains("sk-recorded"), "no key in the audit");
    }
}
