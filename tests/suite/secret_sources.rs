//! External secret stores (issue 28, part 4): a connection whose key is a reference
//! (`vault://…`, `aws-sm://…`, `gcp-sm://…`, `op://…`) is fetched from the store's own
//! HTTP API when a request needs it, follows a rotation there within its cache TTL, and
//! a failing store is reported as `502 secret_source_failed` naming the source (never
//! its token) once no earlier value may stand in.

use std::time::Duration;

use egret_test_support::client::{Proto, refusal_code};
use egret_test_support::proxy::TestProxy;
use egret_test_support::secret_stores::{
    self, APPROLE_ROLE, APPROLE_SECRET, GCP_TOKEN, OP_TOKEN, SM_KEY_ID, SM_SECRET, SecretStores,
    VAULT_TOKEN,
};
use egret_test_support::upstream::{Offer, TestCa, Upstream};
use http::{Method, StatusCode};
use serde_json::json;

use super::harness::api::{admin, metrics};
use super::harness::wait::until_some;
use super::harness::{Fixture, NAMES, policy_yaml};

struct Stores {
    f: Fixture,
    stores: SecretStores,
    _files: tempfile::TempDir,
}

/// The test policy with `secret_sources` (the stores' CA and tokens in files) and the
/// timing given.
async fn start(sources: &str) -> Stores {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    let stores = SecretStores::start(&ca).await;
    let files = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let sources = sources
        .replace("URL", &stores.url())
        .replace("CA_FILE", &file("stores-ca.pem", &ca.pem))
        .replace("VAULT_TOKEN_FILE", &file("vault-token", VAULT_TOKEN))
        .replace(
            "APPROLE_SECRET_FILE",
            &file("approle-secret", APPROLE_SECRET),
        )
        .replace("GCP_TOKEN_FILE", &file("gcp-token", GCP_TOKEN))
        .replace("OP_TOKEN_FILE", &file("op-token", OP_TOKEN));
    let yaml = policy_yaml()
        .replace(
            "    dead.test.local: 127.0.0.1\n",
            &format!(
                "    dead.test.local: 127.0.0.1\n    {}: 127.0.0.1\n",
                secret_stores::HOST
            ),
        )
        .replacen("connectors:\n", &format!("{sources}connectors:\n"), 1)
        + r#"
  - id: aws-keys
    auth: aws_sigv4
    aws: { region: us-east-1 }
    egress: [sm.test.local]
"#;
    let egret = TestProxy::start(&yaml, &ca.pem).await;
    Stores {
        f: Fixture {
            ca,
            upstream,
            egret,
        },
        stores,
        _files: files,
    }
}

/// What the upstream saw as the Authorization header of the last request.
fn last_authorization(f: &Fixture) -> Option<String> {
    f.upstream
        .seen()
        .last()
        .and_then(|r| r["headers"]["authorization"].as_str().map(str::to_owned))
}

