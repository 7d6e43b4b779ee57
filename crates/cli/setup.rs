//! First start: create what is missing (master key, vault, admin token, CA), reuse what
//! exists, and never overwrite anything that holds data.

use std::path::Path;

use anyhow::{Context, Result, bail};
use egret_policy::{Policy, SecretRef};
use egret_tls::{CaOrigin, CertificateAuthority};
use egret_vault::{MasterKey, Vault};
use rand::Rng;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use tracing::info;

use crate::config::{configured_admin_token, read_secret, token_file};

pub struct Opened {
    pub vault: Vault,
    pub ca: CertificateAuthority,
    pub admin_token: SecretString,
}

pub fn open_everything(policy: &Policy) -> Result<Opened> {
    let key = master_key(policy)?;
    let vault_path = &policy.vault.path;
    let existed = vault_path.exists();
    create_parent(vault_path)?;
    let vault = Vault::open(vault_path, &key)
        .with_context(|| format!("cannot open the vault {}", vault_path.display()))?;
    if !existed {
        restrict(vault_path)?;
        info!(path = %vault_path.display(), "created the vault (mode 0600)");
    }
    let admin_token = admin_token(policy)?;
    let (ca, origin) = CertificateAuthority::load_or_create(&policy.ca.dir)?;
    let ca_path = policy.ca.dir.join(egret_tls::CA_CERT_FILE);
    match origin {
        CaOrigin::Created => {
            info!(cert = %ca_path.display(), "created the interception CA; sandboxes must trust this certificate")
        }
        CaOrigin::Loaded => info!(cert = %ca_path.display(), "loaded the interception CA"),
    }
    Ok(Opened {
        vault,
        ca,
        admin_token,
    })
}

fn master_key(policy: &Policy) -> Result<MasterKey> {
    let reference = &policy.vault.master_key;
    if let Some(text) = read_secret(reference)? {
        return MasterKey::decode(text.expose_secret())
            .with_context(|| format!("master key {reference}"));
    }
    let SecretRef::File(path) = reference else {
        bail!(
            "the master key {reference} is not set; export it (a base64 32-byte key) or use `${{file:PATH}}` so egret can create one"
        );
    };
    if policy.vault.path.exists() {
        bail!(
            "the master key file {} is missing but the vault {} exists; restore the key file (a new key cannot open the vault)",
            path.display(),
            policy.vault.path.display()
        );
    }
    let key = MasterKey::generate();
    write_private(path, key.encode().expose_secret().as_bytes())?;
    info!(path = %path.display(), "created the master key (mode 0600); back it up: the vault cannot be opened without it");
    Ok(key)
}

fn admin_token(policy: &Policy) -> Result<SecretString> {
    if let Some(token) = configured_admin_token(policy)? {
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

fn create_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

/// Only egret's user may read the vault: it holds sealed secrets and their metadata.
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set mode 0600 on {}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    create_parent(path)?;
    egret_tls::write_new(path, bytes, 0o600)?;
    Ok(())
}
