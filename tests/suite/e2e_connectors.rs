//! The connector commands of the real binary against its own control plane.

use std::time::Duration;

use super::harness::binary::{Egret, KEY, config, setup, stdout};
use super::harness::wait::{until, until_some};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_create_disable_enable_remove_with_the_cli() {
    let (dir, _ca, _upstream) = setup().await;
    let egret = Egret::start(dir.path(), "serve.log").await;
    let entry = dir.path().join("crm.json");
    std::fs::write(
        &entry,
        r#"{"id": "crm", "auth": "api_key", "egress": ["other.test.local"], "env": {"CRM_API_KEY": "placeholder"}}"#,
    )
    .expect("write");
    let created = stdout(
        &egret
            .cli(&["connector", "create", &entry.to_string_lossy()], None)
            .await,
    );
    assert!(created.contains("\"source\": \"api\""), "{created}");
    stdout(&egret.cli(&["connector", "disable", "crm"], None).await);
    let shown = stdout(&egret.cli(&["connector", "get", "crm"], None).await);
    assert!(shown.contains("enabled: false"), "{shown}");
    let shown = stdout(
        &egret
            .cli(&["connector", "get", "crm", "--output", "json"], None)
            .await,
    );
    assert!(shown.contains("\"enabled\": false"), "{shown}");
    stdout(&egret.cli(&["connector", "enable", "crm"], None).await);
    let out = egret
        .cli(
            &["connection", "set-key", "crm", "--owner", "org"],
            Some("crm-key"),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = egret.sandbox_env("org", &dir.path().join("b.pem")).await;
    assert!(env.contains("export CRM_API_KEY='egp_"), "{env}");
    let out = egret.cli(&["connector", "remove", "crm"], None).await;
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 connection erased"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A policy-file connector cannot be removed here; the error says where it lives.
    let out = egret.cli(&["connector", "remove", "openai"], None).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("policy file"),
        "{err}"
    );
    // API connectors survive a restart.
    let out = egret
        .cli(&["connector", "create", &entry.to_string_lossy()], None)
        .await;
    assert!(out.status.success());
    egret.stop().await;
    let egret = Egret::start(dir.path(), "second.log").await;
    let listed = stdout(&egret.cli(&["connector", "list"], None).await);
    assert!(listed.lines().any(|l| l.starts_with("crm ")), "{listed}");
    egret.stop().await;
}

/// The real binary, its policy file edited as an editor would: a connector commented
/// out is refused at once but its connection is kept; back in the file, the same
/// placeholder works; `connector purge` erases at once, and so does the retention's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_commented_out_is_kept_restored_and_erased_only_by_purge_or_retention() {
    let (dir, _ca, upstream) = setup().await;
    let cfg = dir.path().join("egret.yaml");
    // `weather` keeps api.test.local intercepted while `openai` is out of the file, so
    // the refusal is the connector's own.
    let both = config(
        "  - { id: openai, auth: api_key, egress: [api.test.local] }\n  - { id: weather, auth: api_key, egress: [weather.test.local, api.test.local] }\n",
    );
    let commented = both.replace("  - { id: openai", "#  - { id: openai");
    std::fs::write(&cfg, &both).expect("write");
    let egret = Egret::start(dir.path(), "serve.log").await;
    let auth = egret.openai_placeholder_header().await;
    let url = format!("https://api.test.local:{}/echo", upstream.addr.port());
    let answer = || async {
        egret
            .curl(&["-H", &auth, "-w", "\n%{http_code}"], &url)
            .await
            .1
    };
    // Until the answer has `want` in it: `std::fs::write` truncates first, so egret may
    // briefly read a half-written file that parses (and refuses otherwise) before the
    // whole one, as it would an editor's save.
    let wait_for = |want: &'static str| async move {
        let what = format!("an answer with {want}");
        until_some(what, Duration::from_secs(10), || async {
            let last = answer().await;
            last.contains(want).then_some(last)
        })
        .await
    };
    wait_for("\n200").await;

    // Commented out (an editor's save): refused at once, saying why; kept and shown.
    std::fs::write(&cfg, &commented).expect("write");
    let refused = wait_for("connector_removed").await;
    assert!(refused.ends_with("\n403"), "{refused}");
    let listed = stdout(&egret.cli(&["connection", "list"], None).await);
    assert!(listed.contains("connector_removed"), "{listed}");
    let connectors = stdout(
        &egret
            .cli(&["connector", "list", "--output", "json"], None)
            .await,
    );
    let connectors: serde_json::Value = serde_json::from_str(&connectors).expect("json");
    assert_eq!(connectors["removed"][0]["id"], "openai", "{connectors}");
    let table = stdout(&egret.cli(&["connector", "list"], None).await);
    assert!(
        table.contains("Removed from the policy file") && table.contains("openai"),
        "{table}"
    );

    // Back in the file: the same placeholder, the same key.
    std::fs::write(&cfg, &both).expect("write");
    wait_for("\n200").await;
    let seen = upstream.seen().last().cloned().unwrap_or_default();
    assert_eq!(
        seen["headers"]["authorization"],
        format!("Bearer {KEY}"),
        "the stored key is injected again"
    );

    // Out again, then purged by an operator: back in the file restores nothing.
    std::fs::write(&cfg, &commented).expect("write");
    wait_for("connector_removed").await;
    let out = egret.cli(&["connector", "purge", "openai"], None).await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("1 connection erased"),
        "{said}"
    );
    std::fs::write(&cfg, &both).expect("write");
    until(
        "the connector back in force",
        Duration::from_secs(10),
        || async {
            egret
                .cli(&["connector", "get", "openai"], None)
                .await
                .status
                .success()
        },
    )
    .await;
    let dead = answer().await;
    assert!(
        dead.contains("placeholder_unknown"),
        "purged for good: {dead}"
    );

    // A retention of one second: the next removal is erased by egret itself.
    stdout(
        &egret
            .cli(
                &["connection", "set-key", "openai", "--owner", "org"],
                Some(KEY),
            )
            .await,
    );
    std::fs::write(
        &cfg,
        commented.replace(
            "version: 1\n",
            "version: 1\nconnectors_removed_retention: 1s\n",
        ),
    )
    .expect("write");
    until(
        "erased after the retention",
        Duration::from_secs(10),
        || async {
            let listed = stdout(
                &egret
                    .cli(&["connection", "list", "--connector", "openai"], None)
                    .await,
            );
            !listed.contains("openai")
        },
    )
    .await;
    let audit = stdout(
        &egret
            .cli(
                &["audit", "tail", "--connector", "openai", "--output", "json"],
                None,
            )
            .await,
    );
    for event in [
        "connector.removed",
        "connector.restored",
        "connector.purge\"",
        "connector.purged",
    ] {
        assert!(audit.contains(event), "{event} in {audit}");
    }
    let log = egret.stop().await;
    assert!(
        log.contains("its connections are kept until the retention ends")
            && log.contains("its kept connections serve again")
            && log.contains("purged by an operator")
            && log.contains("retention of a removed connector ended"),
        "the log says what happened in words"
    );
}
