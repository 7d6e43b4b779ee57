//! `egret sandbox list|revoke`: sandbox identities (`proxy.auth: basic`).

use anyhow::Result;
use http::Method;

use crate::args::SandboxCommand;
use crate::client::{ControlClient, segment};
use crate::output::{Table, text, wants_json, when};

pub async fn run(client: ControlClient, cmd: SandboxCommand) -> Result<()> {
    match cmd {
        SandboxCommand::List { format } => {
            let answer = client.get("/v1/sandboxes").await?;
            if wants_json(format.output) {
                crate::output::json(&answer);
                return Ok(());
            }
            let mut table = Table::new(&["ID", "CREATED", "EXPIRES"]);
            for s in answer["sandboxes"].as_array().into_iter().flatten() {
                table.row(vec![
                    text(&s["id"]),
                    when(&s["created_at"]),
                    when(&s["expires_at"]),
                ]);
            }
            table.print("no sandbox identities; `egret sandbox-env --owner O` issues one (with `proxy.auth: basic`)");
            Ok(())
        }
        SandboxCommand::Revoke { id } => {
            client
                .call(
                    Method::DELETE,
                    &format!("/v1/sandboxes/{}", segment(&id)),
                    None,
                )
                .await?;
            eprintln!("revoked sandbox {id}: its credentials and bound placeholders stop at once");
            Ok(())
        }
    }
}
