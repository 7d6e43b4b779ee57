//! The vault's PostgreSQL database as start-up and the commands reach it: connected by
//! the URL `vault.url` names (a secret reference: it may hold a password), and named in
//! messages by host and database only.

use egret_policy::{Policy, VaultBackend};
use secrecy::ExposeSecret;

use crate::error::{AppError, Context, refuse};
use crate::secrets::read_secret;

/// Connects to the vault database `vault.url` names (a secret reference: it may hold a
/// password), creating or migrating its schema.
pub(crate) fn open_postgres(policy: &Policy) -> Result<egret_postgres::PgStore, AppError> {
    let VaultBackend::Postgres { url, ca_file } = &policy.vault.backend else {
        refuse!("the vault is not on PostgreSQL (vault.backend)");
    };
    let Some(text) = read_secret(url)? else {
        refuse!(
            "vault.url {url} is not set; export it (e.g. postgres://egret@db:5432/egret) or point it at a file"
        );
    };
    egret_postgres::PgStore::connect(text.expose_secret(), ca_file.as_deref())
        .context("cannot open the vault database (nothing was changed)")
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
