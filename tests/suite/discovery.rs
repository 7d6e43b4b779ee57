//! `http://egret.internal/connections` through the proxy: egret answers what a sandbox's
//! placeholders stand for, itself, and never a credential or another sandbox's secret.

use base64::Engine;
use egret_test_support::proxy::TestProxy;
use egret_test_support::upstream::{Offer, TestCa, Upstream};
use egret_vault::{ConnectionId, Owner, TokenSet, TokenUpdate};
use http::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::harness::api::{admin, discover};
use super::harness::{Fixture, NAMES, policy_yaml};

#[tokio::test]
async fn placeholders_given_are_described_and_nothing_secret_comes_back() {
    let f = Fixture::new().await;
    let openai = f.egret.key_and_placeholder("openai", "org", "sk-disc-REAL");
    let weather = f.egret.key_and_placeholder("weather", "org", "w-disc-REAL");
    admin(
        &f.egret,
        Method::PATCH,
        "/v1/connections/openai/org",
        Some(json!({"description": "the team's OpenAI key"})),
    )
    .await;
    // An OAuth connection whose grant is gone: the agent is told what the user must do.
    f.egret.reload(&(policy_yaml()
        + "  - id: crm\n    auth: oauth2\n    oauth: { authorize_url: \"https://other.test.local/a\", token_url: \"https://other.test.local/t\", client_id: x }\n    egress: [other.test.local]\n"));
    let crm_conn = ConnectionId::default_of("crm", &Owner::parse("org").expect("owner"));
    let tokens = TokenSet {
        identity: None,
        access_token: SecretString::from("crm-access-REAL"),
        refresh_token: Some(SecretString::from("crm-refresh-REAL")),
        expires_at: None,
        scopes: vec![],
    };
    f.egret
        .vault
        .put_oauth_tokens(&crm_conn, tokens, TokenUpdate::Authorized)
        .expect("tokens");
    f.egret.vault.mark_needs_reauth(&crm_conn).expect("mark");
    let (crm, _) = f
        .egret
        .vault
        .mint_placeholder(&crm_conn, None)
        .expect("mint");
    let before = f.upstream.seen().len();

    let list = format!(
        "Bearer {openai}, {weather},Bearer {}, egp_{}",
        crm.expose(),
        "x".repeat(40)
    );
    let (status, body) = discover(&f.egret, &[("Authorization", &list)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["unknown_placeholders"], 1, "{body}");
    let by = |id: &str| {
        body["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["connector"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let o = by("openai");
    assert_eq!(o["status"], "connected", "{o}");
    assert_eq!(o["description"], "the team's OpenAI key");
    assert_eq!(o["egress"], json!(["api.test.local"]));
    assert_eq!(o["env"], json!(["OPENAI_API_KEY"]), "{o}");
    assert_eq!(o["name"], "default");
    let w = by("weather");
    assert!(
        w["send_in"]
            .as_array()
            .is_some_and(|f| f.contains(&json!({"query": "appid"}))),
        "{w}"
    );
    let c = by("crm");
    assert_eq!(c["status"], "needs_reauth", "{c}");
    assert!(
        c["action"]
            .as_str()
            .is_some_and(|a| a.contains("connect crm again")),
        "{c}"
    );
    let text = body.to_string();
    for secret in [
        "sk-disc-REAL",
        "w-disc-REAL",
        "crm-access",
        "crm-refresh",
        openai.as_str(),
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // Answered by egret itself: nothing went upstream.
    assert_eq!(f.upstream.seen().len(), before);
    // A refusal that concerns a connection says where to look.
    let unknown = format!("Bearer egp_{}", "y".repeat(40));
    let resp = f
        .get(
            "api.test.local",
            "/",
            &[("authorization", &unknown)],
            egret_test_support::client::Proto::H1,
        )
        .await;
    let refusal: Value = serde_json::from_slice(resp.body()).expect("json");
    assert_eq!(refusal["error"], "placeholder_unknown");
    assert!(
        refusal["message"]
            .as_str()
            .is_some_and(|m| m.contains("GET http://egret.internal/connections")),
        "{refusal}"
    );
    assert_eq!(refusal["discover"], "http://egret.internal/connections");
    // Without placeholders: what to do.
    let (_, body) = discover(&f.egret, &[]).await;
    assert_eq!(body["connections"], json!([]));
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Authorization")),
        "{body}"
    );
}

#[tokio::test]
async fn with_proxy_authentication_a_sandbox_sees_its_own_placeholders_and_nothing_of_anothers() {
    let ca = TestCa::new();
    let _upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    let egret = TestProxy::start(
        &policy_yaml().replace("version: 1\n", "version: 1\nproxy: { auth: basic }\n"),
        &ca.pem,
    )
    .await;
    egret.key_and_placeholder("openai", "org", "sk-sbx-REAL");
    egret.key_and_placeholder("weather", "org", "w-sbx-REAL");
    let mut secrets = Vec::new();
    let mut minted = Vec::new();
    for (id, connector) in [("sbx-a", "openai"), ("sbx-b", "weather")] {
        let (_, body) = admin(
            &egret,
            Method::POST,
            "/v1/sandboxes",
            Some(json!({"id": id})),
        )
        .await;
        secrets.push(body["secret"].as_str().expect("secret").to_owned());
        let (_, body) = admin(
            &egret,
            Method::POST,
            "/v1/placeholders",
            Some(json!({"connector": connector, "owner": "org", "sandbox": id})),
        )
        .await;
        minted.push(
            body["placeholder"]
                .as_str()
                .expect("placeholder")
                .to_owned(),
        );
    }
    let basic = |id: &str, secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    // No proxy credentials: the usual 407, nothing listed.
    let (status, _) = discover(&egret, &[]).await;
    assert_eq!(status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    // Sandbox A: its own placeholder, without naming it.
    let a = basic("sbx-a", &secrets[0]);
    let (status, body) = discover(&egret, &[("Proxy-Authorization", &a)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = body["connections"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["connector"], "openai");
    // Sandbox A asking about sandbox B's placeholder learns nothing about it.
    let other = format!("Bearer {}", minted[1]);
    let (_, body) = discover(
        &egret,
        &[("Proxy-Authorization", &a), ("Authorization", &other)],
    )
    .await;
    assert_eq!(body["unknown_placeholders"], 1, "{body}");
    assert!(!body.to_string().contains("weather"), "{body}");
}

/// Issue 26, part 4: the agent sees its limits — the access (read-only, rules in one line
/// each, MCP tools), the budget left, and its requests waiting for a person.
#[tokio::test]
async fn an_agent_sees_its_rules_budget_and_pending_approvals() {
    let rules = "    rules:\n      - { methods: [DELETE], path: \"/repos/**\", action: deny, reason: \"agents never delete repositories\" }\n      - { methods: [POST], path: \"/repos/*/*/pulls\", action: approve, reason: \"a person approves pull requests\" }\n    limits: { requests: 10, per: 1h }\n    approvals: { hold: 1s }\n";
    let f = super::rules::fixture(rules).await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-limits");
    let r = super::rules::send(
        &f,
        &p,
        "GET",
        "/repos/o/r",
        "",
        egret_test_support::client::Proto::H1,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let held = super::rules::send(
        &f,
        &p,
        "POST",
        "/repos/o/r/pulls",
        "{}",
        egret_test_support::client::Proto::H1,
    )
    .await;
    let id = super::harness::json(held.body())["approval_id"]
        .as_str()
        .expect("pending")
        .to_owned();
    let auth = format!("Bearer {p}");
    let (status, body) = discover(&f.egret, &[("Authorization", &auth)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = &body["connections"][0];
    let rules = c["access"]["rules"].as_array().expect("rules");
    assert!(
        rules[0].as_str().is_some_and(
            |r| r.starts_with("deny DELETE /repos/**") && r.contains("agents never delete")
        ),
        "{c}"
    );
    assert!(
        c["access"]["allowed"]
            .as_str()
            .is_some_and(|a| !a.is_empty()),
        "{c}"
    );
    assert_eq!(c["budget"]["requests"], 10, "{c}");
    assert_eq!(c["budget"]["left"], 9, "one request spent: {c}");
    let pending = c["pending_approvals"].as_array().expect("pending");
    assert_eq!(pending.len(), 1, "{c}");
    assert_eq!(pending[0]["approval_id"], id.as_str());
    assert_eq!(pending[0]["reason"], "a person approves pull requests");
    assert!(
        pending[0]["approval_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&id)),
        "{c}"
    );
    assert!(!body.to_string().contains("sk-limits"));
}
