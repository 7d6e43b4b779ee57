//! `egret approval list|show|approve|deny`: requests held for a person's approval.

use anyhow::Result;
use http::Method;
use serde_json::{Value, json};

use crate::args::ApprovalCommand;
use crate::client::{ControlClient, segment};
use crate::output::{Table, text, wants_json, when};

pub async fn run(client: ControlClient, cmd: ApprovalCommand) -> Result<()> {
    match cmd {
        ApprovalCommand::List {
            status,
            connector,
            owner,
            format,
        } => {
            let mut query = Vec::new();
            if status != "all" {
                query.push(format!("status={}", segment(&status)));
            }
            if let Some(c) = connector {
                query.push(format!("connector={}", segment(&c)));
            }
            if let Some(o) = owner {
                query.push(format!("owner={}", segment(&o)));
            }
            let answer = client
                .get(&format!("/v1/approvals?{}", query.join("&")))
                .await?;
            if wants_json(format.output) {
                crate::output::json(&answer);
                return Ok(());
            }
            let mut table = Table::new(&[
                "ID",
                "STATUS",
                "CONNECTOR",
                "OWNER",
                "REQUEST",
                "RULE",
                "CREATED",
            ]);
            for a in answer["approvals"].as_array().into_iter().flatten() {
                table.row(vec![
                    text(&a["id"]),
                    text(&a["status"]),
                    text(&a["connector"]),
                    text(&a["owner"]),
                    request_line(a),
                    text(&a["rule"]),
                    when(&a["created_at"]),
                ]);
            }
            table.print(
                "no approvals; they appear when a rule with `action: approve` holds a request",
            );
            Ok(())
        }
        ApprovalCommand::Show { id, format } => {
            let a = client
                .get(&format!("/v1/approvals/{}", segment(&id)))
                .await?;
            if wants_json(format.output) {
                crate::output::json(&a);
                return Ok(());
            }
            println!("{}  {}", text(&a["id"]), text(&a["status"]));
            println!("request:    {}", request_line(&a));
            println!(
                "connection: {} / {} / {}",
                text(&a["connector"]),
                text(&a["owner"]),
                text(&a["name"])
            );
            println!("sandbox:    {}", text(&a["sandbox"]));
            println!("rule:       {} ({})", text(&a["rule"]), text(&a["reason"]));
            println!("created:    {}", when(&a["created_at"]));
            println!("expires:    {}", when(&a["expires_at"]));
            if !a["decided_by"].is_null() {
                println!(
                    "decided:    by {} at {}{}",
                    text(&a["decided_by"]),
                    when(&a["decided_at"]),
                    a["note"]
                        .as_str()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                );
            }
            println!("decide at:  {}", text(&a["url"]));
            if let Some(body) = a["body_preview"].as_str().filter(|b| !b.is_empty()) {
                println!("body (first 4 KiB, secrets redacted):\n{body}");
            }
            Ok(())
        }
        ApprovalCommand::Approve { id, for_, note } => {
            let a = decide(&client, &id, "approve", json!({"for": for_, "note": note})).await?;
            eprintln!("approved {id} ({for_}): {} may go", request_line(&a));
            Ok(())
        }
        ApprovalCommand::Deny { id, note } => {
            let a = decide(&client, &id, "deny", json!({"note": note})).await?;
            eprintln!("denied {id}: {} will not be sent", request_line(&a));
            Ok(())
        }
    }
}

async fn decide(client: &ControlClient, id: &str, how: &str, body: Value) -> Result<Value> {
    client
        .call(
            Method::POST,
            &format!("/v1/approvals/{}/{how}", segment(id)),
            Some(body),
        )
        .await
        .map(Option::unwrap_or_default)
}

/// `POST api.github.com/repos/o/r/pulls?x=1`.
fn request_line(a: &Value) -> String {
    let query = a["query"]
        .as_str()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    format!(
        "{} {}{}{query}",
        text(&a["method"]),
        text(&a["host"]),
        text(&a["path"])
    )
}
