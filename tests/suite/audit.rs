//! The audit log records every decision — swaps and refusals with where and what — and
//! never a secret or a placeholder.

use egret_test_support::client::{Proto, connect};
use egret_test_support::proxy::ADMIN_TOKEN;
use http::{Method, StatusCode};

use super::harness::Fixture;
use super::harness::api::api;

#[tokio::test]
async fn swaps_and_refusals_are_audited_without_secrets_and_can_be_filtered() {
    let f = Fixture::new().await;
    let p = f
        .egret
        .key_and_placeholder("weather", "user:ann", "w-audit-REAL");
    let path = format!("/forecast?appid={p}&q=paris");
    let resp = f.get("weather.test.local", &path, &[], Proto::H2).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let auth = format!("Bearer {p}");
    let resp = f
        .get(
            "api.test.local",
            "/x",
            &[("authorization", &auth)],
            Proto::H1,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let refused = connect(f.egret.proxy_addr, "evil.example.com:443")
        .await
        .expect("connect");
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    f.egret.audit.flush(std::time::Duration::from_secs(5));

    let (status, body) = api(
        f.egret.control_addr,
        Method::GET,
        "/v1/audit?connector=weather",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let events = body["events"].as_array().expect("events");
    let swap = events
        .iter()
        .find(|e| e["event"] == "request.swap")
        .expect("swap event");
    assert_eq!(swap["owner"], "user:ann");
    assert_eq!(swap["data"]["host"], "weather.test.local");
    assert_eq!(swap["data"]["method"], "GET");
    assert_eq!(swap["data"]["path"], "/forecast", "no query string");
    assert_eq!(swap["data"]["status"], 200);
    assert_eq!(swap["data"]["fields"][0], "query parameter appid");
    assert!(swap["data"]["latency_ms"].is_u64());
    assert!(
        events.iter().all(|e| e["connector"] == "weather"),
        "filtered: {body}"
    );

    let (_, all) = api(
        f.egret.control_addr,
        Method::GET,
        "/v1/audit",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    let text = all.to_string();
    assert!(
        text.contains("\"code\":\"placeholder_wrong_host\""),
        "{text}"
    );
    assert!(
        text.contains("\"code\":\"egress_denied\"") && text.contains("evil.example.com:443"),
        "{text}"
    );
    assert!(
        !text.contains("w-audit-REAL") && !text.contains(&p),
        "no secret or placeholder: {text}"
    );
}
