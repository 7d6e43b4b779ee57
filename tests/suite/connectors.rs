//! Connector lifecycle through the control plane and the policy file: create, disable
//! (existing connections keep working), delete (the kill switch), policy-file removal,
//! and policy connectors being read-only here.

use egret_test_support::client::{Proto, Session, refusal_code};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::harness::api::{admin, audit_events};
use super::harness::wait::until;
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

fn without_openai() -> String {
    // Another connector keeps the host intercepted: the refusal is the connector's,
    // not the network's.
    let without = policy_yaml().replace("  - id: openai\n", "  - id: successor\n");
    assert!(!without.contains("openai"));
    without
}

async fn openai_status(f: &Fixture) -> Value {
    let (_, conns) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?connector=openai",
        None,
    )
    .await;
    conns["connections"][0].clone()
}

#[tokio::test]
async fn a_connector_gone_from_the_file_is_refused_at_once_kept_and_restored_when_it_returns() {
    let f = Fixture::new().await;
    let p = f
        .egret
        .key_and_placeholder("openai", "user:ann", "sk-gone-REAL");
    let auth = format!("Bearer {p}");
    assert_eq!(
        call(&f, "api.test.local", "/", &auth).await.0,
        StatusCode::OK
    );
    f.egret.reload(&without_openai());
    // Refused at once, saying why, and nothing sent upstream.
    let before = f.upstream.seen().len();
    let (status, code) = call(&f, "api.test.local", "/", &auth).await;
    assert_eq!(
        (status, code.as_deref()),
        (StatusCode::FORBIDDEN, Some("connector_removed"))
    );
    assert_eq!(f.upstream.seen().len(), before);
    // Kept, and shown as such, with when it will be erased (7 days by default).
    let conn = openai_status(&f).await;
    assert_eq!(conn["status"], "connector_removed", "{conn}");
    let since = conn["connector_removed_at"].as_i64().expect("removed_at");
    assert_eq!(conn["purge_at"].as_i64(), Some(since + 7 * 24 * 3600));
    let (_, listed) = admin(&f.egret, Method::GET, "/v1/connectors", None).await;
    assert_eq!(listed["removed"][0]["id"], "openai", "{listed}");
    assert_eq!(listed["removed"][0]["connections"], 1, "{listed}");
    // An API connector may not take the id while its users' tokens wait for it.
    let (status, body) = admin(
        &f.egret,
        Method::POST,
        "/v1/connectors",
        Some(json!({ "id": "openai", "auth": "api_key", "egress": ["other.test.local"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "connector_removed");

    // Back in the file: the same placeholder works again, the connection as it was.
    f.egret.reload(&policy_yaml());
    assert_eq!(
        call(&f, "api.test.local", "/", &auth).await.0,
        StatusCode::OK
    );
    assert_eq!(
        f.last_seen()["headers"]["authorization"],
        "Bearer sk-gone-REAL"
    );
    assert_eq!(openai_status(&f).await["status"], "connected");
    let (_, listed) = admin(&f.egret, Method::GET, "/v1/connectors", None).await;
    assert_eq!(listed["removed"], json!([]));
    let audit = audit_events(&f.egret, "openai").await;
    assert!(
        audit.iter().any(|e| e == "connector.removed")
            && audit.iter().any(|e| e == "connector.restored"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_removed_connector_is_erased_by_a_purge_or_when_its_retention_ends() {
    let f = Fixture::new().await;
    let p = f
        .egret
        .key_and_placeholder("openai", "user:ann", "sk-purge-REAL");
    let auth = format!("Bearer {p}");
    f.egret.key_and_placeholder("weather", "org", "w-REAL");
    // Nothing to purge while the connector is in force, or when nothing is stored.
    let (status, body) = admin(&f.egret, Method::POST, "/v1/connectors/openai/purge", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "connector_in_force");
    let (status, body) = admin(&f.egret, Method::POST, "/v1/connectors/nope/purge", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // An operator's purge erases at once; the stanza coming back restores nothing.
    f.egret.reload(&without_openai());
    let (status, body) = admin(&f.egret, Method::POST, "/v1/connectors/openai/purge", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connections_erased"], 1);
    assert_eq!(openai_status(&f).await, Value::Null);
    f.egret.reload(&policy_yaml());
    let (status, code) = call(&f, "api.test.local", "/", &auth).await;
    assert_eq!(
        (status, code.as_deref()),
        (StatusCode::FORBIDDEN, Some("placeholder_unknown"))
    );

    // The retention ending erases too (egret checks every second).
    let without_weather = policy_yaml()
        .replace("version: 1\n", "version: 1\nconnectors_removed_retention: 1h\n")
        .replace(
            "  - id: weather\n    auth: api_key\n    egress: [weather.test.local]\n    inject: { headers: [x-api-key], query: [appid] }\n",
            "",
        );
    assert!(!without_weather.contains("id: weather"));
    f.egret.reload(&without_weather);
    let weather = || async {
        admin(
            &f.egret,
            Method::GET,
            "/v1/connections?connector=weather",
            None,
        )
        .await
        .1["connections"]
            .as_array()
            .map_or(0, Vec::len)
    };
    // A real wait: the purge runs every second, and that it has erased nothing yet
    // can only be seen once it has had the time to run.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(weather().await, 1, "kept within the retention");
    f.egret.clock.skip(std::time::Duration::from_secs(3601));
    until(
        "erased once the retention ended",
        std::time::Duration::from_secs(5),
        || async { weather().await == 0 },
    )
    .await;
    // Audited after the erase, not in the same step: waited for, not read at once (a
    // busy machine was seen to read the log before the event reached it).
    until(
        "the purge audited",
        std::time::Duration::from_secs(5),
        || async {
            audit_events(&f.egret, "weather")
                .await
                .iter()
                .any(|e| e == "connector.purged")
        },
    )
    .await;
}
