//! `egret sandbox-env`: the `export` lines a sandbox needs — proxy, CA bundle, and one
//! placeholder variable per connection of the owner — and the CA bundle file itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use egret_service::ConnectionName;
use http::Method;
use serde_json::{Value, json};

use crate::client::{ControlClient, segment};

/// Where distributions keep the system's trusted roots, most common first.
const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Every variable a tool reads for its CA bundle.
const CA_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    // botocore (boto3, the AWS CLI) reads no other.
    "AWS_CA_BUNDLE",
];

pub struct Request<'a> {
    pub policy: &'a egret_policy::Policy,
    pub client: &'a ControlClient,
    pub owner: &'a str,
    pub sandbox: Option<&'a str>,
    pub ttl: &'a str,
    pub bundle: Option<PathBuf>,
    pub proxy_url: Option<String>,
}

pub async fn run(r: Request<'_>) -> Result<()> {
    // Checked before anything is written or issued.
    if let Err(why) = egret_service::Owner::parse(r.owner) {
        bail!("--owner `{}`: {why}", r.owner);
    }
    let proxy = match r.proxy_url {
        Some(url) => url,
        None => {
            let listen = proxy_address(&r).await?;
            if listen.ip().is_unspecified() {
                bail!(
                    "proxy.listen is {listen}, which a sandbox cannot dial; pass --proxy-url http://<address the sandbox reaches>:{}",
                    listen.port()
                );
            }
            format!("http://{listen}")
        }
    };
    // With proxy authentication the sandbox gets an identity; its placeholders are bound
    // to it and its proxy URL carries the credentials.
    let mut sandbox = r.sandbox.map(str::to_owned);
    let proxy = if r.policy.proxy.auth == egret_policy::ProxyAuth::Basic {
        let issued = r
            .client
            .call(
                Method::POST,
                "/v1/sandboxes",
                Some(json!({ "id": r.sandbox, "ttl": r.ttl })),
            )
            .await?
            .unwrap_or(Value::Null);
        let id = issued["id"]
            .as_str()
            .context("the server answered without a sandbox id")?;
        let secret = issued["secret"]
            .as_str()
            .context("the server answered without a secret")?;
        eprintln!(
            "sandbox {id}: credentials issued (valid {}); any earlier secret of it no longer works",
            r.ttl
        );
        sandbox = Some(id.to_owned());
        match proxy.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://{id}:{secret}@{rest}"),
            None => format!("http://{id}:{secret}@{proxy}"),
        }
    } else {
        proxy
    };
    let bundle = r
        .bundle
        .unwrap_or_else(|| r.policy.ca.dir.join("sandbox-ca-bundle.pem"));
    // Variables must work from any directory.
    let bundle = std::path::absolute(&bundle).unwrap_or(bundle);

    let connections = r
        .client
        .call(
            Method::GET,
            &format!("/v1/connections?owner={}", segment(r.owner)),
            None,
        )
        .await?
        .unwrap_or(Value::Null);
    let connectors = r
        .client
        .call(Method::GET, "/v1/connectors", None)
        .await?
        .unwrap_or(Value::Null);
    let by_id: BTreeMap<&str, &Value> = connectors["connectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["id"].as_str()?, c)))
        .collect();

    // Written once the server has answered for this owner: a refused request leaves no
    // file behind.
    write_bundle(&r.policy.ca.dir, &bundle)?;
    let mut lines = vec![
        export("HTTPS_PROXY", &proxy),
        export("HTTP_PROXY", &proxy),
        export("https_proxy", &proxy),
        export("http_proxy", &proxy),
        export("NO_PROXY", "localhost,127.0.0.1,::1"),
        export("no_proxy", "localhost,127.0.0.1,::1"),
        export("NODE_USE_ENV_PROXY", "1"),
    ];
    let bundle_text = bundle.to_string_lossy();
    lines.extend(CA_VARIABLES.iter().map(|v| export(v, &bundle_text)));

    let mut minted_any = 0usize;
    for conn in connections["connections"].as_array().into_iter().flatten() {
        let (Some(id), Some(status)) = (conn["connector"].as_str(), conn["status"].as_str()) else {
            continue;
        };
        // Records from before names are `default`; a name the server sent is valid.
        let name = conn["name"]
            .as_str()
            .and_then(|n| ConnectionName::parse(n).ok())
            .unwrap_or_default();
        if status == "needs_reauth" {
            eprintln!(
                "skipped {id} ({name}): the connection needs to be authorized again (`egret connection connect {id} --owner {}{}`)",
                r.owner,
                name.flag()
            );
            continue;
        }
        if status != "connected" && status != "refresh_failing" {
            eprintln!(
                "skipped {id} ({name}): the connection is {status} (`egret connection list --owner {}` says more)",
                r.owner
            );
            continue;
        }
        let Some(connector) = by_id.get(id) else {
            continue;
        };
        let minted = r
            .client
            .call(
                Method::POST,
                "/v1/placeholders",
                Some(
                    json!({ "connector": id, "owner": r.owner, "name": name, "ttl": r.ttl, "sandbox": sandbox }),
                ),
            )
            .await?
            .unwrap_or(Value::Null);
        let placeholder = minted["placeholder"]
            .as_str()
            .context("the server answered without a placeholder")?;
        minted_any += 1;
        let first_host = connector["egress"][0].as_str().unwrap_or_default();
        for (var, what) in connector["env"].as_object().into_iter().flatten() {
            let what = what.as_str().unwrap_or_default();
            if what == "placeholder" {
                lines.push(export(&name.env_var(var), placeholder));
            } else if what == "url" && !first_host.starts_with("*.") {
                lines.push(export(var, &format!("https://{first_host}")));
            } else if let Some(input) = what.strip_prefix("input:") {
                // One variable per input (an AWS key pair, an API key and its secret).
                if let Some(p) = minted["placeholders"][input].as_str() {
                    lines.push(export(&name.env_var(var), p));
                }
            } else if let Some(text) = what.strip_prefix("text:") {
                lines.push(export(var, text));
            }
        }
    }
    if minted_any == 0 {
        eprintln!(
            "note: {} has no connection to use yet, so the sandbox gets no placeholder; send them a connect link (`egret connection link --owner {}`) or store a key (`egret connection set-key`)",
            r.owner, r.owner
        );
    }
    for line in lines {
        say!("{line}");
    }
    eprintln!("{NODE_NOTE}");
    Ok(())
}

