//! The policy: what egret lets out and where credentials may go.
//!
//! Owns the YAML policy file format (the README's "Policy reference"): parsing raw structs
//! (`raw`), turning them into types that cannot be invalid (`validate` -> `model`), host
//! patterns (`host`), secret references (`secret_ref`), the built-in vendor templates
//! (`templates`), where events are delivered (`webhook`), how requests that carry
//! a connector's credential are sent (`request`), what an agent may do with it (`access`,
//! and `mcp` for MCP servers' tools) and what can be wrong with a file (`error`). Synchronous and without I/O beyond reading a file: it never opens a
//! socket or watches a file, and reads a secret only when asked (`SecretRef::read`).

mod access;
mod credential;
mod error;
mod host;
mod mcp;
mod model;
mod paths;
mod raw;
mod request;
mod secret_ref;
mod sources;
mod suggest;
pub mod templates;
mod ui;
mod validate;
mod webhook;

use std::path::Path;

pub use access::{Access, Action, PathGlob, RequestFacts, RequestRule, Verdict, normalized_path};
pub use credential::{
    AssumeRole, AwsSettings, HmacRecipe, Input, InputField, aws_inputs, hmac_recipe,
};
pub use error::{Located, PolicyError, Problems};
pub use host::{HostPattern, canonical_ip, ip_literal, is_ip_literal, normalize_host};
pub use mcp::McpTools;
pub use model::*;

pub use request::{RequestSettings, Retries};
pub use secret_ref::{ExternalSecret, SecretRef};
pub use sources::{
    AwsSmSource, ExternalRef, GcpSmSource, OpSource, Scheme, SecretSources, SourceTiming,
    VaultAuth, VaultSource,
};
pub use suggest::closest;
pub use ui::{OidcSettings, RoleMatch, UiSettings};
pub use webhook::{EventKind, Webhook, shown_url};

/// The policy `egret serve` runs when `config/egret.yaml` does not exist: `config/default.yaml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../config/default.yaml");

/// Reads and validates a policy file.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path, &validate::base_dir(path)).map_err(PolicyError::Invalid)
}

/// Parses policy text; `file` names it in errors, `base` is where relative paths resolve.
/// A file that does not read as YAML of the right shape stops at its first such problem;
/// past that, every problem is reported.
pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Policy, Problems> {
    let raw: raw::RawPolicy =
        serde_saphyr::from_str(text).map_err(|e| Problems::one(yaml_error(&e, file, text)))?;
    validate::validate(raw, file, base)
}

/// serde's "unknown field `egres`, expected one of id, egress, …" with the near one named.
fn did_you_mean(message: &str) -> String {
    let unknown = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"));
    let Some((typed, rest)) = unknown.and_then(|m| m.split_once('`')) else {
        return message.to_owned();
    };
    let expected = rest
        .split_once("expected one of ")
        .or_else(|| rest.split_once("expected "))
        .map_or("", |(_, list)| list);
    let known = expected
        .split(", ")
        .map(|w| w.trim_matches(|c: char| c == '`' || c.is_whitespace()));
    match closest(typed, known) {
        Some(near) => format!("{message}; did you mean `{near}`?"),
        None => message.to_owned(),
    }
}

