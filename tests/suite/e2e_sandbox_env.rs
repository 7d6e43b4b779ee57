//! `egret sandbox-env` end to end: its output, and nothing else, configures real
//! clients (curl, Python's urllib) in a clean environment to reach a connector through
//! egret with placeholders.

use std::process::Stdio;

use tokio::process::Command;

use super::harness::binary::{Egret, setup, stdout};

/// Runs `script` under `sh` with only PATH, HOME and the sandbox-env lines set.
async fn sandboxed(env_lines: &str, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{env_lines}\n{script}"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_env_sets_up_curl_and_python_with_placeholders_only() {
    let (dir, _ca, upstream) = setup().await;
    let egret = Egret::start(dir.path(), "serve.log").await;
    let proxy = egret.proxy;
    for (connector, key) in [("openai", "sk-ann-REAL"), ("weather", "w-ann-REAL")] {
        let out = egret
            .cli(
                &["connection", "set-key", connector, "--owner", "user:ann"],
                Some(key),
            )
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bundle = dir.path().join("sandbox/bundle.pem");
    let out = egret
        .cli(
            &[
                "sandbox-env",
                "--owner",
                "user:ann",
                "--ca-bundle",
                &bundle.to_string_lossy(),
            ],
            None,
        )
        .await;
    let env_lines = stdout(&out);
    // Node versions that ignore NODE_USE_ENV_PROXY are named, with what to do.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("Node 20 ignores it") && said.contains("EnvHttpProxyAgent"),
        "{said}"
    );
    assert!(
        env_lines.contains(&format!("export HTTPS_PROXY='http://{proxy}'")),
        "{env_lines}"
    );
    for var in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "PIP_CERT",
    ] {
        assert!(
            env_lines.contains(&format!("export {var}='{}'", bundle.display())),
            "{var}: {env_lines}"
        );
    }
    assert!(env_lines.contains("export NODE_USE_ENV_PROXY='1'"));
    assert!(
        env_lines.contains("export OPENAI_API_KEY='egp_"),
        "{env_lines}"
    );
    assert!(
        env_lines.contains("export WEATHER_TOKEN='egp_"),
        "{env_lines}"
    );
    assert!(
        !env_lines.contains("REAL"),
        "no real key in the sandbox's environment"
    );
    let text = std::fs::read_to_string(&bundle).expect("bundle written");
    assert!(
        text.matches("BEGIN CERTIFICATE").count() > 1,
        "system roots and egret's CA"
    );

    let port = upstream.addr.port();
    sandboxed(
        &env_lines,
        &format!("curl -sf -H \"Authorization: Bearer $OPENAI_API_KEY\" https://api.test.local:{port}/from-curl"),
    )
    .await;
    let seen = upstream.seen();
    let last = seen.last().expect("upstream saw curl");
    assert_eq!(last["path"], "/from-curl");
    assert_eq!(last["headers"]["authorization"], "Bearer sk-ann-REAL");

    sandboxed(
        &env_lines,
        &format!(
            "python3 -c 'import os, urllib.request; urllib.request.urlopen(\"https://weather.test.local:{port}/from-python?appid=\" + os.environ[\"WEATHER_TOKEN\"]).read()'"
        ),
    )
    .await;
    let seen = upstream.seen();
    let last = seen.last().expect("upstream saw python");
    assert_eq!(last["path"], "/from-python");
    assert_eq!(last["query"], "appid=w-ann-REAL");
    egret.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_proxy_auth_sandbox_env_issues_credentials_that_curl_and_python_use() {
    let (dir, _ca, upstream) = setup().await;
    let cfg = dir.path().join("egret.yaml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, text.replace("auth: none", "auth: basic")).expect("write");
    let egret = Egret::start(dir.path(), "serve.log").await;
    let proxy = egret.proxy;
    let out = egret
        .cli(
            &["connection", "set-key", "openai", "--owner", "org"],
            Some("sk-org-REAL"),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = dir.path().join("bundle.pem");
    let env_lines = stdout(
        &egret
            .cli(
                &[
                    "sandbox-env",
                    "--owner",
                    "org",
                    "--sandbox",
                    "sb-1",
                    "--ca-bundle",
                    &bundle.to_string_lossy(),
                ],
                None,
            )
            .await,
    );
    assert!(
        env_lines.contains("export HTTPS_PROXY='http://sb-1:egs_"),
        "{env_lines}"
    );
    let port = upstream.addr.port();
    sandboxed(
        &env_lines,
        &format!("curl -sf -H \"Authorization: Bearer $OPENAI_API_KEY\" https://api.test.local:{port}/curl-auth"),
    )
    .await;
    assert_eq!(
        upstream.seen().last().expect("seen")["headers"]["authorization"],
        "Bearer sk-org-REAL"
    );
    sandboxed(
        &env_lines,
        &format!(
            "python3 -c 'import os, urllib.request; urllib.request.urlopen(urllib.request.Request(\"https://api.test.local:{port}/py-auth\", headers={{\"Authorization\": \"Bearer \" + os.environ[\"OPENAI_API_KEY\"]}})).read()'"
        ),
    )
    .await;
    assert_eq!(upstream.seen().last().expect("seen")["path"], "/py-auth");
    // Without the sandbox's credentials the same placeholder gets nowhere.
    let out = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_connect}",
            "-x",
            &format!("http://{proxy}"),
            &format!("https://api.test.local:{port}/"),
        ])
        .output()
        .await
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "407");
    egret.stop().await;
}

