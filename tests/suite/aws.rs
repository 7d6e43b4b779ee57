//! AWS SigV4 (issue 28, part 1): the real boto3 in the "sandbox" holds only the
//! placeholder key pair egret minted; egret checks each signature was made with it and
//! signs the request again with the connection's real keys; the test endpoint verifies
//! every signature with botocore's signer and the real keys. S3 put (20 MiB, streamed),
//! get, a presigned URL, a Bedrock-shaped JSON call; a request signed with anything else
//! is refused before it leaves.

use egret_test_support::aws::{AwsEndpoint, BEDROCK_HOST, S3_HOST, STS_HOST, run_client};
use egret_test_support::proxy::TestProxy;
use egret_test_support::upstream::TestCa;
use egret_vault::{ConnectionId, KeyValue, Owner};
use http::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::harness::api::admin;

const REAL_KEY_ID: &str = "AKIAREALKEY000000001";
const REAL_SECRET: &str = "real/secret+key0000000000000000000000000";

fn policy(port: u16) -> String {
    policy_with(port, "{ region: us-east-1 }")
}

fn policy_with(port: u16, aws: &str) -> String {
    format!(
        r#"
version: 1
upstream:
  resolve:
    {S3_HOST}: 127.0.0.1
    {BEDROCK_HOST}: 127.0.0.1
    {STS_HOST}: 127.0.0.1
connectors:
  - id: aws
    auth: aws_sigv4
    aws: {aws}
    egress: ["{S3_HOST}:{port}", "{BEDROCK_HOST}:{port}"]
"#
    )
}

struct Setup {
    /// Kept running for the test's length.
    _egret: TestProxy,
    endpoint: AwsEndpoint,
    env: Vec<(String, String)>,
    _ca_file: tempfile::NamedTempFile,
}

/// egret with an AWS connector, the endpoint knowing the real keys, the connection's
/// keys stored, and the environment `sandbox-env` would give (placeholders only).
async fn setup(token: Option<&str>) -> Setup {
    setup_with(token, None).await
}

/// As [`setup`]; `assume_role` (a role ARN) makes egret sign with the role's keys.
async fn setup_with(token: Option<&str>, assume_role: Option<&str>) -> Setup {
    let ca = TestCa::new();
    let endpoint = AwsEndpoint::start(&ca, REAL_KEY_ID, REAL_SECRET, token).await;
    let yaml = match assume_role {
        None => policy(endpoint.port),
        Some(arn) => policy_with(
            endpoint.port,
            &format!(
                "{{ region: us-east-1, assume_role: {{ role_arn: \"{arn}\", external_id: ext-42, sts_url: \"https://{STS_HOST}:{}\" }} }}",
                endpoint.port
            ),
        ),
    };
    let egret = TestProxy::start(&yaml, &ca.pem).await;
    let conn = ConnectionId::default_of("aws", &Owner::parse("org").expect("owner"));
    let mut values = vec![
        (
            "access_key_id".to_owned(),
            KeyValue::Value(SecretString::from(REAL_KEY_ID)),
        ),
        (
            "secret_access_key".to_owned(),
            KeyValue::Value(SecretString::from(REAL_SECRET)),
        ),
    ];
    if let Some(t) = token {
        values.push((
            "session_token".to_owned(),
            KeyValue::Value(SecretString::from(t)),
        ));
    }
    egret.vault.put_key(&conn, values).expect("keys");
    let (status, minted) = admin(
        &egret,
        Method::POST,
        "/v1/placeholders",
        Some(json!({ "connector": "aws", "owner": "org" })),
    )
    .await;
    assert!(status.is_success(), "{minted}");
    let key_id = minted["placeholders"]["access_key_id"]
        .as_str()
        .expect("key id placeholder")
        .to_owned();
    let secret = minted["placeholders"]["secret_access_key"]
        .as_str()
        .expect("secret placeholder")
        .to_owned();
    assert_eq!(minted["placeholder"], key_id.as_str());
    assert!(
        key_id.starts_with("AKIA") && key_id.len() == 20,
        "an AKIA-shaped key id: {key_id}"
    );
    assert_eq!(secret.len(), 40);
    let ca_file = tempfile::NamedTempFile::new().expect("ca file");
    std::fs::write(ca_file.path(), &egret.ca_pem).expect("write ca");
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), key_id),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), secret),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION".to_owned(), "us-east-1".to_owned()),
        (
            "HTTPS_PROXY".to_owned(),
            format!("http://{}", egret.proxy_addr),
        ),
        (
            "AWS_CA_BUNDLE".to_owned(),
            ca_file.path().display().to_string(),
        ),
    ];
    Setup {
        _egret: egret,
        endpoint,
        env,
        _ca_file: ca_file,
    }
}

