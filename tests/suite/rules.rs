//! Request rules (issue 26, part 1): `access: read_only`, method/path/query/body rules
//! and the default, decided on the request as the sandbox sent it, before the swap and
//! before any renewal: a refused request is never sent and costs no token.

use egret_test_support::client::{self, Proto, full, refusal_code};
use http::StatusCode;

use super::harness::{Fixture, json, policy_yaml};

/// The test policy with `rules` (lines indented by four spaces) on the `openai` connector.
pub(super) fn ruled_yaml(rules: &str) -> String {
    policy_yaml().replace(
        "    egress: [api.test.local]\n",
        &format!("    egress: [api.test.local]\n{rules}"),
    )
}

pub(super) async fn fixture(rules: &str) -> Fixture {
    Fixture::with_policy(&ruled_yaml(rules)).await
}

/// `method path` with the placeholder, and `body`, through a fresh session.
pub(super) async fn send(
    f: &Fixture,
    placeholder: &str,
    method: &str,
    path: &str,
    body: &str,
    proto: Proto,
) -> http::Response<bytes::Bytes> {
    let auth = format!("Bearer {placeholder}");
    let at = f.at("api.test.local");
    let mut s = f.session("api.test.local", proto).await;
    let req = client::request(
        method,
        &at,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        full(body.to_owned()),
        proto,
    )
    .expect("request");
    s.fetch(req).await.expect("answer")
}

#[tokio::test]
async fn a_read_only_connector_lets_a_get_through_and_refuses_a_delete_unsent() {
    let f = fixture("    access: read_only\n").await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-read-only");
    for proto in [Proto::H1, Proto::H2] {
        let ok = send(&f, &p, "GET", "/v1/models", "", proto).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let refused = send(&f, &p, "DELETE", "/v1/models/m1", "", proto).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(refusal_code(&refused).as_deref(), Some("request_denied"));
        let body = json(refused.body());
        assert_eq!(body["connector"], "openai");
        assert_eq!(body["rule"], "read_only");
        assert!(
            body["allowed"]
                .as_str()
                .is_some_and(|a| a.contains("GET, HEAD and OPTIONS")),
            "{body}"
        );
        assert!(!String::from_utf8_lossy(refused.body()).contains("sk-read-only"));
    }
    // GraphQL: a query goes, a mutation does not.
    let query = r#"{"query": "query { viewer { login } }"}"#;
    let mutation = r#"{"query": "mutation { deleteRepository(input: {id: 1}) { x } }"}"#;
    assert_eq!(
        send(&f, &p, "POST", "/graphql", query, Proto::H2)
            .await
            .status(),
        StatusCode::OK
    );
    let refused = send(&f, &p, "POST", "/graphql", mutation, Proto::H2).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let seen = f.upstream.seen();
    assert_eq!(
        seen.len(),
        3,
        "only the two GETs and the query were sent: {seen:?}"
    );
    assert!(seen.iter().all(|r| r["method"] != "DELETE"));
}

#[tokio::test]
async fn path_query_and_body_rules_decide_in_order_and_name_the_rule() {
    let rules = r#"    rules:
      - { methods: [DELETE], path: "/repos/**", action: deny, reason: "agents never delete repositories" }
      - { name: issues-as-drafts, methods: [POST], path: "/repos/*/*/issues", query: { draft: "true" }, action: allow }
      - { methods: [POST], path: "/graphql", body: { "/operationName": "DeleteRepo" }, action: deny }
      - { methods: [GET, POST], path: "/**", action: allow }
    default: deny
"#;
    let f = fixture(rules).await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-ruled");
    let refused = send(&f, &p, "DELETE", "/repos/o/r", "", Proto::H1).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body = json(refused.body());
    assert_eq!(body["rule"], "#1");
    assert_eq!(body["reason"], "agents never delete repositories");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("agents never delete repositories")
                && m.contains("Nothing was sent")),
        "{body}"
    );
    // Encoded or dotted paths cannot slip past a rule.
    for sneaky in ["/repos/o/r/../r", "/%72epos/o/r", "/repos%2Fo/r"] {
        let r = send(&f, &p, "DELETE", sneaky, "", Proto::H1).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{sneaky}");
    }
    let ok = send(
        &f,
        &p,
        "POST",
        "/repos/o/r/issues?draft=true",
        "{}",
        Proto::H2,
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let delete_repo = r#"{"operationName": "DeleteRepo", "query": "mutation DeleteRepo { x }"}"#;
    let r = send(&f, &p, "POST", "/graphql", delete_repo, Proto::H2).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(r.body())["rule"], "#3");
    let list = r#"{"operationName": "ListRepos", "query": "query ListRepos { x }"}"#;
    let r = send(&f, &p, "POST", "/graphql", list, Proto::H2).await;
    assert_eq!(r.status(), StatusCode::OK, "the body went on as sent");
    let sent = f.upstream.seen();
    assert!(sent.iter().any(|r| r["path"] == "/graphql"), "{sent:?}");
    // No rule allows PUT: the default.
    let r = send(&f, &p, "PUT", "/x", "{}", Proto::H1).await;
    assert_eq!(json(r.body())["rule"], "default");
    // A body over 64 KiB where a rule must read it is refused, never skipped.
    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(70 * 1024));
    let r = send(&f, &p, "POST", "/graphql", &big, Proto::H1).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(r.body())["rule"], "body");
    assert_eq!(
        f.upstream.seen().len(),
        2,
        "only the two allowed requests went out"
    );
    // Another connector's requests are not judged by these rules.
    let w = f.egret.key_and_placeholder("weather", "org", "w-key");
    let resp = f
        .get("weather.test.local", "/", &[("x-api-key", &w)], Proto::H1)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A request a rule refuses is judged before the OAuth token is renewed: a due token is
