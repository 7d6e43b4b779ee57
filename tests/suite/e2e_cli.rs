//! The binary's command line as a person and a script meet it: listen addresses from
//! flags, one output convention (tables by default, the API's JSON with `--output
//! json`), `policy check`, `status`, `health`, completions and default lifetimes.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use super::harness::binary::{EGRET, Egret, OPENAI, config, setup, stdout};
use super::harness::wait::until;

/// `egret ARGS --output json`, parsed.
async fn json(egret: &Egret, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    serde_json::from_str(&stdout(&egret.cli(&args, None).await)).expect("--output json is JSON")
}

/// A failed command's stderr: one line, one `error:` prefix.
fn one_error(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "doubled prefix: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_names_what_changes_it_and_the_flags_override_the_file() {
    let (dir, _ca, _upstream) = setup().await;
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let cfg = dir.path().join("egret.yaml");
    std::fs::write(
        &cfg,
        // A secret that does not resolve is warned about at start, naming its connector.
        config(&format!(
            "{OPENAI}  - {{ id: gh, template: github, oauth: {{ client_id: abc, client_secret: \"${{env:EGRET_TEST_UNSET_SECRET}}\" }} }}\n"
        ))
        .replace(
            "proxy: { listen: \"127.0.0.1:0\"",
            &format!("proxy: {{ listen: \"127.0.0.1:{port}\""),
        ),
    )
    .expect("write");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(EGRET)
            .args(["serve", "--config"])
            .arg(&cfg)
            .env_remove("EGRET_PROXY_LISTEN")
            .output(),
    )
    .await
    .expect("bounded")
    .expect("run");
    assert!(!out.status.success());
    // The log lines before it aside, the last line is the one error.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let err = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        err.starts_with("error: ") && err.matches("error:").count() == 1,
        "{err}"
    );
    for says in [
        "in use",
        "proxy.listen",
        "--proxy-listen",
        "EGRET_PROXY_LISTEN",
    ] {
        assert!(err.contains(says), "{says} in {err}");
    }
    // The flag wins over the file; a reload keeps it (no "listen addresses changed").
    let egret =
        Egret::start_with(dir.path(), "serve.log", &["--proxy-listen", "127.0.0.1:0"]).await;
    assert_ne!(egret.proxy.port(), port);
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).expect("read") + "\n").expect("write");
    until("the reload in the log", Duration::from_secs(10), || async {
        egret.log_text().contains("policy reloaded")
    })
    .await;
    let log = egret.stop().await;
    assert!(log.contains("policy reloaded"), "{log}");
    assert!(
        log.contains(
            "connector `gh`: oauth.client_secret ${env:EGRET_TEST_UNSET_SECRET} is not set"
        ),
        "{log}"
    );
    assert!(!log.contains("listen addresses changed"), "{log}");
    drop(busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_tables_for_people_and_the_apis_json_for_scripts() {
    let (dir, _ca, _upstream) = setup().await;
    let egret = Egret::start(dir.path(), "serve.log").await;
    // No --ttl: a day, as sandbox-env gives.
    let p = egret
        .key_and_placeholder("openai", "org", "sk-cli-REAL")
        .await;
    let placeholders = json(&egret, &["placeholder", "list"]).await;
    let listed = &placeholders["placeholders"][0];
    let hint = listed["hint"].as_str().expect("hint");
    assert!(p.starts_with(hint.trim_end_matches('…')), "{listed}");
    assert!(
        !placeholders.to_string().contains(&p),
        "never the placeholder itself"
    );
    let lifetime = listed["expires_at"].as_i64().expect("expires")
        - listed["created_at"].as_i64().expect("created");
    assert_eq!(lifetime, 24 * 3600, "{listed}");
    // The same field names as the API.
    let connections = json(&egret, &["connection", "list"]).await;
    let c = &connections["connections"][0];
    for field in ["connector", "owner", "kind", "status", "connected_at"] {
        assert!(!c[field].is_null(), "{field} in {c}");
    }
    assert!(json(&egret, &["sandbox", "list"]).await["sandboxes"].is_array());
    assert!(json(&egret, &["connector", "list"]).await["connectors"].is_array());

    // Tables: headers, readable times, no raw epoch and no `null`.
    for args in [
        &["connection", "list"][..],
        &["placeholder", "list"][..],
        &["connector", "list"][..],
        &["audit", "tail"][..],
    ] {
        let table = stdout(&egret.cli(args, None).await);
        assert!(!table.contains("null"), "{args:?}: {table}");
        let epoch = c["connected_at"].as_i64().expect("epoch").to_string();
        assert!(
            !table.contains(&epoch[..8]),
            "{args:?} shows a raw epoch: {table}"
        );
    }
    let table = stdout(&egret.cli(&["placeholder", "list"], None).await);
    assert!(
        table.starts_with("HINT")
            && (table.contains("UTC (in 23h)") || table.contains("UTC (in 24h)")),
        "{table}"
    );
    let table = stdout(&egret.cli(&["connection", "list"], None).await);
    assert!(
        table.starts_with("CONNECTOR") && (table.contains(" ago)") || table.contains("(now)")),
        "{table}"
    );

    // A lifetime beyond the maximum is refused with the maximum named, in one line.
    let out = egret
        .cli(
            &[
                "placeholder",
                "mint",
                "openai",
                "--owner",
                "org",
                "--ttl",
                "100y",
            ],
            None,
        )
        .await;
    let err = one_error(&out);
    assert!(
        err.contains("30days") && err.contains("limits.max_ttl"),
        "{err}"
    );
    // A sandbox that does not exist.
    let err = one_error(&egret.cli(&["sandbox", "revoke", "nope"], None).await);
    assert!(err.contains("nope"), "{err}");

    // status: up, what it runs with, counts; health: exit 0.
    let status = stdout(&egret.cli(&["status"], None).await);
    for says in [
        "server:      up",
        "egret.yaml",
        "egret.redb",
        "CA:",
        "connectors:  2",
        "1 connected",
    ] {
        assert!(status.contains(says), "{says} in {status}");
    }
    let status = json(&egret, &["status"]).await;
    assert_eq!(status["server"]["up"], true, "{status}");
    // The address it talked to, as in the text (not the file's `:0`).
    assert_eq!(
        status["server"]["control"],
        format!("http://{}", egret.control),
        "{status}"
    );
    assert!(status["ca"]["expires_at"].as_i64().is_some(), "{status}");
    assert_eq!(stdout(&egret.cli(&["health"], None).await), "ok");
    egret.stop().await;

    // With the server gone: health fails, status says so and still reads the files.
    let out = Command::new(EGRET)
        .args(["health", "--config"])
        .arg(dir.path().join("egret.yaml"))
        .env("EGRET_SERVER", "http://127.0.0.1:1")
        .output()
        .await
        .expect("run");
    one_error(&out);
    let out = Command::new(EGRET)
        .args(["status", "--config"])
        .arg(dir.path().join("egret.yaml"))
        .env("EGRET_SERVER", "http://127.0.0.1:1")
        .output()
        .await
        .expect("run");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("not answering at http://127.0.0.1:1") && said.contains("needs attention"),
        "the address it asked: {said}"
    );
    assert!(
        !out.status.success(),
        "status exits non-zero when the server is down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_check_defaults_to_the_config_summarizes_and_warns_about_unresolved_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("p.yaml");
    std::fs::write(
        &cfg,
        "version: 1\nconnectors:\n  - id: gh\n    template: github\n    oauth: { client_id: abc, client_secret: \"${env:EGRET_TEST_UNSET_SECRET}\" }\n  - { id: k, auth: api_key, egress: [api.example.com] }\n",
    )
    .expect("write");
    let out = Command::new(EGRET)
        .args(["policy", "check", "--config"])
        .arg(&cfg)
        .env_remove("EGRET_TEST_UNSET_SECRET")
        .output()
        .await
        .expect("run");
    let said = stdout(&out);
    assert!(
        said.starts_with("ok: ") && said.contains("2 connectors, 0 allowed hosts"),
        "{said}"
    );
    assert!(said.contains("gh (github): oauth2"), "{said}");
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(
        warned.contains("warning: connector `gh`")
            && warned.contains("${env:EGRET_TEST_UNSET_SECRET}"),
        "{warned}"
    );
    let out = Command::new(EGRET)
        .args(["policy", "check", "--output", "json"])
        .arg(&cfg)
        .output()
        .await
        .expect("run");
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["connectors"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");

    let out = Command::new(EGRET)
        .args(["completions", "bash"])
        .output()
        .await
        .expect("run");
    let script = stdout(&out);
    assert!(
        script.contains("egret") && script.contains("placeholder"),
        "a bash completion script"
    );
    // Flags that mean nothing for a command are not offered on it.
    let out = Command::new(EGRET)
        .args(["policy", "check", "--server", "http://x"])
        .arg(&cfg)
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
}

/// On a terminal, `set-key` prompts and the key typed is not echoed (a pseudo-terminal
/// from `script(1)` stands in for the person's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_key_on_a_terminal_prompts_without_echo() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (dir, _ca, _upstream) = setup().await;
    let egret = Egret::start(dir.path(), "serve.log").await;
    let key = "sk-typed-at-a-tty-REAL";
    let inner = format!(
        "{EGRET} connection set-key openai --owner user:tty --config {}",
        dir.path().join("egret.yaml").display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("EGRET_SERVER", format!("http://{}", egret.control))
        .env_remove("EGRET_ADMIN_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("script(1) runs");
    let mut out = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    // Type only once the prompt is up (and echo is off), as a person would.
    tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("(not shown): ") {
            let n = out.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "ended before the prompt: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the prompt appears");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{key}\n").as_bytes())
        .await
        .expect("type");
    tokio::time::timeout(Duration::from_secs(20), out.read_to_end(&mut seen))
        .await
        .expect("set-key ends")
        .expect("read");
    drop(stdin);
    let status = child.wait().await.expect("wait");
    let shown = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("stored the key for openai / user:tty"),
        "{shown}"
    );
    assert!(!shown.contains(key), "the key was echoed: {shown}");
    let listed = json(&egret, &["connection", "list", "--owner", "user:tty"]).await;
    assert_eq!(listed["connections"][0]["connector"], "openai", "{listed}");
    egret.stop().await;
}

/// `--name` on the connection and placeholder commands: two connections of one owner to
/// a connector that allows several, each listed, minted, and exported by `sandbox-env`
/// under a variable of its own; removing one leaves the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_connections_from_the_command_line() {
    let (dir, _ca, _upstream) = setup().await;
    let connectors = "  - { id: openai, auth: api_key, egress: [api.test.local], multiple_connections: true, env: { OPENAI_API_KEY: placeholder } }\n";
    std::fs::write(dir.path().join("egret.yaml"), config(connectors)).expect("write");
    let egret = Egret::start(dir.path(), "serve.log").await;
    for (name, key) in [(None, "sk-cli-default"), (Some("work"), "sk-cli-work")] {
        let mut args = vec!["connection", "set-key", "openai", "--owner", "org"];
        args.extend(name.iter().flat_map(|n| ["--name", *n]));
        let out = egret.cli(&args, Some(key)).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = json(&egret, &["connection", "list", "--name", "work"]).await;
    assert_eq!(listed["connections"][0]["name"], "work", "{listed}");
    assert_eq!(listed["connections"].as_array().map(Vec::len), Some(1));
    let table = stdout(&egret.cli(&["connection", "list"], None).await);
    assert!(table.contains("NAME") && table.contains("work"), "{table}");
    let minted = stdout(
        &egret
            .cli(
                &[
                    "placeholder",
                    "mint",
                    "openai",
                    "--owner",
                    "org",
                    "--name",
                    "work",
                ],
                None,
            )
            .await,
    );
    assert!(minted.starts_with("egp_"), "{minted}");
    let env = egret
        .sandbox_env("org", &dir.path().join("bundle.pem"))
        .await;
    assert!(
        env.contains("export OPENAI_API_KEY='egp_")
            && env.contains("export OPENAI_API_KEY_WORK='egp_"),
        "{env}"
    );
    let out = egret
        .cli(
            &[
                "connection",
                "remove",
                "openai",
                "--owner",
                "org",
                "--name",
                "work",
            ],
            None,
        )
        .await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("openai / org / work"), "{said}");
    // A connect link for the user to open, printed for the platform to send.
    let out = egret
        .cli(
            &[
                "connection",
                "link",
                "openai",
                "--owner",
                "org",
                "--ttl",
                "10m",
            ],
            None,
        )
        .await;
    let link = stdout(&out);
    assert!(link.contains("/ui/connect/"), "{link}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("it works once"));
    let left = json(&egret, &["connection", "list"]).await;
    assert_eq!(left["connections"][0]["name"], "default", "{left}");
    assert_eq!(left["connections"].as_array().map(Vec::len), Some(1));
    egret.stop().await;
}

/// Signs in to the web UI at `control` with `token`; the session cookie (`name=value`).
async fn ui_sign_in(control: std::net::SocketAddr, token: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "-H"])
        .arg(format!("Origin: http://{control}"))
        .args(["--data-urlencode", &format!("token={token}")])
        .arg(format!("http://{control}/ui/login"))
        .output()
        .await
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// The status of Connector Settings opened with `cookie`.
async fn ui_status(control: std::net::SocketAddr, cookie: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-b", cookie])
        .arg(format!("http://{control}/ui/connectors"))
        .output()
        .await
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_token(dir: &Path, token: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("data/admin.token");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    std::fs::write(&path, token).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// An admin token that is empty, blank or shorter than 32 characters refuses the start,
/// saying how to make a good one; a rotated token ends every administrator's web UI
/// session, at the next start or at once with `egret ui sessions end`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_must_be_long_and_rotating_it_ends_administrators_sessions() {
    let (dir, _ca, _upstream) = setup().await;
    let cfg = dir.path().join("egret.yaml");
    for bad in ["", "   ", "only-31-characters-long-token!!"] {
        write_token(dir.path(), bad);
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            Command::new(EGRET)
                .args(["serve", "--config"])
                .arg(&cfg)
                .env_remove("EGRET_ADMIN_TOKEN")
                .output(),
        )
        .await
        .expect("bounded")
        .expect("run");
        assert!(!out.status.success(), "started with the token {bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let err = stderr.trim_end().lines().last().unwrap_or_default();
        for says in ["admin token", "at least 32", "openssl rand"] {
            assert!(err.contains(says), "{says} in {err}");
        }
    }

    let first = "first-admin-token-0123456789abcdefghij";
    write_token(dir.path(), first);
    let egret = Egret::start(dir.path(), "first.log").await;
    let cookie = ui_sign_in(egret.control, first).await.expect("signed in");
    assert_eq!(ui_status(egret.control, &cookie).await, "200");
    egret.stop().await;
    // The same token: the session survives a restart.
    let egret = Egret::start(dir.path(), "same.log").await;
    assert_eq!(ui_status(egret.control, &cookie).await, "200");
    egret.stop().await;
    // Ended by hand, egret stopped.
    let out = Command::new(EGRET)
        .args(["ui", "sessions", "end", "--config"])
        .arg(&cfg)
        .output()
        .await
        .expect("run");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("ended 1 administrator session"), "{said}");
    let egret = Egret::start(dir.path(), "ended.log").await;
    assert_eq!(ui_status(egret.control, &cookie).await, "303", "signed out");
    let cookie = ui_sign_in(egret.control, first)
        .await
        .expect("signed in again");
    assert_eq!(ui_status(egret.control, &cookie).await, "200");
    egret.stop().await;
    // A new token: the next start ends every administrator's session.
    let second = "second-admin-token-0123456789abcdefghij";
    write_token(dir.path(), second);
    let egret = Egret::start(dir.path(), "rotated.log").await;
    assert_eq!(ui_status(egret.control, &cookie).await, "303", "signed out");
    assert!(
        ui_sign_in(egret.control, first).await.is_none(),
        "the old token"
    );
    let cookie = ui_sign_in(egret.control, second)
        .await
        .expect("the new token");
    assert_eq!(ui_status(egret.control, &cookie).await, "200");
    let log = egret.stop().await;
    assert!(log.contains("the admin token changed"), "{log}");
}

/// Issue 25, item 2: a typo in the policy file leaves the server on its previous policy,
/// and the client commands still reach it: `health` needs only `--server`, `status` and
/// `connection list` the server and `EGRET_ADMIN_TOKEN`; each says the file has an error.
/// Without a server address they say how to give one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_file_does_not_break_the_client_commands() {
    let (dir, _ca, _upstream) = setup().await;
    let egret = Egret::start(dir.path(), "serve.log").await;
    let token = std::fs::read_to_string(dir.path().join("data/admin.token")).expect("token");
    let yaml = dir.path().join("egret.yaml");
    let good = std::fs::read_to_string(&yaml).expect("read");
    std::fs::write(
        &yaml,
        good.replace("connectors:\n", "connectors:\n  - id: [\n"),
    )
    .expect("typo");
    let server = format!("http://{}", egret.control);
    let run = |args: &[&str], with_server: bool| {
        let mut cmd = Command::new(EGRET);
        cmd.args(args)
            .arg("--config")
            .arg(&yaml)
            .env_remove("EGRET_SERVER")
            .env_remove("EGRET_CONTROL_LISTEN")
            .env("EGRET_ADMIN_TOKEN", token.trim());
        if with_server {
            cmd.args(["--server", &server]);
        }
        async move { cmd.output().await.expect("runs") }
    };
    // The server refuses the reload (item 3): audited with file:line:col, counted, kept
    // for status and the Activity page.
    let metrics = || super::harness::api::metrics(egret.control);
    until("the reload refused", Duration::from_secs(10), || async {
        metrics()
            .await
            .contains("egret_policy_reloads_total{result=\"refused\"} 1")
    })
    .await;
    let health = run(&["health"], true).await;
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    for args in [&["status"][..], &["connection", "list"]] {
        let out = run(args, true).await;
        let said = String::from_utf8_lossy(&out.stderr).into_owned() + &stdout(&out);
        assert!(out.status.success(), "{args:?}: {said}");
        assert!(
            said.contains("has an error") && said.contains("previous policy"),
            "{args:?}: {said}"
        );
    }
    let out = run(&["connection", "list"], false).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pass --server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = stdout(&run(&["status"], true).await);
    assert!(
        status.contains("last reload was refused") && status.contains("egret.yaml:"),
        "{status}"
    );
    let audit = stdout(&run(&["audit", "tail", "-o", "json"], true).await);
    let refused = audit
        .lines()
        .find(|l| l.contains("policy.reload_refused"))
        .unwrap_or_else(|| panic!("audited: {audit}"));
    assert!(refused.contains("egret.yaml:"), "file:line:col: {refused}");
    let cookie = ui_sign_in(egret.control, token.trim())
        .await
        .expect("signed in");
    let activity = Command::new("curl")
        .args(["-s", "-b", &cookie])
        .arg(format!("http://{}/ui/activity", egret.control))
        .output()
        .await
        .expect("curl");
    let page = String::from_utf8_lossy(&activity.stdout);
    assert!(page.contains("last reload was refused"), "{page}");
    let m = metrics().await;
    assert!(m.contains("egret_policy_info{sha256=\""), "{m}");

    // Fixed: applied, and nothing refused stands.
    std::fs::write(&yaml, good).expect("fixed");
    until(
        "the fixed file applied",
        Duration::from_secs(10),
        || async {
            metrics()
                .await
                .contains("egret_policy_reloads_total{result=\"applied\"} 1")
        },
    )
    .await;
    let status = stdout(&egret.cli(&["status"], None).await);
    assert!(!status.contains("last reload was refused"), "{status}");
    egret.stop().await;
}

