//! First start: create what is missing (master key, vault, admin token, CA), reuse what
//! exists, and never overwrite anything that holds data.

use std::path::Path;

use anyhow::{Context, Result, bail};
use egret_policy::{Policy, SecretRef, VaultBackend};
use egret_tls::{CaOrigin, CertificateAuthority};
use egret_vault::store::Store as _;
use egret_vault::{MasterKey, Vault, VaultError};
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
    if let VaultBackend::Postgres { .. } = &policy.vault.backend {
        return open_shared(policy);
    }
    let key = master_key(policy, policy.vault.path.exists())?;
    let vault_path = &policy.vault.path;
    let existed = vault_path.exists();
    create_parent(vault_path)?;
    let pid_file = vault_path.with_extension("pid");
    let vault = match Vault::open(vault_path, &key) {
        Err(VaultError::WrongKey) => {
            let opened = finish_rotation(policy, |k| Ok(Vault::open(vault_path, k)))?;
            opened.and_then(Result::ok).ok_or_else(|| {
                anyhow::anyhow!(
                    "the master key {} does not open the vault {}; restore the key that created it (egret never re-creates a vault that holds data)",
                    policy.vault.master_key,
                    vault_path.display()
                )
            })?
        }
        // Not a damaged vault: nothing to restore or move away.
        Err(VaultError::InUse) => {
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .map(|p| format!(" (pid {})", p.trim()))
                .unwrap_or_default();
            anyhow::bail!(
                "egret is already running with the vault {}{pid}; stop that egret first, or start this one with another vault.path",
                vault_path.display()
            );
        }
        opened => opened.with_context(|| {
            format!(
                "cannot open the vault {}; egret does not touch a vault it cannot read: restore it from a backup, or move it away to start empty",
                vault_path.display()
            )
        })?,
    };
    if !existed {
        restrict(vault_path)?;
        info!(path = %vault_path.display(), "created the vault (mode 0600)");
    }
    // Read only by a second egret that finds the vault locked, to name this one.
    if let Err(e) = std::fs::write(&pid_file, std::process::id().to_string()) {
        tracing::debug!(path = %pid_file.display(), error = %e, "cannot write the pid file");
    }
    let admin_token = admin_token(policy)?;
    let (ca, origin) =
        CertificateAuthority::load_or_create_for(&policy.ca.dir, &ca_limits(policy)?)?;
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

/// The domains a new CA is limited to (`ca.name_constraints`); empty for no limit.
pub fn ca_limits(policy: &Policy) -> Result<Vec<String>> {
    if !policy.ca.name_constraints {
        return Ok(Vec::new());
    }
    let domains = policy.intercepted_domains();
    if domains.is_empty() {
        bail!(
            "ca.name_constraints is on but no connector names an egress host; add the connectors first, then create the CA"
        );
    }
    Ok(domains)
}

/// The vault on PostgreSQL, shared by replicas: the CA is kept in it (sealed) so every
/// replica issues leaves from the same one, and only the database URL and the master
/// key are needed to start another.
fn open_shared(policy: &Policy) -> Result<Opened> {
    let store = open_postgres(policy)?;
    let stamped = store
        .get(egret_vault::store::Table::Meta, "key_check")
        .context("cannot read the vault database")?
        .is_some();
    let key = master_key(policy, stamped)?;
    let place = store.describe();
    let opened = match Vault::open_store(Box::new(store), &key) {
        Err(VaultError::WrongKey) => {
            let open = |k: &MasterKey| Ok(Vault::open_store(Box::new(open_postgres(policy)?), k));
            finish_rotation(policy, open)?.unwrap_or(Err(VaultError::WrongKey))
        }
        other => other,
    };
    let vault = opened.map_err(|e| match e {
        VaultError::WrongKey => anyhow::anyhow!(
            "the master key {} does not open the vault in {place}; every replica needs the key the first one was started with (nothing was changed)",
            policy.vault.master_key
        ),
        other => anyhow::anyhow!("cannot open the vault in {place}: {other}"),
    })?;
    info!(store = %place, "opened the vault database");
    let admin_token = admin_token(policy)?;
    let ca = shared_ca(policy, &vault)?;
    Ok(Opened {
        vault,
        ca,
        admin_token,
    })
}

