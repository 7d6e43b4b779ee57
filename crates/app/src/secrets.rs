//! Secrets the policy points at: the admin token (created on first start when none is
//! configured) and whatever a `${env:…}` or `${file:…}` reference names.

use std::path::{Path, PathBuf};

use egret_policy::{Policy, SecretRef};
use rand::Rng;
use rand::distr::Alphanumeric;
use secrecy::SecretString;
use tracing::info;

use crate::error::{AppError, Context};

/// Reads a secret reference. `Ok(None)`: the variable is unset or the file is missing.
pub fn read_secret(reference: &SecretRef) -> Result<Option<SecretString>, AppError> {
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
pub fn configured_admin_token(policy: &Policy) -> Result<Option<SecretString>, AppError> {
    let from_reference = match &policy.control.admin_token {
        Some(reference) => read_secret(reference)?,
        None => None,
    };
    match from_reference {
        Some(token) => Ok(Some(token)),
        None => read_secret(&SecretRef::File(token_file(policy))),
    }
}

/// The shortest admin token egret starts with: it is the whole credential of the
/// control plane and the web UI's administrators.
pub const MIN_ADMIN_TOKEN: usize = 32;

/// Refuses an admin token that is empty, blank or shorter than [`MIN_ADMIN_TOKEN`],
/// saying where it came from and how to make a good one.
pub(crate) fn check_admin_token(token: &SecretString, from: &str) -> Result<(), AppError> {
    use secrecy::ExposeSecret as _;
    let text = token.expose_secret();
    let length = text.trim().chars().count();
    if length >= MIN_ADMIN_TOKEN && text.trim() == text {
        return Ok(());
    }
    let what = if length == 0 {
        "is empty".to_owned()
    } else if text.trim() != text {
        "begins or ends with white space".to_owned()
    } else {
        format!("has {length} characters")
    };
    Err(AppError::Refused(format!(
        "the admin token ({from}) {what}; it must be at least {MIN_ADMIN_TOKEN} characters without surrounding white space. Make one with `openssl rand -base64 33`, or remove the setting and delete the token file so egret creates one"
    )))
}

/// The admin token as configured (checked), or a new one written (mode 0600) where
/// client commands look for it.
pub(crate) fn admin_token(policy: &Policy) -> Result<SecretString, AppError> {
    if let Some(token) = configured_admin_token(policy)? {
        let from = match &policy.control.admin_token {
            Some(reference) => reference.to_string(),
            None => token_file(policy).display().to_string(),
        };
        check_admin_token(&token, &from)?;
        return Ok(token);
    }
    let path = token_file(policy);
    let token: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(43)
        .map(char::from)
        .collect();
    write_private(&path, token.as_bytes())?;
    info!(path = %path.display(), "created an admin token (mode 0600); client commands read it from there");
    Ok(SecretString::from(token))
}

pub(crate) fn create_parent(path: &Path) -> Result<(), AppError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

/// Writes a new file only egret's user may read (it must not exist yet).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    create_parent(path)?;
    egret_tls::write_new(path, bytes, 0o600)?;
    Ok(())
}
