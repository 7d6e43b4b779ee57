//! Webhooks: events about connections reach a real receiver, signed as the Standard
//! Webhooks specification says, at least once; a receiver that is down for a while
//! loses nothing and then gets each event once.

use std::time::Duration;

use base64::Engine;
use egret_test_support::receiver::{Attempt, Receiver};
use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::harness::Fixture;
use super::harness::api::{admin, metrics};
use super::harness::wait::until;

/// The receiver's secret, in the specification's `whsec_<base64>` form.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The test policy with a webhook to `receiver` for `events`.
fn with_webhook(f: &Fixture, receiver: &Receiver, events: &str) {
    std::fs::write(f.egret.dir.path().join("hook-secret"), SECRET).expect("secret");
    let yaml = format!(
        "{}webhooks:\n  - url: {}\n    secret: ${{file:hook-secret}}\n    events: [{events}]\n",
        super::harness::policy_yaml(),
        receiver.url()
    );
    f.egret.reload(&yaml);
}

/// Checks an attempt's signature the way a receiver would (its own HMAC, not egret's
/// code): `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`, with the decoded secret.
fn verify(a: &Attempt) -> Result<(), String> {
    let header = |name: &str| {
        a.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("no {name}"))
    };
    let (id, ts, sig) = (
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .map_err(|e| e.to_string())?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{ts}.{}", a.body).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    // The header may list several signatures, space-separated.
    if !sig.split(' ').any(|s| s == expected) {
        return Err(format!("signature {sig} is not {expected}"));
    }
    let age = egret_vault::unix_now() - ts.parse::<i64>().map_err(|e| e.to_string())?;
    if !(0..=300).contains(&age) {
        return Err(format!("timestamp {ts} is {age} s old"));
    }
    Ok(())
}

/// Waits (at most `within`) until `done` holds for the receiver's attempts.
async fn wait_for(receiver: &Receiver, within: Duration, done: impl Fn(&[Attempt]) -> bool) {
    let seen = Seen(receiver);
    until(&seen, within, || async { done(&receiver.attempts()) }).await;
}

/// What the receiver saw, when a wait fails.
struct Seen<'a>(&'a Receiver);

impl std::fmt::Display for Seen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the receiver to see more; it saw {:#?}",
            self.0.attempts()
        )
    }
}

