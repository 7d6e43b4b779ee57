//! The control plane (README, "Control plane"): admin token, static keys,
//! connections, placeholders, connectors (masked), health.

use egret_test_support::client::{Proto, get};
use egret_test_support::proxy::ADMIN_TOKEN;
use http::{Method, StatusCode};
use serde_json::json;

use super::harness::Fixture;
use super::harness::api::{admin, api, audit_events};

#[tokio::test]
async fn admin_routes_need_the_token_and_health_does_not() {
    let f = Fixture::new().await;
    let addr = f.egret.control_addr;
    assert_eq!(
        api(addr, Method::GET, "/healthz", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api(addr, Method::GET, "/readyz", None, None).await.0,
        StatusCode::OK
    );
    let (status, body) = api(addr, Method::GET, "/v1/connections", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(
        api(addr, Method::GET, "/v1/connections", Some("wrong"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api(
            addr,
            Method::GET,
            "/v1/connections",
            Some(ADMIN_TOKEN),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn key_placeholder_request_revoke_disconnect_round_trip() {
    let f = Fixture::new().await;
    let addr = f.egret.control_addr;
    let t = Some(ADMIN_TOKEN);
    let secret = "sk-THE-REAL-KEY-via-api";
    let (status, body) = api(
        addr,
        Method::PUT,
        "/v1/connections/openai/user:bob/key",
        t,
        Some(json!({ "key": secret })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains(secret));
    assert_eq!(body["status"], "connected");

    let (status, list) = api(addr, Method::GET, "/v1/connections?owner=user:bob", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["connections"].as_array().expect("list").len(), 1);
    assert!(!list.to_string().contains(secret));

    let (status, minted) = api(
        addr,
        Method::POST,
        "/v1/placeholders",
        t,
        Some(json!({ "connector": "openai", "owner": "user:bob", "ttl": "1h" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let p = minted["placeholder"]
        .as_str()
        .expect("placeholder")
        .to_owned();
    assert!(p.starts_with("egp_") && p.len() >= 36);
    assert!(minted["expires_at"].as_i64().is_some());

    let auth = format!("Bearer {p}");
    let at = f.at("api.test.local");
    let headers = [("authorization", auth.as_str())];
    let call = || {
        get(
            f.egret.proxy_addr,
            &f.egret.ca_pem,
            &at,
            "/",
            &headers,
            Proto::H1,
        )
    };
    assert_eq!(call().await.expect("req").status(), StatusCode::OK);
    assert_eq!(
        f.last_seen()["headers"]["authorization"],
        format!("Bearer {secret}")
    );

    // Revoke: refused at once.
    assert_eq!(
        api(
            addr,
            Method::DELETE,
            &format!("/v1/placeholders/{p}"),
            t,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call().await.expect("req").headers()["x-egret-error"],
        "placeholder_unknown"
    );
    assert_eq!(
        api(
            addr,
            Method::DELETE,
            &format!("/v1/placeholders/{p}"),
            t,
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Disconnect: every placeholder of the connection stops at once.
    let (_, minted) = api(
        addr,
        Method::POST,
        "/v1/placeholders",
        t,
        Some(json!({ "connector": "openai", "owner": "user:bob" })),
    )
    .await;
    let p2 = minted["placeholder"]
        .as_str()
        .expect("placeholder")
        .to_owned();
    assert_eq!(
        api(
            addr,
            Method::DELETE,
            "/v1/connections/openai/user:bob",
            t,
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let auth2 = format!("Bearer {p2}");
    let resp = get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &f.at("api.test.local"),
        "/",
        &[("authorization", auth2.as_str())],
        Proto::H2,
    )
    .await
    .expect("req");
    assert_eq!(resp.headers()["x-egret-error"], "placeholder_unknown");
    assert_eq!(
        api(
            addr,
            Method::DELETE,
            "/v1/connections/openai/user:bob",
            t,
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // The audit log has the story, and no secret or placeholder.
    let (_, audit) = api(addr, Method::GET, "/v1/audit", t, None).await;
    let text = audit.to_string();
    for event in [
        "connection.set_key",
        "placeholder.mint",
        "placeholder.revoke",
        "connection.remove",
    ] {
        assert!(text.contains(event), "{event} missing from {text}");
    }
    assert!(!text.contains(secret) && !text.contains(&p) && !text.contains(&p2));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let f = Fixture::new().await;
    let addr = f.egret.control_addr;
    let t = Some(ADMIN_TOKEN);
    let key = Some(json!({ "key": "k" }));
    let cases = [
        (
            Method::PUT,
            "/v1/connections/nope/org/key",
            key.clone(),
            StatusCode::NOT_FOUND,
            "connector_not_found",
        ),
        (
            Method::PUT,
            "/v1/connections/openai/bob/key",
            key.clone(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::PUT,
            "/v1/connections/openai/org/key",
            Some(json!({ "nope": 1 })),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::PUT,
            "/v1/connections/openai/org/key",
            Some(json!({ "key": "" })),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::PUT,
            "/v1/connections/off/org/key",
            key.clone(),
            StatusCode::CONFLICT,
            "connector_disabled",
        ),
        (
            Method::POST,
            "/v1/placeholders",
            Some(json!({ "connector": "openai", "owner": "org" })),
            StatusCode::NOT_FOUND,
            "connection_not_found",
        ),
        (
            Method::POST,
            "/v1/placeholders",
            Some(json!({ "connector": "openai", "owner": "org", "ttl": "soon" })),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/placeholders",
            Some(json!({ "connector": "zzz", "owner": "org" })),
            StatusCode::NOT_FOUND,
            "connector_not_found",
        ),
        (
            Method::DELETE,
            "/v1/placeholders/not-a-placeholder",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/connectors/zzz",
            None,
            StatusCode::NOT_FOUND,
            "connector_not_found",
        ),
        (
            Method::GET,
            "/v1/nothing",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, answer) = api(addr, method.clone(), path, t, body).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{method} {path}: {answer}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(
        f.egret.vault.connections(None, None).is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn connectors_are_listed_with_their_hosts_and_no_secrets() {
    let ca = egret_test_support::upstream::TestCa::new();
    let yaml = "version: 1\nconnectors:\n  - id: gh\n    auth: oauth2\n    oauth: { authorize_url: https://gh.example/a, token_url: https://gh.example/t, client_id: cid, client_secret: \"${env:GH_SECRET_FOR_TEST}\" }\n    egress: [api.gh.example]\n";
    let egret = egret_test_support::proxy::TestProxy::start(yaml, &ca.pem).await;
    let (status, list) = api(
        egret.control_addr,
        Method::GET,
        "/v1/connectors",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let c = &list["connectors"][0];
    assert_eq!(c["id"], "gh");
    assert_eq!(c["source"], "policy");
    assert_eq!(c["egress"][0], "api.gh.example");
    assert_eq!(c["oauth"]["client_secret"], "${env:GH_SECRET_FOR_TEST}");
    let (status, one) = api(
        egret.control_addr,
        Method::GET,
        "/v1/connectors/gh",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["auth"], "oauth2");
    let (status, answer) = api(
        egret.control_addr,
        Method::PUT,
        "/v1/connections/gh/org/key",
        Some(ADMIN_TOKEN),
        Some(json!({"key": "k"})),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::CONFLICT, Some("wrong_auth_kind"))
    );
}

/// Lifetimes have a ceiling (`limits.max_ttl`, 30 days unless set): beyond it a
/// placeholder or a sandbox identity is refused, with the ceiling named.
#[tokio::test]
async fn placeholder_and_sandbox_lifetimes_are_capped_with_the_maximum_named() {
    let f = Fixture::new().await;
    f.egret.key_and_placeholder("openai", "org", "sk-ttl");
    let mint = |ttl: &'static str| {
        let body = json!({ "connector": "openai", "owner": "org", "ttl": ttl });
        admin(&f.egret, Method::POST, "/v1/placeholders", Some(body))
    };
    let (status, body) = mint("1000000000h").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("30days") && message.contains("limits.max_ttl"),
        "{message}"
    );
    assert_eq!(
        mint("720h").await.0,
        StatusCode::CREATED,
        "exactly 30 days is allowed"
    );
    let (status, body) = admin(
        &f.egret,
        Method::POST,
        "/v1/sandboxes",
        Some(json!({ "id": "sb-long", "ttl": "31d" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("30days")),
        "{body}"
    );

    // The operator sets another ceiling: it applies at once.
    f.egret.reload(
        &super::harness::policy_yaml()
            .replace("version: 1\n", "version: 1\nlimits: { max_ttl: 2h }\n"),
    );
    let (status, body) = mint("3h").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("2h")),
        "{body}"
    );
    assert_eq!(mint("2h").await.0, StatusCode::CREATED);
}

/// What people write on a connection: `PATCH` takes exactly `description` and
/// `identity_label`, a new key keeps them, and the listing counts the requests that
/// carried the key and the vendor's error answers among them.
#[tokio::test]
async fn a_connection_carries_a_description_and_its_use_over_the_last_day() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-desc-REAL");
    let path = "/v1/connections/openai/org";
    let (status, body) = admin(
        &f.egret,
        Method::PATCH,
        path,
        Some(json!({"description": "staging CRM, read only", "identity_label": "svc-bot"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["description"], "staging CRM, read only");
    for (patch, named) in [
        (json!({"status": "connected"}), "status"),
        (json!({"description": "x", "scopes": []}), "scopes"),
    ] {
        let (status, body) = admin(&f.egret, Method::PATCH, path, Some(patch)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(named)),
            "{body}"
        );
    }
    let (status, _) = admin(
        &f.egret,
        Method::PATCH,
        "/v1/connections/openai/user:nobody",
        Some(json!({"description": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A new key keeps what people wrote.
    f.egret.key_and_placeholder("openai", "org", "sk-desc-NEW");
    let auth = format!("Bearer {p}");
    for path in ["/ok", "/status?code=404", "/status?code=503"] {
        f.get(
            "api.test.local",
            path,
            &[("authorization", &auth)],
            Proto::H1,
        )
        .await;
    }
    let (_, listed) = admin(&f.egret, Method::GET, "/v1/connections?owner=org", None).await;
    let c = &listed["connections"][0];
    assert_eq!(c["description"], "staging CRM, read only", "{c}");
    assert_eq!(c["identity_label"], "svc-bot", "{c}");
    assert_eq!(c["requests_24h"], 3, "{c}");
    assert_eq!(c["upstream_errors_24h"], 2, "{c}");
    assert!(c["last_used_at"].as_i64().is_some(), "{c}");
    assert_eq!(c["missing_scopes"], json!([]), "{c}");
    // `null` clears; the change is audited.
    let (_, body) = admin(
        &f.egret,
        Method::PATCH,
        path,
        Some(json!({"description": null})),
    )
    .await;
    assert!(body.get("description").is_none(), "{body}");
    let audit = audit_events(&f.egret, "openai").await;
    assert!(audit.iter().any(|e| e == "connection.update"), "{audit:?}");
}

/// `POST /v1/connections/{c}/{o}/test`: one real request with the key, to the
/// connector's `test:`; the vendor's error text comes back without the key in it.
#[tokio::test]
async fn testing_a_static_key_connection_says_whether_it_works_and_never_shows_the_key() {
    let f = Fixture::new().await;
    let with_test = |test: &str| {
        super::harness::policy_yaml().replace(
            "  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n",
            &format!(
                "  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n    test: {test}\n"
            ),
        )
    };
    f.egret
        .key_and_placeholder("openai", "org", "sk-test-REAL-key");
    let test = || {
        admin(
            &f.egret,
            Method::POST,
            "/v1/connections/openai/org/test",
            None,
        )
    };
    // No test request: say how to add one.
    let (status, body) = test().await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "no_test_request");

    let port = f.upstream.addr.port();
    f.egret.reload(&with_test(&format!(
        "{{ url: \"https://api.test.local:{port}/echo\" }}"
    )));
    let (status, body) = test().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["status"], 200);
    assert!(body["latency_ms"].as_u64().is_some());
    assert_eq!(
        f.last_seen()["headers"]["authorization"],
        "Bearer sk-test-REAL-key",
        "the real key went to the vendor"
    );

    // The vendor answers otherwise: not ok, its text shown, the key (echoed) taken out.
    f.egret.reload(&with_test(&format!(
        "{{ url: \"https://api.test.local:{port}/echo\", expect: 204 }}"
    )));
    let (_, body) = test().await;
    assert_eq!(body["ok"], false, "{body}");
    assert_eq!(body["status"], 200);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("expected 204"), "{message}");
    assert!(!message.contains("sk-test-REAL-key"), "{message}");
    assert!(message.contains("[redacted]"), "{message}");

    // The outcome is on the connection and in the audit log.
    let (_, listed) = admin(&f.egret, Method::GET, "/v1/connections?owner=org", None).await;
    assert_eq!(
        listed["connections"][0]["last_test"]["ok"], false,
        "{listed}"
    );
    let audit = audit_events(&f.egret, "openai").await;
    assert!(audit.iter().any(|e| e == "connection.test"), "{audit:?}");
    // No connection: 404.
    let (status, _) = admin(
        &f.egret,
        Method::POST,
        "/v1/connections/openai/user:nobody/test",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
