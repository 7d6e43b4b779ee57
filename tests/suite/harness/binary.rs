//! The real `egret` binary as a user runs it: `serve` in a folder of its own, driven by
//! its own CLI and by `curl -x`. It listens on ports the system picks (`:0` in its
//! config) and says which on its ready line; the harness reads them from there, so no
//! test ever guesses a free port another test could take first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use egret_test_support::upstream::{Offer, TestCa, Upstream};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::NAMES;

pub const EGRET: &str = env!("CARGO_BIN_EXE_egret");
pub const KEY: &str = "sk-e2e-REAL-KEY-never-logged-7f3a";

/// A policy for the binary with `connectors`, listening on ports the system picks.
pub fn config(connectors: &str) -> String {
    format!(
        r#"version: 1
proxy: {{ listen: "127.0.0.1:0", auth: none }}
control: {{ listen: "127.0.0.1:0", admin_token: "${{env:EGRET_E2E_TOKEN_UNSET}}" }}
ca: {{ dir: certs }}
vault: {{ path: data/egret.redb, master_key: "${{file:data/master.key}}" }}
upstream:
  extra_ca: [upstream-ca.pem]
  resolve: {{ api.test.local: 127.0.0.1, other.test.local: 127.0.0.1, weather.test.local: 127.0.0.1 }}
network: {{ allow: [], deny_private_ranges: true }}
connectors:
{connectors}"#
    )
}

pub const OPENAI: &str = "  - { id: openai, auth: api_key, egress: [api.test.local] }\n  - { id: weather, auth: api_key, egress: [weather.test.local], inject: { query: [appid] } }\n";

/// A folder with `egret.yaml` (the `openai` and `weather` connectors), the test CA
/// egret trusts upstream, and an HTTPS upstream serving the test names.
pub async fn setup() -> (tempfile::TempDir, TestCa, Upstream) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    std::fs::write(dir.path().join("upstream-ca.pem"), &ca.pem).expect("write");
    std::fs::write(dir.path().join("egret.yaml"), config(OPENAI)).expect("write");
    (dir, ca, upstream)
}

/// One running `egret serve`.
pub struct Egret {
    pub child: Child,
    dir: PathBuf,
    config: PathBuf,
    /// Where it listens, as its ready line says.
    pub proxy: SocketAddr,
    pub control: SocketAddr,
    log: PathBuf,
}

impl Egret {
    /// `egret serve --config DIR/egret.yaml`, its log in `DIR/log_name`; returns once it
    /// is ready.
    pub async fn start(dir: &Path, log_name: &str) -> Self {
        Self::start_with(dir, log_name, &[]).await
    }

