//! `egret connection …`: users' connections on the running server.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use http::Method;
use serde_json::{Value, json};

use crate::args::{ConnectionCommand, WhichConnection};
use crate::client::{ControlClient, query, segment};
use crate::output::{Table, text, wants_json, when};

pub async fn run(client: ControlClient, cmd: ConnectionCommand) -> Result<()> {
    match cmd {
        ConnectionCommand::List {
            connector,
            owner,
            name,
            format,
        } => {
            let path = format!(
                "/v1/connections{}",
                query(&[("connector", connector), ("owner", owner), ("name", name)])
            );
            let answer = client.get(&path).await?;
            if wants_json(format.output) {
                crate::output::json(&answer);
                return Ok(());
            }
            let mut table = Table::new(&[
                "CONNECTOR",
                "OWNER",
                "NAME",
                "STATUS",
                "CONNECTED AS",
                "DESCRIPTION",
                "CONNECTED",
                "LAST USED",
                "EXPIRES",
                "MISSING SCOPES",
            ]);
            for c in answer["connections"].as_array().into_iter().flatten() {
                let status = match c["status"].as_str() {
                    // Say until when it is kept, or when egret tries again.
                    Some("connector_removed") => {
                        format!("connector_removed (erased {})", when(&c["purge_at"]))
                    }
                    Some("refresh_failing") => {
                        format!("refresh_failing (retry {})", when(&c["next_retry_at"]))
                    }
                    _ => text(&c["status"]),
                };
                table.row(vec![
                    text(&c["connector"]),
                    text(&c["owner"]),
                    text(&c["name"]),
                    status,
                    text(&c["identity_label"]),
                    text(&c["description"]),
                    when(&c["connected_at"]),
                    when(&c["last_used_at"]),
                    when(&c["expires_at"]),
                    text(&c["missing_scopes"]),
                ]);
            }
            table.print("no connections; store a key with `egret connection set-key` or connect with `egret connection connect`");
            Ok(())
        }
        ConnectionCommand::SetKey { which, refs } => {
            let connectors = client
                .call(Method::GET, "/v1/connectors", None)
                .await?
                .unwrap_or(Value::Null);
            let inputs: Vec<(String, bool)> = connectors["connectors"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["id"] == which.connector.as_str())
                .and_then(|c| c["inputs"].as_array())
                .into_iter()
                .flatten()
                .filter_map(|i| Some((i["name"].as_str()?.to_owned(), i["optional"] == true)))
                .collect();
            let body = key_body(&which, &inputs, &refs)?;
            let path = connection_path(&which, "/key");
            client.call(Method::PUT, &path, Some(body)).await?;
            eprintln!("stored the key for {}", label(&which));
            Ok(())
        }
        ConnectionCommand::Test { which, format } => {
            let path = connection_path(&which, "/test");
            let answer = client
                .call(Method::POST, &path, None)
                .await?
                .unwrap_or(Value::Null);
            if wants_json(format.output) {
                crate::output::json(&answer);
            } else {
                say!(
                    "{} ({}, {} ms)",
                    text(&answer["message"]),
                    text(&answer["status"]),
                    text(&answer["latency_ms"])
                );
            }
            if answer["ok"] != Value::Bool(true) {
                bail!("the test of {} failed", label(&which));
            }
            Ok(())
        }
        ConnectionCommand::Update {
            which,
            description,
            identity_label,
        } => {
            let mut body = serde_json::Map::new();
            for (field, value) in [
                ("description", description),
                ("identity_label", identity_label),
            ] {
                // An empty value clears the field.
                if let Some(v) = value {
                    body.insert(
                        field.to_owned(),
                        if v.is_empty() { Value::Null } else { json!(v) },
                    );
                }
            }
            if body.is_empty() {
                bail!("nothing to change; give --description or --identity-label");
            }
            let path = connection_path(&which, "");
            client
                .call(Method::PATCH, &path, Some(Value::Object(body)))
                .await?;
            eprintln!("updated the connection {}", label(&which));
            Ok(())
        }
        ConnectionCommand::Connect { which } => {
            let path = connection_path(&which, "/authorize");
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
                        "open this URL in a browser as {} within 10 minutes to connect {}:",
                        which.owner,
                        label(&which)
                    );
                    say!("{url}");
                }
                Some("connected") => eprintln!("connected {}", label(&which)),
                _ => bail!("unexpected answer from the server: {answer}"),
            }
            Ok(())
        }
        ConnectionCommand::Link {
            connector,
            owner,
            name,
            ttl,
        } => {
            let body = json!({ "owner": owner, "connector": connector, "name": name, "ttl": ttl });
            let answer = client
                .call(Method::POST, "/v1/connect-links", Some(body))
                .await?
                .unwrap_or(Value::Null);
            let url = answer["url"]
                .as_str()
                .context("the server answered without a link")?;
            say!("{url}");
            eprintln!(
                "send it to {owner}: it works once, until {}",
                when(&answer["expires_at"])
            );
            Ok(())
        }
        ConnectionCommand::Remove { which } => {
            let path = connection_path(&which, "");
            let answer = client
                .call(Method::DELETE, &path, None)
                .await?
                .unwrap_or(Value::Null);
            eprintln!(
                "removed the connection {}; its placeholders no longer work",
                label(&which)
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

/// `/v1/connections/{connector}/{owner}`, `tail` (`/key`, `/test`, …) and `?name=`
/// when one is given, each part percent-encoded.
pub(crate) fn connection_path(which: &WhichConnection, tail: &str) -> String {
    format!(
        "/v1/connections/{}/{}{tail}{}",
        segment(&which.connector),
        segment(&which.owner),
        query(&[("name", which.name.clone())])
    )
}

/// `connector / owner`, and `/ name` when one is given: how messages name a connection.
fn label(which: &WhichConnection) -> String {
    match &which.name {
        Some(name) => format!("{} / {} / {name}", which.connector, which.owner),
        None => format!("{} / {}", which.connector, which.owner),
    }
}

/// The key: typed at a prompt that does not echo when stdin is a terminal, else read
/// whole from stdin (a pipe). Never from the command line, where `ps` would show it.
/// The body of `PUT …/key`: one key (or reference), or a value per input — prompted
/// for each on a terminal, else read as `INPUT=VALUE` lines from stdin.
fn key_body(which: &WhichConnection, inputs: &[(String, bool)], refs: &[String]) -> Result<Value> {
    if inputs.is_empty() {
        return match refs {
            [] => Ok(json!({ "key": read_key(which)?.as_str() })),
            [one] if !one.contains('=') || one.contains("://") => Ok(json!({ "ref": one })),
            _ => bail!(
                "connector {} takes one value: give one --ref REFERENCE",
                which.connector
            ),
        };
    }
    let mut values = serde_json::Map::new();
    for r in refs {
        let (input, reference) = match r.split_once('=') {
            Some((i, rest)) if !i.contains("://") => (i.to_owned(), rest.to_owned()),
            _ if inputs.len() == 1 => (inputs[0].0.clone(), r.clone()),
            _ => bail!(
                "connector {} has several inputs; write --ref INPUT=REFERENCE",
                which.connector
            ),
        };
        values.insert(input, json!({ "ref": reference }));
    }
    let missing: Vec<&(String, bool)> = inputs
        .iter()
        .filter(|(n, _)| !values.contains_key(n))
        .collect();
    if std::io::stdin().is_terminal() {
        for (name, optional) in missing {
            let hint = if *optional {
                ", optional: Enter to leave it out"
            } else {
                ""
            };
            let value = zeroize::Zeroizing::new(
                rpassword::prompt_password(format!(
                    "{name} for {} (not shown{hint}): ",
                    label(which)
                ))
                .context("reading a value from the terminal")?,
            );
            if !value.is_empty() {
                values.insert(name.clone(), Value::from(value.as_str()));
            }
        }
    } else if !missing.is_empty() {
        let mut text = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the values from stdin")?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Some((name, value)) = line.split_once('=') else {
                bail!(
                    "expected INPUT=VALUE lines on stdin (inputs: {})",
                    names(inputs)
                );
            };
            values.insert(name.trim().to_owned(), Value::from(value));
        }
    }
    Ok(json!({ "values": values }))
}

fn names(inputs: &[(String, bool)]) -> String {
    inputs
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_key(which: &WhichConnection) -> Result<zeroize::Zeroizing<String>> {
    let key = if std::io::stdin().is_terminal() {
        zeroize::Zeroizing::new(
            rpassword::prompt_password(format!("key for {} (not shown): ", label(which)))
                .context("reading the key from the terminal")?,
        )
    } else {
        let mut key = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut key)
            .context("reading the key from stdin")?;
        key
    };
    let trimmed = key.trim_end_matches(['\r', '\n']);
    if trimmed.is_empty() {
        bail!(
            "no key given; type it at the prompt, or pipe it in, e.g. `printf %s \"$KEY\" | egret connection set-key {} --owner {}`",
            which.connector,
            which.owner
        );
    }
    Ok(zeroize::Zeroizing::new(trimmed.to_owned()))
}
