//! Credentials of several values and HMAC signing (issue 28, parts 2 and 3): each input
//! has its own placeholder, swapped only into its own field; Basic auth from a user and
//! a password; requests signed by egret with an HMAC recipe (Binance-style query
//! signatures, GitHub-style webhook signatures), the secret never on the wire.

use egret_test_support::client::{self, Proto, full, refusal_code};
use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use super::harness::Fixture;
use super::harness::api::admin;

const POLICY: &str = r#"
version: 1
upstream:
  resolve:
    api.test.local: 127.0.0.1
    weather.test.local: 127.0.0.1
    other.test.local: 127.0.0.1
    off.test.local: 127.0.0.1
connectors:
  - id: datadog
    auth: api_key
    egress: [other.test.local]
    inputs:
      - { name: api_key, inject: { header: DD-API-KEY } }
      - { name: app_key, inject: { header: DD-APPLICATION-KEY } }
  - id: twilio
    auth: api_key
    egress: [api.test.local]
    inputs:
      - { name: account_sid, inject: { basic: username } }
      - { name: auth_token, inject: { basic: password } }
  - id: binance
    template: binance
    egress: [weather.test.local]
  - id: hooks
    template: github-webhook
    egress: [off.test.local]
"#;

async fn fixture() -> Fixture {
    Fixture::with_policy(POLICY).await
}

