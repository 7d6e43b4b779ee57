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
    let VaultBackend::Postgres { url } = &policy.vault.backend else {
        refuse!("the vault is not on PostgreSQL (vault.backend)");
    };
    let Some(text) = read_secret(url)? else {
        refuse!(
            "vault.url {url} is not set; export it (e.g. postgres://egret@db:5432/egret) or point it at a file"
        );
    };
    refuse_plaintext(text.expose_secret(), policy.vault.allow_plaintext)?;
    egret_postgres::PgStore::connect(text.expose_secret(), policy.vault.ca_file.as_deref())
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

/// A database on another machine is reached over TLS, or not at all unless the policy
/// says `vault.allow_plaintext: true`: the vault's rows cross the network.
pub(crate) fn refuse_plaintext(url: &str, allowed: bool) -> Result<(), AppError> {
    if allowed {
        return Ok(());
    }
    let Some(target) = egret_postgres::describe_target(url) else {
        return Ok(());
    };
    if target.tls_required || target.hosts_local {
        return Ok(());
    }
    refuse!(
        "vault.url reaches {} without TLS; add `sslmode=require` (or `verify-full`) to the URL (with `vault.ca_file` for a private CA), or set `vault.allow_plaintext: true` if the network between them is trusted",
        target.hosts
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_database_elsewhere_is_reached_over_tls_or_not_at_all() {
        for (url, allowed, ok) in [
            ("postgres://egret@db.example.com:5432/egret", false, false),
            (
                "postgres://egret@10.0.0.5/egret?sslmode=disable",
                false,
                false,
            ),
            (
                "postgres://egret@db.example.com/egret?sslmode=prefer",
                false,
                false,
            ),
            (
                "postgres://egret@db.example.com/egret?sslmode=require",
                false,
                true,
            ),
            ("postgres://egret@db.example.com/egret", true, true),
            ("postgres://egret@127.0.0.1:5432/egret", false, true),
            ("postgres://egret@localhost/egret", false, true),
            ("postgres://egret@[::1]/egret", false, true),
            (
                "postgres://egret@/egret?host=/var/run/postgresql",
                false,
                true,
            ),
        ] {
            let got = super::refuse_plaintext(url, allowed);
            assert_eq!(got.is_ok(), ok, "{url}: {got:?}");
            if let Err(e) = got {
                let text = e.to_string();
                assert!(
                    text.contains("sslmode=require") && text.contains("allow_plaintext"),
                    "{text}"
                );
                assert!(!text.contains("egret@"), "no user in the message: {text}");
            }
        }
    }
}
