//! Every command but `serve`'s internals: thin wrappers that print what the API answers.

use std::io::Read;

use anyhow::{Context, Result, bail};
use http::Method;
use serde_json::{Value, json};

use crate::args::*;
use crate::client::{ControlClient, segment};
use crate::config::load_policy;

pub async fn run(cli: Cli) -> Result<()> {
    let Cli {
        config,
        server,
        command,
    } = cli;
    let target = Target { config, server };
    let cli = &target;
    match command {
        Command::Serve {
            log_format,
            workers,
        } => {
            init_logging(&log_format)?;
            crate::serve::run(&cli.config, workers).await
        }
        Command::Ca(cmd) => ca(&cli.config, cmd),
        Command::Vault(VaultCommand::RotateKey) => {
            let policy = load_policy(&cli.config)?;
            let rotated = crate::setup::rotate_master_key(&policy)?;
            say!(
                "rotated the master key: re-sealed {} connections, {} connectors, {} pending authorizations",
                rotated.connections,
                rotated.connectors,
                rotated.authorizations
            );
            Ok(())
        }
        Command::Policy(PolicyCommand::Check { file }) => {
            let policy = egret_policy::load(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
            say!(
                "ok: {} ({} connectors, {} allowed hosts)",
                file.display(),
                policy.connectors.len(),
                policy.network.allow.len()
            );
            let resolved: Vec<Value> = policy
                .connectors
                .iter()
                .map(egret_control::connector_view)
                .collect();
            print_json(Some(json!({ "connectors": resolved })));
            Ok(())
        }
        Command::Connector(cmd) => {
            let path = match cmd {
                ConnectorCommand::Templates => {
                    print_templates();
                    return Ok(());
                }
                ConnectorCommand::List => "/v1/connectors".to_owned(),
                ConnectorCommand::Get { id } => format!("/v1/connectors/{}", segment(&id)),
                ConnectorCommand::Create { file } => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let entry: Value = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", file.display()))?;
                    let answer = client(cli)?
                        .call(Method::POST, "/v1/connectors", Some(entry))
                        .await?;
                    print_json(answer);
                    return Ok(());
                }
                ConnectorCommand::Purge { id } => {
                    let answer = client(cli)?
                        .call(
                            Method::POST,
                            &format!("/v1/connectors/{}/purge", segment(&id)),
                            None,
                        )
                        .await?
                        .unwrap_or(Value::Null);
                    eprintln!(
                        "purged connector {id}: {} erased, with the placeholders",
                        count(
                            answer["connections_erased"].as_u64().unwrap_or(0),
                            "connection"
                        )
                    );
                    return Ok(());
                }
                ConnectorCommand::Enable { id } => return set_enabled(cli, &id, true).await,
                ConnectorCommand::Disable { id } => return set_enabled(cli, &id, false).await,
                ConnectorCommand::Remove { id } => {
                    let answer = client(cli)?
                        .call(
                            Method::DELETE,
                            &format!("/v1/connectors/{}", segment(&id)),
                            None,
                        )
                        .await?
                        .unwrap_or(Value::Null);
                    eprintln!(
                        "deleted connector {id}: {} erased, with the placeholders",
                        count(
                            answer["connections_erased"].as_u64().unwrap_or(0),
                            "connection"
                        )
                    );
                    return Ok(());
                }
            };
            print_json(client(cli)?.call(Method::GET, &path, None).await?);
            Ok(())
        }
        Command::Connection(cmd) => connection(cli, cmd).await,
        Command::Placeholder(cmd) => placeholder(cli, cmd).await,
        Command::Audit(AuditCommand::Tail {
            follow,
            connector,
            owner,
        }) => {
            let mut filter = String::new();
            if let Some(c) = connector {
                filter.push_str(&format!("&connector={}", segment(&c)));
            }
            if let Some(o) = owner {
                filter.push_str(&format!("&owner={}", segment(&o)));
            }
            audit(cli, follow, &filter).await
        }
        Command::SandboxEnv {
            owner,
            sandbox,
            ttl,
            ca_bundle,
            proxy_url,
        } => {
            let policy = load_policy(&cli.config)?;
            let client = ControlClient::new(&policy, cli.server.as_deref())?;
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
    }
}

/// The parts of the command line every command shares.
struct Target {
    config: std::path::PathBuf,
    server: Option<String>,
}

fn client(cli: &Target) -> Result<ControlClient> {
    let policy = load_policy(&cli.config)?;
    ControlClient::new(&policy, cli.server.as_deref())
}

fn ca(config: &std::path::Path, cmd: CaCommand) -> Result<()> {
    let policy = load_policy(config)?;
    match cmd {
        CaCommand::Init { dir } => {
            let dir = dir.unwrap_or_else(|| policy.ca.dir.clone());
            if dir.join(egret_tls::CA_CERT_FILE).exists()
                || dir.join(egret_tls::CA_KEY_FILE).exists()
            {
                bail!(
                    "a CA already exists in {}; remove it first if you really want a new one (sandboxes trusting the old one will stop working)",
                    dir.display()
                );
            }
            egret_tls::CertificateAuthority::create_for(&dir, &crate::setup::ca_limits(&policy)?)?;
            eprintln!(
                "created {} and {} (mode 0600)",
                dir.join(egret_tls::CA_CERT_FILE).display(),
                dir.join(egret_tls::CA_KEY_FILE).display()
            );
            Ok(())
        }
        CaCommand::Export => {
            let path = policy.ca.dir.join(egret_tls::CA_CERT_FILE);
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

async fn connection(cli: &Target, cmd: ConnectionCommand) -> Result<()> {
    let client = client(cli)?;
    match cmd {
        ConnectionCommand::List { connector, owner } => {
            let mut query = Vec::new();
            if let Some(c) = connector {
                query.push(format!("connector={}", segment(&c)));
            }
            if let Some(o) = owner {
                query.push(format!("owner={}", segment(&o)));
            }
            let path = format!("/v1/connections?{}", query.join("&"));
            let answer = client
                .call(Method::GET, &path, None)
                .await?
                .unwrap_or(Value::Null);
            say!(
                "{:<16} {:<24} {:<8} {:<13} {:<12} {:<12} SCOPES",
                "CONNECTOR",
                "OWNER",
                "KIND",
                "STATUS",
                "CONNECTED_AT",
                "EXPIRES_AT"
            );
            for c in answer["connections"].as_array().into_iter().flatten() {
                let scopes: Vec<&str> = c["scopes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                say!(
                    "{:<16} {:<24} {:<8} {:<13} {:<12} {:<12} {}",
                    c["connector"].as_str().unwrap_or_default(),
                    c["owner"].as_str().unwrap_or_default(),
                    c["kind"].as_str().unwrap_or_default(),
                    c["status"].as_str().unwrap_or_default(),
                    c["connected_at"],
                    c["expires_at"],
                    scopes.join(" ")
                );
            }
            Ok(())
        }
        ConnectionCommand::SetKey { connector, owner } => {
            let mut key = String::new();
            std::io::stdin()
                .read_to_string(&mut key)
                .context("reading the key from stdin")?;
            let key = key.trim_end_matches(['\r', '\n']);
            if key.is_empty() {
                bail!(
                    "no key on stdin; pipe it in, e.g. `printf %s \"$KEY\" | egret connection set-key {connector} --owner {owner}`"
                );
            }
            let path = format!(
                "/v1/connections/{}/{}/key",
                segment(&connector),
                segment(&owner)
            );
            client
                .call(Method::PUT, &path, Some(json!({ "key": key })))
                .await?;
            eprintln!("stored the key for {connector} / {owner}");
            Ok(())
        }
        ConnectionCommand::Connect { connector, owner } => {
            let path = format!(
                "/v1/connections/{}/{}/authorize",
                segment(&connector),
                segment(&owner)
            );
            let answer = client
                .call(Method::POST, &path, None)
                .await?
                .unwrap_or(Value::Null);
            match answer["status"].as_str() {
                Some("redirect") => {
                    let url = answer["authorization_url"]
                        .as_str()
                        .context("the server answered without an authorization URL")?;
                    eprintln!(
                        "open this URL in a browser as {owner} within 10 minutes to connect {connector}:"
                    );
                    say!("{url}");
                }
                Some("connected") => eprintln!("connected {connector} / {owner}"),
                _ => bail!("unexpected answer from the server: {answer}"),
            }
            Ok(())
        }
        ConnectionCommand::Remove { connector, owner } => {
            let path = format!(
                "/v1/connections/{}/{}",
                segment(&connector),
                segment(&owner)
            );
            let answer = client
                .call(Method::DELETE, &path, None)
                .await?
                .unwrap_or(Value::Null);
            eprintln!(
                "removed the connection {connector} / {owner}; its placeholders no longer work"
            );
            if let Some(failed) = answer["vendor_revocation"]
                .as_str()
                .and_then(|r| r.strip_prefix("failed: "))
            {
                eprintln!("warning: the vendor did not confirm revoking the grant: {failed}");
            }
            Ok(())
        }
    }
}

async fn placeholder(cli: &Target, cmd: PlaceholderCommand) -> Result<()> {
    let client = client(cli)?;
    match cmd {
        PlaceholderCommand::Mint {
            connector,
            owner,
            ttl,
            sandbox,
        } => {
            let body =
                json!({ "connector": connector, "owner": owner, "ttl": ttl, "sandbox": sandbox });
            let answer = client
                .call(Method::POST, "/v1/placeholders", Some(body))
                .await?
                .unwrap_or(Value::Null);
            let p = answer["placeholder"]
                .as_str()
                .context("the server answered without a placeholder")?;
            say!("{p}");
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

async fn audit(cli: &Target, follow: bool, filter: &str) -> Result<()> {
    let client = client(cli)?;
    let mut since = 0u64;
    loop {
        let answer = client
            .call(
                Method::GET,
                &format!("/v1/audit?since={since}{filter}"),
                None,
            )
            .await?
            .unwrap_or(Value::Null);
        let events = answer["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            say!("{e}");
            since = since.max(e["seq"].as_u64().unwrap_or(since));
        }
        // Page through everything there is; then stop, or wait for more.
        if events.is_empty() {
            if !follow {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}

async fn set_enabled(cli: &Target, id: &str, enabled: bool) -> Result<()> {
    client(cli)?
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
        say!("{}\n  {}", t.name, t.summary);
        for (key, what) in t.settings {
            say!("  settings.{key}: {what}");
        }
    }
}

/// `1 connection`, `2 connections`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn print_json(value: Option<Value>) {
    if let Some(v) = value {
        say!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
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
