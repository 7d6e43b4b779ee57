//! Opening what egret runs on: the vault (one redb file, or PostgreSQL shared by
//! replicas), the interception CA and the admin token. A first start creates what is
//! missing; nothing that holds data is ever overwritten.

use std::path::Path;

use egret_policy::{Policy, VaultBackend};
use egret_tls::{CaOrigin, CertificateAuthority};
use egret_vault::store::Records as _;
use egret_vault::{MasterKey, Vault, VaultError};
use secrecy::SecretString;
use tracing::info;

use crate::ca::ca_limits;
use crate::database::open_postgres;
use crate::error::{AppError, Context, refuse};
use crate::keys::{finish_rotation, master_key};
use crate::secrets::{admin_token, create_parent};

/// What a start opened.
pub(crate) struct Opened {
    pub vault: Vault,
    pub ca: CertificateAuthority,
    pub admin_token: SecretString,
}

/// Opens the vault on the policy's backend, the CA and the admin token; `token`, when
/// given, is used instead of the configured one (tests).
pub(crate) fn open_everything(
    policy: &Policy,
    token: Option<SecretString>,
) -> Result<Opened, AppError> {
    let shared = matches!(policy.vault.backend, VaultBackend::Postgres { .. });
    let vault = if shared {
        open_shared(policy)?
    } else {
        open_file(policy)?
    };
    let admin_token = match token {
        Some(t) => {
            crate::secrets::check_admin_token(&t, "given to egret")?;
            t
        }
        None => admin_token(policy)?,
    };
    let ca = if shared {
        shared_ca(policy, &vault)?
    } else {
        file_ca(policy)?
    };
    Ok(Opened {
        vault,
        ca,
        admin_token,
    })
}

/// The vault as it is, for a command: refused when there is none yet.
pub(crate) fn open_existing(policy: &Policy) -> Result<Vault, AppError> {
    match &policy.vault.backend {
        VaultBackend::Postgres { .. } => open_shared(policy),
        VaultBackend::Redb if !policy.vault.path.exists() => {
            refuse!("there is no vault at {}", policy.vault.path.display())
        }
        VaultBackend::Redb => open_file(policy),
    }
}

/// At stop: the pid file beside a redb vault goes, when it is this process's (another
/// egret may have written its own since).
pub(crate) fn remove_pid_file(policy: &Policy) {
    if !matches!(policy.vault.backend, VaultBackend::Redb) {
        return;
    }
    let pid_file = policy.vault.path.with_extension("pid");
    let mine = std::fs::read_to_string(&pid_file)
        .is_ok_and(|text| text.trim() == std::process::id().to_string());
    if mine && let Err(e) = std::fs::remove_file(&pid_file) {
        tracing::debug!(path = %pid_file.display(), error = %e, "cannot remove the pid file");
    }
}

