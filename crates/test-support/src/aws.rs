//! The test AWS endpoint (`tests/aws/server.py`): S3 and a Bedrock-shaped API on one
//! HTTPS port, checking every SigV4 signature with botocore's own signer and the REAL
//! keys; and the real boto3 client (`tests/aws/client.py`) a sandbox would run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::upstream::TestCa;

/// The hosts the endpoint answers for.
pub const S3_HOST: &str = "s3.us-east-1.amazonaws.com";
pub const BEDROCK_HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
/// STS (AssumeRole), on the same port.
pub const STS_HOST: &str = "sts.us-east-1.amazonaws.com";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/aws")
}

/// boto3 from PyPI, installed once per test process when Python lacks it.
pub fn ensure_boto3() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return;
    }
    let have = std::process::Command::new("python3")
        .args(["-c", "import boto3, botocore"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        let out = std::process::Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(dir().join("requirements.txt"))
            .output()
            .expect("python3 must be installed to run the AWS tests");
        assert!(
            out.status.success(),
            "pip install boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    *done = true;
}

/// The running endpoint; stopped when dropped.
pub struct AwsEndpoint {
    pub port: u16,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl AwsEndpoint {
    /// Starts it verifying with these (real) keys.
    pub async fn start(ca: &TestCa, key_id: &str, secret: &str, token: Option<&str>) -> Self {
        tokio::task::spawn_blocking(ensure_boto3)
            .await
            .expect("boto3");
        let tmp = tempfile::tempdir().expect("tempdir");
        let (cert, key) = ca.issue_pem(&[S3_HOST, BEDROCK_HOST, STS_HOST]);
        std::fs::write(tmp.path().join("cert.pem"), cert).expect("cert");
        std::fs::write(tmp.path().join("key.pem"), key).expect("key");
        let mut cmd = Command::new("python3");
        cmd.arg(dir().join("server.py"))
            .arg(tmp.path().join("cert.pem"))
            .arg(tmp.path().join("key.pem"))
            .arg(key_id)
            .arg(secret);
        if let Some(t) = token {
            cmd.arg(t);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 must be installed to run the AWS tests");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the AWS endpoint starts within 60 s")
            .expect("read")
            .expect("the AWS endpoint exited");
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .expect("PORT line");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            port,
            _child: child,
            _dir: tmp,
        }
    }

    pub fn s3_url(&self) -> String {
        format!("https://{S3_HOST}:{}", self.port)
    }

    pub fn bedrock_url(&self) -> String {
        format!("https://{BEDROCK_HOST}:{}", self.port)
    }
}

/// Runs the boto3 client with `env` (what sandbox-env gave), `calls` (a comma list of
/// put, get, presigned, bedrock, wrong_secret) and an object of `size` bytes; its JSON
/// report. Bounded to three minutes.
pub async fn run_client(
    endpoint: &AwsEndpoint,
    env: &[(String, String)],
    calls: &str,
    size: usize,
) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(dir().join("client.py"))
        .arg(endpoint.s3_url())
        .arg(endpoint.bedrock_url())
        .arg(size.to_string())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("CALLS", calls)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("the boto3 client ends within three minutes")
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "client.py printed no JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