/// Stores `{"ref": …}` for `openai`/`owner` and mints a placeholder, through the API.
async fn connect_by_ref(f: &Fixture, owner: &str, reference: &str) -> String {
    let (status, body) = admin(
        &f.egret,
        Method::PUT,
        &format!("/v1/connections/openai/{owner}/key"),
        Some(json!({ "ref": reference })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, minted) = admin(
        &f.egret,
        Method::POST,
        "/v1/placeholders",
        Some(json!({ "connector": "openai", "owner": owner })),
    )
    .await;
    assert!(status.is_success(), "{minted}");
    minted["placeholder"]
        .as_str()
        .expect("placeholder")
        .to_owned()
}

async fn call(f: &Fixture, placeholder: &str) -> http::Response<bytes::Bytes> {
    let auth = format!("Bearer {placeholder}");
    f.get(
        "api.test.local",
        "/v1/models",
        &[("authorization", &auth)],
        Proto::H1,
    )
    .await
}

const VAULT: &str = r#"
secret_sources:
  vault:
    address: URL
    token: ${file:VAULT_TOKEN_FILE}
    ca_file: CA_FILE
    cache_ttl: 1s
    failure_ttl: 1h
    timeout: 3s
"#;

#[tokio::test]
async fn a_key_in_vault_kv2_is_used_and_a_rotation_there_is_followed_within_the_cache_ttl() {
    let s = start(VAULT).await;
    s.stores
        .set_vault("secret/openai", "api_key", "sk-from-vault-v1");
    let p = connect_by_ref(&s.f, "org", "vault://secret/openai#api_key").await;
    let resp = call(&s.f, &p).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        last_authorization(&s.f).as_deref(),
        Some("Bearer sk-from-vault-v1")
    );
    // Rotated in Vault: egret never writes there; it reads the new version once the
    // cached one is older than cache_ttl (1 s).
    s.stores
        .set_vault("secret/openai", "api_key", "sk-from-vault-v2");
    until_some(
        "the rotated key on the wire",
        Duration::from_secs(10),
        || async {
            let resp = call(&s.f, &p).await;
            (resp.status() == StatusCode::OK
                && last_authorization(&s.f).as_deref() == Some("Bearer sk-from-vault-v2"))
            .then_some(())
        },
    )
    .await;
    // The connection's listing shows the reference, never a value.
    let (_, list) = admin(
        &s.f.egret,
        Method::GET,
        "/v1/connections?connector=openai",
        None,
    )
    .await;
    assert!(!list.to_string().contains("sk-from-vault"), "{list}");
    let text = metrics(s.f.egret.control_addr).await;
    assert!(
        text.contains("egret_secret_source_fetches_total{source=\"vault\",outcome=\"fetched\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn a_failing_vault_is_bridged_by_the_last_good_value_and_otherwise_a_clear_502() {
    let s = start(VAULT).await;
    s.stores.set_vault("secret/openai", "api_key", "sk-known");
    let known = connect_by_ref(&s.f, "org", "vault://secret/openai#api_key").await;
    assert_eq!(call(&s.f, &known).await.status(), StatusCode::OK);
    s.stores.set_failing(true);
    // Past the cache TTL, within the failure TTL: the last good value goes on.
    until_some(
        "a stale value used while Vault fails",
        Duration::from_secs(10),
        || async {
            let resp = call(&s.f, &known).await;
            let text = metrics(s.f.egret.control_addr).await;
            (resp.status() == StatusCode::OK
                && text.contains(
                    "egret_secret_source_fetches_total{source=\"vault\",outcome=\"stale\"}",
                ))
            .then_some(())
        },
    )
    .await;
    // A reference never fetched has nothing to fall back on.
    s.stores
        .set_vault("secret/other", "api_key", "sk-never-seen");
    let unknown = connect_by_ref(&s.f, "user:ann", "vault://secret/other#api_key").await;
    let resp = call(&s.f, &unknown).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(refusal_code(&resp).as_deref(), Some("secret_source_failed"));
    let body = String::from_utf8_lossy(resp.body()).into_owned();
    assert!(body.contains("`vault`"), "{body}");
    assert!(body.contains("503"), "{body}");
    assert!(!body.contains(VAULT_TOKEN), "{body}");
    // Nothing reached the upstream for it.
    assert!(
        s.f.upstream
            .seen()
            .iter()
            .all(|r| r["headers"]["authorization"] != "Bearer sk-never-seen")
    );
    // Back up: the value is fetched again.
    s.stores.set_failing(false);
    assert_eq!(call(&s.f, &unknown).await.status(), StatusCode::OK);
    assert_eq!(
        last_authorization(&s.f).as_deref(),
        Some("Bearer sk-never-seen")
    );
}

#[tokio::test]
async fn a_failure_ttl_that_ended_refuses_instead_of_using_an_old_value() {
    let s = start(&VAULT.replace("failure_ttl: 1h", "failure_ttl: 2s")).await;
    s.stores.set_vault("secret/openai", "api_key", "sk-old");
    let p = connect_by_ref(&s.f, "org", "vault://secret/openai#api_key").await;
    assert_eq!(call(&s.f, &p).await.status(), StatusCode::OK);
    s.stores.set_failing(true);
    let resp = until_some(
        "a refusal once the failure TTL ended",
        Duration::from_secs(15),
        || async {
            let resp = call(&s.f, &p).await;
            (resp.status() == StatusCode::BAD_GATEWAY).then_some(resp)
        },
    )
    .await;
    assert_eq!(refusal_code(&resp).as_deref(), Some("secret_source_failed"));
}

#[tokio::test]
async fn vault_approle_logs_in_and_its_token_is_used() {
    let s = start(
        r#"
secret_sources:
  vault:
    address: URL
    approle: { role_id: THE_ROLE_ID, secret_id: "${file:APPROLE_SECRET_FILE}" }
    ca_file: CA_FILE
"#
        .replace("THE_ROLE_ID", APPROLE_ROLE)
        .as_str(),
    )
    .await;
    s.stores.set_vault("kv/team/openai", "key", "sk-approle");
    let p = connect_by_ref(&s.f, "org", "vault://kv/team/openai#key").await;
    let resp = call(&s.f, &p).await;
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.body());
    assert_eq!(
        last_authorization(&s.f).as_deref(),
        Some("Bearer sk-approle")
    );
}

#[tokio::test]
async fn aws_secrets_manager_gcp_secret_manager_and_1password_connect_each_serve_a_key() {
    let s = start(
        r#"
secret_sources:
  aws_sm: { region: us-east-1, connection: aws-keys, endpoint: URL, ca_file: CA_FILE }
  gcp_sm: { token: "${file:GCP_TOKEN_FILE}", endpoint: URL, ca_file: CA_FILE }
  op: { address: URL, token: "${file:OP_TOKEN_FILE}", ca_file: CA_FILE }
"#,
    )
    .await;
    // Secrets Manager is signed with the keys of the `aws-keys` connection.
    let (status, body) = admin(
        &s.f.egret,
        Method::PUT,
        "/v1/connections/aws-keys/org/key",
        Some(json!({ "values": { "access_key_id": SM_KEY_ID, "secret_access_key": SM_SECRET } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.stores
        .set_aws("prod/openai", r#"{"api_key": "sk-from-aws-sm"}"#);
    s.stores
        .set_gcp("projects/p/secrets/openai/versions/latest", "sk-from-gcp");
    s.stores
        .set_op("Private/OpenAI", "credential", "sk-from-1password");
    for (owner, reference, expected) in [
        ("user:aws", "aws-sm://prod/openai#api_key", "sk-from-aws-sm"),
        (
            "user:gcp",
            "gcp-sm://projects/p/secrets/openai/versions/latest",
            "sk-from-gcp",
        ),
        (
            "user:op",
            "op://Private/OpenAI/credential",
            "sk-from-1password",
        ),
    ] {
        let p = connect_by_ref(&s.f, owner, reference).await;
        let resp = call(&s.f, &p).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{reference}: {:?}",
            resp.body()
        );
        assert_eq!(
            last_authorization(&s.f),
            Some(format!("Bearer {expected}")),
            "{reference}"
        );
    }
    assert!(s.stores.reads() >= 3);
}

#[tokio::test]
async fn a_reference_to_an_unconfigured_source_or_of_a_bad_shape_is_refused_when_stored() {
    let s = start(VAULT).await;
    for (reference, says) in [
        ("op://Private/OpenAI/credential", "secret_sources.op"),
        ("vault://secret/openai", "vault://secret/openai#api_key"),
        ("https://example.com/key", "not a secret reference"),
    ] {
        let (status, body) = admin(
            &s.f.egret,
            Method::PUT,
            "/v1/connections/openai/org/key",
            Some(json!({ "ref": reference })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reference}: {body}");
        assert!(body.to_string().contains(says), "{reference}: {body}");
    }
}
