//! Named connections: an owner's several connections to one connector where the
//! connector allows them, each with its own key, placeholder and listing entry; one per
//! owner everywhere else.

use egret_test_support::client::Proto;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::harness::Fixture;
use super::harness::api::{admin, connection_names, discover};

/// The test policy with `openai` allowing several connections per owner.
fn reload_with_multiple(f: &Fixture) {
    let yaml = super::harness::policy_yaml().replace(
        "  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n",
        "  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n    multiple_connections: true\n    env: { OPENAI_API_KEY: placeholder }\n",
    );
    assert!(yaml.contains("multiple_connections"), "the policy changed");
    f.egret.reload(&yaml);
}

async fn set_key(
    f: &Fixture,
    connector: &str,
    name: Option<&str>,
    key: &str,
) -> (StatusCode, Value) {
    let query = name.map(|n| format!("?name={n}")).unwrap_or_default();
    admin(
        &f.egret,
        Method::PUT,
        &format!("/v1/connections/{connector}/user:ann/key{query}"),
        Some(json!({ "key": key })),
    )
    .await
}

async fn mint(f: &Fixture, connector: &str, name: Option<&str>) -> (StatusCode, Value) {
    admin(
        &f.egret,
        Method::POST,
        "/v1/placeholders",
        Some(json!({ "connector": connector, "owner": "user:ann", "name": name })),
    )
    .await
}

/// A GET through egret with the placeholder `minted` (a mint answer) as Bearer token.
async fn call(f: &Fixture, minted: &Value) -> StatusCode {
    let auth = format!(
        "Bearer {}",
        minted["placeholder"].as_str().expect("placeholder")
    );
    f.get(
        "api.test.local",
        "/v1/models",
        &[("authorization", &auth)],
        Proto::H1,
    )
    .await
    .status()
}

/// The `authorization` header the upstream saw on the last request.
fn last_authorization(f: &Fixture) -> String {
    let seen = f.upstream.seen();
    let last = seen.last().expect("a request reached the upstream");
    last["headers"]["authorization"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn two_names_hold_two_keys_and_each_placeholder_carries_its_own() {
    let f = Fixture::new().await;
    reload_with_multiple(&f);
    let (status, body) = set_key(&f, "openai", None, "sk-personal-REAL").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "default");
    let (status, body) = set_key(&f, "openai", Some("work"), "sk-work-REAL").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "work");

    let (status, personal) = mint(&f, "openai", None).await;
    assert_eq!(status, StatusCode::CREATED, "{personal}");
    assert_eq!(personal["name"], "default");
    let (status, work) = mint(&f, "openai", Some("work")).await;
    assert_eq!(status, StatusCode::CREATED, "{work}");
    assert_eq!(work["name"], "work");

    for (minted, key) in [(&personal, "sk-personal-REAL"), (&work, "sk-work-REAL")] {
        assert_eq!(call(&f, minted).await, StatusCode::OK);
        assert_eq!(last_authorization(&f), format!("Bearer {key}"));
    }

    // Listings show the name, and filter by it.
    let (_, list) = admin(
        &f.egret,
        Method::GET,
        "/v1/connections?connector=openai",
        None,
    )
    .await;
    assert_eq!(connection_names(&list), ["default", "work"], "{list}");
    let (_, only) = admin(&f.egret, Method::GET, "/v1/connections?name=work", None).await;
    assert_eq!(
        only["connections"].as_array().map(Vec::len),
        Some(1),
        "{only}"
    );
    let (_, placeholders) = admin(
        &f.egret,
        Method::GET,
        "/v1/placeholders?connector=openai",
        None,
    )
    .await;
    assert!(
        placeholders["placeholders"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "work")),
        "{placeholders}"
    );

    // Labels and tests address one name; an unknown name is a 404 that says which.
    let (status, body) = admin(
        &f.egret,
        Method::PATCH,
        "/v1/connections/openai/user:ann?name=work",
        Some(json!({ "description": "work account" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["description"], "work account");
    let (status, body) = admin(
        &f.egret,
        Method::PATCH,
        "/v1/connections/openai/user:ann?name=nope",
        Some(json!({ "description": "x" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("`nope`")),
        "{body}"
    );

    // Discovery: the name, and a variable of its own for sandbox-env.
    let both = format!(
        "Bearer {}, {}",
        personal["placeholder"].as_str().expect("p"),
        work["placeholder"].as_str().expect("w")
    );
    let (_, resp) = discover(&f.egret, &[("authorization", &both)]).await;
    let described: Vec<(String, Value)> = resp["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["env"].clone(),
            )
        })
        .collect();
    assert!(
        described.contains(&("work".to_owned(), json!(["OPENAI_API_KEY_WORK"])))
            && described.contains(&("default".to_owned(), json!(["OPENAI_API_KEY"]))),
        "{resp}"
    );

    // The audit log names the connection.
    let (_, audit) = admin(&f.egret, Method::GET, "/v1/audit?connector=openai", None).await;
    assert!(
        audit["events"].as_array().is_some_and(|e| e
            .iter()
            .any(|e| e["event"] == "connection.set_key" && e["name"] == "work")),
        "{audit}"
    );

    // Removing one name leaves the other working.
    let (status, body) = admin(
        &f.egret,
        Method::DELETE,
        "/v1/connections/openai/user:ann?name=work",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(call(&f, &work).await, StatusCode::FORBIDDEN);
    assert_eq!(call(&f, &personal).await, StatusCode::OK);
    assert_eq!(last_authorization(&f), "Bearer sk-personal-REAL");
}

#[tokio::test]
async fn one_connection_per_owner_unless_the_connector_allows_several() {
    let f = Fixture::new().await;
    // `weather` does not say multiple_connections: one connection per owner.
    let (status, body) = set_key(&f, "weather", Some("home"), "w-home").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "one connection, whatever its name: {body}"
    );
    let (status, body) = set_key(&f, "weather", None, "w-default").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "one_connection_per_owner");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`home`") && message.contains("multiple_connections: true"),
        "{message}"
    );
    // The same name again replaces the key, as before.
    let (status, _) = set_key(&f, "weather", Some("home"), "w-home-2").await;
    assert_eq!(status, StatusCode::OK);
    // Another owner has a connection of their own.
    let (status, _) = admin(
        &f.egret,
        Method::PUT,
        "/v1/connections/weather/user:bob/key",
        Some(json!({ "key": "w-bob" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Names are checked: what is wrong and what is allowed.
    for bad in ["Work", "a%20b", "x.y", &"n".repeat(65)] {
        let (status, body) = set_key(&f, "openai", Some(bad), "k").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("a-z, 0-9")),
            "{body}"
        );
    }
    let (status, body) = mint(&f, "weather", Some("nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
