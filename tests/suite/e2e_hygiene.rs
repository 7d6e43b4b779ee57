//! Secret hygiene, end to end: known secrets stored every way egret accepts them, every
//! control route and proxy refusal driven with trace logging on, then every output —
//! logs, API answers, proxy answers, metrics, audit, the vault file — searched for them.

use std::process::Stdio;

use tokio::process::Command;

use super::harness::binary::{Egret, setup, stdout};

const STATIC_KEY: &str = "sk-HYGIENE-static-0123456789";
const CLIENT_SECRET: &str = "cs-HYGIENE-client-secret-42";
const ECHOED_KEY: &str = "sk-HYGIENE-echoed/abc+def";

/// curl with `-i`: status line, headers and body, for the search.
async fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "20"])
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("curl runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_output_or_in_the_vault_file() {
    let (dir, _ca, upstream) = setup().await;
    let d = dir.path();
    let egret = Egret::start(d, "trace.log").await;
    let token = std::fs::read_to_string(d.join("data/admin.token")).expect("token");
    let token = token.trim().to_owned();
    let auth = format!("Authorization: Bearer {token}");
    let (proxy, control) = (egret.proxy, egret.control);
    let base = format!("http://{control}");
    let mut outputs = Vec::new();

    // Store: a static key by CLI (stdin) and by API, an API connector with a secret.
    stdout(
        &egret
            .cli(
                &["connection", "set-key", "openai", "--owner", "org"],
                Some(STATIC_KEY),
            )
            .await,
    );
    let json = |v: &str| v.to_owned();
    let api = |method: &'static str, path: String, body: Option<String>| {
        let (auth, base) = (auth.clone(), base.clone());
        async move {
            let mut args = vec!["-X".to_owned(), method.to_owned(), "-H".to_owned(), auth];
            if let Some(b) = body {
                args.extend([
                    "-H".into(),
                    "content-type: application/json".into(),
                    "--data-binary".into(),
                    b,
                ]);
            }
            args.push(format!("{base}{path}"));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&refs).await
        }
    };
    outputs.push(
        api(
            "PUT",
            "/v1/connections/weather/org/key".into(),
            Some(json(&format!("{{\"key\":\"{ECHOED_KEY}\"}}"))),
        )
        .await,
    );
    outputs.push(api("POST", "/v1/connectors".into(), Some(format!(
        r#"{{"id":"apiconn","auth":"oauth2","grant":"client_credentials","oauth":{{"token_url":"https://127.0.0.1:1/token","client_id":"cid","client_secret":"{CLIENT_SECRET}"}},"egress":["apiconn.test.local"]}}"#
    ))).await);
    assert!(outputs[1].starts_with("HTTP/1.1 201"), "{}", outputs[1]);
    let minted = api(
        "POST",
        "/v1/placeholders".into(),
        Some(r#"{"connector":"openai","owner":"org"}"#.into()),
    )
    .await;
    let p = minted
        .split('"')
        .find(|s| s.starts_with("egp_"))
        .expect("placeholder in the answer")
        .to_owned();
    let minted = api(
        "POST",
        "/v1/placeholders".into(),
        Some(r#"{"connector":"weather","owner":"org"}"#.into()),
    )
    .await;
    let wp = minted
        .split('"')
        .find(|s| s.starts_with("egp_"))
        .expect("placeholder")
        .to_owned();

    // Every read route, and the error answers.
    for path in [
        "/v1/connectors",
        "/v1/connectors/apiconn",
        "/v1/connectors/openai",
        "/v1/connections",
        "/v1/audit",
        "/v1/sandboxes",
        "/v1/placeholders",
        "/v1/connectors/nope",
    ] {
        outputs.push(api("GET", path.into(), None).await);
    }
    outputs.push(
        api(
            "PATCH",
            "/v1/connections/weather/org".into(),
            Some(r#"{"description": "hygiene"}"#.to_owned()),
        )
        .await,
    );
    outputs.push(api("POST", "/v1/connectors/nope/purge".into(), None).await);
    outputs.push(
        api(
            "PATCH",
            "/v1/connectors/apiconn".into(),
            Some(r#"{"enabled":false}"#.into()),
        )
        .await,
    );
    outputs.push(
        api(
            "PATCH",
            "/v1/connectors/openai".into(),
            Some(r#"{"enabled":false}"#.into()),
        )
        .await,
    );
    let authorize = api("POST", "/v1/connections/apiconn/org/authorize".into(), None).await;
    // Disabled: refused without a call to the (dead) token endpoint.
    assert!(authorize.starts_with("HTTP/1.1 4"), "{authorize}");
    outputs.push(authorize);
    outputs.push(
        api(
            "PATCH",
            "/v1/connectors/apiconn".into(),
            Some(r#"{"enabled":true}"#.into()),
        )
        .await,
    );
    let failing = api("POST", "/v1/connections/apiconn/org/authorize".into(), None).await;
    assert!(
        failing.starts_with("HTTP/1.1 5"),
        "the dead token endpoint fails: {failing}"
    );
    outputs.push(failing);
    outputs.push(curl(&[&format!("{base}/metrics")]).await);
    outputs.push(curl(&[&format!("{base}/readyz")]).await);
    outputs.push(
        curl(&[
            "-H",
            "Authorization: Bearer wrong-token",
            &format!("{base}/v1/connections"),
        ])
        .await,
    );

    // The proxy: a swap whose answer echoes the key, each refusal, plain http.
    let pem = stdout(&egret.cli(&["ca", "export"], None).await);
    std::fs::write(d.join("egret-ca.pem"), format!("{pem}\n")).expect("write");
    let port = upstream.addr.port();
    let through = |extra: Vec<String>, url: String| {
        let ca = d.join("egret-ca.pem");
        async move {
            let mut args = vec![
                "-x".to_owned(),
                format!("http://{proxy}"),
                "--cacert".to_owned(),
                ca.display().to_string(),
            ];
            args.extend(extra);
            args.push(url);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&refs).await
        }
    };
    let bearer = format!("Authorization: Bearer {p}");
    for (header, url) in [
        (
            bearer.clone(),
            format!("https://api.test.local:{port}/reflect"),
        ),
        (
            bearer.clone(),
            format!("https://api.test.local:{port}/reflect?x={p}"),
        ),
        (
            bearer.clone(),
            format!("https://weather.test.local:{port}/"),
        ),
        (
            format!("x-other: {p}"),
            format!("https://api.test.local:{port}/"),
        ),
        (
            "Authorization: Bearer egp_00000000000000000000000000000000".to_owned(),
            format!("https://api.test.local:{port}/"),
        ),
        (bearer.clone(), format!("http://api.test.local:{port}/")),
        (bearer.clone(), format!("https://evil.test.local:{port}/")),
        (
            "x-nothing: 1".to_owned(),
            format!("https://weather.test.local:{port}/reflect?appid={wp}"),
        ),
    ] {
        outputs.push(through(vec!["-H".into(), header], url).await);
    }
    let echoed = outputs[outputs.len() - 1].clone();
    assert!(
        echoed.contains(&wp),
        "the echo came back with the placeholder: {echoed}"
    );
    let seen = upstream.seen();
    assert!(
        seen.iter()
            .any(|s| s["headers"]["authorization"] == format!("Bearer {STATIC_KEY}")),
        "the key did go upstream"
    );

    // What an agent can ask egret, with the placeholders it holds.
    outputs.push(
        curl(&[
            "-x",
            &format!("http://{proxy}"),
            "-H",
            &format!("Authorization: Bearer {wp}"),
            "http://egret.internal/connections",
        ])
        .await,
    );

    // Disconnect and delete: their answers too.
    outputs.push(api("DELETE", "/v1/connections/openai/org".into(), None).await);
    outputs.push(api("DELETE", "/v1/connectors/apiconn".into(), None).await);
    outputs.push(stdout(&egret.cli(&["audit", "tail"], None).await));
    outputs.push(stdout(&egret.cli(&["connection", "list"], None).await));
    outputs.push(stdout(
        &egret.cli(&["connection", "list", "-o", "json"], None).await,
    ));
    outputs.push(stdout(&egret.cli(&["placeholder", "list"], None).await));
    outputs.push(stdout(&egret.cli(&["status"], None).await));
    let log = egret.stop().await;
    let vault = String::from_utf8_lossy(&std::fs::read(d.join("data/egret.redb")).expect("vault"))
        .into_owned();

    for secret in [
        STATIC_KEY,
        CLIENT_SECRET,
        ECHOED_KEY,
        "sk-HYGIENE-echoed%2Fabc%2Bdef",
    ] {
        for (i, out) in outputs.iter().enumerate() {
            assert!(!out.contains(secret), "output {i} holds {secret}:\n{out}");
        }
        assert!(!log.contains(secret), "the trace log holds {secret}");
        assert!(
            !vault.contains(secret),
            "the vault file holds {secret} in the clear"
        );
    }
    // The admin token and the placeholders stay out of the logs too.
    assert!(!log.contains(&token), "the trace log holds the admin token");
    assert!(
        !log.contains(&p) && !log.contains(&wp),
        "the trace log holds a placeholder"
    );
}

const DD_API: &str = "dd-HYGIENE-api-key-0123";
const DD_APP: &str = "dd-HYGIENE-app/key+4567";
const HMAC_SECRET: &str = "whsec-HYGIENE-signing-89";
const FROM_VAULT: &str = "sk-HYGIENE-kept-in-vault-55";

/// The credential kinds of issue 28 — several inputs, an HMAC secret, a value kept in
/// Vault — stored every way egret takes them (CLI prompts piped, references), used and
/// refused through the proxy with trace logs on, then every output searched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_value_of_several_inputs_an_hmac_secret_or_a_vault_reference_appears_anywhere() {
    use egret_test_support::secret_stores::{HOST, SecretStores, VAULT_TOKEN};
    let (dir, ca, upstream) = setup().await;
    let d = dir.path();
    let stores = SecretStores::start(&ca).await;
    stores.set_vault("secret/openai", "api_key", FROM_VAULT);
    std::fs::write(d.join("vault-token"), VAULT_TOKEN).expect("token file");
    let connectors = "  - { id: openai, auth: api_key, egress: [api.test.local] }
  - id: datadog
    auth: api_key
    egress: [other.test.local]
    inputs:
      - { name: api_key, inject: { header: DD-API-KEY } }
      - { name: app_key, inject: { header: DD-APPLICATION-KEY } }
  - { id: hooks, template: github-webhook, egress: [weather.test.local] }
";
    let yaml = super::harness::binary::config(connectors)
        .replace(
            "weather.test.local: 127.0.0.1 }",
            &format!("weather.test.local: 127.0.0.1, {HOST}: 127.0.0.1 }}"),
        )
        .replace(
            "connectors:\n",
            &format!(
                "secret_sources:\n  vault: {{ address: \"{}\", token: \"${{file:vault-token}}\", ca_file: upstream-ca.pem }}\nconnectors:\n",
                stores.url()
            ),
        );
    std::fs::write(d.join("egret.yaml"), yaml).expect("write");
    let egret = Egret::start(d, "trace.log").await;
    let token = std::fs::read_to_string(d.join("data/admin.token")).expect("token");
    let token = token.trim().to_owned();
    let (proxy, control) = (egret.proxy, egret.control);
    let base = format!("http://{control}");
    let auth = format!("Authorization: Bearer {token}");
    let mut outputs = Vec::new();
    // Stored by the CLI: piped INPUT=VALUE lines, and a reference.
    for (args, input) in [
        (
            vec!["connection", "set-key", "datadog", "--owner", "org"],
            Some(format!("api_key={DD_API}\napp_key={DD_APP}\n")),
        ),
        (
            vec!["connection", "set-key", "hooks", "--owner", "org"],
            Some(format!("secret={HMAC_SECRET}\n")),
        ),
        (
            vec![
                "connection",
                "set-key",
                "openai",
                "--owner",
                "org",
                "--ref",
                "vault://secret/openai#api_key",
            ],
            None,
        ),
    ] {
        let out = egret.cli(&args, input.as_deref()).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mint = |connector: &str| {
        let (auth, base, body) = (
            auth.clone(),
            base.clone(),
            format!(r#"{{"connector":"{connector}","owner":"org"}}"#),
        );
        async move {
            curl(&[
                "-X",
                "POST",
                "-H",
                &auth,
                "-H",
                "content-type: application/json",
                "--data-binary",
                &body,
                &format!("{base}/v1/placeholders"),
            ])
            .await
        }
    };
    let placeholders = |text: &str| -> Vec<String> {
        text.split('"')
            .filter(|s| s.starts_with("egp_"))
            .map(str::to_owned)
            .collect()
    };
    let dd = mint("datadog").await;
    let hooks = mint("hooks").await;
    let openai = mint("openai").await;
    let (dd_p, hooks_p, openai_p) = (
        placeholders(&dd),
        placeholders(&hooks),
        placeholders(&openai),
    );
    outputs.extend([dd, hooks, openai]);
    let pem = stdout(&egret.cli(&["ca", "export"], None).await);
    std::fs::write(d.join("egret-ca.pem"), format!("{pem}\n")).expect("write");
    let port = upstream.addr.port();
    let ca_file = d.join("egret-ca.pem").display().to_string();
    let through = |headers: Vec<String>, url: String, body: Option<&'static str>| {
        let ca_file = ca_file.clone();
        async move {
            let mut args = vec![
                "-x".to_owned(),
                format!("http://{proxy}"),
                "--cacert".to_owned(),
                ca_file,
            ];
            for h in headers {
                args.extend(["-H".to_owned(), h]);
            }
            if let Some(b) = body {
                args.extend(["--data-binary".to_owned(), b.to_owned()]);
            }
            args.push(url);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&refs).await
        }
    };
    // Each used (answers echo what was sent: /reflect), one misplaced.
    outputs.push(
        through(
            vec![
                format!("DD-API-KEY: {}", dd_p[1]),
                format!("DD-APPLICATION-KEY: {}", dd_p[2]),
            ],
            format!("https://other.test.local:{port}/reflect"),
            None,
        )
        .await,
    );
    outputs.push(
        through(
            vec![format!("DD-API-KEY: {}", dd_p[2])],
            format!("https://other.test.local:{port}/reflect"),
            None,
        )
        .await,
    );
    outputs.push(
        through(
            vec![format!("X-Hub-Signature-256: sha256={}", hooks_p[0])],
            format!("https://weather.test.local:{port}/reflect"),
            Some("Hello, World!"),
        )
        .await,
    );
    outputs.push(
        through(
            vec![format!("Authorization: Bearer {}", openai_p[0])],
            format!("https://api.test.local:{port}/reflect"),
            None,
        )
        .await,
    );
    let seen = upstream.seen();
    assert!(
        seen.iter()
            .any(|s| s["headers"]["dd-application-key"] == DD_APP),
        "the inputs went upstream"
    );
    assert!(
        seen.iter()
            .any(|s| s["headers"]["authorization"] == format!("Bearer {FROM_VAULT}")),
        "the value kept in Vault went upstream"
    );
    for path in [
        "/v1/connectors",
        "/v1/connections",
        "/v1/audit",
        "/v1/placeholders",
        "/metrics",
    ] {
        outputs.push(curl(&["-H", &auth, &format!("{base}{path}")]).await);
    }
    outputs.push(stdout(
        &egret.cli(&["connection", "list", "-o", "json"], None).await,
    ));
    outputs.push(stdout(&egret.cli(&["audit", "tail"], None).await));
    let log = egret.stop().await;
    let vault = String::from_utf8_lossy(&std::fs::read(d.join("data/egret.redb")).expect("vault"))
        .into_owned();
    for secret in [
        DD_API,
        DD_APP,
        "dd-HYGIENE-app%2Fkey%2B4567",
        HMAC_SECRET,
        FROM_VAULT,
        VAULT_TOKEN,
    ] {
        for (i, out) in outputs.iter().enumerate() {
            assert!(!out.contains(secret), "output {i} holds {secret}:\n{out}");
        }
        assert!(!log.contains(secret), "the trace log holds {secret}");
        assert!(
            !vault.contains(secret),
            "the vault file holds {secret} in the clear"
        );
    }
}
