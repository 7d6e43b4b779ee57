//! End to end: the real `egret` binary, started as a user would, driven by its own CLI and
//! by `curl -x` over HTTP/1.1 and HTTP/2.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::harness::binary::{EGRET, Egret, KEY, OPENAI, config, setup, stdout};
use super::harness::wait::until;

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_then_curl_over_h1_and_h2_and_nothing_secret_in_trace_logs() {
    let (dir, _ca, upstream) = setup().await;
    let egret = Egret::start(dir.path(), "first.log").await;
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
    let again = Egret::start(dir.path(), "second.log").await;
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
    let (dir, _ca, upstream) = setup().await;
    let egret = Egret::start(dir.path(), "reload.log").await;
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
        let what = format!("the status to become {want}");
        until(what, Duration::from_secs(10), || async {
            status().await.starts_with(want)
        })
        .await;
    };
    assert!(status().await.starts_with("200"));

    // A broken file is refused whole; the old policy stays.
    let cfg = dir.path().join("egret.yaml");
    std::fs::write(
        &cfg,
        config("  - { id: openai, auth: api_key, egress: [\"1.2.3.4\"] }\n"),
    )
    .expect("write");
    until(
        "the reload's refusal in the log",
        Duration::from_secs(10),
        || async { egret.log_text().contains("policy reload refused") },
    )
    .await;
    assert!(
        egret.log_text().contains("egret.yaml:"),
        "the refusal names the file and line"
    );
    assert!(
        status().await.starts_with("200"),
        "the old policy is still in force"
    );

    // Removing the connector takes effect on change: its host is now refused at CONNECT
    // (the kill switch); its connections and placeholders are kept for its return.
    std::fs::write(
        &cfg,
        config("  - { id: other, auth: api_key, egress: [other.test.local] }\n"),
    )
    .expect("write");
    wait_for("000403").await;

    // SIGHUP reloads too (the file is restored with the same size and mtime granularity aside).
    std::fs::write(&cfg, config(OPENAI)).expect("write");
    let pid = egret.child.id().expect("pid").to_string();
    Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .await
        .expect("kill");
    // The host is intercepted again (CONNECT 200) and the kept placeholder works again.
    wait_for("200200").await;
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

    // Issue 25: every problem at once, one `error:` and one location each; a misspelt
    // value names the one meant; `-o json` lists them for a program.
    std::fs::write(
        &bad,
        "version: 1\nproxy: { listen: nowhere }\nconnectors:\n  - id: x\n    auth: apikey\n    egress: [a.com]\n  - id: y\n    auth: api_key\n    egress: [\"10.0.0.1\"]\n",
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
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    for (line, at) in lines
        .iter()
        .zip(["bad.yaml:2:18:", "bad.yaml:5:11:", "bad.yaml:9:14:"])
    {
        assert!(
            line.starts_with("error: ") && line.contains(&format!("{at} ")),
            "{err}"
        );
        assert_eq!(line.matches("error").count(), 1, "{line}");
    }
    assert!(lines[1].ends_with("did you mean `api_key`?"), "{err}");
    let out = Command::new(EGRET)
        .args(["policy", "check", "-o", "json"])
        .arg(&bad)
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["problems"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert_eq!(report["problems"][2]["line"], 9);

    let out = Command::new(EGRET)
        .args(["policy", "check", "config/default.yaml"])
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
        // Port 1 (tcpmux): nothing listens there.
        "version: 1\ncontrol: { listen: \"127.0.0.1:1\" }\n",
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

/// Issue 25: the CLI's errors speak CLI: an unknown connector names the one probably
/// meant and the command that lists them, never an API route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_connector_at_the_cli_says_which_was_meant() {
    let (dir, _ca, _upstream) = setup().await;
    let egret = Egret::start(dir.path(), "egret.log").await;
    for args in [
        &["connection", "connect", "opena", "--owner", "user:a"][..],
        &["placeholder", "mint", "opena", "--owner", "user:a"],
        &["connector", "get", "opena"],
    ] {
        let out = egret.cli(args, None).await;
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("there is no connector `opena`; did you mean `openai`?")
                && err.contains("`egret connector list` lists them")
                && !err.contains("/v1/"),
            "{args:?}: {err}"
        );
    }
    let out = egret.cli(&["connector", "get", "slack"], None).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("did you mean"),
        "nothing near, no guess: {err}"
    );
    egret.stop().await;
}

