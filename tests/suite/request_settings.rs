//! A connector's `request:` settings on the requests that carry its credential: base
//! headers, user agent, its own response timeout, and retries with `Retry-After`.

use std::time::{Duration, Instant};

use egret_test_support::client::Proto;
use http::{Method, StatusCode};
use serde_json::Value;

use super::harness::Fixture;
use super::harness::api::admin;

/// The test policy with `openai` given `request`.
fn with_request(f: &Fixture, request: &str) {
    let yaml = super::harness::policy_yaml().replace(
        "  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n",
        &format!("  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n    request: {request}\n"),
    );
    assert!(yaml.contains("request:"), "the policy changed");
    f.egret.reload(&yaml);
}

async fn get(f: &Fixture, path: &str, auth: &str) -> http::Response<bytes::Bytes> {
    f.get(
        "api.test.local",
        path,
        &[
            ("authorization", auth),
            ("user-agent", "curl/8"),
            ("x-team", "sandbox"),
        ],
        Proto::H1,
    )
    .await
}

/// The requests the upstream saw for `path` (with its query).
fn seen(f: &Fixture, uri: &str) -> Vec<Value> {
    f.upstream
        .seen()
        .into_iter()
        .filter(|h| h["uri"].as_str().is_some_and(|u| u.ends_with(uri)))
        .collect()
}

#[tokio::test]
async fn base_headers_and_the_user_agent_go_only_on_requests_with_the_credential() {
    let f = Fixture::new().await;
    with_request(
        &f,
        "{ headers: { Notion-Version: \"2022-06-28\", X-Team: platform }, user_agent: \"acme-agent/1.0\" }",
    );
    let p = f.egret.key_and_placeholder("openai", "org", "sk-req-REAL");
    let resp = get(&f, "/with", &format!("Bearer {p}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let head = seen(&f, "/with").pop().expect("sent");
    assert_eq!(head["headers"]["notion-version"], "2022-06-28");
    assert_eq!(
        head["headers"]["x-team"], "sandbox",
        "the sandbox's own value stays"
    );
    assert_eq!(head["headers"]["user-agent"], "acme-agent/1.0");
    // Without the credential, the request is the sandbox's as it was.
    let resp = get(&f, "/without", "Bearer not-a-placeholder").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let head = seen(&f, "/without").pop().expect("sent");
    assert!(head["headers"].get("notion-version").is_none(), "{head}");
    assert_eq!(head["headers"]["user-agent"], "curl/8");
}

#[tokio::test]
async fn retries_honour_retry_after_and_are_counted_and_audited() {
    let f = Fixture::new().await;
    with_request(&f, "{ retries: { max: 2, on: [503], max_wait: 5s } }");
    let p = f
        .egret
        .key_and_placeholder("openai", "org", "sk-retry-REAL");
    let auth = format!("Bearer {p}");

    // Two 503s asking for a second each, then 200: the sandbox sees the 200.
    let started = Instant::now();
    let resp = get(&f, "/flaky?key=a&fail=2&code=503&after=1", &auth).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited as asked"
    );
    let attempts = seen(&f, "/flaky?key=a&fail=2&code=503&after=1");
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|h| h["headers"]["authorization"] == "Bearer sk-retry-REAL"),
        "each attempt carries the credential"
    );

    // More failures than retries: the last answer goes back as the vendor sent it.
    let resp = get(&f, "/flaky?key=b&fail=5&code=503", &auth).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen(&f, "/flaky?key=b&fail=5&code=503").len(), 3);

    // A status the connector does not name, a wait longer than max_wait, a request with
    // a body: sent once.
    let resp = get(&f, "/flaky?key=c&fail=1&code=429", &auth).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(seen(&f, "/flaky?key=c&fail=1&code=429").len(), 1);
    let resp = get(&f, "/flaky?key=d&fail=1&code=503&after=60", &auth).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.headers()["retry-after"],
        "60",
        "the vendor's wait reaches the sandbox"
    );
    assert_eq!(seen(&f, "/flaky?key=d&fail=1&code=503&after=60").len(), 1);
    let mut s = f.session("api.test.local", Proto::H1).await;
    let req = http::Request::post("/flaky?key=e&fail=1&code=503")
        .header("host", f.at("api.test.local"))
        .header("authorization", &auth)
        .body(egret_test_support::client::full("{}"))
        .expect("request");
    let resp = s.send(req).await.expect("answer");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen(&f, "/flaky?key=e&fail=1&code=503").len(), 1);

    // Four retries in all: key a twice, key b twice.
    let (_, audit) = admin(
        &f.egret,
        Method::GET,
        "/v1/audit?connector=openai&limit=1000",
        None,
    )
    .await;
    let retries: Vec<&Value> = audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event"] == "request.retry")
        .collect();
    assert_eq!(retries.len(), 4, "{audit}");
    assert_eq!(retries[0]["data"]["status"], 503);
    assert_eq!(retries[0]["data"]["wait_ms"], 1000);
    assert_eq!(retries[0]["owner"], "org");
    let out = tokio::process::Command::new("curl")
        .args(["-sf", &format!("http://{}/metrics", f.egret.control_addr)])
        .output()
        .await
        .expect("curl");
    let metrics = String::from_utf8_lossy(&out.stdout);
    assert!(
        metrics.contains("egret_upstream_retries_total{connector=\"openai\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_connectors_timeout_bounds_its_requests_only() {
    let f = Fixture::new().await;
    with_request(&f, "{ timeout: 300ms }");
    let p = f.egret.key_and_placeholder("openai", "org", "sk-slow-REAL");
    let resp = get(&f, "/slow?ms=2000", &format!("Bearer {p}")).await;
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    let resp = get(&f, "/slow?ms=600", "Bearer none").await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "other requests keep the proxy's timeout"
    );
}

#[tokio::test]
async fn request_settings_that_cannot_work_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    for (request, says) in [
        (
            "{ headers: { Authorization: x } }",
            "may not set `Authorization`",
        ),
        ("{ headers: { \"a b\": x } }", "is not a header name"),
        ("{ retries: { on: [200] } }", "is not an error status"),
        ("{ retries: { max: 50 } }", "at most 10"),
        ("{ timeout: 0s }", "request.timeout"),
        ("{ colour: blue }", "colour"),
    ] {
        let yaml = format!(
            "version: 1\nconnectors:\n  - id: k\n    auth: api_key\n    egress: [x.com]\n    request: {request}\n"
        );
        let e =
            egret_policy::parse(&yaml, &dir.path().join("p.yaml"), dir.path()).expect_err(request);
        assert!(e.to_string().contains(says), "{request}: {e}");
    }
}
