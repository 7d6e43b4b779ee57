//! `egret vault migrate --to postgres://…`: the way from one egret on a redb file to
//! replicas on PostgreSQL, keeping every connection. The records are copied sealed (the
//! database never sees a secret in the clear); the CA moves from `ca.dir` into the vault,
//! sealed, so every replica issues leaves from the one sandboxes already trust.

use anyhow::{Context, Result, bail};
use egret_policy::{Policy, VaultBackend};
use egret_vault::store::Store as _;
use egret_vault::{Vault, VaultError};
use tracing::info;

use crate::output::count;

pub fn to_postgres(policy: &Policy, url: &str) -> Result<()> {
    if !matches!(policy.vault.backend, VaultBackend::Redb) {
        bail!(
            "this policy's vault is already on PostgreSQL; `vault migrate` copies a redb vault (run it with the policy that names the redb file)"
        );
    }
    let path = &policy.vault.path;
    if !path.exists() {
        bail!("there is no vault at {} to copy", path.display());
    }
    let key = crate::setup::master_key(policy, true)?;
    let source = Vault::open(path, &key).map_err(|e| match e {
        VaultError::InUse => anyhow::anyhow!(
            "egret is running with the vault {}; stop it first (a copy of a vault in use would miss its last changes)",
            path.display()
        ),
        other => anyhow::anyhow!("cannot open the vault {}: {other}", path.display()),
    })?;
    let target = egret_postgres::PgStore::connect(url, None)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot open the target database")?;
    let place = target.describe();
    if !target
        .is_empty()
        .context("cannot read the target database")?
    {
        bail!(
            "{place} already holds an egret vault (or part of one); migrate only into an empty database (nothing was changed)"
        );
    }
    let copied = egret_vault::copy_store(source.store(), &target)
        .with_context(|| format!("the copy into {place} failed"))?;
    // Opening the copy with the master key proves it is whole: the key check opens.
    let copy = Vault::open_store(Box::new(target), &key)
        .with_context(|| format!("the copy in {place} does not open with the master key"))?;
    let ca = move_ca(policy, &copy)?;
    let records: usize = copied.records.iter().map(|(_, n)| n).sum();
    say!(
        "copied the vault {} into {place}: {} ({}, {}, {}), {}, {}; verified",
        path.display(),
        count(records as u64, "record"),
        count(source.connections(None, None).len() as u64, "connection"),
        count(
            source.placeholders(None, None, None, 0).len() as u64,
            "placeholder"
        ),
        count(source.sandboxes().len() as u64, "sandbox"),
        count(copied.audit_events as u64, "audit event"),
        count(copied.webhook_deliveries as u64, "webhook delivery"),
    );
    say!("{ca}");
    say!(
        "next: set `vault: {{backend: postgres, url: ${{env:EGRET_DATABASE_URL}}}}` with the same master_key, and start the replicas; keep {} as a backup until they serve",
        path.display()
    );
    info!(target = %place, "vault migrated");
    Ok(())
}

/// Seals the CA from `ca.dir` into the copy; what happened, in words.
fn move_ca(policy: &Policy, copy: &Vault) -> Result<String> {
    let dir = &policy.ca.dir;
    let (cert, key) = (
        dir.join(egret_tls::CA_CERT_FILE),
        dir.join(egret_tls::CA_KEY_FILE),
    );
    if !cert.exists() || !key.exists() {
        return Ok(format!(
            "no CA in {}: the first replica creates one (sandboxes must trust it)",
            dir.display()
        ));
    }
    let cert_pem = std::fs::read_to_string(&cert)
        .with_context(|| format!("cannot read {}", cert.display()))?;
    let key_pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(&key).with_context(|| format!("cannot read {}", key.display()))?,
    );
    // Refuses a pair that does not load, before it is stored.
    egret_tls::CertificateAuthority::from_pem(&cert_pem, &key_pem, &cert)?;
    let (_, created) = copy.shared_secret("ca", || {
        let json = serde_json::json!({ "cert": cert_pem, "key": key_pem.as_str() });
        Ok(zeroize::Zeroizing::new(json.to_string().into_bytes()))
    })?;
    if !created {
        bail!("the target already held a CA; migrate only into an empty database");
    }
    Ok(format!(
        "the CA in {} is now sealed in the vault: every replica issues from it, and sandboxes that trust it keep working",
        dir.display()
    ))
}
