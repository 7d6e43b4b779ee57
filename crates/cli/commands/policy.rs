//! `egret policy check [FILE]`: validate and summarize a policy file; needs no server.

use anyhow::Result;
use serde_json::{Value, json};

use crate::args::Format;
use crate::output::{count, wants_json};

pub fn check(file: &std::path::Path, format: Format) -> Result<()> {
    let policy = match crate::config::read_policy(file) {
        Ok(policy) => policy,
        Err(egret_policy::PolicyError::Invalid(problems)) if wants_json(format.output) => {
            crate::output::json(&json!({
                "ok": false,
                "file": file.display().to_string(),
                "problems": problems.iter().map(|p| json!({
                    "file": p.file.display().to_string(),
                    "line": p.line,
                    "column": p.column,
                    "message": p.message,
                })).collect::<Vec<_>>(),
            }));
            anyhow::bail!("{problems}");
        }
        Err(e) => anyhow::bail!("{e}"),
    };
    let warnings = policy.unresolved_secrets();
    let connectors: Vec<Value> = policy
        .connectors
        .iter()
        .map(egret_control::connector_view)
        .collect();
    if wants_json(format.output) {
        crate::output::json(&json!({
            "ok": true,
            "file": policy.source.display().to_string(),
            "proxy_listen": policy.proxy.listen.to_string(),
            "control_listen": policy.control.listen.to_string(),
            "allowed_hosts": policy.network.allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "connectors": connectors,
            "webhooks": policy.webhooks.iter().map(|w| json!({
                "url": egret_policy::shown_url(&w.url),
                "events": w.events.iter().map(|e| e.name()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "warnings": warnings,
        }));
        return Ok(());
    }
    say!(
        "ok: {} ({}, {}, {}; proxy {}, control {})",
        policy.source.display(),
        count(policy.connectors.len() as u64, "connector"),
        count(policy.network.allow.len() as u64, "allowed host"),
        count(policy.webhooks.len() as u64, "webhook"),
        policy.proxy.listen,
        policy.control.listen,
    );
    for c in &policy.connectors {
        let egress: Vec<String> = c.egress.iter().map(ToString::to_string).collect();
        let template = c
            .template
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        let disabled = if c.enabled { "" } else { ", disabled" };
        say!(
            "  {}{template}: {}{disabled} -> {}",
            c.id,
            c.auth.name(),
            egress.join(", ")
        );
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
