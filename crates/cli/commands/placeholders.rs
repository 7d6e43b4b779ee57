//! `egret placeholder …`: placeholders handed to sandboxes.

use anyhow::{Context, Result};
use http::Method;
use serde_json::{Value, json};

use crate::args::PlaceholderCommand;
use crate::client::{ControlClient, query, segment};
use crate::output::{Table, text, wants_json, when};

pub async fn run(client: ControlClient, cmd: PlaceholderCommand) -> Result<()> {
    match cmd {
        PlaceholderCommand::Mint {
            which,
            ttl,
            sandbox,
        } => {
            let body = json!({
                "connector": which.connector,
                "owner": which.owner,
                "name": which.name,
                "ttl": ttl,
                "sandbox": sandbox,
            });
            let answer = client
                .call(Method::POST, "/v1/placeholders", Some(body))
                .await?
                .unwrap_or(Value::Null);
            let p = answer["placeholder"]
                .as_str()
                .context("the server answered without a placeholder")?;
            match answer["placeholders"].as_object() {
                // A connector of several inputs: one `INPUT=placeholder` line each.
                Some(by_input) => {
                    for (input, p) in by_input {
                        say!("{input}={}", p.as_str().unwrap_or_default());
                    }
                }
                None => say!("{p}"),
            }
            eprintln!("valid until {}", when(&answer["expires_at"]));
            Ok(())
        }
        PlaceholderCommand::List {
            connector,
            owner,
            sandbox,
            format,
        } => {
            let path = format!(
                "/v1/placeholders{}",
                query(&[
                    ("connector", connector),
                    ("owner", owner),
                    ("sandbox", sandbox)
                ])
            );
            let answer = client.get(&path).await?;
            if wants_json(format.output) {
                crate::output::json(&answer);
                return Ok(());
            }
            let mut table = Table::new(&[
                "HINT",
                "CONNECTOR",
                "OWNER",
                "NAME",
                "SANDBOX",
                "CREATED",
                "EXPIRES",
            ]);
            for p in answer["placeholders"].as_array().into_iter().flatten() {
                table.row(vec![
                    text(&p["hint"]),
                    text(&p["connector"]),
                    text(&p["owner"]),
                    text(&p["name"]),
                    text(&p["sandbox"]),
                    when(&p["created_at"]),
                    when(&p["expires_at"]),
                ]);
            }
            table.print("no live placeholders; mint one with `egret placeholder mint`");
            Ok(())
        }
        PlaceholderCommand::Revoke { placeholder } => {
            client
                .call(
                    Method::DELETE,
                    &format!("/v1/placeholders/{}", segment(&placeholder)),
                    None,
                )
                .await?;
            eprintln!("revoked");
            Ok(())
        }
    }
}
