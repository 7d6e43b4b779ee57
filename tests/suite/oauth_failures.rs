//! Token-endpoint failures against in-process endpoints (fast, no Node): 5xx, a hang,
//! a non-token answer, a refused connection, and a grant without a refresh token. Each
//! gets its documented answer; a still-valid token keeps being used.

use egret_test_support::client::Proto;
use egret_vault::{ConnectionId, Owner, TokenSet, TokenUpdate, unix_now};
use http::StatusCode;
use secrecy::SecretString;

use super::harness::{Fixture, json, policy_yaml};

fn with_oauth(port: u16) -> String {
    let mut yaml = policy_yaml();
    for (id, url, timeout) in [
        (
            "c503",
            format!("https://weather.test.local:{port}/status?code=503"),
            "2s",
        ),
        (
            "cslow",
            format!("https://weather.test.local:{port}/slow?ms=5000"),
            "300ms",
        ),
        ("cjunk", format!("https://weather.test.local:{port}/"), "2s"),
        (
            "cdead",
            "https://weather.test.local:1/token".to_owned(),
            "2s",
        ),
    ] {
        yaml.push_str(&format!(
            "  - id: {id}\n    auth: oauth2\n    oauth: {{ authorize_url: \"https://weather.test.local/a\", token_url: \"{url}\", client_id: x, timeout: {timeout} }}\n    egress: [api.test.local]\n"
        ));
    }
    yaml
}

/// Stores tokens expiring at `expires_at` and mints a placeholder for them.
fn connect(f: &Fixture, connector: &str, expires_at: i64, refresh: Option<&str>) -> String {
    let conn = ConnectionId::default_of(connector, &Owner::parse("user:ann").expect("owner"));
    let tokens = TokenSet {
        identity: None,
        access_token: SecretString::from(format!("{connector}-access")),
        refresh_token: refresh.map(SecretString::from),
        expires_at: Some(expires_at),
        scopes: vec![],
    };
    f.egret
        .vault
        .put_oauth_tokens(&conn, tokens, TokenUpdate::Authorized)
        .expect("tokens");
    let (p, _) = f.egret.vault.mint_placeholder(&conn, None).expect("mint");
    p.expose().to_owned()
}

async fn call(f: &Fixture, p: &str) -> (StatusCode, Option<String>, serde_json::Value) {
    let auth = format!("Bearer {p}");
    let resp = f
        .get(
            "api.test.local",
            "/",
            &[("authorization", &auth)],
            Proto::H1,
        )
        .await;
    let code = egret_test_support::client::refusal_code(&resp);
    (resp.status(), code, json(resp.body()))
}

#[tokio::test]
async fn each_token_endpoint_failure_gets_its_answer() {
    let f = Fixture::new().await;
    f.egret.reload(&with_oauth(f.upstream.addr.port()));
    let expired = unix_now() - 10;
    for (connector, status) in [
        ("c503", StatusCode::BAD_GATEWAY),
        ("cslow", StatusCode::GATEWAY_TIMEOUT),
        ("cjunk", StatusCode::BAD_GATEWAY),
        ("cdead", StatusCode::BAD_GATEWAY),
    ] {
        let p = connect(&f, connector, expired, Some("refresh-1"));
        let (got, code, body) = call(&f, &p).await;
        assert_eq!(got, status, "{connector}: {body}");
        assert_eq!(code.as_deref(), Some("token_refresh_failed"), "{connector}");
        assert_eq!(body["connector"], connector);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("token endpoint"), "{message}");
        assert!(
            !message.contains("refresh-1") && !message.contains("-access"),
            "{message}"
        );
        // The connection is kept: only the vendor can say the grant is gone.
        let owner = Owner::parse("user:ann").expect("owner");
        let info = f
            .egret
            .vault
            .connection(&ConnectionId::default_of(connector, &owner))
            .expect("kept");
        assert_eq!(info.status, egret_vault::ConnectionStatus::Connected);
    }
}

