//! The connector commands of the real binary against its own control plane.

use super::harness::binary::{Egret, setup, stdout};

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
    let env = stdout(
        &egret
            .cli(
                &[
                    "sandbox-env",
                    "--owner",
                    "org",
                    "--ca-bundle",
                    &dir.path().join("b.pem").to_string_lossy(),
                ],
                None,
            )
            .await,
    );
    assert!(env.contains("export CRM_API_KEY='egp_"), "{env}");
    let out = egret.cli(&["connector", "remove", "crm"], None).await;
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 connections"),
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
    assert!(listed.contains("\"crm\""), "{listed}");
    egret.stop().await;
}
