//! Limits from the policy's `limits:` section and per-connector `rate_limit`: over a
//! limit the answer is immediate and clear (429, 503, 431), never a queue; long-lived
//! answers (server-sent events) are not cut by the idle timeouts.

use std::time::Duration;

use egret_test_support::client::{self, Proto, refusal_code};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::harness::api::metrics;
use super::harness::wait::until;
use super::harness::{Fixture, json, policy_yaml};

async fn fixture(yaml: &str) -> Fixture {
    Fixture::with_policy(yaml).await
}

#[tokio::test]
async fn a_connector_over_its_rate_limit_gets_429_with_retry_after() {
    let yaml = policy_yaml().replace(
        "egress: [api.test.local]",
        "egress: [api.test.local]\n    rate_limit: { requests: 2, per: 1m }",
    );
    let f = fixture(&yaml).await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-rate");
    let auth = format!("Bearer {p}");
    let mut s = f.session("api.test.local", Proto::H2).await;
    let at = f.at("api.test.local");
    for _ in 0..2 {
        let resp = s
            .get(&at, "/", &[("authorization", &auth)])
            .await
            .expect("get");
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = s
        .get(&at, "/", &[("authorization", &auth)])
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refusal_code(&resp).as_deref(), Some("rate_limited"));
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(json(resp.body())["connector"], "openai");
    assert_eq!(f.upstream.seen().len(), 2, "the third was not sent");
    // Other connectors have their own budget.
    let resp = f.get("weather.test.local", "/", &[], Proto::H1).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn connections_over_the_limit_get_503_at_once_not_a_queue() {
    let yaml = format!("{}limits:\n  max_client_connections: 2\n", policy_yaml());
    let f = fixture(&yaml).await;
    // An intercepted tunnel counts as long as it is open, not only its CONNECT; so
    // does a connection that has sent nothing yet.
    let tunnel = f.session("api.test.local", Proto::H1).await;
    let idle = TcpStream::connect(f.egret.proxy_addr).await.expect("tcp");
    // The accept loop has taken both before the third arrives.
    let open = |n: u32| {
        let want = format!("egret_client_connections {n}\n");
        let control = f.egret.control_addr;
        move || {
            let want = want.clone();
            async move { metrics(control).await.contains(&want) }
        }
    };
    until("both connections taken", Duration::from_secs(10), open(2)).await;
    let mut third = TcpStream::connect(f.egret.proxy_addr).await.expect("tcp");
    third
        .write_all(b"CONNECT api.test.local:443 HTTP/1.1\r\nHost: api.test.local:443\r\n\r\n")
        .await
        .expect("write");
    let (status, headers, body) = client::read_response(&mut third).await.expect("answer");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["x-egret-error"], "too_many_connections");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(json(&body)["error"], "too_many_connections");
    // A freed slot is usable again.
    drop((tunnel, idle));
    until("both connections closed", Duration::from_secs(10), open(0)).await;
    let resp = f.get("api.test.local", "/", &[], Proto::H1).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn header_limits_come_from_the_policy() {
    let yaml = format!(
        "{}limits:\n  max_headers: 16\n  max_header_bytes: 8192\n",
        policy_yaml()
    );
    let f = fixture(&yaml).await;
    let mut tcp = TcpStream::connect(f.egret.proxy_addr).await.expect("tcp");
    let many: String = (0..40).map(|i| format!("x-h{i}: v\r\n")).collect();
    let req = format!("CONNECT api.test.local:443 HTTP/1.1\r\n{many}\r\n");
    let _ = tcp.write_all(req.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    // A normal request still passes.
    let resp = f.get("api.test.local", "/", &[], Proto::H1).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn server_sent_events_outlive_the_idle_timeouts() {
    let yaml = format!(
        "{}limits:\n  request_head_timeout: 300ms\n  tunnel_idle_timeout: 300ms\n",
        policy_yaml()
    );
    let f = fixture(&yaml).await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-sse");
    let auth = format!("Bearer {p}");
    for proto in [Proto::H1, Proto::H2] {
        // Three events 500 ms apart: each gap longer than both 300 ms idle timeouts.
        let resp = f
            .get(
                "api.test.local",
                "/events?n=3&ms=500",
                &[("authorization", &auth)],
                proto,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{proto:?}");
        let text = String::from_utf8_lossy(resp.body()).into_owned();
        assert_eq!(text.matches("data: event").count(), 3, "{proto:?}: {text}");
    }
}