/// What the sandbox saw (the client's report, not the endpoint's own stats) holds
/// neither real key.
fn no_real_key(report: &Value) {
    let mut seen = report.clone();
    if let Some(o) = seen.as_object_mut() {
        o.remove("stats");
    }
    let text = seen.to_string();
    assert!(
        !text.contains(REAL_KEY_ID),
        "the real key id reached the sandbox: {text}"
    );
    assert!(
        !text.contains(REAL_SECRET),
        "the real secret reached the sandbox"
    );
}

#[tokio::test]
async fn boto3_with_placeholder_keys_puts_gets_presigns_and_invokes_through_egret() {
    let s = setup(None).await;
    let size = 20 * 1024 * 1024;
    let report = run_client(&s.endpoint, &s.env, "put,get,presigned,bedrock", size).await;
    assert_eq!(report["put"]["ok"], true, "{report}");
    assert_eq!(report["get"]["length"], size, "{report}");
    assert_eq!(
        report["get"]["sha256"], report["get"]["expected"],
        "{report}"
    );
    assert_eq!(report["presigned"]["status"], 200, "{report}");
    assert_eq!(report["presigned"]["body"], "presigned hello", "{report}");
    // The URL the sandbox made names the placeholder; egret signed it again.
    assert!(
        report["presigned"]["url_key_id"]
            .as_str()
            .is_some_and(|k| k.starts_with("AKIA") && k != REAL_KEY_ID),
        "{report}"
    );
    assert_eq!(
        report["bedrock"]["completion"], "you said: hello",
        "{report}"
    );
    // Every request the endpoint saw verified with the REAL keys (none refused), and the
    // 20 MiB upload went as it came: a payload mode egret streams, not a body it held.
    let seen = report["stats"]["requests"].as_array().expect("requests");
    assert!(seen.iter().all(|r| r.get("refused").is_none()), "{report}");
    let put = seen
        .iter()
        .find(|r| r["method"] == "PUT" && r["path"] == "/bucket/big.bin")
        .expect("the upload reached the endpoint");
    assert!(
        put["bytes"].as_u64().expect("bytes") >= size as u64,
        "{put}"
    );
    eprintln!(
        "boto3's upload: x-amz-content-sha256 {}, content-encoding {}",
        put["mode"], put["encoding"]
    );
    no_real_key(&report);
}

#[tokio::test]
async fn a_request_signed_with_another_secret_is_refused_before_it_leaves() {
    let s = setup(None).await;
    let report = run_client(&s.endpoint, &s.env, "wrong_secret", 0).await;
    let err = &report["wrong_secret"];
    assert_eq!(err["error"], "ClientError", "{report}");
    assert!(
        err["message"].as_str().is_some_and(|m| m.contains("403")),
        "{report}"
    );
    // Refused by egret, not by the endpoint: it never saw the request.
    assert!(
        report["stats"]["requests"]
            .as_array()
            .is_some_and(|r| r.is_empty()),
        "{report}"
    );
    no_real_key(&report);
}