/// `serve --workers N` runs the proxy on N worker threads of its own, and it serves as
/// usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_the_worker_threads_asked_for() {
    let (dir, _ca, upstream) = setup().await;
    let egret = Egret::start_with(dir.path(), "workers.log", &["--workers", "3"]).await;
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

/// `egret ca export | head -1`: a reader that goes away early ends egret quietly, with
/// exit 0 and no panic. (The pipe's read end is closed before egret writes, so every
/// run meets the broken pipe a real `head` only sometimes causes.)
#[tokio::test]
async fn ca_export_into_a_closed_pipe_exits_quietly() {
    let (dir, _ca, _upstream) = setup().await;
    let init = Command::new(EGRET)
        .args(["ca", "init", "--config"])
        .arg(dir.path().join("egret.yaml"))
        .output()
        .await
        .expect("ca init");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    // Not `output()`: tokio's replaces the stdout given with a pipe of its own.
    let out = Command::new(EGRET)
        .args(["ca", "export", "--config"])
        .arg(dir.path().join("egret.yaml"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ca export")
        .wait_with_output()
        .await
        .expect("ca export ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}

/// A callback's `error` is the caller's text: a newline in it must not forge a log line
/// (`… INFO … connection authorized …`). It is logged inside its own event, without its
/// control characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_error_cannot_forge_log_lines() {
    let (dir, _ca, _upstream) = setup().await;
    let connector = "  - id: vendor\n    auth: oauth2\n    egress: [api.test.local]\n    oauth: { authorize_url: 'https://id.test.local/authorize', token_url: 'https://id.test.local/token', client_id: app }\n";
    std::fs::write(dir.path().join("egret.yaml"), config(connector)).expect("write");
    let egret = Egret::start(dir.path(), "forge.log").await;
    let url = stdout(
        &egret
            .cli(
                &["connection", "connect", "vendor", "--owner", "user:x"],
                None,
            )
            .await,
    );
    let state = url
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .expect("state in the sign-in URL");
    // The browser that continues from the link's page carries the binding cookie the
    // callback requires; its callback then brings the forged error.
    let mut browser = egret_test_support::browser::Browser::new("");
    browser
        .continue_to_vendor(&url)
        .await
        .expect("the link's page, continued");
    let forged = "2026-01-01T00:00:00.000000Z  INFO egret_control::oauth: connection authorized connector=vendor owner=user:admin";
    let error = format!("access_denied\r\n{forged}");
    let encoded: String = error.bytes().map(|b| format!("%{b:02X}")).collect();
    let page = browser
        .request(
            http::Method::GET,
            &format!(
                "http://{}/oauth/callback?state={state}&error={encoded}",
                egret.control
            ),
            None,
        )
        .await
        .expect("callback");
    assert_eq!(page.status, 400, "{}", page.body);
    let log = egret.stop().await;
    assert!(
        log.contains("authorization callback refused"),
        "the refusal is logged: {log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00")),
        "a forged line got into the log:\n{log}"
    );
    // The vendor's text loses its control characters before egret keeps or logs it.
    assert!(
        log.contains("access_denied2026-01-01"),
        "kept without its line breaks:\n{log}"
    );
}

/// A refused CONNECT says why in its status line, which clients print even where they
/// hide the body: curl (`-v`) and Python's `Tunnel connection failed: 403 …`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connect_says_why_in_the_status_line_curl_and_python_print() {
    let (dir, _ca, _upstream) = setup().await;
    let egret = Egret::start(dir.path(), "reason.log").await;
    let out = Command::new("curl")
        .args([
            "-sv",
            "--max-time",
            "10",
            "-x",
            &format!("http://{}", egret.proxy),
        ])
        .arg("https://evil.test.local/")
        .output()
        .await
        .expect("curl");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("403 egress_denied: evil.test.local is not an allowed host"),
        "{said}"
    );
    let script = format!(
        "import urllib.request\n\
         h = urllib.request.ProxyHandler({{'https': 'http://{}'}})\n\
         try:\n    urllib.request.build_opener(h).open('https://evil.test.local/', timeout=10)\n\
         except Exception as e:\n    print(e)\n",
        egret.proxy
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .await
        .expect("python3");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("403 egress_denied: evil.test.local is not an allowed host"),
        "{said}"
    );
    egret.stop().await;
}