/// Connects to the vault database `vault.url` names (a secret reference: it may hold a
/// password), creating or migrating its schema.
pub fn open_postgres(policy: &Policy) -> Result<egret_postgres::PgStore> {
    let VaultBackend::Postgres { url, ca_file } = &policy.vault.backend else {
        bail!("the vault is not on PostgreSQL (vault.backend)");
    };
    let text = read_secret(url)?.ok_or_else(|| {
        anyhow::anyhow!(
            "vault.url {url} is not set; export it (e.g. postgres://egret@db:5432/egret) or point it at a file"
        )
    })?;
    egret_postgres::PgStore::connect(text.expose_secret(), ca_file.as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot open the vault database (nothing was changed)")
}

/// The CA every replica shares, sealed in the vault; created by the first replica to
/// start. Its certificate (public) is also written to `ca.dir` for sandboxes to trust.
fn shared_ca(policy: &Policy, vault: &Vault) -> Result<CertificateAuthority> {
    let limits = ca_limits(policy)?;
    let (bundle, created) = vault.shared_secret("ca", || {
        let (cert, key) = CertificateAuthority::generate(&limits)
            .map_err(|e| VaultError::Invalid(e.to_string()))?;
        let json = serde_json::json!({ "cert": cert, "key": key.as_str() });
        Ok(zeroize::Zeroizing::new(json.to_string().into_bytes()))
    })?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&bundle).context("the CA stored in the vault is unreadable")?;
    let origin = Path::new("vault meta/ca");
    let (Some(cert), Some(key)) = (parsed["cert"].as_str(), parsed["key"].as_str()) else {
        bail!("the CA stored in the vault is incomplete; restore the database from a backup");
    };
    let ca = CertificateAuthority::from_pem(cert, key, origin)?;
    let cert_path = policy.ca.dir.join(egret_tls::CA_CERT_FILE);
    std::fs::create_dir_all(&policy.ca.dir)
        .with_context(|| format!("cannot create {}", policy.ca.dir.display()))?;
    let _ = std::fs::remove_file(&cert_path);
    egret_tls::write_new(&cert_path, cert.as_bytes(), 0o644)?;
    if created {
        info!(cert = %cert_path.display(), "created the interception CA in the vault database; sandboxes must trust this certificate");
    } else {
        info!(cert = %cert_path.display(), "loaded the interception CA from the vault database");
    }
    Ok(ca)
}

/// The master key; `vault_exists`: a vault is already stamped with one, so a missing key
/// file is an error, never a reason to make a new key.
pub fn master_key(policy: &Policy, vault_exists: bool) -> Result<MasterKey> {
    let reference = &policy.vault.master_key;
    if let SecretRef::File(path) = reference {
        refuse_readable(path)?;
    }
    if let Some(text) = read_secret(reference)? {
        return MasterKey::decode(text.expose_secret())
            .with_context(|| format!("master key {reference}"));
    }
    let SecretRef::File(path) = reference else {
        bail!(
            "the master key {reference} is not set; export it (a base64 32-byte key) or use `${{file:PATH}}` so egret can create one"
        );
    };
    if vault_exists {
        bail!(
            "the master key file {} is missing but the vault {} exists; restore the key file (a new key cannot open the vault)",
            path.display(),
            vault_place(policy)
        );
    }
    let key = MasterKey::generate();
    write_private(path, key.encode().expose_secret().as_bytes())?;
    info!(path = %path.display(), "created the master key (mode 0600); back it up: the vault cannot be opened without it");
    Ok(key)
}

/// The vault's place, for messages: the redb file, or the database (`vault.url`, read
/// only far enough to name its host and database: never its password).
pub fn vault_place(policy: &Policy) -> String {
    match &policy.vault.backend {
        VaultBackend::Redb => policy.vault.path.display().to_string(),
        VaultBackend::Postgres { url, .. } => read_secret(url)
            .ok()
            .flatten()
            .and_then(|u| egret_postgres::describe_url(u.expose_secret()))
            .unwrap_or_else(|| format!("postgres ({url})")),
    }
}

