//! `egret status` (what a running egret is, and what needs attention) and `egret
//! health` (a container's HEALTHCHECK).

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::args::{Format, Remote};
use crate::config::load_policy;
use crate::output::{count, wants_json, when};

/// A CA this close to its end is worth a line under "needs attention".
const CA_WARN_DAYS: i64 = 30;

pub async fn status(config: &std::path::Path, remote: &Remote, format: Format) -> Result<()> {
    let policy = match load_policy(config) {
        Ok(policy) => policy,
        Err(e) => return status_despite_policy(&e, config, remote, format).await,
    };
    let mut attention: Vec<String> = policy.unresolved_secrets();
    let ca_path = egret_app::ca::cert_path(&policy);
    let ca_expires = egret_app::ca::not_after(&policy);
    match ca_expires {
        None => attention.push(format!(
            "no CA at {}: `egret serve` creates one on first start",
            ca_path.display()
        )),
        Some(t) if t - crate::output::unix_now() < CA_WARN_DAYS * 86_400 => attention.push(format!(
            "the CA expires {}: make a new one (`egret ca init` in a new directory) and hand it to sandboxes",
            when(&json!(t))
        )),
        Some(_) => {}
    }
    let client = crate::client::ControlClient::new(&policy, remote.server.as_deref());
    // The address actually asked, in text and JSON alike.
    let asked = crate::client::ControlClient::without_token(&policy, remote.server.as_deref())
        .base()
        .to_owned();
    let server = match &client {
        Ok(c) => Server::ask(c).await,
        Err(e) => Server::Down(e.to_string()),
    };
    if let Server::Up { connections, .. } = &server {
        for c in connections {
            match c["status"].as_str() {
                Some("needs_reauth") => attention.push(format!(
                    "connection {} / {} needs the user to reconnect (`egret connection connect`)",
                    c["connector"].as_str().unwrap_or_default(),
                    c["owner"].as_str().unwrap_or_default()
                )),
                Some("connector_removed") => attention.push(format!(
                    "connection {} / {} is kept for a connector removed from the policy, erased {}",
                    c["connector"].as_str().unwrap_or_default(),
                    c["owner"].as_str().unwrap_or_default(),
                    when(&c["purge_at"])
                )),
                _ => {}
            }
        }
    }
    attention.extend(server.attention());
    let by_status = match &server {
        Server::Up { connections, .. } => {
            let mut m = std::collections::BTreeMap::<String, u64>::new();
            for c in connections {
                *m.entry(c["status"].as_str().unwrap_or("unknown").to_owned())
                    .or_default() += 1;
            }
            Some(m)
        }
        Server::Down(_) => None,
    };
    if wants_json(format.output) {
        let (up, connectors, sandboxes) = match &server {
            Server::Up {
                connectors,
                sandboxes,
                ..
            } => (true, Some(*connectors), Some(*sandboxes)),
            Server::Down(_) => (false, None, None),
        };
        crate::output::json(&json!({
            "server": { "up": up, "control": asked, "proxy": proxy_of(&server).unwrap_or_else(|| policy.proxy.listen.to_string()) },
            "policy": policy.source.display().to_string(),
            "vault": egret_app::vault_place(&policy),
            "ca": { "path": ca_path.display().to_string(), "expires_at": ca_expires },
            "connectors": connectors,
            "connections": by_status,
            "sandboxes": sandboxes,
            "attention": attention,
        }));
        return down_is_failure(&server);
    }
    match &server {
        Server::Up { proxy, .. } => say!("server:      up (control {asked}, proxy {proxy})"),
        Server::Down(_) => say!("server:      not answering at {asked}"),
    }
    say!("policy:      {}", policy.source.display());
    say!("vault:       {}", egret_app::vault_place(&policy));
    say!(
        "CA:          {} (expires {})",
        ca_path.display(),
        ca_expires.map_or("-".to_owned(), |t| when(&json!(t)))
    );
    if let Server::Up {
        connectors,
        sandboxes,
        ..
    } = &server
    {
        say!("connectors:  {connectors}");
        let statuses = by_status
            .unwrap_or_default()
            .into_iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>();
        say!(
            "connections: {}",
            if statuses.is_empty() {
                "none".to_owned()
            } else {
                statuses.join(", ")
            }
        );
        say!("sandboxes:   {sandboxes}");
    }
    if attention.is_empty() {
        say!("nothing needs attention");
    } else {
        say!(
            "needs attention ({}):",
            count(attention.len() as u64, "item")
        );
        for a in &attention {
            say!("  - {a}");
        }
    }
    down_is_failure(&server)
}