/// `egret approval list|show|approve|deny` against the real binary, with curl as the
/// agent: a held request times out as `approval_pending`, is approved from the command
/// line, and its retry goes; a second is denied with a note the agent then reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_from_the_command_line() {
    let (dir, _ca, upstream) = setup().await;
    std::fs::write(
        dir.path().join("egret.yaml"),
        config(
            "  - id: openai\n    auth: api_key\n    egress: [api.test.local]\n    rules:\n      - { methods: [POST], path: \"/v1/**\", action: approve, reason: \"posts need a person\" }\n    approvals: { hold: 1s }\n",
        ),
    )
    .expect("write");
    let egret = Egret::start(dir.path(), "serve.log").await;
    egret.export_ca().await;
    let p = egret
        .key_and_placeholder("openai", "org", "sk-cli-held")
        .await;
    let url = format!("https://api.test.local:{}/v1/things", upstream.addr.port());
    let post = |body: &'static str| {
        let auth = format!("authorization: Bearer {p}");
        let (egret, url) = (&egret, &url);
        async move {
            egret
                .curl(&["-s", "-X", "POST", "-H", &auth, "-d", body], url)
                .await
                .1
        }
    };
    let first: Value = serde_json::from_str(&post("{\"n\": 1}").await).expect("json refusal");
    assert_eq!(first["error"], "approval_pending", "{first}");
    let id = first["approval_id"].as_str().expect("id").to_owned();
    let listed = json(&egret, &["approval", "list"]).await;
    assert_eq!(listed["approvals"][0]["id"], id.as_str(), "{listed}");
    let table = stdout(&egret.cli(&["approval", "list"], None).await);
    assert!(
        table.contains(&id) && table.contains("POST api.test.local/v1/things"),
        "{table}"
    );
    let shown = stdout(&egret.cli(&["approval", "show", &id], None).await);
    assert!(
        shown.contains("posts need a person") && shown.contains("\"n\": 1"),
        "{shown}"
    );
    let out = egret
        .cli(&["approval", "approve", &id, "--note", "fine"], None)
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let retried: Value = serde_json::from_str(&post("{\"n\": 1}").await).expect("upstream json");
    // The upstream's echo: the request went (the key it saw is scanned back out).
    assert_eq!(retried["path"], "/v1/things", "{retried}");
    assert_eq!(retried["method"], "POST", "{retried}");

    let second: Value = serde_json::from_str(&post("{\"n\": 2}").await).expect("json");
    let id2 = second["approval_id"].as_str().expect("id").to_owned();
    let out = egret
        .cli(&["approval", "deny", &id2, "--note", "no thanks"], None)
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let denied: Value = serde_json::from_str(&post("{\"n\": 2}").await).expect("json");
    assert_eq!(denied["error"], "approval_denied", "{denied}");
    assert_eq!(denied["note"], "no thanks");
    let out = egret.cli(&["approval", "deny", &id2], None).await;
    assert!(one_error(&out).contains("denied already"));
    egret.stop().await;
}

