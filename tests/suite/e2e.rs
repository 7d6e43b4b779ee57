//! End to end: the real `egret` binary, started as a user would, driven by its own CLI and
//! by `curl -x` over HTTP/1.1 and HTTP/2.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use egret_test_support::upstream::{Offer, TestCa, Upstream};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::common::NAMES;

pub(super) const EGRET: &str = env!("CARGO_BIN_EXE_egret");
const KEY: &str = "sk-e2e-REAL-KEY-never-logged-7f3a";

pub(super) fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn config(proxy: SocketAddr, control: SocketAddr, connectors: &str) -> String {
    format!(
        r#"version: 1
proxy: {{ listen: "{proxy}", auth: none }}
control: {{ listen: "{control}", admin_token: "${{env:EGRET_E2E_TOKEN_UNSET}}" }}
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

const OPENAI: &str = "  - { id: openai, auth: api_key, egress: [api.test.local] }\n  - { id: weather, auth: api_key, egress: [weather.test.local], inject: { query: [appid] } }\n";

pub(super) struct Egret {
    pub(super) child: Child,
    dir: PathBuf,
    config: PathBuf,
    proxy: SocketAddr,
    control: SocketAddr,
    log: PathBuf,
}

impl Egret {
    pub(super) async fn start(
        dir: &Path,
        proxy: SocketAddr,
        control: SocketAddr,
        log_name: &str,
    ) -> Self {
        Self::start_with(dir, proxy, control, log_name, &[]).await
    }

    /// `start` with more `serve` arguments.
    pub(super) async fn start_with(
        dir: &Path,
        proxy: SocketAddr,
        control: SocketAddr,
        log_name: &str,
        extra: &[&str],
    ) -> Self {
        let config = dir.join("egret.yaml");
        let log = dir.join(log_name);
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(EGRET)
            .args(["serve", "--config"])
            .arg(&config)
            .args(extra)
            .env_remove("EGRET_ADMIN_TOKEN")
            .env("EGRET_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn egret");
        let egret = Self {
            child,
            dir: dir.to_owned(),
            config,
            proxy,
            control,
            log,
        };
        egret.wait_ready().await;
        egret
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            let probe = Command::new("curl")
                .args(["-sf", &format!("http://{}/readyz", self.control)])
                .output()
                .await;
            if probe.is_ok_and(|out| out.status.success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("egret did not become ready; log:\n{}", self.log_text());
    }

    pub(super) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stores `key` for `connector`/`owner` and mints a placeholder for it, through
    /// the CLI (the key on stdin); returns the placeholder.
    pub(super) async fn key_and_placeholder(
        &self,
        connector: &str,
        owner: &str,
        key: &str,
    ) -> String {
        stdout(
            &self
                .cli(
                    &["connection", "set-key", connector, "--owner", owner],
                    Some(key),
                )
                .await,
        );
        stdout(
            &self
                .cli(&["placeholder", "mint", connector, "--owner", owner], None)
                .await,
        )
    }

    /// Stores the test key for `openai`/`org`, mints a placeholder, writes the CA where
    /// `curl` looks for it, and returns the header a sandbox would send.
    pub(super) async fn openai_placeholder_header(&self) -> String {
        let p = self.key_and_placeholder("openai", "org", KEY).await;
        let pem = stdout(&self.cli(&["ca", "export"], None).await);
        std::fs::write(self.dir.join("egret-ca.pem"), format!("{pem}\n")).expect("write");
        format!("Authorization: Bearer {p}")
    }

    /// Runs an `egret` client command against this server, with optional stdin.
    pub(super) async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(EGRET)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("EGRET_ADMIN_TOKEN")
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

    pub(super) async fn stop(mut self) -> String {
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

    /// `curl -x` through this egret; returns (exit code, stdout).
    pub(super) async fn curl(&self, extra: &[&str], url: &str) -> (i32, String) {
        let out = Command::new("curl")
            .args([
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
            .env_remove("CURL_CA_BUNDLE")
            .output()
            .await
            .expect("curl runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

pub(super) fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

pub(super) async fn setup() -> (tempfile::TempDir, TestCa, Upstream, SocketAddr, SocketAddr) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    std::fs::write(dir.path().join("upstream-ca.pem"), &ca.pem).expect("write");
    let (proxy, control) = (free_port(), free_port());
    std::fs::write(
        dir.path().join("egret.yaml"),
        config(proxy, control, OPENAI),
    )
    .expect("write");
    (dir, ca, upstream, proxy, control)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_then_curl_over_h1_and_h2_and_nothing_secret_in_trace_logs() {
    let (dir, _ca, upstream, proxy, control) = setup().await;
    let egret = Egret::start(dir.path(), proxy, control, "first.log").await;
    for (file, want) in [
        ("certs/ca-key.pem", 0o600),
        ("data/master.key", 0o600),
        ("data/admin.token", 0o600),
        ("data/egret.redb", 0o600),
    ] {
        assert_eq!(mode(&dir.path().join(file)), want, "{file}");
    }
    let log = egret.log_text();
    assert!(
        log.contains("created the interception CA")
            && log.contains("created the master key")
            && log.contains("created an admin token"),
        "{log}"
    );

    let p = egret.key_and_placeholder("openai", "org", KEY).await;
    assert!(p.starts_with("egp_"), "{p}");
    let pem = stdout(&egret.cli(&["ca", "export"], None).await);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    std::fs::write(dir.path().join("egret-ca.pem"), format!("{pem}\n")).expect("write");

    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    let auth = format!("Authorization: Bearer {p}");
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let (code, out) = egret
            .curl(
                &[
                    flag,
                    "-H",
                    &auth,
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{http_version}",
                ],
                &url,
            )
            .await;
        assert_eq!(
            (code, out.as_str()),
            (0, format!("200 {version}").as_str()),
            "{flag}"
        );
        let seen = upstream.seen().last().cloned().expect("seen");
        assert_eq!(
            seen["headers"]["authorization"],
            format!("Bearer {KEY}"),
            "{flag}"
        );
    }

    // Refusals as curl sees them: CONNECT refused, and Host fronting inside the tunnel.
    let before = upstream.seen().len();
    let (code, out) = egret
        .curl(
            &["-w", "%{http_connect}"],
            &format!("https://evil.test.local:{}/", upstream.addr.port()),
        )
        .await;
    assert_ne!(code, 0);
    assert_eq!(out, "403");
    let (_, out) = egret
        .curl(
            &[
                "-H",
                &auth,
                "-H",
                "Host: other.test.local",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ],
            &url,
        )
        .await;
    assert_eq!(out, "403");
    let (_, out) = egret
        .curl(
            &["-H", &auth, "-w", "%{http_code}"],
            &format!("https://127.0.0.1:{}/", upstream.addr.port()),
        )
        .await;
    assert!(out.ends_with("000"), "{out}");
    assert_eq!(
        upstream.seen().len(),
        before,
        "no refused request reached the upstream"
    );

    // A key injected into the query string (h1 and h2 upstream requests carry it in the
    // request line / :path, which dependencies may trace), and a misplaced placeholder.
    let wp = egret.key_and_placeholder("weather", "org", KEY).await;
    let wurl = format!(
        "https://weather.test.local:{}/data?appid={wp}",
        upstream.addr.port()
    );
    for flag in ["--http1.1", "--http2"] {
        let (code, out) = egret
            .curl(&[flag, "-o", "/dev/null", "-w", "%{http_code}"], &wurl)
            .await;
        assert_eq!((code, out.as_str()), (0, "200"), "{flag}");
        assert_eq!(
            upstream.seen().last().expect("seen")["query"],
            format!("appid={KEY}")
        );
    }
    let (_, out) = egret
        .curl(
            &["-o", "/dev/null", "-w", "%{http_code}"],
            &format!("https://api.test.local:{}/v1/{p}", upstream.addr.port()),
        )
        .await;
    assert_eq!(out, "403", "a placeholder in the path is misplaced");

    let list = stdout(&egret.cli(&["connection", "list"], None).await);
    assert!(list.contains("openai") && !list.contains(KEY), "{list}");

    let log = egret.stop().await;
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.len() > 1000, "trace logging was on");
    assert!(
        !log.contains(KEY),
        "the real key appears in trace-level logs"
    );
    let leaks: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&p) || l.contains(&wp))
        .collect();
    assert!(
        leaks.is_empty(),
        "a placeholder appears in trace-level logs: {leaks:#?}"
    );

    // A second start reuses everything: same CA, same vault, the placeholder still works.
    let again = Egret::start(dir.path(), proxy, control, "second.log").await;
    let log = again.log_text();
    assert!(
        log.contains("loaded the interception CA") && !log.contains("created"),
        "{log}"
    );
    let (code, out) = again
        .curl(
            &["-H", &auth, "-o", "/dev/null", "-w", "%{http_code}"],
            &url,
        )
        .await;
    assert_eq!((code, out.as_str()), (0, "200"));
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_reloads_on_change_and_sighup_and_a_bad_file_changes_nothing() {
    let (dir, _ca, upstream, proxy, control) = setup().await;
    let egret = Egret::start(dir.path(), proxy, control, "reload.log").await;
    let auth = egret.openai_placeholder_header().await;
    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    let status = || async {
        egret
            .curl(
                &[
                    "-H",
                    &auth,
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}%{http_connect}",
                ],
                &url,
            )
            .await
            .1
    };
    let wait_for = |want: &'static str| async move {
        for _ in 0..100 {
            if status().await.starts_with(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("status never became {want}");
    };
    assert!(status().await.starts_with("200"));

    // A broken file is refused whole; the old policy stays.
    let cfg = dir.path().join("egret.yaml");
    std::fs::write(
        &cfg,
        config(
            proxy,
            control,
            "  - { id: openai, auth: api_key, egress: [\"1.2.3.4\"] }\n",
        ),
    )
    .expect("write");
    for _ in 0..100 {
        if egret.log_text().contains("policy reload refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        egret.log_text().contains("egret.yaml:"),
        "the refusal names the file and line"
    );
    assert!(
        status().await.starts_with("200"),
        "the old policy is still in force"
    );

    // Removing the connector takes effect on change: its host is now refused at CONNECT,
    // and (the kill switch) its connections and placeholders are erased.
    std::fs::write(
        &cfg,
        config(
            proxy,
            control,
            "  - { id: other, auth: api_key, egress: [other.test.local] }\n",
        ),
    )
    .expect("write");
    wait_for("000403").await;

    // SIGHUP reloads too (the file is restored with the same size and mtime granularity aside).
    std::fs::write(&cfg, config(proxy, control, OPENAI)).expect("write");
    let pid = egret.child.id().expect("pid").to_string();
    Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .await
        .expect("kill");
    // The host is intercepted again (CONNECT 200), but the erased placeholder stays dead.
    wait_for("403200").await;
    egret.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_check_names_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nconnectors:\n  - id: x\n    auth: api_key\n    egress: [\"10.0.0.1\"]\n",
    )
    .expect("write");
    let out = Command::new(EGRET)
        .args(["policy", "check"])
        .arg(&bad)
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("bad.yaml:5:14:") && err.contains("host names"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let out = Command::new(EGRET)
        .args(["policy", "check", "config/egret.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .expect("run");
    assert!(
        out.status.success(),
        "the shipped config is valid: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Client commands without a server say so in one line.
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!("version: 1\ncontrol: {{ listen: \"{}\" }}\n", free_port()),
    )
    .expect("write");
    let out = Command::new(EGRET)
        .args(["connection", "list", "--config"])
        .arg(&cfg)
        .env("EGRET_ADMIN_TOKEN", "x")
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `egret serve` running?"));
    // The key is read from stdin, never argv: there is no flag for it.
    let out = Command::new(EGRET)
        .args([
            "connection",
            "set-key",
            "openai",
            "--owner",
            "org",
            "--key",
            "x",
        ])
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
}

/// `serve --workers N` runs the proxy on N worker threads of its own, and it serves as
/// usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_the_worker_threads_asked_for() {
    let (dir, _ca, upstream, proxy, control) = setup().await;
    let egret = Egret::start_with(
        dir.path(),
        proxy,
        control,
        "workers.log",
        &["--workers", "3"],
    )
    .await;
    let log = egret.log_text();
    let ready = log
        .lines()
        .find(|l| l.contains("egret is ready"))
        .unwrap_or_else(|| panic!("no ready line in\n{log}"));
    assert!(ready.contains("workers=3"), "{ready}");
    // The threads themselves, by the names egret gives them.
    let pid = egret.child.id().expect("pid");
    let proxy_threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("threads")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("egret-proxy-"))
        .count();
    assert_eq!(proxy_threads, 3);
    let auth = egret.openai_placeholder_header().await;
    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    let (code, out) = egret
        .curl(
            &["-H", &auth, "-o", "/dev/null", "-w", "%{http_code}"],
            &url,
        )
        .await;
    assert_eq!((code, out.as_str()), (0, "200"));
    // Zero threads is refused before anything starts.
    let out = Command::new(EGRET)
        .args(["serve", "--workers", "0", "--config"])
        .arg(dir.path().join("egret.yaml"))
        .output()
        .await
        .expect("ran");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
}