/// `status` exits non-zero when the server does not answer (scripts and probes can tell).
fn down_is_failure(server: &Server) -> Result<()> {
    match server {
        Server::Up { .. } => Ok(()),
        Server::Down(why) => bail!("the server is not answering: {why}"),
    }
}

fn proxy_of(server: &Server) -> Option<String> {
    match server {
        Server::Up { proxy, .. } => Some(proxy.clone()),
        Server::Down(_) => None,
    }
}

/// What the running server said, or why it said nothing.
enum Server {
    Up {
        proxy: String,
        connectors: u64,
        connections: Vec<Value>,
        sandboxes: u64,
        /// The policy file's last reload, when it was refused and not fixed since.
        reload_refused: Option<String>,
    },
    Down(String),
}

impl Server {
    /// What needs attention in what the server said (or did not say), for both kinds of
    /// `status`.
    fn attention(&self) -> Vec<String> {
        match self {
            Self::Up {
                reload_refused: Some(error),
                ..
            } => vec![format!(
                "the policy file's last reload was refused ({error}); the server runs the previous policy"
            )],
            Self::Up { .. } => Vec::new(),
            Self::Down(why) => vec![format!("the server is not answering: {why}")],
        }
    }

    async fn ask(client: &crate::client::ControlClient) -> Self {
        let answers = async {
            let ready = client.get("/readyz").await?;
            let connections = client.get("/v1/connections").await?;
            let sandboxes = client.get("/v1/sandboxes").await?;
            anyhow::Ok((ready, connections, sandboxes))
        };
        match answers.await {
            Ok((ready, connections, sandboxes)) => Self::Up {
                proxy: ready["proxy"].as_str().unwrap_or("-").to_owned(),
                connectors: ready["connectors"].as_u64().unwrap_or(0),
                connections: connections["connections"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                sandboxes: sandboxes["sandboxes"]
                    .as_array()
                    .map_or(0, |s| s.len() as u64),
                reload_refused: ready["policy_reload_refused"]["error"]
                    .as_str()
                    .map(str::to_owned),
            },
            Err(e) => Self::Down(format!("{e:#}")),
        }
    }
}

/// `status` when the policy file does not parse: what the server says (it runs its
/// previous policy), and the file's error as the first thing needing attention. Exits
/// non-zero when the server does not answer.
async fn status_despite_policy(
    error: &anyhow::Error,
    config: &std::path::Path,
    remote: &Remote,
    format: Format,
) -> Result<()> {
    let client = crate::client::ControlClient::despite_policy(
        error,
        config,
        remote.server.as_deref(),
        true,
    )?;
    let server = Server::ask(&client).await;
    let mut attention = vec![format!(
        "{} has an error: {error:#}; the server runs the previous policy",
        config.display()
    )];
    attention.extend(server.attention());
    if wants_json(format.output) {
        let (up, proxy, connectors) = match &server {
            Server::Up {
                proxy, connectors, ..
            } => (true, Some(proxy.clone()), Some(*connectors)),
            Server::Down(_) => (false, None, None),
        };
        crate::output::json(&json!({
            "server": { "up": up, "control": client.base(), "proxy": proxy },
            "policy": config.display().to_string(),
            "connectors": connectors,
            "attention": attention,
        }));
    } else {
        match &server {
            Server::Up { proxy, .. } => {
                say!("server:      up (control {}, proxy {proxy})", client.base())
            }
            Server::Down(_) => say!("server:      not answering at {}", client.base()),
        }
        say!("policy:      {} (does not parse)", config.display());
        say!(
            "needs attention ({}):",
            count(attention.len() as u64, "item")
        );
        for a in &attention {
            say!("  - {a}");
        }
    }
    down_is_failure(&server)
}

/// Exit 0 when `/readyz` says ready within a few seconds; an error (exit 1) otherwise:
/// an egret that runs but cannot read its vault (or, on PostgreSQL, hear the other
/// replicas) is not healthy. It needs only the server's address: with `--server` the
/// policy file is not read (a typo in it must not mark a healthy server unhealthy).
pub async fn health(config: &std::path::Path, remote: &Remote) -> Result<()> {
    let client = match (remote.server.as_deref(), load_policy(config)) {
        (Some(server), _) => crate::client::ControlClient::at_server(server),
        (None, Ok(policy)) => crate::client::ControlClient::without_token(&policy, None),
        (None, Err(e)) => crate::client::ControlClient::despite_policy(&e, config, None, false)?,
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), client.get("/readyz"))
        .await
        .map_err(|_| anyhow::anyhow!("/readyz did not answer within 5s"))??;
    if answer["status"] != "ready" {
        bail!("/readyz answered {answer}");
    }
    say!("ok");
    Ok(())
}