/// Every refused CONNECT is logged at `info` with its code, host and sandbox — but a
/// looping agent cannot flood the log: past a burst, lines are left out and the next
/// one says how many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_logged_with_their_host_and_a_loop_cannot_flood_the_log() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (dir, _ca, _upstream) = setup().await;
    let egret = Egret::start(dir.path(), "flood.log").await;
    for _ in 0..400 {
        let mut s = tokio::net::TcpStream::connect(egret.proxy)
            .await
            .expect("connect");
        s.write_all(b"CONNECT evil.test.local:443 HTTP/1.1\r\nHost: evil.test.local:443\r\n\r\n")
            .await
            .expect("write");
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.expect("answer");
        assert_eq!(&head, b"HTTP/1.1 403");
    }
    let log = egret.stop().await;
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONNECT refused"))
        .collect();
    assert!(
        lines.iter().all(|l| l.contains(" INFO ")
            && l.contains("code=\"egress_denied\"")
            && l.contains("host=evil.test.local")
            && l.contains("sandbox=")),
        "{:?}",
        lines.first()
    );
    assert!(
        (100..300).contains(&lines.len()),
        "a burst of 100, then 20 a second: {} lines",
        lines.len()
    );
    if lines.len() < 400 {
        assert!(
            lines.iter().any(|l| l.contains("suppressed=")),
            "a line says how many were left out"
        );
    }
}

/// A webhook receiver that is down while egret stops loses nothing: the delivery waits
/// in the vault, and the next `egret serve` delivers it, signed, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_owed_when_egret_stops_is_delivered_by_the_next_start() {
    let (dir, _ca, _upstream) = setup().await;
    let receiver = egret_test_support::receiver::Receiver::start(false).await;
    std::fs::write(dir.path().join("hook-secret"), "a-plain-secret").expect("secret");
    let policy = format!(
        "{}webhooks:\n  - {{ url: \"{}\", secret: \"${{file:hook-secret}}\", events: [connection.connected] }}\n",
        config(OPENAI),
        receiver.url()
    );
    std::fs::write(dir.path().join("egret.yaml"), policy).expect("policy");
    let egret = Egret::start(dir.path(), "hook-first.log").await;
    let out = egret
        .cli(
            &["connection", "set-key", "openai", "--owner", "org"],
            Some("sk-hook"),
        )
        .await;
    assert!(out.status.success());
    until("a delivery attempt", Duration::from_secs(20), || async {
        !receiver.attempts().is_empty()
    })
    .await;
    egret.stop().await;
    let refused = receiver.attempts().len();
    receiver.set_up(true);
    let again = Egret::start(dir.path(), "hook-second.log").await;
    until(
        "a delivery after the restart",
        Duration::from_secs(20),
        || async { receiver.attempts().iter().any(|a| a.accepted) },
    )
    .await;
    // A real wait: a second delivery of the same event (the absence checked next) can
    // only be ruled out by letting time pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = receiver.attempts();
    assert_eq!(attempts.iter().filter(|a| a.accepted).count(), 1);
    assert!(attempts.len() > refused);
    let ids: std::collections::BTreeSet<_> = attempts
        .iter()
        .map(|a| a.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "one delivery, one id, on every attempt");
    assert!(attempts[0].body.contains("\"connection.connected\""));
    again.stop().await;
}
