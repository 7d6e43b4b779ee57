//! External secret stores: connection values kept as references (`vault://…`,
//! `aws-sm://…`, `gcp-sm://…`, `op://…`) fetched when a request needs them.
//!
//! Owns the fetch (one client per source kind, `sources/`), the cache (a value is used
//! for the source's `cache_ttl`; while the source fails, the last good value for its
//! `failure_ttl`), one fetch at a time per reference, and the metrics. It only ever
//! reads the stores, and never logs, returns in an error, or caches anything but the
//! value: a source's token stays in its configuration.

mod aws_role;
mod cache;
mod error;
mod sources;

use std::collections::BTreeMap;
use std::sync::Arc;

use egret_policy::{Connector, ExternalRef, Policy};
use egret_vault::Credential;
use secrecy::SecretString;

pub use aws_role::TemporaryKeys;
pub use error::SourceError;

use cache::Cache;

/// The keys of an AWS connection, looked up by `secret_sources.aws_sm.connection`.
pub type AwsKeysLookup =
    Arc<dyn Fn(&str) -> Option<(String, SecretString, Option<SecretString>)> + Send + Sync>;

/// Looks the AWS keys of `aws_sm.connection` up in `vault`: `CONNECTOR` (the
/// organisation's default connection) or `CONNECTOR/OWNER/NAME`. Keys kept in an
/// external store themselves are not used (a source may not lean on another).
pub fn vault_aws_keys(vault: Arc<egret_vault::Vault>) -> AwsKeysLookup {
    Arc::new(move |spec: &str| {
        let mut parts = spec.split('/');
        let connector = parts.next()?;
        let owner = egret_vault::Owner::parse(parts.next().unwrap_or("org")).ok()?;
        let name = match parts.next() {
            Some(n) => egret_vault::ConnectionName::parse(n).ok()?,
            None => egret_vault::ConnectionName::default(),
        };
        let id = egret_vault::ConnectionId::new(connector, &owner, &name);
        let credential = vault.credential(&id)?;
        if !credential.refs.is_empty() {
            return None;
        }
        Some((
            secrecy::ExposeSecret::expose_secret(credential.value(Some("access_key_id"))?)
                .to_owned(),
            credential.value(Some("secret_access_key"))?.clone(),
            credential.value(Some("session_token")).cloned(),
        ))
    })
}

/// The secret sources of the running egret: their clients and their cache.
pub struct Secrets {
    outbound: egret_outbound::Outbound,
    /// Clients by the CA files they trust besides `upstream.extra_ca` (the sources'
    /// `ca_file`s as the policy in force names them: a reload may change them).
    clients: std::sync::Mutex<
        std::collections::HashMap<Vec<std::path::PathBuf>, egret_oauth::HttpClient>,
    >,
    /// References whose last fetch failed (each said once in the log, not every second).
    failing: std::sync::Mutex<std::collections::HashSet<String>>,
    cache: Cache,
    metrics: Arc<egret_metrics::Metrics>,
    aws_keys: AwsKeysLookup,
    vault_login: sources::vault::Login,
    roles: aws_role::Roles,
}

impl Secrets {
    pub fn new(
        outbound: &egret_outbound::Outbound,
        metrics: Arc<egret_metrics::Metrics>,
        aws_keys: AwsKeysLookup,
    ) -> Self {
        Self {
            outbound: outbound.clone(),
            clients: std::sync::Mutex::default(),
            failing: std::sync::Mutex::default(),
            cache: Cache::default(),
            metrics,
            aws_keys,
            vault_login: sources::vault::Login::default(),
            roles: aws_role::Roles::default(),
        }
    }

    /// The temporary keys of `role`, taken with `stored` (cached until 5 minutes
    /// before they expire).
    pub async fn assume_role(
        &self,
        role: &egret_policy::AssumeRole,
        region: &str,
        stored: &egret_signing::sigv4::Keys<'_>,
        now_unix: i64,
    ) -> Result<TemporaryKeys, SourceError> {
        // STS is reached like any AWS endpoint: the web PKI and `upstream.extra_ca`.
        let client = self
            .client(&[])
            .map_err(|why| SourceError::new("sts", why))?
            .with_timeout(std::time::Duration::from_secs(10));
        self.roles
            .keys(&client, role, region, stored, now_unix)
            .await
    }

