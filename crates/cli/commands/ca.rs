//! `egret ca init|export`: the interception CA, on disk; needs no server.

use anyhow::{Context, Result};

use crate::args::CaCommand;
use crate::config::load_policy;

pub fn run(config: &std::path::Path, cmd: CaCommand) -> Result<()> {
    let policy = load_policy(config)?;
    match cmd {
        CaCommand::Init { dir } => {
            let (cert, key) = egret_app::ca::init(&policy, dir)?;
            eprintln!(
                "created {} and {} (mode 0600)",
                cert.display(),
                key.display()
            );
            Ok(())
        }
        CaCommand::Export => {
            let path = egret_app::ca::cert_path(&policy);
            let pem = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "no CA at {}; run `egret serve` or `egret ca init` first",
                    path.display()
                )
            })?;
            crate::emit(&pem)?;
            Ok(())
        }
    }
}