/// Issue 25, item 1: the server runs on `--proxy-listen`, not the policy file's
/// `proxy.listen`: `sandbox-env` hands the sandbox the address the server reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_env_gives_the_proxy_address_the_server_runs_on() {
    let (dir, _ca, _upstream) = setup().await;
    let yaml = dir.path().join("egret.yaml");
    let text = std::fs::read_to_string(&yaml).expect("read");
    std::fs::write(
        &yaml,
        text.replace(
            r#"listen: "127.0.0.1:0", auth"#,
            r#"listen: "127.0.0.1:9", auth"#,
        ),
    )
    .expect("write");
    let egret =
        Egret::start_with(dir.path(), "serve.log", &["--proxy-listen", "127.0.0.1:0"]).await;
    assert_ne!(egret.proxy.port(), 9);
    egret
        .cli(
            &["connection", "set-key", "openai", "--owner", "user:ann"],
            Some("sk-ann-REAL"),
        )
        .await;
    let out = egret
        .cli(&["sandbox-env", "--owner", "user:ann"], None)
        .await;
    let lines = stdout(&out);
    assert!(
        lines.contains(&format!("export HTTPS_PROXY='http://{}'", egret.proxy)),
        "{lines}"
    );
    assert!(!lines.contains("127.0.0.1:9"), "{lines}");

    // An owner with nothing connected is told how to get a connection; a malformed owner
    // is refused before any file is written.
    let out = egret
        .cli(&["sandbox-env", "--owner", "user:nobody"], None)
        .await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("has no connection to use yet"),
        "{said}"
    );
    assert!(
        said.contains("egret connection link --owner user:nobody"),
        "{said}"
    );
    let bundle = dir.path().join("never.pem");
    let out = egret
        .cli(
            &[
                "sandbox-env",
                "--owner",
                "not an owner",
                "--ca-bundle",
                &bundle.to_string_lossy(),
            ],
            None,
        )
        .await;
    assert!(!out.status.success());
    assert!(!bundle.exists(), "nothing written for a refused request");
    assert!(
        dir.path().join("data/egret.pid").exists(),
        "the pid file while it runs"
    );
    egret.stop().await;
    assert!(
        !dir.path().join("data/egret.pid").exists(),
        "the pid file is removed on exit"
    );
}

/// An AWS connection through `sandbox-env` alone: the placeholder key pair, the region
/// and the CA bundle it prints are all the real boto3 needs; the endpoint checks every
/// signature with the real keys, which the sandbox never sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_env_gives_boto3_a_placeholder_key_pair_that_egret_signs_for() {
    use egret_test_support::aws::{AwsEndpoint, BEDROCK_HOST, S3_HOST};
    let (dir, ca, _upstream) = setup().await;
    let (key_id, secret) = (
        "AKIAE2EREALKEY000001",
        "e2e-real-secret-key-0000000000000000000",
    );
    let endpoint = AwsEndpoint::start(&ca, key_id, secret, None).await;
    let port = endpoint.port;
    let yaml = super::harness::binary::config(&format!(
        "  - id: aws\n    template: aws\n    settings: {{ region: us-east-1, services: [s3, bedrock-runtime] }}\n    egress: [\"{S3_HOST}:{port}\", \"{BEDROCK_HOST}:{port}\"]\n"
    ))
    .replace(
        "weather.test.local: 127.0.0.1 }",
        &format!("weather.test.local: 127.0.0.1, {S3_HOST}: 127.0.0.1, {BEDROCK_HOST}: 127.0.0.1 }}"),
    );
    std::fs::write(dir.path().join("egret.yaml"), yaml).expect("write");
    let egret = Egret::start(dir.path(), "serve.log").await;
    let out = egret
        .cli(
            &["connection", "set-key", "aws", "--owner", "user:ann"],
            Some(&format!(
                "access_key_id={key_id}\nsecret_access_key={secret}\n"
            )),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = dir.path().join("sandbox/bundle.pem");
    let out = egret
        .cli(
            &[
                "sandbox-env",
                "--owner",
                "user:ann",
                "--ca-bundle",
                &bundle.to_string_lossy(),
            ],
            None,
        )
        .await;
    let env_lines = stdout(&out);
    for var in [
        "AWS_ACCESS_KEY_ID='AKIA",
        "AWS_SECRET_ACCESS_KEY='",
        "AWS_REGION='us-east-1'",
        "AWS_DEFAULT_REGION='us-east-1'",
        "AWS_CA_BUNDLE='",
    ] {
        assert!(
            env_lines.contains(&format!("export {var}")),
            "{var}: {env_lines}"
        );
    }
    assert!(!env_lines.contains(key_id) && !env_lines.contains(secret));
    let client = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws/client.py");
    let report = sandboxed(
        &env_lines,
        &format!(
            "CALLS=bedrock,presigned AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null python3 '{}' '{}' '{}' 0",
            client.display(),
            endpoint.s3_url(),
            endpoint.bedrock_url()
        ),
    )
    .await;
    let report: serde_json::Value = serde_json::from_str(&report).expect("the client's JSON");
    assert_eq!(
        report["bedrock"]["completion"], "you said: hello",
        "{report}"
    );
    assert_eq!(report["presigned"]["status"], 200, "{report}");
    // What the sandbox got back (not the endpoint's own stats) never names the real key.
    for call in ["bedrock", "presigned"] {
        assert!(!report[call].to_string().contains(key_id), "{report}");
    }
    egret.stop().await;
}
