//! `egret vault migrate --to postgres://…`: the way from one egret on a redb file to
//! replicas on PostgreSQL, keeping every connection. The records are copied sealed (the
//! database never sees a secret in the clear); the CA moves from `ca.dir` into the vault,
//! sealed, so every replica issues leaves from the one sandboxes already trust.

use egret_policy::{Policy, VaultBackend};
use egret_vault::store::Records as _;
use egret_vault::{Vault, VaultError};
use tracing::info;

use crate::error::{AppError, Context, refuse};

/// What a migration copied, for the command to say.
pub struct Migrated {
    /// The redb file copied from.
    pub source: String,
    /// The database copied into (host and database, never a password).
    pub target: String,
    pub records: usize,
    pub connections: usize,
    pub placeholders: usize,
    pub sandboxes: usize,
    pub audit_events: usize,
    pub webhook_deliveries: usize,
    /// What became of the CA, in words.
    pub ca: String,
}

pub fn to_postgres(policy: &Policy, url: &str) -> Result<Migrated, AppError> {
    if !matches!(policy.vault.backend, VaultBackend::Redb) {
        refuse!(
            "this policy's vault is already on PostgreSQL; `vault migrate` copies a redb vault (run it with the policy that names the redb file)"
        );
    }
    let path = &policy.vault.path;
    if !path.exists() {
        refuse!("there is no vault at {} to copy", path.display());
    }
    let key = crate::keys::master_key(policy, true)?;
    let source = match Vault::open(path, &key) {
        Ok(v) => v,
        Err(VaultError::InUse) => refuse!(
            "egret is running with the vault {}; stop it first (a copy of a vault in use would miss its last changes)",
            path.display()
        ),
        Err(other) => refuse!("cannot open the vault {}: {other}", path.display()),
    };
    crate::database::refuse_plaintext(url, policy.vault.allow_plaintext)?;
    let target = egret_postgres::PgStore::connect(url, policy.vault.ca_file.as_deref())
        .context("cannot open the target database")?;
    let place = target.describe();
    if !target
        .is_empty()
        .context("cannot read the target database")?
    {
        refuse!(
            "{place} already holds an egret vault (or part of one); migrate only into an empty database (nothing was changed)"
        );
    }
    let copied = egret_vault::copy_store(source.store(), &target)
        .with_context(|| format!("the copy into {place} failed"))?;
    // Opening the copy with the master key proves it is whole: the key check opens.
    let copy = Vault::open_store(Box::new(target), &key)
        .with_context(|| format!("the copy in {place} does not open with the master key"))?;
    let ca = move_ca(policy, &copy)?;
    info!(target = %place, "vault migrated");
    Ok(Migrated {
        source: path.display().to_string(),
        target: place,
        records: copied.records.iter().map(|(_, n)| n).sum(),
        connections: source.connections(None, None).len(),
        placeholders: source.placeholders(None, None, None, 0).len(),
        sandboxes: source.sandboxes().len(),
        audit_events: copied.audit_events,
        webhook_deliveries: copied.webhook_deliveries,
        ca,
    })
}

/// Seals the CA from `ca.dir` into the copy; what happened, in words.
fn move_ca(policy: &Policy, copy: &Vault) -> Result<String, AppError> {
    let dir = &policy.ca.dir;
    let Some((cert_pem, key_pem)) = crate::ca::read_pair(dir)? else {
        return Ok(format!(
            "no CA in {}: the first replica creates one (sandboxes must trust it)",
            dir.display()
        ));
    };
    let (_, created) =
        copy.shared_secret("ca", || Ok(crate::ca::seal_pair(&cert_pem, &key_pem)))?;
    if !created {
        refuse!("the target already held a CA; migrate only into an empty database");
    }
    Ok(format!(
        "the CA in {} is now sealed in the vault: every replica issues from it, and sandboxes that trust it keep working",
        dir.display()
    ))
}
