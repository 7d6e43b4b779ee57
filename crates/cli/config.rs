//! Which policy a command runs with, and secrets its references point at.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use egret_policy::{Policy, SecretRef};
use secrecy::SecretString;

use crate::args::DEFAULT_CONFIG;

/// Loads `path`; the default path may be missing, and then the embedded default runs
/// with paths relative to `./config`, exactly as if the shipped file were there.
pub fn load_policy(path: &Path) -> Result<Policy> {
    if path == Path::new(DEFAULT_CONFIG) && !path.exists() {
        let policy = egret_policy::parse(
            egret_policy::EMBEDDED_DEFAULT,
            Path::new("<embedded config/egret.yaml>"),
            Path::new("config"),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(policy);
    }
    egret_policy::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Reads a secret reference. `Ok(None)`: the variable is unset or the file is missing.
pub fn read_secret(reference: &SecretRef) -> Result<Option<SecretString>> {
    reference
        .read()
        .with_context(|| format!("cannot read {reference}"))
}

/// Where the admin token lives when the policy does not supply it: the file its
/// `${file:}` reference names, else `admin.token` beside the vault.
pub fn token_file(policy: &Policy) -> PathBuf {
    match &policy.control.admin_token {
        Some(SecretRef::File(p)) => p.clone(),
        _ => policy.vault.path.with_file_name("admin.token"),
    }
}

/// The admin token as configured: the policy's reference if it is set, else the token
/// file `serve` generated. `None` before the first start.
pub fn configured_admin_token(policy: &Policy) -> Result<Option<SecretString>> {
    let from_reference = match &policy.control.admin_token {
        Some(reference) => read_secret(reference)?,
        None => None,
    };
    match from_reference {
        Some(token) => Ok(Some(token)),
        None => read_secret(&SecretRef::File(token_file(policy))),
    }
}

/// The admin token a client command sends: `EGRET_ADMIN_TOKEN` first, then as configured.
pub fn client_admin_token(policy: &Policy) -> Result<SecretString> {
    if let Some(t) = std::env::var("EGRET_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Ok(SecretString::from(t));
    }
    configured_admin_token(policy)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no admin token: set EGRET_ADMIN_TOKEN, or start `egret serve` once so it writes {}",
            token_file(policy).display()
        )
    })
}
