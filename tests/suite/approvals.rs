//! Approvals (issue 26, part 2): a request a rule marks `approve` is held until the
//! credential's owner or an administrator decides, through the API here (the owner's
//! Connections page in `tests/browser`, the other replica in `replicas`). Nothing is sent
//! before the decision; every decision is audited and told to the webhooks.

use std::time::Duration;

use egret_test_support::client::{Proto, refusal_code};
use egret_test_support::receiver::Receiver;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::harness::api::{admin, audit_events};
use super::harness::json;
use super::harness::wait::until_some;
use super::rules::{fixture, ruled_yaml, send};

const RULES: &str = r#"    rules:
      - { name: pulls, methods: [POST], path: "/v1/pulls/**", action: approve, reason: "a person approves pull requests" }
"#;

/// The first pending approval the API lists.
async fn pending(f: &super::harness::Fixture) -> Value {
    until_some("a pending approval", Duration::from_secs(10), || async {
        let (_, list) = admin(&f.egret, Method::GET, "/v1/approvals?status=pending", None).await;
        list["approvals"]
            .as_array()
            .and_then(|a| a.first().cloned())
    })
    .await
}

#[tokio::test]
async fn a_held_request_is_released_by_approval_through_the_api_and_told_to_webhooks() {
    let rules = format!("{RULES}    approvals: {{ hold: 20s }}\n");
    let f = fixture(&rules).await;
    let receiver = Receiver::start(true).await;
    std::fs::write(
        f.egret.dir.path().join("hook-secret"),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    .expect("secret");
    f.egret.reload(&format!(
        "{}webhooks:\n  - url: {}\n    secret: ${{file:hook-secret}}\n",
        ruled_yaml(&rules),
        receiver.url()
    ));
    let p = f
        .egret
        .key_and_placeholder("openai", "user:alice", "sk-held-key");
    let body = format!(r#"{{"title": "fix", "token": "{p}"}}"#);
    let sending = send(&f, &p, "POST", "/v1/pulls/new", &body, Proto::H2);
    let deciding = async {
        let a = pending(&f).await;
        assert!(
            f.upstream.seen().is_empty(),
            "nothing is sent before the decision"
        );
        let id = a["id"].as_str().expect("id").to_owned();
        let (status, decided) = admin(
            &f.egret,
            Method::POST,
            &format!("/v1/approvals/{id}/approve"),
            Some(json!({"for": "once", "note": "looks fine"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{decided}");
        assert_eq!(decided["status"], "approved");
        assert_eq!(decided["decided_by"], "admin");
        assert_eq!(decided["note"], "looks fine");
        a
    };
    let (resp, a) = tokio::time::timeout(Duration::from_secs(15), async {
        tokio::join!(sending, deciding)
    })
    .await
    .expect("released within the hold");
    assert_eq!(a["connector"], "openai");
    assert_eq!(a["owner"], "user:alice");
    assert_eq!(a["method"], "POST");
    assert_eq!(a["host"], "api.test.local");
    assert_eq!(a["path"], "/v1/pulls/new");
    assert_eq!(a["rule"], "pulls");
    assert_eq!(a["reason"], "a person approves pull requests");
    let preview = a["body_preview"].as_str().expect("preview");
    assert!(
        preview.contains("\"title\": \"fix\"") && !preview.contains(&p),
        "{preview}"
    );
    let id = a["id"].as_str().expect("id");
    assert!(
        a["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/ui/approvals/{id}"))),
        "{a}"
    );
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = f.upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["headers"]["authorization"], "Bearer sk-held-key");
    // A second decision is refused; an unknown id is 404.
    let (status, again) = admin(
        &f.egret,
        Method::POST,
        &format!("/v1/approvals/{id}/deny"),
        None,
    )
    .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::CONFLICT, Some("approval_decided"))
    );
    let (status, _) = admin(&f.egret, Method::GET, "/v1/approvals/apr_nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, bad) = admin(&f.egret, Method::GET, "/v1/approvals?status=maybe", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    let events = audit_events(&f.egret, "openai").await;
    for e in ["approval.requested", "approval.approved"] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
    let told = until_some("both webhook events", Duration::from_secs(10), || async {
        let types: Vec<String> = receiver
            .attempts()
            .iter()
            .filter_map(|a| serde_json::from_str::<Value>(&a.body).ok())
            .filter_map(|b| b["type"].as_str().map(str::to_owned))
            .collect();
        (types.iter().any(|t| t == "approval.decided")).then_some(types)
    })
    .await;
    assert!(told.iter().any(|t| t == "approval.requested"), "{told:?}");
    for a in receiver.attempts() {
        assert!(
            !a.body.contains("sk-held-key") && !a.body.contains(&p),
            "{}",
            a.body
        );
    }
}

#[tokio::test]
async fn after_the_hold_the_agent_is_told_where_to_ask_and_a_denial_carries_its_note() {
    let f = fixture(&format!("{RULES}    approvals: {{ hold: 1s }}\n")).await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-org-key");
    let r = send(&f, &p, "POST", "/v1/pulls/7", "{}", Proto::H1).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(refusal_code(&r).as_deref(), Some("approval_pending"));
    let b = json(r.body());
    let id = b["approval_id"].as_str().expect("approval id").to_owned();
    assert!(b["retry_after"].as_u64().is_some_and(|s| s >= 1), "{b}");
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        b["approval_url"].as_str().is_some_and(|u| u.contains(&id)),
        "{b}"
    );
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("Nothing was sent")),
        "{b}"
    );

    // Approved while the agent waited: its retry of the same request goes, once.
    admin(
        &f.egret,
        Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        None,
    )
    .await;
    let r = send(&f, &p, "POST", "/v1/pulls/7", "{}", Proto::H1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(&f, &p, "POST", "/v1/pulls/7", "{}", Proto::H1).await;
    assert_eq!(
        refusal_code(&r).as_deref(),
        Some("approval_pending"),
        "once is once"
    );
    let second = json(r.body())["approval_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_ne!(second, id);

    // Denied with a note: the retry is refused with it.
    let (status, _) = admin(
        &f.egret,
        Method::POST,
        &format!("/v1/approvals/{second}/deny"),
        Some(json!({"note": "not on a Friday"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = send(&f, &p, "POST", "/v1/pulls/7", "{}", Proto::H2).await;
    assert_eq!(refusal_code(&r).as_deref(), Some("approval_denied"));
    let b = json(r.body());
    assert_eq!(b["note"], "not on a Friday");
    assert_eq!(b["decided_by"], "admin");
    assert_eq!(
        f.upstream.seen().len(),
        1,
        "only the approved request went out"
    );
    // A body over 1 MiB cannot be held.
    let big = "x".repeat(1024 * 1024 + 10);
    let r = send(&f, &p, "POST", "/v1/pulls/8", &big, Proto::H1).await;
    assert_eq!(refusal_code(&r).as_deref(), Some("request_denied"));
    assert!(
        json(r.body())["reason"]
            .as_str()
            .is_some_and(|m| m.contains("1 MiB"))
    );

    let events = audit_events(&f.egret, "openai").await;
    for e in ["approval.requested", "approval.approved", "approval.denied"] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
}