/// Where `vault rotate-key` keeps the new key until the vault is re-sealed under it.
fn pending_key_path(key_file: &Path) -> std::path::PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".new");
    name.into()
}

/// Re-seals the vault under a new master key. Crash-safe in this order: the new key is
/// written (synced) beside the old one, the vault is re-sealed in one transaction, then
/// the new key file replaces the old by rename. A crash before the commit leaves the
/// old key valid; after it, start-up finds the pending key and finishes the rename.
pub fn rotate_master_key(policy: &Policy) -> Result<egret_vault::Rotated> {
    let SecretRef::File(key_file) = &policy.vault.master_key else {
        bail!(
            "vault rotate-key replaces the key file, but vault.master_key is {}; point it at a file (`${{file:PATH}}`) first",
            policy.vault.master_key
        );
    };
    let vault_path = &policy.vault.path;
    let shared = match &policy.vault.backend {
        VaultBackend::Postgres { .. } => Some(open_postgres(policy)?),
        VaultBackend::Redb if !vault_path.exists() => {
            bail!("there is no vault at {} to rotate", vault_path.display())
        }
        VaultBackend::Redb => None,
    };
    let old = master_key(policy, true)?;
    let pending = pending_key_path(key_file);
    if pending.exists() {
        bail!(
            "{} exists: an earlier rotation was interrupted; start `egret serve` once (it finishes the rotation) or remove that file if the vault still opens with the current key",
            pending.display()
        );
    }
    let new = MasterKey::generate();
    write_private(&pending, new.encode().expose_secret().as_bytes())?;
    sync(&pending)?;
    let rotated = match &shared {
        // Every replica must be stopped: one still running holds the old key in memory.
        Some(store) => egret_vault::rotate_store_key(store, &old, &new).with_context(|| {
            let _ = std::fs::remove_file(&pending);
            format!("cannot re-seal the vault in {}", store.describe())
        }),
        None => egret_vault::rotate_key(vault_path, &old, &new).with_context(|| {
            let _ = std::fs::remove_file(&pending);
            format!(
                "cannot re-seal the vault {} (is `egret serve` still running? it holds the file)",
                vault_path.display()
            )
        }),
    }?;
    std::fs::rename(&pending, key_file)
        .with_context(|| format!("the vault is re-sealed under the key in {}, but it could not replace {}; move it there by hand", pending.display(), key_file.display()))?;
    info!(path = %key_file.display(), "master key rotated; back up the new key file");
    Ok(rotated)
}

/// The vault does not open with the key file: if a rotation committed but did not get
/// to replace the key file, the pending key beside it opens the vault (with `open`), and
/// the rename is finished now. `None` when there is no pending key; `Some(Err)` with
/// why the pending key did not open the vault either.
fn finish_rotation(
    policy: &Policy,
    open: impl FnOnce(&MasterKey) -> Result<Result<Vault, VaultError>>,
) -> Result<Option<Result<Vault, VaultError>>> {
    let SecretRef::File(key_file) = &policy.vault.master_key else {
        return Ok(None);
    };
    let pending = pending_key_path(key_file);
    let Ok(text) = std::fs::read_to_string(&pending) else {
        return Ok(None);
    };
    let Ok(key) = MasterKey::decode(text.trim()) else {
        return Ok(None);
    };
    let vault = match open(&key)? {
        Ok(vault) => vault,
        Err(e) => return Ok(Some(Err(e))),
    };
    std::fs::rename(&pending, key_file).with_context(|| {
        format!(
            "cannot move {} to {}",
            pending.display(),
            key_file.display()
        )
    })?;
    info!(path = %key_file.display(), "finished an interrupted master key rotation");
    Ok(Some(Ok(vault)))
}

/// The master key opens every credential: a key file others may read is refused.
fn refuse_readable(path: &Path) -> Result<()> {
    // A missing file is not refused here: `master_key` says what to do about it.
    if let Ok(Some(mode)) = egret_tls::loose_mode(path) {
        bail!(
            "{}: the master key file has mode {mode:o} and others may read it; run `chmod 600 {}` (and `egret vault rotate-key` if it may have leaked)",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
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