fn body(a: &Attempt) -> Value {
    serde_json::from_str(&a.body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_every_event_once_signed_when_it_is_back() {
    let f = Fixture::new().await;
    let receiver = Receiver::start(false).await;
    with_webhook(
        &f,
        &receiver,
        "connection.connected, connection.removed, connector.deleted",
    );
    let (status, _) = admin(
        &f.egret,
        Method::PUT,
        "/v1/connections/openai/user:ann/key",
        Some(json!({ "key": "sk-hook-REAL" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin(
        &f.egret,
        Method::DELETE,
        "/v1/connections/openai/user:ann",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Down: both events are tried (and refused) at least twice.
    wait_for(&receiver, Duration::from_secs(20), |seen| seen.len() >= 4).await;
    assert!(receiver.attempts().iter().all(|a| !a.accepted));
    receiver.set_up(true);
    // Back: each event arrives within the backoff (5 s after the second failure).
    wait_for(&receiver, Duration::from_secs(30), |seen| {
        seen.iter().filter(|a| a.accepted).count() >= 2
    })
    .await;
    // Nothing is sent again once taken. A real wait: an absence can only be seen by
    // letting time pass, here longer than the first retry's backoff.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = receiver.attempts();
    let accepted: Vec<&Attempt> = attempts.iter().filter(|a| a.accepted).collect();
    assert_eq!(accepted.len(), 2, "{accepted:#?}");

    for a in &attempts {
        verify(a).unwrap_or_else(|e| panic!("{e}: {a:#?}"));
        assert!(!a.body.contains("sk-hook-REAL"), "{}", a.body);
    }
    let types: Vec<Value> = accepted.iter().map(|a| body(a)["type"].clone()).collect();
    assert!(
        types.contains(&json!("connection.connected"))
            && types.contains(&json!("connection.removed")),
        "{types:?}"
    );
    let connected = accepted
        .iter()
        .map(|a| body(a))
        .find(|b| b["type"] == "connection.connected")
        .expect("connected");
    assert_eq!(
        connected["data"],
        json!({"connector": "openai", "owner": "user:ann", "name": "default", "status": "connected", "reason": "a key was stored"})
    );
    assert!(
        connected["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    // A delivery keeps its id on every attempt: the receiver can drop duplicates.
    for a in &accepted {
        let id = &a.headers["webhook-id"];
        let tries = attempts
            .iter()
            .filter(|t| t.headers["webhook-id"] == id)
            .count();
        assert!(tries >= 3, "{id:?} was tried {tries} times");
    }

    // Metrics and the audit log count the attempts.
    let (_, audit) = admin(&f.egret, Method::GET, "/v1/audit?limit=1000", None).await;
    let events: Vec<&str> = audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == "webhook.delivered").count(),
        2
    );
    assert!(events.contains(&"webhook.failed"), "{events:?}");
    let metrics = metrics(f.egret.control_addr).await;
    assert!(
        metrics.contains("egret_webhook_deliveries_total{outcome=\"delivered\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("egret_webhook_pending 0"), "{metrics}");
}

#[tokio::test]
async fn events_a_receiver_did_not_ask_for_are_not_sent() {
    let f = Fixture::new().await;
    let receiver = Receiver::start(true).await;
    with_webhook(&f, &receiver, "connection.removed");
    admin(
        &f.egret,
        Method::PUT,
        "/v1/connections/openai/org/key",
        Some(json!({ "key": "k" })),
    )
    .await;
    admin(&f.egret, Method::DELETE, "/v1/connections/openai/org", None).await;
    // A second owner's removal comes after everything the first one caused: once it has
    // arrived, an unwanted event sent in between would have arrived too.
    admin(
        &f.egret,
        Method::PUT,
        "/v1/connections/openai/user:bob/key",
        Some(json!({ "key": "k" })),
    )
    .await;
    admin(
        &f.egret,
        Method::DELETE,
        "/v1/connections/openai/user:bob",
        None,
    )
    .await;
    wait_for(&receiver, Duration::from_secs(10), |seen| {
        seen.iter().any(|a| body(a)["data"]["owner"] == "user:bob")
    })
    .await;
    let types: Vec<Value> = receiver
        .attempts()
        .iter()
        .map(|a| body(a)["type"].clone())
        .collect();
    assert_eq!(
        types,
        [json!("connection.removed"), json!("connection.removed")]
    );
}

#[tokio::test]
async fn a_bad_webhook_in_the_policy_is_refused_with_what_is_expected() {
    let dir = tempfile::tempdir().expect("dir");
    for (entry, says) in [
        (
            "  - { url: \"http://127.0.0.1:9/x\", secret: \"${env:S}\", events: [connection.exploded] }",
            "unknown event `connection.exploded`",
        ),
        (
            "  - { url: \"ftp://x\", secret: \"${env:S}\" }",
            "is not a URL",
        ),
        (
            "  - { url: \"http://127.0.0.1:9/x\", secret: literal }",
            "secret",
        ),
    ] {
        let yaml = format!("version: 1\nwebhooks:\n{entry}\n");
        let e = egret_policy::parse(&yaml, &dir.path().join("p.yaml"), dir.path())
            .expect_err("refused");
        assert!(e.to_string().contains(says), "{e}");
    }
    // A secret that does not resolve is a warning (`policy check`, start-up), not an error.
    let yaml = "version: 1\nwebhooks:\n  - { url: \"http://127.0.0.1:9/x?token=t\", secret: \"${env:EGRET_TEST_UNSET_HOOK}\" }\n";
    let policy = egret_policy::parse(yaml, &dir.path().join("p.yaml"), dir.path()).expect("valid");
    let warnings = policy.unresolved_secrets();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("webhook http://127.0.0.1:9/x:") && !warnings[0].contains("token=t"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn the_kill_switch_tells_that_a_connector_and_its_connections_are_gone() {
    let f = Fixture::new().await;
    let receiver = Receiver::start(true).await;
    with_webhook(&f, &receiver, "connector.deleted");
    let (status, created) = admin(
        &f.egret,
        Method::POST,
        "/v1/connectors",
        Some(json!({ "id": "crm", "auth": "api_key", "egress": ["other.test.local"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    admin(
        &f.egret,
        Method::PUT,
        "/v1/connections/crm/org/key",
        Some(json!({ "key": "crm-key" })),
    )
    .await;
    let (status, _) = admin(&f.egret, Method::DELETE, "/v1/connectors/crm", None).await;
    assert_eq!(status, StatusCode::OK);
    wait_for(&receiver, Duration::from_secs(10), |seen| !seen.is_empty()).await;
    let told = body(&receiver.attempts()[0]);
    assert_eq!(told["type"], "connector.deleted");
    assert_eq!(
        told["data"],
        json!({"connector": "crm", "status": "deleted", "reason": "deleted through the control plane", "connections_erased": 1})
    );
}

/// A receiver named by a host that only `upstream.resolve` knows is reached: webhooks
/// resolve names like every other outbound client (they used the system's DNS alone).
#[tokio::test]
async fn a_webhook_receiver_is_found_through_upstream_resolve() {
    let f = Fixture::new().await;
    let receiver = Receiver::start(true).await;
    std::fs::write(f.egret.dir.path().join("hook-secret"), SECRET).expect("secret");
    let yaml = format!(
        "{}webhooks:\n  - url: http://hooks.test.local:{}/hooks/egret\n    secret: ${{file:hook-secret}}\n    events: [connection.connected]\n",
        super::harness::policy_yaml().replace(
            "    dead.test.local: 127.0.0.1\n",
            "    dead.test.local: 127.0.0.1\n    hooks.test.local: 127.0.0.1\n"
        ),
        receiver.addr.port()
    );
    f.egret.reload(&yaml);
    let (status, _) = admin(
        &f.egret,
        Method::PUT,
        "/v1/connections/openai/user:ann/key",
        Some(json!({ "key": "sk-resolve-REAL" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_for(&receiver, Duration::from_secs(20), |seen| {
        seen.iter().any(|a| a.accepted)
    })
    .await;
    let a = receiver
        .attempts()
        .into_iter()
        .find(|a| a.accepted)
        .expect("accepted");
    verify(&a).unwrap_or_else(|e| panic!("{e}: {a:#?}"));
    assert_eq!(body(&a)["type"], "connection.connected");
}
