//! Which policy a command runs with, and secrets its references point at.

use std::path::Path;

use anyhow::Result;
use egret_policy::{Policy, PolicyError};
use secrecy::SecretString;

use crate::args::DEFAULT_CONFIG;

/// Loads `path`; the default path may be missing, and then the embedded default runs
/// with paths relative to `./config`, exactly as if the shipped file were there.
pub fn load_policy(path: &Path) -> Result<Policy> {
    read_policy(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// [`load_policy`], its error still saying each problem on its own.
pub fn read_policy(path: &Path) -> Result<Policy, PolicyError> {
    if path == Path::new(DEFAULT_CONFIG) && !path.exists() {
        return egret_policy::parse(
            egret_policy::EMBEDDED_DEFAULT,
            Path::new("<embedded config/default.yaml>"),
            Path::new("config"),
        )
        .map_err(PolicyError::Invalid);
    }
    egret_policy::load(path)
}

/// The admin token a client command sends: `EGRET_ADMIN_TOKEN` first, then as configured.
pub fn client_admin_token(policy: &Policy) -> Result<SecretString> {
    if let Some(t) = std::env::var("EGRET_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Ok(SecretString::from(t));
    }
    egret_app::configured_admin_token(policy)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no admin token: set EGRET_ADMIN_TOKEN, or start `egret serve` once so it writes {}",
            egret_app::token_file(policy).display()
        )
    })
}