    /// Keeps `policy`'s secrets that live in external stores (OAuth client secrets)
    /// current: each whose cached value is older than its source's `cache_ttl` (or that
    /// has none) is fetched; a fetch that fails leaves the last good value until the
    /// source's `failure_ttl`, then none (the broker then says the secret does not
    /// resolve).
    pub async fn keep_current(&self, policy: &Policy) {
        for secret in policy.external_secrets() {
            let reference = secret.reference.to_string();
            let fresh = policy
                .secret_sources
                .timing(secret.reference.scheme)
                .is_some_and(|t| self.cache.fresh(&reference, t.cache_ttl).is_some());
            if fresh && secret.get().is_some() {
                continue;
            }
            let result = self.fetch(policy, &reference).await;
            let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(value) => {
                    if failing.remove(&reference) {
                        tracing::info!(
                            reference,
                            "an OAuth client secret is read from its secret source again"
                        );
                    }
                    secret.set(Some(value));
                }
                Err(e) => {
                    if failing.insert(reference.clone()) {
                        tracing::warn!(error = %e, reference, "an OAuth client secret could not be fetched from its secret source");
                    }
                    secret.set(None);
                }
            }
        }
    }

    /// `credential` with every value its references name fetched (from the cache while
    /// fresh): what the swap sends.
    pub async fn resolve(
        &self,
        policy: &Policy,
        connector: &Connector,
        credential: &Credential,
    ) -> Result<Arc<Credential>, SourceError> {
        let mut fetched = BTreeMap::new();
        for (input, reference) in &credential.refs {
            fetched.insert(input.clone(), self.fetch(policy, reference).await?);
        }
        let first = connector.first_input().map(|i| i.name.as_str());
        Ok(Arc::new(credential.fetched(fetched, first)))
    }

    /// The value `reference` names: cached while fresh, fetched once however many ask
    /// at the same time, the last good one while the source fails (until its
    /// `failure_ttl`).
    pub async fn fetch(
        &self,
        policy: &Policy,
        reference: &str,
    ) -> Result<SecretString, SourceError> {
        let parsed = ExternalRef::parse(reference)
            .map_err(|why| SourceError::new("secret reference", why))?;
        let source = parsed.scheme.source();
        let timing = policy.secret_sources.timing(parsed.scheme).ok_or_else(|| {
            SourceError::new(
                source,
                format!("no `secret_sources.{source}` is configured in the policy"),
            )
        })?;
        let count = |outcome| {
            self.metrics
                .secret_fetches
                .get_or_create(&egret_metrics::SecretFetchLabels { source, outcome })
                .inc();
        };
        if let Some(value) = self.cache.fresh(reference, timing.cache_ttl) {
            count("cached");
            return Ok(value);
        }
        let _flight = self.cache.flight(reference).await;
        // Another request may have fetched it while this one waited.
        if let Some(value) = self.cache.fresh(reference, timing.cache_ttl) {
            count("cached");
            return Ok(value);
        }
        let client = self
            .client(&policy.secret_sources.ca_files())
            .map_err(|why| SourceError::new(source, why))?
            .with_timeout(timing.timeout);
        let result = tokio::time::timeout(
            timing.timeout,
            sources::fetch(self, &client, policy, &parsed),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SourceError::new(
                source,
                format!("no answer within {}", humanize(timing.timeout)),
            ))
        });
        match result {
            Ok(value) => {
                count("fetched");
                self.cache.put(reference, value.clone());
                Ok(value)
            }
            Err(e) => match self.cache.usable(reference, timing.failure_ttl) {
                Some(value) => {
                    count("stale");
                    tracing::warn!(source, error = %e, "secret source failed; using the last good value until its failure_ttl");
                    Ok(value)
                }
                None => {
                    count("failed");
                    Err(e)
                }
            },
        }
    }
}

impl Secrets {
    /// The client trusting `ca_files` (and `upstream.extra_ca`), built once per set.
    fn client(&self, ca_files: &[std::path::PathBuf]) -> Result<egret_oauth::HttpClient, String> {
        let mut held = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = held.get(ca_files) {
            return Ok(client.clone());
        }
        // Reloads that keep changing CA files must not grow this without end.
        if held.len() >= 8 {
            held.clear();
        }
        let tls = self
            .outbound
            .tls_trusting(ca_files)
            .map_err(|e| format!("its ca_file cannot be used: {e}"))?;
        let client = egret_oauth::HttpClient::with_tls(
            &self.outbound,
            egret_outbound::Use::SecretSource,
            tls,
            std::time::Duration::from_secs(5),
        );
        held.insert(ca_files.to_vec(), client.clone());
        Ok(client)
    }
}

/// Now as SigV4 writes it: `YYYYMMDDTHHMMSSZ`.
pub(crate) fn amz_date_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn humanize(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Checks a reference a person gives for a connection value: its shape, and that its
/// source is configured. The message says what to fix.
pub fn check_reference(policy: &Policy, reference: &str) -> Result<(), String> {
    let parsed = ExternalRef::parse(reference)?;
    if policy.secret_sources.timing(parsed.scheme).is_none() {
        let source = parsed.scheme.source();
        return Err(format!(
            "`{}` names the secret source `{source}`, which the policy does not configure; add `secret_sources.{source}` to the policy",
            parsed
        ));
    }
    Ok(())
}
