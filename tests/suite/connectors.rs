//! Connector lifecycle through the control plane and the policy file: create, disable
//! (existing connections keep working), delete (the kill switch), policy-file removal,
//! and policy connectors being read-only here.

use egret_test_support::client::{Proto, Session, refusal_code};
use http::{Method, StatusCode};
use serde_json::json;

use super::harness::api::admin;
use super::harness::{Fixture, policy_yaml};

async fn call(f: &Fixture, host: &str, path: &str, auth: &str) -> (StatusCode, Option<String>) {
    let resp = f
        .get(host, path, &[("authorization", auth)], Proto::H1)
        .await;
    (resp.status(), refusal_code(&resp))
}

#[tokio::test]
async fn api_connectors_create_disable_and_delete_with_exact_semantics() {
    let f = Fixture::new().await;
    let (status, body) = admin(
        &f.egret,
        Method::POST,
        "/v1/connectors",
        Some(json!({ "id": "crm", "auth": "api_key", "egress": ["other.test.local"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["source"], "api");
    assert_eq!(body["env"]["CRM_TOKEN"], "placeholder");

    let (status, _) = admin(
        &f.egret,
        Method::PUT,
        "/v1/connections/crm/user:ann/key",
        Some(json!({"key": "crm-ann-REAL"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, minted) = admin(
        &f.egret,
        Method::POST,
        "/v1/placeholders",
        Some(json!({"connector": "crm", "owner": "user:ann"})),
    )
    .await;
    let auth = format!(
        "Bearer {}",
        minted["placeholder"].as_str().expect("placeholder")
    );
    assert_eq!(
        call(&f, "other.test.local", "/", &auth).await.0,
        StatusCode::OK
    );
    assert_eq!(
        f.last_seen()["headers"]["authorization"],
        "Bearer crm-ann-REAL"
    );

    // Disabled: existing connection and placeholder keep working; no new connections.
    let (status, body) = admin(
        &f.egret,
        Method::PATCH,
        "/v1/connectors/crm",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], false);
    assert_eq!(
        call(&f, "other.test.local", "/", &auth).await.0,
        StatusCode::OK
    );
    let (status, body) = admin(
        &f.egret,
        Method::PUT,
        "/v1/connections/crm/user:bob/key",
        Some(json!({"key": "k"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("connector_disabled"))
    );
    admin(
        &f.egret,
        Method::PATCH,
        "/v1/connectors/crm",
        Some(json!({"enabled": true})),
    )
    .await;

    // Delete with a tunnel already open: the next request on it is refused.
    let mut session = Session::open(
        f.egret.proxy_addr,
        &f.at("other.test.local"),
        "other.test.local",
        &f.egret.ca_pem,
        Proto::H1,
    )
    .await
    .expect("session");
    let authority = f.at("other.test.local");
    let ok = session
        .get(&authority, "/", &[("authorization", &auth)])
        .await
        .expect("fetch");
    assert_eq!(ok.status(), StatusCode::OK);
    let (status, body) = admin(&f.egret, Method::DELETE, "/v1/connectors/crm", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connections_erased"], 1);
    let refused = session
        .get(&authority, "/", &[("authorization", &auth)])
        .await
        .expect("fetch");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (_, conns) = admin(&f.egret, Method::GET, "/v1/connections?connector=crm", None).await;
    assert_eq!(conns["connections"], json!([]));
    assert_eq!(
        admin(&f.egret, Method::GET, "/v1/connectors/crm", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let audit = admin(&f.egret, Method::GET, "/v1/audit", None)
        .await
        .1
        .to_string();
    assert!(
        audit.contains("connector.create") && audit.contains("connector.delete"),
        "{audit}"
    );
    assert!(!audit.contains("crm-ann-REAL"));
}

#[tokio::test]
async fn policy_connectors_are_read_only_and_bad_entries_are_refused() {
    let f = Fixture::new().await;
    for method in [Method::PATCH, Method::DELETE] {
        let (status, body) = admin(
            &f.egret,
            method,
            "/v1/connectors/openai",
            Some(json!({"enabled": false})),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::CONFLICT, Some("managed_by_policy")),
            "{body}"
        );
    }
    let (status, body) = admin(
        &f.egret,
        Method::POST,
        "/v1/connectors",
        Some(json!({"id": "openai", "auth": "api_key", "egress": ["x.example.com"]})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );
    let (status, body) = admin(
        &f.egret,
        Method::POST,
        "/v1/connectors",
        Some(json!({"id": "bad", "auth": "api_key"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("egress")),
        "{body}"
    );
    let (status, _) = admin(
        &f.egret,
        Method::PATCH,
        "/v1/connectors/nope",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn removing_a_connector_from_the_policy_file_kills_its_connections_on_reload() {
    let f = Fixture::new().await;
    let p = f
        .egret
        .key_and_placeholder("openai", "user:ann", "sk-gone-REAL");
    let auth = format!("Bearer {p}");
    assert_eq!(
        call(&f, "api.test.local", "/", &auth).await.0,
        StatusCode::OK
    );
    let without = policy_yaml().replace(
        "  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n",
        "",
    );
    assert!(!without.contains("openai"));
    f.egret.reload(&without);
    let (_, conns) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?connector=openai",
        None,
    )
    .await;
    assert_eq!(conns["connections"], json!([]));
    // Back in the file: a fresh connector, the old placeholder stays dead.
    f.egret.reload(&policy_yaml());
    let (status, code) = call(&f, "api.test.local", "/", &auth).await;
    assert_eq!(
        (status, code.as_deref()),
        (StatusCode::FORBIDDEN, Some("placeholder_unknown"))
    );
}