#[tokio::test]
async fn a_valid_token_is_used_while_the_endpoint_fails() {
    let f = Fixture::new().await;
    f.egret.reload(&with_oauth(f.upstream.addr.port()));
    // Inside the 60 s skew, not expired: renewal fails, the current token goes out.
    let p = connect(&f, "c503", unix_now() + 30, Some("refresh-1"));
    for _ in 0..2 {
        let (status, code, _) = call(&f, &p).await;
        assert_eq!(status, StatusCode::OK, "{code:?}");
        assert_eq!(
            f.last_seen()["headers"]["authorization"],
            "Bearer c503-access"
        );
    }
}

#[tokio::test]
async fn an_expired_grant_without_refresh_token_needs_reauth() {
    let f = Fixture::new().await;
    f.egret.reload(&with_oauth(f.upstream.addr.port()));
    let p = connect(&f, "c503", unix_now() + 30, None);
    // Still valid: used as is, no renewal possible or needed yet.
    assert_eq!(call(&f, &p).await.0, StatusCode::OK);
    let p = connect(&f, "cjunk", unix_now() - 1, None);
    let (status, code, body) = call(&f, &p).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code.as_deref(), Some("connection_needs_reauth"));
    let owner = Owner::parse("user:ann").expect("owner");
    let info = f
        .egret
        .vault
        .connection(&ConnectionId::default_of("cjunk", &owner))
        .expect("kept");
    assert_eq!(info.status, egret_vault::ConnectionStatus::NeedsReauth);
}

/// Item 7 of issue 24: a token endpoint that quotes the refresh token and the client
/// secret in its error — mixed encodings, a control character inside, upper-cased — gets
/// neither to the sandbox, the connection's health, the audit log or the events.
#[tokio::test]
async fn a_vendor_that_echoes_secrets_in_its_texts_shows_none_of_them() {
    let f = Fixture::new().await;
    let client_secret = "cs-ECHO.client_secret-0123";
    std::fs::write(f.egret.dir.path().join("cecho-secret"), client_secret).expect("secret file");
    let mut yaml = policy_yaml();
    yaml.push_str(&format!(
        "  - id: cecho\n    auth: oauth2\n    oauth: {{ authorize_url: \"https://weather.test.local/a\", token_url: \"https://weather.test.local:{}/token-echo\", client_id: x, client_secret: \"${{file:cecho-secret}}\", timeout: 2s }}\n    egress: [api.test.local]\n",
        f.upstream.addr.port()
    ));
    f.egret.reload(&yaml);
    let refresh = "rt-ECHO-refresh_token-4567";
    let p = connect(&f, "cecho", unix_now() - 10, Some(refresh));
    let (status, code, body) = call(&f, &p).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(code.as_deref(), Some("token_refresh_failed"));
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("[redacted]"),
        "the vendor's words are kept: {message}"
    );

    let (_, connections) = super::harness::api::admin(
        &f.egret,
        http::Method::GET,
        "/v1/connections?connector=cecho",
        None,
    )
    .await;
    let (_, audit) = super::harness::api::admin(
        &f.egret,
        http::Method::GET,
        "/v1/audit?connector=cecho",
        None,
    )
    .await;
    let failing = connections.to_string();
    assert!(failing.contains("[redacted]"), "{failing}");
    for (what, text) in [
        ("answer", body.to_string()),
        ("connections", failing),
        ("audit", audit.to_string()),
    ] {
        for secret in [refresh, client_secret] {
            for leaked in [
                secret.to_owned(),
                egret_test_support::upstream::mixed_forms(secret),
                secret.to_uppercase(),
                secret[..secret.len() / 2].to_owned(),
            ] {
                assert!(!text.contains(&leaked), "{what}: {leaked} in {text}");
            }
        }
        assert!(!text.contains('\u{7}'), "{what}: {text}");
    }
}
