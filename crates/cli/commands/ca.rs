//! `egret ca init|export`: the interception CA, on disk; needs no server.

use anyhow::{Context, Result, bail};

use crate::args::CaCommand;
use crate::config::load_policy;

pub fn run(config: &std::path::Path, cmd: CaCommand) -> Result<()> {
    let policy = load_policy(config)?;
    match cmd {
        CaCommand::Init { dir } => {
            if matches!(
                policy.vault.backend,
                egret_policy::VaultBackend::Postgres { .. }
            ) {
                bail!(
                    "with `vault.backend: postgres` the CA is kept in the vault database, sealed, and the first replica to start creates it; a CA made here would not be used (to bring an existing one, `egret vault migrate` moves it from ca.dir)"
                );
            }
            let dir = dir.unwrap_or_else(|| policy.ca.dir.clone());
            if dir.join(egret_tls::CA_CERT_FILE).exists()
                || dir.join(egret_tls::CA_KEY_FILE).exists()
            {
                bail!(
                    "a CA already exists in {}; remove it first if you really want a new one (sandboxes trusting the old one will stop working)",
                    dir.display()
                );
            }
            egret_tls::CertificateAuthority::create_for(&dir, &crate::setup::ca_limits(&policy)?)?;
            eprintln!(
                "created {} and {} (mode 0600)",
                dir.join(egret_tls::CA_CERT_FILE).display(),
                dir.join(egret_tls::CA_KEY_FILE).display()
            );
            Ok(())
        }
        CaCommand::Export => {
            let path = policy.ca.dir.join(egret_tls::CA_CERT_FILE);
            let pem = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "no CA at {}; run `egret serve` or `egret ca init` first",
                    path.display()
                )
            })?;
            crate::emit(&pem)?;
            Ok(())
        }
    }
}
