//! Every command but `serve`'s internals: thin wrappers that print what the API answers.
//! One module per command group; `output` decides how listings look.

mod approvals;
mod audit;
mod ca;
mod connections;
mod connectors;
mod placeholders;
mod policy;
mod sandboxes;
mod status;
mod tokens;

use anyhow::{Result, bail};
use clap::CommandFactory;

use crate::args::*;
use crate::client::ControlClient;
use crate::config::load_policy;
use crate::output::count;

pub async fn run(cli: Cli) -> Result<()> {
    let Cli { config, command } = cli;
    match command {
        Command::Serve(args) => {
            init_logging(&args.log_format)?;
            crate::serve::run(&config, &args).await
        }
        Command::Status { remote, format } => status::status(&config, &remote, format).await,
        Command::Health { remote } => status::health(&config, &remote).await,
        Command::Ca(cmd) => ca::run(&config, cmd),
        Command::Vault(VaultCommand::RotateKey) => {
            let policy = load_policy(&config)?;
            let rotated = egret_app::rotate_master_key(&policy)?;
            say!(
                "rotated the master key: re-sealed {}, {} and {}; authenticated {} anew",
                count(rotated.connections as u64, "connection"),
                count(rotated.connectors as u64, "connector"),
                count(rotated.authorizations as u64, "pending authorization"),
                count(
                    rotated.authenticated as u64,
                    "placeholder, sandbox or connect-link row"
                ),
            );
            if rotated.forged_dropped > 0 {
                say!(
                    "dropped {} that failed authentication under the old key (written without it)",
                    count(rotated.forged_dropped as u64, "row")
                );
            }
            Ok(())
        }
        Command::Vault(VaultCommand::Migrate { to }) => {
            let policy = load_policy(&config)?;
            let m = egret_app::to_postgres(&policy, &to)?;
            say!(
                "copied the vault {} into {}: {} ({}, {}, {}), {}, {}; verified",
                m.source,
                m.target,
                count(m.records as u64, "record"),
                count(m.connections as u64, "connection"),
                count(m.placeholders as u64, "placeholder"),
                count(m.sandboxes as u64, "sandbox"),
                count(m.audit_events as u64, "audit event"),
                count(m.webhook_deliveries as u64, "webhook delivery"),
            );
            say!("{}", m.ca);
            say!(
                "next: set `vault: {{backend: postgres, url: ${{env:EGRET_DATABASE_URL}}}}` with the same master_key, and start the replicas; keep {} as a backup until they serve",
                m.source
            );
            Ok(())
        }
        Command::Ui(UiCommand::Sessions(UiSessionsCommand::End)) => {
            let policy = load_policy(&config)?;
            let ended = egret_app::end_admin_sessions(&policy)?;
            say!(
                "ended {}: administrators sign in again with the admin token",
                count(ended as u64, "administrator session")
            );
            Ok(())
        }
        Command::Policy(PolicyCommand::Check { file, format }) => {
            policy::check(file.as_deref().unwrap_or(&config), format)
        }
        Command::Connector { remote, command } => connectors::run(&config, &remote, command).await,
        Command::Connection { remote, command } => {
            connections::run(client(&config, &remote)?, command).await
        }
        Command::Placeholder { remote, command } => {
            placeholders::run(client(&config, &remote)?, command).await
        }
        Command::Sandbox { remote, command } => {
            sandboxes::run(client(&config, &remote)?, command).await
        }
        Command::Token { remote, command } => tokens::run(client(&config, &remote)?, command).await,
        Command::Approval { remote, command } => {
            approvals::run(client(&config, &remote)?, command).await
        }
        Command::Audit {
            remote,
            command:
                AuditCommand::Tail {
                    follow,
                    connector,
                    owner,
                    output,
                },
        } => {
            let client = client(&config, &remote)?;
            audit::tail(&client, follow, connector, owner, output).await
        }
        Command::SandboxEnv {
            remote,
            owner,
            sandbox,
            ttl,
            ca_bundle,
            proxy_url,
        } => {
            let policy = load_policy(&config)?;
            let client = ControlClient::new(&policy, remote.server.as_deref())?;
            crate::sandbox_env::run(crate::sandbox_env::Request {
                policy: &policy,
                client: &client,
                owner: &owner,
                sandbox: sandbox.as_deref(),
                ttl: &ttl,
                bundle: ca_bundle,
                proxy_url,
            })
            .await
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "egret", &mut out);
            crate::emit(&String::from_utf8_lossy(&out))?;
            Ok(())
        }
    }
}

/// A client for the running server the policy (and `--server`) point at; with a policy
/// file that does not parse, `--server` (or `EGRET_CONTROL_LISTEN`) and
/// `EGRET_ADMIN_TOKEN` still reach it.
fn client(config: &std::path::Path, remote: &Remote) -> Result<ControlClient> {
    match load_policy(config) {
        Ok(policy) => ControlClient::new(&policy, remote.server.as_deref()),
        Err(e) => ControlClient::despite_policy(&e, config, remote.server.as_deref(), true),
    }
}

fn init_logging(format: &str) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("EGRET_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        // Untrusted values reach log fields: no control character gets out raw.
        "text" => builder
            .with_writer(crate::log_writer::EscapingStderr { ansi })
            .init(),
        // JSON escapes control characters in strings itself.
        "json" => builder.json().with_writer(std::io::stderr).init(),
        other => bail!("unknown log format `{other}`; expected `text` or `json`"),
    }
    Ok(())
}
