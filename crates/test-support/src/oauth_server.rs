//! The real OAuth 2.0 authorization server of the tests: `tests/oauth-server` (the
//! `oidc-provider` npm package) in a child process, over HTTPS with a certificate from
//! a [`TestCa`]. Its npm packages are installed on first use with `npm ci` from the
//! repository's lock file.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use http::Method;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::browser::Browser;
use crate::upstream::TestCa;

/// Names the server answers to; egret's `upstream.resolve` maps them to 127.0.0.1.
pub const AUTH_HOST: &str = "auth.test.local";
pub const API_HOST: &str = "api.test.local";

pub struct OAuthServer {
    pub port: u16,
    ca_pem: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

fn server_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oauth-server")
}

/// `npm ci` once per test process, when `node_modules` is missing or stale (the OAuth
/// server's packages, and axe-core for the browser tests).
pub fn ensure_installed() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return;
    }
    let dir = server_dir();
    let marker = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let fresh = match (std::fs::metadata(&marker), std::fs::metadata(&lock)) {
        (Ok(m), Ok(l)) => m.modified().ok() >= l.modified().ok(),
        _ => false,
    };
    if !fresh {
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .expect("npm must be installed to run the OAuth tests (Node.js >= 20.19)");
        assert!(
            out.status.success(),
            "npm ci in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    *done = true;
}

/// How long the server may take to print its port before it is started again.
const START_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

impl OAuthServer {
    /// Starts the server with `clients` (oidc-provider client metadata) and access
    /// tokens living `access_ttl` seconds.
    pub async fn start(ca: &TestCa, clients: &Value, access_ttl: u64) -> Self {
        tokio::task::spawn_blocking(ensure_installed)
            .await
            .expect("npm ci");
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = ca.issue_pem(&[AUTH_HOST, API_HOST]);
        std::fs::write(dir.path().join("cert.pem"), cert).expect("cert");
        std::fs::write(dir.path().join("key.pem"), key).expect("key");
        // It starts in a third of a second; on a loaded 2-core machine it was once seen
        // not to print its port within 30 s. A start that hangs is ended and made again,
        // and a slow one says how slow, for whoever looks into it.
        let mut tries = 0;
        let (child, line, mut lines) = loop {
            tries += 1;
            let started = std::time::Instant::now();
            let mut child = Command::new("node")
                .arg(server_dir().join("server.mjs"))
                .env("CERT", dir.path().join("cert.pem"))
                .env("KEY", dir.path().join("key.pem"))
                .env("CLIENTS", clients.to_string())
                .env("ACCESS_TTL", access_ttl.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .expect("node must be installed to run the OAuth tests");
            let stdout = child.stdout.take().expect("stdout");
            let mut lines = BufReader::new(stdout).lines();
            let first = tokio::time::timeout(START_WITHIN, lines.next_line()).await;
            if started.elapsed() > std::time::Duration::from_secs(5) {
                eprintln!(
                    "the OAuth server took {:?} to start (try {tries})",
                    started.elapsed()
                );
            }
            match first {
                Ok(line) => {
                    let line = line.expect("read").expect("the OAuth server exited");
                    break (child, line, lines);
                }
                Err(_) if tries < 2 => {
                    let _ = child.kill().await;
                }
                Err(_) => panic!("the OAuth server did not start within {START_WITHIN:?}, twice"),
            }
        };
        let port = serde_json::from_str::<Value>(&line).expect("port line")["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .expect("port");
        // Keep reading: a closed pipe would kill the server at its next write.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("oauth-server: {line}");
            }
        });
        Self {
            port,
            ca_pem: ca.pem.clone(),
            _child: child,
            _dir: dir,
        }
    }

    pub fn issuer(&self) -> String {
        format!("https://{AUTH_HOST}:{}", self.port)
    }

    /// `host:port` of the protected API, for CONNECT.
    pub fn api_authority(&self) -> String {
        format!("{API_HOST}:{}", self.port)
    }

    async fn call(&self, method: Method, path: &str) -> Value {
        let url = format!("{}{path}", self.issuer());
        let page = Browser::new(&self.ca_pem)
            .request(method, &url, None)
            .await
            .expect("test route");
        serde_json::from_str(&page.body).expect("json")
    }

    /// Grants issued so far, by grant type, and revocations.
    pub async fn stats(&self) -> Value {
        self.call(Method::GET, "/test/stats").await
    }

    /// `ok`, `down` (503 from the token endpoint) or `slow` (30 s before answering).
    pub async fn token_mode(&self, mode: &str) {
        self.call(Method::POST, &format!("/test/token-mode?mode={mode}"))
            .await;
    }

    /// Destroys every grant: refresh tokens then get `invalid_grant`.
    pub async fn revoke_grants(&self) {
        self.call(Method::POST, "/test/revoke-grants").await;
    }

    /// From now on consent grants every scope asked for but `scope` (scope drift).
    pub async fn withhold_scope(&self, scope: &str) {
        self.call(Method::POST, &format!("/test/withhold-scope?scope={scope}"))
            .await;
    }

    /// Destroys every access token: the API then answers 401 to them.
    pub async fn revoke_access_tokens(&self) {
        self.call(Method::POST, "/test/revoke-access-tokens").await;
    }
}
