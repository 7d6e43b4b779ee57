//! Budgets per connection (issue 26, part 3): `connectors[].limits {requests, per,
//! concurrent}`. Over the window's count: `429 budget_exhausted` with `retry-after` to the
//! window's end and the webhook `connection.budget_exhausted`; over the requests in
//! flight: `429 too_many_in_flight`. The listing shows the use, counted in the store.

use std::time::Duration;

use egret_test_support::client::{Proto, refusal_code};
use egret_test_support::receiver::Receiver;
use http::{Method, StatusCode};
use serde_json::Value;

use super::harness::api::{admin, audit_events};
use super::harness::json;
use super::harness::wait::until_some;
use super::rules::{fixture, ruled_yaml, send};

#[tokio::test]
async fn a_connection_over_its_budget_is_refused_until_the_window_ends_and_the_platform_is_told() {
    let limits = "    limits: { requests: 3, per: 1h }\n";
    let f = fixture(limits).await;
    let receiver = Receiver::start(true).await;
    std::fs::write(
        f.egret.dir.path().join("hook-secret"),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    .expect("secret");
    f.egret.reload(&format!(
        "{}webhooks:\n  - url: {}\n    secret: ${{file:hook-secret}}\n",
        ruled_yaml(limits),
        receiver.url()
    ));
    let alice = f
        .egret
        .key_and_placeholder("openai", "user:alice", "sk-alice");
    let bob = f.egret.key_and_placeholder("openai", "user:bob", "sk-bob");
    for _ in 0..3 {
        let r = send(&f, &alice, "GET", "/v1/models", "", Proto::H1).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let over = send(&f, &alice, "GET", "/v1/models", "", Proto::H2).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refusal_code(&over).as_deref(), Some("budget_exhausted"));
    let retry: u64 = over.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    let b = json(over.body());
    assert_eq!(b["budget"], 3);
    assert_eq!(f.upstream.seen().len(), 3, "the fourth was not sent");
    // Per connection: bob's is untouched.
    let r = send(&f, &bob, "GET", "/v1/models", "", Proto::H1).await;
    assert_eq!(r.status(), StatusCode::OK);

    let listed = until_some(
        "the use, flushed to the store",
        Duration::from_secs(10),
        || async {
            let (_, l) = admin(
                &f.egret,
                Method::GET,
                "/v1/connections?connector=openai",
                None,
            )
            .await;
            let conns = l["connections"].as_array()?.clone();
            let a = conns.into_iter().find(|c| c["owner"] == "user:alice")?;
            (a["budget"]["used"] == 3).then_some(a)
        },
    )
    .await;
    assert_eq!(listed["budget"]["budget"], 3, "{listed}");
    assert_eq!(listed["budget"]["per"], "1h", "{listed}");
    assert_eq!(listed["used_24h"], 3, "{listed}");

    let told: Value = until_some("the webhook", Duration::from_secs(10), || async {
        receiver
            .attempts()
            .iter()
            .filter_map(|a| serde_json::from_str::<Value>(&a.body).ok())
            .find(|b| b["type"] == "connection.budget_exhausted")
    })
    .await;
    assert_eq!(told["data"]["owner"], "user:alice", "{told}");
    assert_eq!(told["data"]["budget"], 3, "{told}");
    // Once per window, however many are refused.
    send(&f, &alice, "GET", "/v1/models", "", Proto::H1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let count = receiver
        .attempts()
        .iter()
        .filter(|a| a.body.contains("connection.budget_exhausted"))
        .count();
    assert_eq!(count, 1);
    assert!(
        audit_events(&f.egret, "openai")
            .await
            .iter()
            .any(|e| e == "connection.budget_exhausted")
    );
}

#[tokio::test]
async fn more_requests_in_flight_than_allowed_are_refused_and_a_finished_one_frees_its_place() {
    let f = fixture("    limits: { concurrent: 1 }\n").await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-org");
    let slow = send(&f, &p, "GET", "/slow?ms=1500", "", Proto::H1);
    let second = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        send(&f, &p, "GET", "/v1/models", "", Proto::H2).await
    };
    let (slow, second) = tokio::join!(slow, second);
    assert_eq!(slow.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refusal_code(&second).as_deref(), Some("too_many_in_flight"));
    let after = send(&f, &p, "GET", "/v1/models", "", Proto::H1).await;
    assert_eq!(after.status(), StatusCode::OK, "the place was freed");
}