/// `egret token create|list|revoke` against the real binary: the token printed alone
/// once, listed without it, revoked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_from_the_command_line() {
    let (dir, _ca, _upstream) = setup().await;
    let egret = Egret::start(dir.path(), "serve.log").await;
    let out = egret
        .cli(
            &["token", "create", "ci", "--role", "auditor", "--ttl", "30d"],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = stdout(&out).trim().to_owned();
    assert!(token.starts_with("egt_"), "{token}");
    let listed = json(&egret, &["token", "list"]).await;
    assert_eq!(listed["tokens"][0]["name"], "ci");
    assert_eq!(listed["tokens"][0]["role"], "auditor");
    assert!(!listed.to_string().contains(&token));
    let table = stdout(&egret.cli(&["token", "list"], None).await);
    assert!(
        table.contains("ci") && table.contains("auditor") && !table.contains(&token),
        "{table}"
    );
    let out = egret.cli(&["token", "revoke", "ci"], None).await;
    assert!(out.status.success());
    let out = egret.cli(&["token", "revoke", "ci"], None).await;
    assert!(one_error(&out).contains("no token named"));
    let out = egret
        .cli(&["token", "create", "x", "--role", "root"], None)
        .await;
    assert!(one_error(&out).contains("not a role"));
    egret.stop().await;
}