/// Stores `values` for `connector` (org) through the API, mints, and returns the
/// placeholders by input.
async fn connect(f: &Fixture, connector: &str, values: Value) -> Value {
    let (status, body) = admin(
        &f.egret,
        Method::PUT,
        &format!("/v1/connections/{connector}/org/key"),
        Some(json!({ "values": values })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, minted) = admin(
        &f.egret,
        Method::POST,
        "/v1/placeholders",
        Some(json!({ "connector": connector, "owner": "org" })),
    )
    .await;
    assert!(status.is_success(), "{minted}");
    minted["placeholders"].clone()
}

fn last(f: &Fixture) -> Value {
    f.upstream
        .seen()
        .last()
        .cloned()
        .expect("a request reached the upstream")
}

async fn send(
    f: &Fixture,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Response<bytes::Bytes> {
    let at = f.at(host);
    let mut s = f.session(host, Proto::H1).await;
    let req = client::request(method, &at, path, headers, full(body.to_owned()), Proto::H1)
        .expect("request");
    s.fetch(req).await.expect("answer")
}

#[tokio::test]
async fn a_two_input_connector_injects_each_value_only_into_its_own_header() {
    let f = fixture().await;
    let p = connect(
        &f,
        "datadog",
        json!({ "api_key": "dd-api-REAL", "app_key": "dd-app-REAL" }),
    )
    .await;
    let (api, app) = (
        p["api_key"].as_str().expect("api"),
        p["app_key"].as_str().expect("app"),
    );
    assert_ne!(api, app);
    let resp = send(
        &f,
        "other.test.local",
        "GET",
        "/api/v1/validate",
        &[("dd-api-key", api), ("dd-application-key", app)],
        "",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = last(&f);
    assert_eq!(seen["headers"]["dd-api-key"], "dd-api-REAL");
    assert_eq!(seen["headers"]["dd-application-key"], "dd-app-REAL");
    assert!(
        !String::from_utf8_lossy(resp.body()).contains("REAL"),
        "answers are scanned for both values"
    );
    // Each placeholder only in its own field: swapped round, refused unsent.
    let before = f.upstream.seen().len();
    let resp = send(
        &f,
        "other.test.local",
        "GET",
        "/api/v1/validate",
        &[("dd-api-key", app), ("dd-application-key", api)],
        "",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refusal_code(&resp).as_deref(),
        Some("placeholder_misplaced")
    );
    assert_eq!(f.upstream.seen().len(), before);
    // Nor as a bearer token.
    let bearer = format!("Bearer {api}");
    let resp = send(
        &f,
        "other.test.local",
        "GET",
        "/",
        &[("authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(
        refusal_code(&resp).as_deref(),
        Some("placeholder_misplaced")
    );
}

#[tokio::test]
async fn keys_of_a_two_input_connector_must_name_every_input() {
    let f = fixture().await;
    for (body, says) in [
        (json!({ "key": "one" }), "api_key, app_key"),
        (json!({ "values": { "api_key": "a" } }), "needs `app_key`"),
        (
            json!({ "values": { "api_key": "a", "app_key": "b", "extra": "c" } }),
            "no input `extra`",
        ),
        (
            json!({ "values": { "api_key": "a", "app_key": "" } }),
            "empty",
        ),
    ] {
        let (status, answer) = admin(
            &f.egret,
            Method::PUT,
            "/v1/connections/datadog/org/key",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer.to_string().contains(says), "{body}: {answer}");
    }
}

#[tokio::test]
async fn basic_auth_is_made_from_a_user_and_a_password_input() {
    use base64::Engine;
    let f = fixture().await;
    let p = connect(
        &f,
        "twilio",
        json!({ "account_sid": "AC-REAL", "auth_token": "token-REAL" }),
    )
    .await;
    let (user, pass) = (
        p["account_sid"].as_str().expect("user"),
        p["auth_token"].as_str().expect("pass"),
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    let resp = send(
        &f,
        "api.test.local",
        "GET",
        "/2010-04-01/Accounts",
        &[("authorization", &basic)],
        "",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AC-REAL:token-REAL")
    );
    assert_eq!(last(&f)["headers"]["authorization"], expected.as_str());
    // The password's placeholder in the user's place is refused.
    let swapped = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{pass}:{user}"))
    );
    let resp = send(
        &f,
        "api.test.local",
        "GET",
        "/",
        &[("authorization", &swapped)],
        "",
    )
    .await;
    assert_eq!(
        refusal_code(&resp).as_deref(),
        Some("placeholder_misplaced")
    );
}

#[tokio::test]
async fn a_binance_request_is_signed_by_egret_and_carries_the_real_key() {
    let f = fixture().await;
    let secret = "binance-secret-REAL-0123456789";
    let p = connect(
        &f,
        "binance",
        json!({ "api_key": "binance-key-REAL", "secret_key": secret }),
    )
    .await;
    let api = p["api_key"].as_str().expect("api");
    // The SDK signed with the placeholder secret; egret drops that signature and its
    // timestamp and signs anew.
    let resp = send(
        &f,
        "weather.test.local",
        "POST",
        "/api/v3/order?symbol=LTCBTC&side=BUY&type=LIMIT&quantity=1&price=0.1&timestamp=1&signature=deadbeef",
        &[("x-mbx-apikey", api), ("content-type", "application/x-www-form-urlencoded")],
        "recvWindow=5000",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = last(&f);
    assert_eq!(seen["headers"]["x-mbx-apikey"], "binance-key-REAL");
    let query = seen["query"].as_str().expect("query");
    let (signed, signature) = query.rsplit_once("&signature=").expect("a signature");
    assert!(
        signed.starts_with("symbol=LTCBTC&side=BUY&type=LIMIT&quantity=1&price=0.1&timestamp="),
        "{query}"
    );
    assert_ne!(
        signed,
        "symbol=LTCBTC&side=BUY&type=LIMIT&quantity=1&price=0.1&timestamp=1"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{signed}recvWindow=5000").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(signature, expected);
    assert!(
        !seen.to_string().contains(
            &p["secret_key"]
                .as_str()
                .expect("secret placeholder")
                .to_owned()
        )
    );
    assert!(!query.contains(secret));
}

#[tokio::test]
async fn a_webhook_style_request_is_signed_over_its_body() {
    let f = fixture().await;
    let p = connect(
        &f,
        "hooks",
        json!({ "secret": "It's a Secret to Everybody" }),
    )
    .await;
    let secret_placeholder = p["secret"].as_str().expect("placeholder");
    // The placeholder stands where the signature goes: it names the connection.
    let header = format!("sha256={secret_placeholder}");
    let resp = send(
        &f,
        "off.test.local",
        "POST",
        "/hooks",
        &[("x-hub-signature-256", &header)],
        "Hello, World!",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // GitHub's documented signature of this payload under this secret.
    assert_eq!(
        last(&f)["headers"]["x-hub-signature-256"],
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}
