//! `GET /metrics`: Prometheus text that counts what the test did.

use std::collections::BTreeMap;

use egret_test_support::client::{Proto, connect};
use http::StatusCode;

use super::harness::Fixture;

/// Fetches `/metrics` and checks every line is Prometheus text; returns samples by
/// `name{labels}`.
pub async fn scrape(control: std::net::SocketAddr) -> BTreeMap<String, f64> {
    let out = tokio::process::Command::new("curl")
        .args(["-sf", &format!("http://{control}/metrics")])
        .output()
        .await
        .expect("curl");
    assert!(out.status.success(), "GET /metrics failed");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ")
            || line.starts_with("# TYPE ")
            || line.starts_with("# UNIT ")
            || line == "# EOF"
        {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let name_end = key.find('{').unwrap_or(key.len());
        let name = &key[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "bad metric name in {line}"
        );
        if name_end < key.len() {
            assert!(key.ends_with('}'), "bad labels in {line}");
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.insert(key.to_owned(), value);
    }
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    samples
}

#[tokio::test]
async fn metrics_count_requests_swaps_refusals_connections_and_leaves() {
    let f = Fixture::new().await;
    let p = f
        .egret
        .key_and_placeholder("openai", "org", "sk-metrics-REAL");
    let auth = format!("Bearer {p}");
    for _ in 0..3 {
        let resp = f
            .get(
                "api.test.local",
                "/",
                &[("authorization", &auth)],
                Proto::H1,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = f
        .get(
            "api.test.local",
            "/",
            &[(
                "authorization",
                "Bearer egp_0123456789012345678901234567890123456789",
            )],
            Proto::H2,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let refused = connect(f.egret.proxy_addr, "evil.example.com:443")
        .await
        .expect("connect");
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let m = scrape(f.egret.control_addr).await;
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in {m:#?}"))
    };
    assert_eq!(
        get(r#"egret_requests_total{connector="openai",outcome="forwarded"}"#),
        3.0
    );
    assert_eq!(
        get(r#"egret_requests_total{connector="",outcome="placeholder_unknown"}"#),
        1.0
    );
    assert_eq!(get(r#"egret_swaps_total{connector="openai"}"#), 3.0);
    assert_eq!(get(r#"egret_refusals_total{code="egress_denied"}"#), 1.0);
    assert_eq!(
        get(r#"egret_refusals_total{code="placeholder_unknown"}"#),
        1.0
    );
    assert_eq!(get("egret_upstream_response_seconds_count"), 3.0);
    assert_eq!(get("egret_leaf_cache_misses_total"), 1.0);
    assert_eq!(get("egret_leaf_cache_hits_total"), 3.0);
    assert!(get("egret_client_connections") >= 0.0);
    assert_eq!(
        get("egret_audit_dropped_total"),
        0.0,
        "the audit writer kept up"
    );
    let text = format!("{m:?}");
    assert!(
        !text.contains("sk-metrics-REAL") && !text.contains(&p),
        "no secret in metrics"
    );
}
