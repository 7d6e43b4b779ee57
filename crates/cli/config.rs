//! Which policy a command runs with, and secrets its references point at.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
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
    match reference {
        SecretRef::Env(name) => Ok(std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(SecretString::from)),
        SecretRef::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(SecretString::from(text.trim().to_owned()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        },
    }
}

/// Where `serve` keeps the admin token it generates: beside the vault.
pub fn token_file(policy: &Policy) -> PathBuf {
    policy.vault.path.with_file_name("admin.token")
}

/// The admin token a client command sends: `EGRET_ADMIN_TOKEN`, the policy's reference,
/// or the generated token file.
pub fn client_admin_token(policy: &Policy) -> Result<SecretString> {
    if let Ok(t) = std::env::var("EGRET_ADMIN_TOKEN") {
        if !t.is_empty() {
            return Ok(SecretString::from(t));
        }
    }
    if let Some(reference) = &policy.control.admin_token {
        if let Some(t) = read_secret(reference)? {
            return Ok(t);
        }
    }
    let file = token_file(policy);
    match read_secret(&SecretRef::File(file.clone()))? {
        Some(t) => Ok(t),
        None => bail!(
            "no admin token: set EGRET_ADMIN_TOKEN, or start `egret serve` once so it writes {}",
            file.display()
        ),
    }
}
