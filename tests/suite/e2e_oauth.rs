//! End to end with OAuth: the real `egret` binary, a connector from the `generic`
//! template (discovery), `egret connection connect` and a browser sign-in on the real
//! authorization server, `curl -x` to its API — and a SIGKILL right after a refresh
//! that must not cost the user their connection.

use std::time::Duration;

use egret_test_support::browser::{Browser, Choice};
use egret_test_support::oauth_server::OAuthServer;
use egret_test_support::upstream::TestCa;
use serde_json::Value;

use super::harness::binary::{Egret, stdout};
use super::harness::oauth::loopback_client;
use super::harness::wait::until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_the_cli_refresh_survive_sigkill_and_disconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    // egret's control port is the system's pick, known only once it runs: a native
    // client's loopback redirect URI matches on any port (RFC 8252 §7.3).
    let clients = loopback_client("e2e-client-secret");
    let server = OAuthServer::start(&ca, &clients, 6).await;
    let port = server.port;
    std::fs::write(dir.path().join("upstream-ca.pem"), &ca.pem).expect("write");
    std::fs::write(dir.path().join("client.secret"), "e2e-client-secret\n").expect("write");
    std::fs::write(
        dir.path().join("egret.yaml"),
        format!(
            r#"version: 1
proxy: {{ listen: "127.0.0.1:0" }}
control: {{ listen: "127.0.0.1:0" }}
upstream:
  extra_ca: [upstream-ca.pem]
  resolve: {{ auth.test.local: 127.0.0.1, api.test.local: 127.0.0.1 }}
connectors:
  - id: vendor
    template: generic
    settings: {{ issuer: "https://auth.test.local:{port}" }}
    oauth:
      client_id: egret
      client_secret: ${{file:client.secret}}
      scopes: [openid, offline_access, read]
      extra_params: {{ prompt: consent }}
      refresh_skew: 3s
    egress: ["api.test.local:{port}"]
"#
        ),
    )
    .expect("write");
    let egret = Egret::start(dir.path(), "first.log").await;
    let pem = stdout(&egret.cli(&["ca", "export"], None).await);
    std::fs::write(dir.path().join("egret-ca.pem"), format!("{pem}\n")).expect("write");

    // The operator's view: `policy check` shows the template's connector resolved.
    let checked = stdout(
        &egret
            .cli(
                &[
                    "policy",
                    "check",
                    &dir.path().join("egret.yaml").to_string_lossy(),
                    "--output",
                    "json",
                ],
                None,
            )
            .await,
    );
    assert!(
        checked.contains(&format!("\"issuer\": \"https://auth.test.local:{port}\"")),
        "{checked}"
    );

    // The user connects: the CLI prints egret's sign-in link, which sends the browser
    // on to the vendor; the browser signs in.
    let url = stdout(
        &egret
            .cli(
                &["connection", "connect", "vendor", "--owner", "user:alice"],
                None,
            )
            .await,
    );
    assert!(
        url.starts_with(&format!("http://{}/oauth/start?state=", egret.control)),
        "{url}"
    );
    let mut browser = Browser::new(&ca.pem);
    let vendor_url = browser
        .continue_to_vendor(&url)
        .await
        .expect("the link's page, continued");
    assert!(
        vendor_url.starts_with(&format!("https://auth.test.local:{port}/auth?")),
        "{vendor_url}"
    );
    let page = browser
        .authorize(&vendor_url, Choice::Allow)
        .await
        .expect("sign-in");
    assert_eq!(page.status, 200, "{}", page.body);
    let p = stdout(
        &egret
            .cli(
                &["placeholder", "mint", "vendor", "--owner", "user:alice"],
                None,
            )
            .await,
    );
    let listed = stdout(&egret.cli(&["connection", "list"], None).await);
    assert!(
        listed.contains("vendor") && listed.contains("connected"),
        "{listed}"
    );

    let api = format!("https://api.test.local:{port}/resource");
    let auth = format!("authorization: Bearer {p}");
    assert_eq!(call(&egret, &auth, &api).await["sub"], "alice");

    // Once inside the skew, a request refreshes (every one meanwhile is served);
    // SIGKILL right after.
    until(
        "a request that refreshes",
        Duration::from_secs(10),
        || async {
            assert_eq!(call(&egret, &auth, &api).await["sub"], "alice");
            server.stats().await["refresh_token"] == 1
        },
    )
    .await;
    let mut child = egret.child;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("killed");

    // After restart the connection is there with the rotated refresh token: the next
    // refresh succeeds (reusing the old one would make the server revoke the grant).
    let egret = Egret::start(dir.path(), "second.log").await;
    assert_eq!(call(&egret, &auth, &api).await["sub"], "alice");
    until("a second refresh", Duration::from_secs(10), || async {
        assert_eq!(call(&egret, &auth, &api).await["sub"], "alice");
        server.stats().await["refresh_token"] == 2
    })
    .await;

    // SIGKILL in the middle of a refresh (the vendor has not answered yet): nothing is
    // lost, the next egret refreshes with the same refresh token.
    server.token_mode("slow").await;
    // A real wait: the kill must land inside a renewal, so the token must be due again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    egret
        .kill_during(&["-H", &auth], &api, Duration::from_millis(1500))
        .await;
    server.token_mode("ok").await;
    let egret = Egret::start(dir.path(), "third.log").await;
    assert_eq!(call(&egret, &auth, &api).await["sub"], "alice");
    let stats = server.stats().await;
    assert_eq!(stats["refresh_token"], 3, "{stats}");

    // Disconnect revokes at the vendor; the placeholder stops.
    let out = egret
        .cli(
            &["connection", "remove", "vendor", "--owner", "user:alice"],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
    assert_eq!(server.stats().await["revocations"], 1);
    let (_, body) = egret.curl(&["-H", &auth], &api).await;
    assert!(body.contains("placeholder_unknown"), "{body}");

    let log = egret.stop().await;
    assert!(!log.contains(&p), "the placeholder is never logged");
    assert!(
        !log.contains("e2e-client-secret"),
        "the client secret is never logged"
    );
    assert!(
        log.contains("token renewed"),
        "renewals are logged (without tokens)"
    );
    let vault = std::fs::read(dir.path().join("data/egret.redb")).expect("vault");
    assert!(
        !vault.windows(p.len()).any(|w| w == p.as_bytes()),
        "the vault holds no placeholder"
    );
}

/// GET the API through egret with `curl -x`; the answer as JSON.
async fn call(egret: &Egret, auth: &str, api: &str) -> Value {
    let (code, body) = egret.curl(&["-H", auth], api).await;
    assert_eq!(code, 0, "curl failed: {body}");
    serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)
}