    /// `start` with more `serve` arguments.
    pub async fn start_with(dir: &Path, log_name: &str, extra: &[&str]) -> Self {
        let config = dir.join("egret.yaml");
        let log = dir.join(log_name);
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(EGRET)
            .args(["serve", "--config"])
            .arg(&config)
            .args(extra)
            .env_remove("EGRET_ADMIN_TOKEN")
            .env_remove("EGRET_SERVER")
            .env("EGRET_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn egret");
        let mut child = child;
        let (proxy, control) = wait_ready(&mut child, &log).await;
        Self {
            child,
            dir: dir.to_owned(),
            config,
            proxy,
            control,
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stores `key` for `connector`/`owner` and mints a placeholder for it, through
    /// the CLI (the key on stdin); returns the placeholder.
    pub async fn key_and_placeholder(&self, connector: &str, owner: &str, key: &str) -> String {
        let set = ["connection", "set-key", connector, "--owner", owner];
        stdout(&self.cli(&set, Some(key)).await);
        let mint = ["placeholder", "mint", connector, "--owner", owner];
        stdout(&self.cli(&mint, None).await)
    }

    /// `egret sandbox-env --owner OWNER --ca-bundle BUNDLE`: the export lines it prints.
    pub async fn sandbox_env(&self, owner: &str, bundle: &Path) -> String {
        let bundle = bundle.to_string_lossy();
        let args = ["sandbox-env", "--owner", owner, "--ca-bundle", &bundle];
        stdout(&self.cli(&args, None).await)
    }

    /// egret's CA, as `ca export` prints it, written where `curl` looks for it.
    pub async fn export_ca(&self) -> String {
        let pem = stdout(&self.cli(&["ca", "export"], None).await);
        std::fs::write(self.dir.join("egret-ca.pem"), format!("{pem}\n")).expect("write");
        pem
    }

    /// Stores the test key for `openai`/`org`, mints a placeholder, writes the CA where
    /// `curl` looks for it, and returns the header a sandbox would send.
    pub async fn openai_placeholder_header(&self) -> String {
        let p = self.key_and_placeholder("openai", "org", KEY).await;
        self.export_ca().await;
        format!("Authorization: Bearer {p}")
    }

    /// Runs an `egret` client command against this server, with optional stdin.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(EGRET)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("EGRET_ADMIN_TOKEN")
            // The config says `:0`; the server is where its ready line said.
            .env("EGRET_SERVER", format!("http://{}", self.control))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cli");
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .await
            .expect("write stdin");
        drop(input);
        tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("cli bounded")
            .expect("cli ran")
    }

    /// SIGTERM, and the log once it has exited 0 (within the drain bound).
    pub async fn stop(mut self) -> String {
        let pid = self.child.id().expect("pid").to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill");
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("stops within the drain bound")
            .expect("wait");
        assert!(status.success(), "egret exited with {status}");
        self.log_text()
    }

    /// `curl -x` through this egret, not yet run.
    fn curl_command(&self, extra: &[&str], url: &str) -> Command {
        let mut curl = Command::new("curl");
        curl.args([
            "-s",
            "--max-time",
            "20",
            "-x",
            &format!("http://{}", self.proxy),
            "--cacert",
        ])
        .arg(self.dir.join("egret-ca.pem"))
        .args(extra)
        .arg(url)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("CURL_CA_BUNDLE");
        curl
    }

    /// `curl -x` through this egret; returns (exit code, stdout).
    pub async fn curl(&self, extra: &[&str], url: &str) -> (i32, String) {
        let out = self
            .curl_command(extra, url)
            .output()
            .await
            .expect("curl runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Sends a request through this egret and SIGKILLs egret `after` that, while it is
    /// still answering (a renewal the vendor is slow to answer, say); the request is
    /// abandoned.
    pub async fn kill_during(self, extra: &[&str], url: &str, after: Duration) {
        let mut waiting = self
            .curl_command(extra, url)
            .stdout(Stdio::null())
            .spawn()
            .expect("curl");
        // A real wait, the caller's: far enough into the request (the vendor is slow
        // to answer) that egret is in the middle of it.
        tokio::time::sleep(after).await;
        let mut child = self.child;
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("killed");
        let _ = waiting.kill().await;
    }

    /// Resident memory of the egret process, in KiB. Panics where it cannot be read:
    /// a memory assertion must never pass because nothing was measured.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("egret is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("cannot measure egret's memory (/proc/{pid}/status): {e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
    }
}

/// Waits for the ready line in the log and reads the addresses it names.
async fn wait_ready(child: &mut Child, log: &Path) -> (SocketAddr, SocketAddr) {
    let told = Log(log);
    super::wait::until_some(&told, Duration::from_secs(30), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("egret exited with {status} before it was ready; log:\n{text}");
        }
        async move {
            let line = text.lines().find(|l| l.contains("egret is ready"))?;
            let field = |name: &str| -> SocketAddr {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} address in the ready line: {line}"))
            };
            Some((field("proxy="), field("control=")))
        }
    })
    .await
}

/// The log so far, when egret does not become ready.
struct Log<'a>(&'a Path);

impl std::fmt::Display for Log<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = std::fs::read_to_string(self.0).unwrap_or_default();
        write!(f, "egret to become ready; log:\n{text}")
    }
}

/// A command's stdout, trimmed; panics with its stderr if it failed.
pub fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}
