//! `egret audit tail`: the audit log, oldest first, optionally followed.

use anyhow::Result;
use serde_json::Value;

use crate::args::Output;
use crate::client::{ControlClient, query};
use crate::output::{text, when};

pub async fn tail(
    client: &ControlClient,
    follow: bool,
    connector: Option<String>,
    owner: Option<String>,
    output: Output,
) -> Result<()> {
    let filter = query(&[("connector", connector), ("owner", owner)]);
    let mut since = 0u64;
    let mut printed = 0usize;
    loop {
        let sep = if filter.is_empty() { '?' } else { '&' };
        let answer = client
            .get(&format!("/v1/audit{filter}{sep}since={since}"))
            .await?;
        let events = answer["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            match output {
                Output::Json => say!("{e}"),
                Output::Table => say!("{}", line(e)),
            }
            since = since.max(e["seq"].as_u64().unwrap_or(since));
        }
        printed += events.len();
        // Page through everything there is; then stop, or wait for more.
        if events.is_empty() {
            if !follow {
                if printed == 0 && output == Output::Table {
                    eprintln!("no audit events");
                }
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}

/// One event as a line a person reads: when, what, whose, and the detail.
fn line(e: &Value) -> String {
    let mut out = format!("{}  {}", when(&e["at"]), text(&e["event"]));
    for key in ["connector", "owner"] {
        if let Some(v) = e[key].as_str() {
            out.push_str(&format!("  {key}={v}"));
        }
    }
    if let Some(d) = e["detail"].as_str() {
        out.push_str(&format!("  {d}"));
    }
    if let Some(data) = e["data"].as_object() {
        for (k, v) in data {
            if !v.is_null() {
                out.push_str(&format!("  {k}={}", text(v)));
            }
        }
    }
    out
}