fn yaml_error(e: &serde_saphyr::Error, file: &Path, text: &str) -> Located {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    // The crate's rendering repeats the position and adds a snippet; keep the first line's reason.
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    // It also begins with "error: line L column C: ", which our own location says.
    let first = first.strip_prefix("error:").unwrap_or(first).trim_start();
    let message = match first.split_once(": ") {
        Some((at, rest)) if at.starts_with("line ") && at.contains(" column ") => rest,
        _ => first,
    };
    let message = did_you_mean(message);
    // `{ client_secret: ${env:X} }`: braces end a plain scalar inside `{ }`, so YAML
    // reads the reference as broken syntax. Say how to write it.
    let source_line = text
        .lines()
        .nth(line.saturating_sub(1) as usize)
        .unwrap_or_default();
    let message = if message.contains("flow") && source_line.contains("${") {
        format!(
            "{message}; inside `{{ }}` write a secret reference in quotes, e.g. `client_secret: \"${{env:NAME}}\"`, or use block style"
        )
    } else {
        message
    };
    Located {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// A connector created through the control plane: `entry` is a connector entry of the
/// policy file, as JSON, except that `oauth.client_secret` is the secret's value (which
/// a policy file never holds). Validated exactly like a file entry.
pub fn parse_api_connector(entry: &serde_json::Value) -> Result<Connector, String> {
    let mut entry = entry.clone();
    let secret = match entry.pointer_mut("/oauth/client_secret") {
        Some(serde_json::Value::String(s)) => {
            let value = std::mem::take(s);
            // A reference the validator accepts; replaced by the stored value below.
            *s = "${env:EGRET_API_CONNECTOR_SECRET}".to_owned();
            if value.is_empty() {
                return Err(
                    "`oauth.client_secret` is empty; give the secret or leave it out".to_owned(),
                );
            }
            Some(value)
        }
        Some(_) => return Err("`oauth.client_secret` must be a string".to_owned()),
        None => None,
    };
    // JSON is YAML: the entry goes through the policy parser as a one-connector file.
    let text = format!("version: 1\nconnectors:\n  - {entry}\n");
    let policy = parse(&text, Path::new("<request>"), Path::new(".")).map_err(|e| {
        e.iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let mut connector = policy
        .connectors
        .into_iter()
        .next()
        .ok_or_else(|| "the body is not a connector entry".to_owned())?;
    connector.source = Source::Api;
    if let (Some(value), AuthKind::OAuth2(o)) = (secret, &mut connector.auth) {
        o.client_secret = Some(SecretRef::Stored(std::sync::Arc::new(value.into())));
    }
    Ok(connector)
}

/// An owner's narrowing of what agents may do with their connection: `{"access":
/// "read_only", "rules": [...], "default": "approve", "limits": {...}}`, the connector
/// entry's keys of the same names. It applies on top of the connector's (a request must
/// pass both), so it can only narrow; `limits` may not be wider than `connector`'s.
#[derive(Debug, Clone, PartialEq)]
pub struct Narrowing {
    pub access: Access,
    pub budget: Option<Budget>,
}

const NARROWING_KEYS: [&str; 4] = ["access", "rules", "default", "limits"];

impl Narrowing {
    /// Reads and checks `entry` for a connection of `connector`.
    pub fn parse(entry: &serde_json::Value, connector: &Connector) -> Result<Self, String> {
        let n = Self::read(entry)?;
        if let Some(mine) = n.budget {
            widens(&mine, connector.budget.as_ref())?;
        }
        Ok(n)
    }

    /// Reads `entry` as stored (checked when it was set; the budget in force is the
    /// stricter of both whatever the connector's limits became since).
    pub fn read(entry: &serde_json::Value) -> Result<Self, String> {
        let Some(map) = entry.as_object() else {
            return Err("the narrowing is not a JSON object; expected {\"access\"?, \"rules\"?, \"default\"?, \"limits\"?}".to_owned());
        };
        if let Some(k) = map.keys().find(|k| !NARROWING_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "`{k}` cannot be narrowed by an owner; expected `access`, `rules`, `default` or `limits`"
            ));
        }
        let mut one = serde_json::json!({"id": "narrowing", "auth": "api_key", "egress": ["narrowing.invalid"]});
        for (k, v) in map {
            one[k] = v.clone();
        }
        let text = format!("version: 1\nconnectors:\n  - {one}\n");
        let policy = parse(&text, Path::new("<narrowing>"), Path::new(".")).map_err(|e| {
            e.iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let c = policy
            .connectors
            .into_iter()
            .next()
            .ok_or_else(|| "the narrowing could not be read".to_owned())?;
        Ok(Self {
            access: c.access,
            budget: c.budget,
        })
    }

    /// The budget in force: the stricter of the owner's and the connector's, each part.
    pub fn budget_over(&self, connector: Option<Budget>) -> Option<Budget> {
        match (self.budget, connector) {
            (None, c) => c,
            (Some(mine), None) => Some(mine),
            (Some(mine), Some(c)) => Some(Budget {
                requests: match (mine.requests, c.requests) {
                    (Some((n, per)), Some((cn, cper))) => {
                        let mine_wider =
                            u128::from(n) * cper.as_millis() > u128::from(cn) * per.as_millis();
                        Some(if mine_wider { (cn, cper) } else { (n, per) })
                    }
                    (a, b) => a.or(b),
                },
                concurrent: match (mine.concurrent, c.concurrent) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
            }),
        }
    }
}

/// Refuses an owner's limits that are wider than the connector's.
fn widens(mine: &Budget, connector: Option<&Budget>) -> Result<(), String> {
    let Some(c) = connector else {
        return Ok(());
    };
    if let (Some((n, per)), Some((cn, cper))) = (mine.requests, c.requests) {
        // Requests per second, compared without rounding: n / per <= cn / cper.
        let wider = u128::from(n) * cper.as_millis() > u128::from(cn) * per.as_millis();
        if wider || per > cper && n > cn {
            return Err(format!(
                "`limits.requests` would allow more than the connector's {cn} per {}; an owner may only narrow",
                humantime::format_duration(cper)
            ));
        }
    }
    if let (Some(k), Some(ck)) = (mine.concurrent, c.concurrent)
        && k > ck
    {
        return Err(format!(
            "`limits.concurrent` would allow more than the connector's {ck}; an owner may only narrow"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
