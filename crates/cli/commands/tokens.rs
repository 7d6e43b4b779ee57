//! `egret token create|list|revoke`: scoped API tokens.

use anyhow::Result;
use http::Method;
use serde_json::json;

use crate::args::TokenCommand;
use crate::client::{ControlClient, segment};
use crate::output::{Table, text, wants_json, when};

pub async fn run(client: ControlClient, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Create {
            name,
            role,
            owner,
            ttl,
        } => {
            let made = client
                .call(
                    Method::POST,
                    "/v1/tokens",
                    Some(json!({"name": name, "role": role, "owner": owner, "ttl": ttl})),
                )
                .await?
                .unwrap_or_default();
            // The token alone on stdout, for `T=$(egret token create …)`.
            println!("{}", text(&made["token"]));
            eprintln!("made token {name} ({role}); it is shown only now: egret keeps its hash");
            Ok(())
        }
        TokenCommand::List { format } => {
            let answer = client.get("/v1/tokens").await?;
            if wants_json(format.output) {
                crate::output::json(&answer);
                return Ok(());
            }
            let mut table =
                Table::new(&["NAME", "ROLE", "OWNER", "CREATED", "EXPIRES", "LAST USED"]);
            for t in answer["tokens"].as_array().into_iter().flatten() {
                table.row(vec![
                    text(&t["name"]),
                    text(&t["role"]),
                    text(&t["owner"]),
                    when(&t["created_at"]),
                    when(&t["expires_at"]),
                    when(&t["last_used_at"]),
                ]);
            }
            table.print("no API tokens; `egret token create NAME --role platform` makes one");
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            client
                .call(
                    Method::DELETE,
                    &format!("/v1/tokens/{}", segment(&name)),
                    None,
                )
                .await?;
            eprintln!("revoked token {name}: refused from now on, on every replica");
            Ok(())
        }
    }
}
