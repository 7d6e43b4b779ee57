//! The master key: read (or created on the very first start), refused when others may
//! read its file, and rotated crash-safely (`egret vault rotate-key`).

use std::path::{Path, PathBuf};

use egret_policy::{Policy, SecretRef, VaultBackend};
use egret_vault::{MasterKey, Vault, VaultError};
use secrecy::ExposeSecret;
use tracing::info;

use crate::database::{open_postgres, vault_place};
use crate::error::{AppError, Context, refuse};
use crate::secrets::{read_secret, write_private};

/// What a rotation re-sealed.
pub use egret_vault::Rotated;

/// The master key; `vault_exists`: a vault is already stamped with one, so a missing key
/// file is an error, never a reason to make a new key.
pub fn master_key(policy: &Policy, vault_exists: bool) -> Result<MasterKey, AppError> {
    let reference = &policy.vault.master_key;
    if let SecretRef::File(path) = reference {
        refuse_readable(path)?;
    }
    if let Some(text) = read_secret(reference)? {
        return MasterKey::decode(text.expose_secret())
            .with_context(|| format!("master key {reference}"));
    }
    let SecretRef::File(path) = reference else {
        refuse!(
            "the master key {reference} is not set; export it (a base64 32-byte key) or use `${{file:PATH}}` so egret can create one"
        );
    };
    if vault_exists {
        refuse!(
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

/// Where `vault rotate-key` keeps the new key until the vault is re-sealed under it.
fn pending_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".new");
    name.into()
}

/// Re-seals the vault under a new master key. Crash-safe in this order: the new key is
/// written (synced) beside the old one, the vault is re-sealed in one transaction, then
/// the new key file replaces the old by rename. A crash before the commit leaves the
/// old key valid; after it, start-up finds the pending key and finishes the rename.
pub fn rotate_master_key(policy: &Policy) -> Result<Rotated, AppError> {
    let SecretRef::File(key_file) = &policy.vault.master_key else {
        refuse!(
            "vault rotate-key replaces the key file, but vault.master_key is {}; point it at a file (`${{file:PATH}}`) first",
            policy.vault.master_key
        );
    };
    let vault_path = &policy.vault.path;
    let shared = match &policy.vault.backend {
        VaultBackend::Postgres { .. } => Some(open_postgres(policy)?),
        VaultBackend::Redb if !vault_path.exists() => {
            refuse!("there is no vault at {} to rotate", vault_path.display())
        }
        VaultBackend::Redb => None,
    };
    let old = master_key(policy, true)?;
    let pending = pending_key_path(key_file);
    if pending.exists() {
        refuse!(
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
            format!(
                "cannot re-seal the vault in {}",
                egret_vault::store::Records::describe(store)
            )
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
pub(crate) fn finish_rotation(
    policy: &Policy,
    open: impl FnOnce(&MasterKey) -> Result<Result<Vault, VaultError>, AppError>,
) -> Result<Option<Result<Vault, VaultError>>, AppError> {
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
fn refuse_readable(path: &Path) -> Result<(), AppError> {
    // A missing file is not refused here: `master_key` says what to do about it.
    if let Ok(Some(mode)) = egret_tls::loose_mode(path) {
        refuse!(
            "{}: the master key file has mode {mode:o} and others may read it; run `chmod 600 {}` (and `egret vault rotate-key` if it may have leaked)",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn sync(path: &Path) -> Result<(), AppError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}
