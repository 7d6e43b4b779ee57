//! Scoped API tokens and roles (issue 27, parts 2 and 3): a token is shown once, acts
//! with its role on every route, is refused what its role may not do (403 naming the
//! role needed), and stops at once when revoked.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::harness::Fixture;
use super::harness::api::{admin, api};

async fn make(f: &Fixture, body: Value) -> String {
    let (status, made) = admin(&f.egret, Method::POST, "/v1/tokens", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["token"].as_str().expect("the token, once").to_owned();
    assert!(
        token.starts_with("egt_") && token.len() >= 4 + 43,
        "{token}"
    );
    token
}

async fn call(
    f: &Fixture,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    api(f.egret.control_addr, method, path, Some(token), body).await
}

#[tokio::test]
async fn each_role_does_what_it_may_and_a_revoked_token_stops_at_once() {
    let f = Fixture::new().await;
    f.egret
        .key_and_placeholder("openai", "user:alice", "sk-alice");
    f.egret.key_and_placeholder("openai", "user:bob", "sk-bob");
    let platform = make(
        &f,
        json!({"name": "agent-platform", "role": "platform", "ttl": "90d"}),
    )
    .await;
    let auditor = make(&f, json!({"name": "security", "role": "auditor"})).await;
    let alice = make(
        &f,
        json!({"name": "alice-ui", "role": "user", "owner": "user:alice"}),
    )
    .await;
    let (_, listed) = admin(&f.egret, Method::GET, "/v1/tokens", None).await;
    let text = listed.to_string();
    assert!(
        !text.contains(&platform) && text.contains("agent-platform"),
        "{text}"
    );
    assert_eq!(listed["tokens"][0]["role"], "platform", "{listed}");
    // Bad requests say what is wrong.
    for (body, field) in [
        (json!({"name": "x", "role": "god"}), "not a role"),
        (json!({"name": "x", "role": "user"}), "owner"),
        (
            json!({"name": "Bad Name", "role": "auditor"}),
            "not a token name",
        ),
        (
            json!({"name": "agent-platform", "role": "auditor"}),
            "exists already",
        ),
    ] {
        let (status, e) = admin(&f.egret, Method::POST, "/v1/tokens", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains(field)),
            "{e}"
        );
    }

    // platform: placeholders, links, connections; not connectors, not the audit log.
    let (status, minted) = call(
        &f,
        &platform,
        Method::POST,
        "/v1/placeholders",
        Some(json!({"connector": "openai", "owner": "user:alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let (status, _) = call(
        &f,
        &platform,
        Method::POST,
        "/v1/connect-links",
        Some(json!({"owner": "user:carol"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, conns) = call(&f, &platform, Method::GET, "/v1/connections", None).await;
    assert_eq!(
        (status, conns["connections"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    let (status, e) = call(
        &f,
        &platform,
        Method::PATCH,
        "/v1/connectors/openai",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"], "forbidden");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("token:agent-platform") && m.contains("admin")),
        "{e}"
    );
    for path in ["/v1/audit", "/v1/tokens"] {
        let (status, _) = call(&f, &platform, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }

    // auditor: reads everything not secret, changes nothing.
    for path in [
        "/v1/audit",
        "/v1/connections",
        "/v1/connectors",
        "/v1/sandboxes",
        "/v1/placeholders",
        "/v1/approvals",
    ] {
        let (status, body) = call(&f, &auditor, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, _) = call(
        &f,
        &auditor,
        Method::PUT,
        "/v1/connections/openai/user:alice/key",
        Some(json!({"key": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &f,
        &auditor,
        Method::POST,
        "/v1/placeholders",
        Some(json!({"connector": "openai", "owner": "user:alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // user: their own connections only.
    let (_, mine) = call(&f, &alice, Method::GET, "/v1/connections", None).await;
    let owners: Vec<&str> = mine["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["owner"].as_str())
        .collect();
    assert_eq!(owners, ["user:alice"], "{mine}");
    let (status, _) = call(
        &f,
        &alice,
        Method::POST,
        "/v1/placeholders",
        Some(json!({"connector": "openai", "owner": "user:alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(
        &f,
        &alice,
        Method::POST,
        "/v1/placeholders",
        Some(json!({"connector": "openai", "owner": "user:bob"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &f,
        &alice,
        Method::PUT,
        "/v1/connections/openai/user:bob/key",
        Some(json!({"key": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Revoked: refused at once.
    let (status, _) = admin(&f.egret, Method::DELETE, "/v1/tokens/agent-platform", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, e) = call(&f, &platform, Method::GET, "/v1/connections", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{e}");
    let (status, _) = admin(&f.egret, Method::DELETE, "/v1/tokens/agent-platform", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A token-shaped guess is refused like any wrong token.
    let (status, _) = call(&f, "egt_nothing", Method::GET, "/v1/connections", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, audit) = admin(&f.egret, Method::GET, "/v1/audit", None).await;
    let text = audit.to_string();
    assert!(
        text.contains("token.create") && text.contains("token.revoke"),
        "{text}"
    );
    assert!(!text.contains(&platform), "never the token");
    // Each change names who made it.
    let by = |event: &str| -> Vec<String> {
        audit["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["event"] == event)
            .filter_map(|e| e["by"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        by("placeholder.mint"),
        ["token:agent-platform", "token:alice-ui"],
        "{text}"
    );
    assert_eq!(by("token.create"), ["admin", "admin", "admin"]);
}