#[tokio::test]
async fn a_session_token_is_added_and_signed_by_egret() {
    let s = setup(Some("real-session-token-xyz")).await;
    let report = run_client(&s.endpoint, &s.env, "bedrock,presigned", 0).await;
    assert_eq!(
        report["bedrock"]["completion"], "you said: hello",
        "{report}"
    );
    assert_eq!(report["presigned"]["status"], 200, "{report}");
    assert!(!report.to_string().contains("real-session-token-xyz"));
}

/// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (the Java and Go SDKs' uploads): each chunk
/// signed with the placeholder chain arrives signed with the real chain, which the
/// endpoint checks chunk by chunk; the body's length is unchanged.
#[tokio::test]
async fn signed_chunks_are_resigned_one_by_one() {
    let s = setup(None).await;
    let report = run_client(&s.endpoint, &s.env, "chunked", 0).await;
    assert_eq!(report["chunked"]["status"], 200, "{report}");
    assert_eq!(report["chunked"]["same"], true, "{report}");
    let seen = report["stats"]["requests"].as_array().expect("requests");
    let put = seen
        .iter()
        .find(|r| r["path"] == "/bucket/chunked.bin" && r["method"] == "PUT")
        .expect("the upload reached the endpoint");
    assert_eq!(
        put["mode"], "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "{report}"
    );
    assert!(seen.iter().all(|r| r.get("refused").is_none()), "{report}");
    no_real_key(&report);
}

/// The `-TRAILER` form: chunks re-signed, then the trailing checksum passed on with its
/// signature made again with the real chain (the endpoint checks both).
#[tokio::test]
async fn a_signed_trailer_is_resigned_after_the_last_chunk() {
    let s = setup(None).await;
    let report = run_client(&s.endpoint, &s.env, "chunked_trailer", 0).await;
    assert_eq!(report["chunked_trailer"]["status"], 200, "{report}");
    assert_eq!(report["chunked_trailer"]["same"], true, "{report}");
    let seen = report["stats"]["requests"].as_array().expect("requests");
    let put = seen
        .iter()
        .find(|r| r["path"] == "/bucket/chunked-trailer.bin" && r["method"] == "PUT")
        .expect("the upload reached the endpoint");
    assert_eq!(
        put["mode"], "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "{report}"
    );
    assert_eq!(
        put["trailers"],
        serde_json::json!(["x-amz-checksum-crc32", "x-amz-trailer-signature"]),
        "{report}"
    );
    assert!(seen.iter().all(|r| r.get("refused").is_none()), "{report}");
}

/// `aws.assume_role`: egret takes the role's temporary keys from STS with the stored
/// keys (the endpoint's STS checks that signature with botocore too), signs with them
/// (and their session token), and asks STS once however many requests follow.
#[tokio::test]
async fn with_assume_role_egret_signs_with_the_roles_temporary_keys_taken_once() {
    let s = setup_with(None, Some("arn:aws:iam::123456789012:role/agent")).await;
    let report = run_client(&s.endpoint, &s.env, "bedrock,presigned", 0).await;
    assert_eq!(
        report["bedrock"]["completion"], "you said: hello",
        "{report}"
    );
    assert_eq!(report["presigned"]["status"], 200, "{report}");
    let seen = report["stats"]["requests"].as_array().expect("requests");
    assert!(seen.iter().all(|r| r.get("refused").is_none()), "{report}");
    let assumed: Vec<&Value> = seen.iter().filter(|r| r.get("assumed").is_some()).collect();
    assert_eq!(assumed.len(), 1, "STS asked once: {report}");
    assert_eq!(
        assumed[0]["assumed"],
        "arn:aws:iam::123456789012:role/agent"
    );
    assert_eq!(assumed[0]["external_id"], "ext-42");
    assert_eq!(
        assumed[0]["key_id"], REAL_KEY_ID,
        "AssumeRole signed with the stored keys"
    );
    let invoke = seen
        .iter()
        .find(|r| r["path"] == "/model/x/invoke")
        .expect("the call reached the endpoint");
    assert!(
        invoke["key_id"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA")),
        "signed with the role's temporary keys: {report}"
    );
    no_real_key(&report);
}
