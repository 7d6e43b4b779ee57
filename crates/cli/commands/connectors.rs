//! `egret connector …`: connectors on the running server.

use anyhow::{Context, Result};
use http::Method;
use serde_json::{Value, json};

use crate::args::{ConnectorCommand, Format, Remote};
use crate::client::segment;
use crate::output::{Table, count, text, wants_json, when};

pub async fn run(config: &std::path::Path, remote: &Remote, cmd: ConnectorCommand) -> Result<()> {
    if let ConnectorCommand::Templates = cmd {
        print_templates();
        return Ok(());
    }
    let client = super::client(config, remote)?;
    match cmd {
        // Answered above, without a server.
        ConnectorCommand::Templates => Ok(()),
        ConnectorCommand::List { format } => {
            let answer = client.get("/v1/connectors").await?;
            list(&answer, format);
            Ok(())
        }
        ConnectorCommand::Get { id, format } => {
            let answer = client
                .get(&format!("/v1/connectors/{}", segment(&id)))
                .await?;
            if wants_json(format.output) {
                crate::output::json(&answer);
            } else {
                let mut lines = Vec::new();
                flatten("", &answer, &mut lines);
                for line in lines {
                    say!("{line}");
                }
            }
            Ok(())
        }
        ConnectorCommand::Create { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let entry: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let answer = client
                .call(Method::POST, "/v1/connectors", Some(entry))
                .await?
                .unwrap_or(Value::Null);
            eprintln!(
                "created connector {}",
                answer["id"].as_str().unwrap_or_default()
            );
            crate::output::json(&answer);
            Ok(())
        }
        ConnectorCommand::Enable { id } => set_enabled(&client, &id, true).await,
        ConnectorCommand::Disable { id } => set_enabled(&client, &id, false).await,
        ConnectorCommand::Remove { id } => {
            let path = format!("/v1/connectors/{}", segment(&id));
            erase(
                &client,
                Method::DELETE,
                &path,
                &format!("deleted connector {id}"),
            )
            .await
        }
        ConnectorCommand::Purge { id } => {
            let path = format!("/v1/connectors/{}/purge", segment(&id));
            erase(
                &client,
                Method::POST,
                &path,
                &format!("purged connector {id}"),
            )
            .await
        }
    }
}

fn list(answer: &Value, format: Format) {
    if wants_json(format.output) {
        crate::output::json(answer);
        return;
    }
    let mut table = Table::new(&["ID", "AUTH", "TEMPLATE", "SOURCE", "ENABLED", "EGRESS"]);
    for c in answer["connectors"].as_array().into_iter().flatten() {
        table.row(vec![
            text(&c["id"]),
            text(&c["auth"]),
            text(&c["template"]),
            text(&c["source"]),
            if c["enabled"].as_bool() == Some(false) {
                "no".to_owned()
            } else {
                "yes".to_owned()
            },
            text(&c["egress"]),
        ]);
    }
    table.print("no connectors; add one to the policy file or with `egret connector create`");
    let removed = answer["removed"].as_array().cloned().unwrap_or_default();
    if !removed.is_empty() {
        say!("");
        say!("Removed from the policy file, connections kept for its return:");
        let mut table = Table::new(&["ID", "CONNECTIONS", "REMOVED", "ERASED"]);
        for r in &removed {
            table.row(vec![
                text(&r["id"]),
                text(&r["connections"]),
                when(&r["removed_at"]),
                when(&r["purge_at"]),
            ]);
        }
        table.print("");
    }
}

/// Deletes or purges: says what went, counted.
async fn erase(
    client: &crate::client::ControlClient,
    method: Method,
    path: &str,
    done: &str,
) -> Result<()> {
    let answer = client
        .call(method, path, None)
        .await?
        .unwrap_or(Value::Null);
    let erased = answer["connections_erased"].as_u64().unwrap_or(0);
    eprintln!(
        "{done}: {} erased, with the placeholders",
        count(erased, "connection")
    );
    Ok(())
}

/// A JSON object as `key: value` lines (`oauth.client_id: …`), nulls left out.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        other => out.push(format!("{prefix}: {}", text(other))),
    }
}

async fn set_enabled(client: &crate::client::ControlClient, id: &str, enabled: bool) -> Result<()> {
    client
        .call(
            Method::PATCH,
            &format!("/v1/connectors/{}", segment(id)),
            Some(json!({ "enabled": enabled })),
        )
        .await?;
    if enabled {
        eprintln!("enabled connector {id}");
    } else {
        eprintln!("disabled connector {id}: no new connections; existing ones keep working");
    }
    Ok(())
}

/// The built-in templates; needs no server.
fn print_templates() {
    for t in egret_policy::templates::TEMPLATES {
        say!("{} ({})\n  {}", t.name, t.title, t.summary);
        for setting in t.settings {
            say!("  settings.{}: {}", setting.key, setting.help);
        }
    }
}