/// The redb vault at `vault.path`, created (mode 0600) on the first start.
fn open_file(policy: &Policy) -> Result<Vault, AppError> {
    let key = master_key(policy, policy.vault.path.exists())?;
    let vault_path = &policy.vault.path;
    let existed = vault_path.exists();
    create_parent(vault_path)?;
    let pid_file = vault_path.with_extension("pid");
    let vault = match Vault::open(vault_path, &key) {
        Err(VaultError::WrongKey) => {
            let opened = finish_rotation(policy, |k| Ok(Vault::open(vault_path, k)))?;
            let Some(Ok(vault)) = opened else {
                refuse!(
                    "the master key {} does not open the vault {}; restore the key that created it (egret never re-creates a vault that holds data)",
                    policy.vault.master_key,
                    vault_path.display()
                );
            };
            vault
        }
        // Not a damaged vault: nothing to restore or move away.
        Err(VaultError::InUse) => {
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .map(|p| format!(" (pid {})", p.trim()))
                .unwrap_or_default();
            refuse!(
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
    Ok(vault)
}

/// The CA in `ca.dir`, created on the first start.
fn file_ca(policy: &Policy) -> Result<CertificateAuthority, AppError> {
    let (ca, origin) =
        CertificateAuthority::load_or_create_for(&policy.ca.dir, &ca_limits(policy)?)?;
    let ca_path = policy.ca.dir.join(egret_tls::CA_CERT_FILE);
    match origin {
        CaOrigin::Created => {
            info!(cert = %ca_path.display(), "created the interception CA; sandboxes must trust this certificate")
        }
        CaOrigin::Loaded => info!(cert = %ca_path.display(), "loaded the interception CA"),
    }
    Ok(ca)
}

/// The vault on PostgreSQL, shared by replicas: only the database URL and the master
/// key are needed to start another.
fn open_shared(policy: &Policy) -> Result<Vault, AppError> {
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
    let vault = match opened {
        Ok(vault) => vault,
        Err(VaultError::WrongKey) => refuse!(
            "the master key {} does not open the vault in {place}; every replica needs the key the first one was started with (nothing was changed)",
            policy.vault.master_key
        ),
        Err(other) => refuse!("cannot open the vault in {place}: {other}"),
    };
    info!(store = %place, "opened the vault database");
    Ok(vault)
}

/// The CA every replica shares, sealed in the vault; created by the first replica to
/// start. Its certificate (public) is also written to `ca.dir` for sandboxes to trust —
/// but never over another CA's: a `ca.dir` that holds a different certificate (the CA
/// of a vault on file, before a switch to PostgreSQL) is what sandboxes trust now, so
/// egret refuses rather than replace it.
fn shared_ca(policy: &Policy, vault: &Vault) -> Result<CertificateAuthority, AppError> {
    let limits = ca_limits(policy)?;
    let cert_path = policy.ca.dir.join(egret_tls::CA_CERT_FILE);
    let on_disk = std::fs::read_to_string(&cert_path).ok();
    let in_vault = vault
        .store()
        .get(egret_vault::store::Table::Meta, "ca")
        .context("cannot read the vault database")?
        .is_some();
    if !in_vault && on_disk.is_some() {
        refuse!(
            "{} holds a CA that sandboxes may trust, and the vault database has none yet; to keep it, bring it into the database with `egret vault migrate` (from the vault it belongs to); to start with a new CA, move {} and {} out of {} first (sandboxes must then trust the new certificate). Nothing was changed",
            cert_path.display(),
            egret_tls::CA_CERT_FILE,
            egret_tls::CA_KEY_FILE,
            policy.ca.dir.display()
        );
    }
    let (bundle, created) = vault.shared_secret("ca", || {
        let (cert, key) = CertificateAuthority::generate(&limits)
            .map_err(|e| VaultError::Invalid(e.to_string()))?;
        Ok(crate::ca::seal_pair(&cert, key.as_str()))
    })?;
    let Some((cert, key)) = crate::ca::unseal_pair(&bundle) else {
        refuse!(
            "the CA stored in the vault is unreadable or incomplete; restore the database from a backup"
        );
    };
    let ca = CertificateAuthority::from_pem(&cert, &key, Path::new("vault meta/ca"))?;
    match on_disk {
        // Written by this or another replica already (replicas may share `ca.dir`).
        Some(pem) if pem == cert => {}
        Some(_) => refuse!(
            "{} holds another CA than the one in the vault database, and sandboxes may trust it; move {} (and {}, if there) out of {} so egret can write the vault's certificate there, and give sandboxes that certificate (egret ca export). Nothing was changed",
            cert_path.display(),
            egret_tls::CA_CERT_FILE,
            egret_tls::CA_KEY_FILE,
            policy.ca.dir.display()
        ),
        None => crate::ca::publish_cert(&policy.ca.dir, &cert)?,
    }
    if created {
        info!(cert = %cert_path.display(), "created a new interception CA in the vault database; sandboxes must trust this certificate");
    } else {
        info!(cert = %cert_path.display(), "loaded the interception CA from the vault database");
    }
    Ok(ca)
}

/// Only egret's user may read the vault: it holds sealed secrets and their metadata.
fn restrict(path: &Path) -> Result<(), AppError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set mode 0600 on {}", path.display()))
}