/// not refreshed for it, and the next allowed request renews it as usual.
#[tokio::test]
async fn a_refused_request_costs_no_token_renewal() {
    use super::harness::oauth::{OAuthFixture, Options};
    use egret_test_support::browser::Choice;
    let f = OAuthFixture::new(Options {
        access_ttl: 8,
        skew: "5s",
        vendor_extra: "    rules:\n      - { path: \"/admin/**\", action: deny, reason: \"no admin calls\" }\n",
        ..Options::default()
    })
    .await;
    f.sign_in("user:alice", Choice::Allow).await;
    let p = f.mint("vendor", "user:alice").await;
    assert_eq!(f.call(&p, Proto::H1).await.0, StatusCode::OK);
    f.wait_until_due("user:alice", 5).await;
    let before = f.server.stats().await["refresh_token"].clone();
    let (status, code, body) = f.call_path(&p, "/admin/users", Proto::H2).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code.as_deref(), Some("request_denied"));
    assert_eq!(body["reason"], "no admin calls");
    assert_eq!(
        f.server.stats().await["refresh_token"],
        before,
        "a refused request renews nothing"
    );
    assert_eq!(f.call(&p, Proto::H1).await.0, StatusCode::OK);
    assert_eq!(
        f.server.stats().await["refresh_token"].as_u64(),
        before.as_u64().map(|n| n + 1),
        "the allowed request renewed the due token"
    );
}

/// An owner narrows their own connection, never widens it: read only, "ask me first",
/// their own tighter budget; the narrowing survives a new key, and lifting it restores
/// the connector's rules.
#[tokio::test]
async fn an_owner_narrows_their_connection_and_cannot_widen_it() {
    use super::harness::api::admin;
    use http::Method;
    use serde_json::json;
    let f = fixture("    limits: { requests: 10, per: 1h }\n    approvals: { hold: 1s }\n").await;
    let p = f
        .egret
        .key_and_placeholder("openai", "user:alice", "sk-alice-1");
    let path = "/v1/connections/openai/user:alice";
    let (status, body) = admin(
        &f.egret,
        Method::PATCH,
        path,
        Some(json!({"access": "read_only"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["narrowing"], json!({"access": "read_only"}));
    assert_eq!(
        send(&f, &p, "GET", "/v1/models", "", Proto::H1)
            .await
            .status(),
        StatusCode::OK
    );
    let refused = send(&f, &p, "DELETE", "/v1/models/m", "", Proto::H2).await;
    assert_eq!(refusal_code(&refused).as_deref(), Some("request_denied"));
    let b = json(refused.body());
    assert_eq!(b["rule"], "owner:read_only", "{b}");
    assert!(
        b["reason"].as_str().is_some_and(|r| r.contains("owner")),
        "{b}"
    );
    // Another owner's connection to the same connector is not narrowed.
    let bob = f.egret.key_and_placeholder("openai", "user:bob", "sk-bob");
    assert_eq!(
        send(&f, &bob, "DELETE", "/v1/models/m", "", Proto::H1)
            .await
            .status(),
        StatusCode::OK
    );

    // A new key keeps the narrowing.
    let (status, _) = admin(
        &f.egret,
        Method::PUT,
        &format!("{path}/key"),
        Some(json!({"key": "sk-alice-2"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let refused = send(&f, &p, "DELETE", "/v1/models/m", "", Proto::H1).await;
    assert_eq!(
        refusal_code(&refused).as_deref(),
        Some("request_denied"),
        "still read only"
    );

    // Wider limits than the connector's are refused; tighter ones apply.
    let (status, body) = admin(
        &f.egret,
        Method::PATCH,
        path,
        Some(json!({"access": null, "limits": {"requests": 100, "per": "1h"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("only narrow")),
        "{body}"
    );
    let (status, body) = admin(
        &f.egret,
        Method::PATCH,
        path,
        Some(json!({"access": null, "limits": {"requests": 3, "per": "1h"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["narrowing"],
        json!({"limits": {"requests": 3, "per": "1h"}})
    );
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(
            send(&f, &p, "DELETE", "/v1/models/m", "", Proto::H1)
                .await
                .status(),
        );
    }
    // The GET counted already (refused requests do not): 3 allowed in this window.
    assert_eq!(
        codes,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "{codes:?}"
    );

    // "Ask me first": every request waits for the owner.
    let (status, _) = admin(
        &f.egret,
        Method::PATCH,
        path,
        Some(json!({"limits": null, "default": "approve"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let held = send(&f, &p, "GET", "/v1/models", "", Proto::H1).await;
    assert_eq!(refusal_code(&held).as_deref(), Some("approval_pending"));
    assert_eq!(
        json(held.body())["reason"]
            .as_str()
            .map(|r| r.contains("owner")),
        Some(true)
    );
    // Lifted: the connector's rules alone.
    let (status, body) = admin(
        &f.egret,
        Method::PATCH,
        path,
        Some(json!({"default": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["narrowing"].is_null(), "{body}");
    let (status, bad) = admin(
        &f.egret,
        Method::PATCH,
        path,
        Some(json!({"rules": [{"action": "sometimes"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
}