/// Node.js reads HTTPS_PROXY only when told to, and only from 22.21 and 24 on.
const NODE_NOTE: &str = "note: NODE_USE_ENV_PROXY=1 makes Node.js use the proxy only on Node >= 22.21 (22.x) or >= 24; Node 20 ignores it: there, install undici and run `setGlobalDispatcher(new EnvHttpProxyAgent())` first (see the README, \"Setting up a sandbox\")";

/// Where the sandbox's proxy is: where the running server says its proxy listens (it
/// may run on `--proxy-listen` / `EGRET_PROXY_LISTEN`, or a port the system picked, not
/// the policy file's `proxy.listen`); else `EGRET_PROXY_LISTEN` in this environment; else
/// the policy file's.
async fn proxy_address(r: &Request<'_>) -> Result<std::net::SocketAddr> {
    let reported = r.client.proxy_listen().await;
    if let Ok(listen) = reported {
        return Ok(listen);
    }
    if let Ok(text) = std::env::var("EGRET_PROXY_LISTEN") {
        return text
            .trim()
            .parse()
            .with_context(|| format!("EGRET_PROXY_LISTEN is `{text}`, not an address and port"));
    }
    let listen = r.policy.proxy.listen;
    if listen.port() == 0 {
        // The system picks the port at start: only the server can say which.
        return reported;
    }
    Ok(listen)
}

/// The system's roots followed by egret's CA: tools that *replace* their trust store
/// with this file still reach the rest of the internet (through `network.allow`).
fn write_bundle(ca_dir: &Path, bundle: &Path) -> Result<()> {
    let ca_path = ca_dir.join(egret_app::ca::CERT_FILE);
    let ca = std::fs::read_to_string(&ca_path).with_context(|| {
        format!(
            "no CA at {}; run `egret serve` once first",
            ca_path.display()
        )
    })?;
    let mut text = String::new();
    match SYSTEM_ROOTS.iter().find(|p| Path::new(p).is_file()) {
        Some(roots) => {
            text = std::fs::read_to_string(roots).with_context(|| format!("reading {roots}"))?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        None => eprintln!(
            "no system CA bundle found; {} holds only egret's CA",
            bundle.display()
        ),
    }
    text.push_str("# egret interception CA\n");
    text.push_str(&ca);
    if let Some(dir) = bundle.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(bundle, text).with_context(|| format!("writing {}", bundle.display()))?;
    eprintln!("wrote the CA bundle {}", bundle.display());
    Ok(())
}

/// `export NAME='value'`, quoted for any POSIX shell.
fn export(name: &str, value: &str) -> String {
    format!("export {name}='{}'", value.replace('\'', r"'\''"))
}
