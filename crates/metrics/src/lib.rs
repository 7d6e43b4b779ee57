//! egret's Prometheus metrics: one registry and the handles every crate counts with, in
//! this one file.
//!
//! Owns the metric names, help texts and label sets; `GET /metrics` renders them in the
//! Prometheus text format. It must never take a secret, a placeholder or a path as a
//! label value: labels are connector ids, refusal codes and fixed words, so their number
//! stays bounded.

use prometheus_client::encoding::EncodeLabelSet;
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The connector whose credential was used; empty when none was.
    pub connector: String,
    /// `forwarded`, or the refusal code.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabels {
    pub connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `client`, `policy`, `upstream` or `internal`: who caused a refusal.
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefreshLabels {
    pub connector: String,
    /// `ok`, `failed` or `invalid_grant`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub sha256: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecretFetchLabels {
    /// `vault`, `aws_sm`, `gcp_sm` or `op`.
    pub source: &'static str,
    /// `fetched`, `cached`, `stale` or `failed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `delivered`, `failed` (an attempt that will be retried) or `dropped` (given up
    /// after a day, the receiver left the policy, or the outbox was full).
    pub outcome: &'static str,
}

/// Declares [`Metrics`]: each handle with its name in the registry (prefixed
/// `egret_`), its help text and, where the default will not do, how it is made. One
/// line a metric: adding one is one entry here.
macro_rules! registered {
    ($(
        $(#[$doc:meta])*
        $field:ident: $ty:ty = $name:literal, $help:literal $(, $make:expr)?;
    )*) => {
        pub struct Metrics {
            registry: Registry,
            $($(#[$doc])* pub $field: $ty,)*
        }

        impl Metrics {
            pub fn new() -> Self {
                let mut registry = Registry::with_prefix("egret");
                $(
                    let $field: $ty = registered!(@make $($make)?);
                    registry.register($name, $help, $field.clone());
                )*
                Self { registry, $($field,)* }
            }
        }
    };
    (@make) => { Default::default() };
    (@make $make:expr) => { $make };
}

registered! {
    /// Intercepted requests by connector and outcome.
    requests: Family<RequestLabels, Counter> = "requests",
        "Intercepted requests by connector and outcome (forwarded or a refusal code)";
    /// Placeholders swapped for credentials.
    swaps: Family<ConnectorLabels, Counter> = "swaps",
        "Placeholders swapped for real credentials";
    /// Every refusal (CONNECT, plain HTTP, intercepted), by code.
    refusals: Family<CodeLabels, Counter> = "refusals",
        "Refused requests and CONNECTs by code";
    /// Every refusal by its source: a rise in `upstream` or `internal` is egret's or a
    /// vendor's trouble, not the sandboxes'.
    refusal_sources: Family<SourceLabels, Counter> = "refusals_by_source",
        "Refused requests and CONNECTs by source (client, policy, upstream, internal)";
    refreshes: Family<RefreshLabels, Counter> = "token_refreshes",
        "OAuth token renewals by result";
    /// Buckets from 1 ms to about 16 s.
    refresh_seconds: Histogram = "token_refresh_duration_seconds",
        "Time a token renewal took, from request to vault commit",
        Histogram::new(exponential_buckets(0.001, 2.0, 15));
    /// Time from sending a request upstream to its response head; buckets from
    /// 100 µs to about 100 s.
    upstream_seconds: Histogram = "upstream_response_seconds",
        "Time from sending a request upstream to its response head",
        Histogram::new(exponential_buckets(0.0001, 2.0, 21));
    leaf_hits: Counter = "leaf_cache_hits",
        "Leaf certificates served from the cache";
    leaf_misses: Counter = "leaf_cache_misses",
        "Leaf certificates issued";
    /// Sandbox connections open now.
    client_connections: Gauge = "client_connections",
        "Sandbox connections open";
    /// Byte tunnels (`network.allow`, WebSocket) open now.
    tunnels: Gauge = "tunnels",
        "Byte tunnels (allow-list, WebSocket) open";
    vault_errors: Counter = "vault_errors",
        "Vault operations that failed";
    /// Request audit events dropped because the audit writer fell behind.
    audit_dropped: Counter = "audit_dropped",
        "Request audit events dropped because the audit writer fell behind";
    /// Responses whose headers echoed an injected credential (replaced before the
    /// sandbox saw them). A counter, not a log line: an echoing upstream does it on
    /// every request.
    echoed_headers: Counter = "echoed_headers",
        "Responses whose headers echoed an injected credential; replaced before the sandbox saw them";
    /// Requests sent upstream again under a connector's `request.retries`.
    upstream_retries: Family<ConnectorLabels, Counter> = "upstream_retries",
        "Requests sent upstream again under a connector's request.retries";
    /// Reads of external secret stores by source and outcome.
    secret_fetches: Family<SecretFetchLabels, Counter> = "secret_source_fetches",
        "Reads of external secret stores by source (vault, aws_sm, gcp_sm, op) and outcome (fetched, cached, stale: the last good value used while the source fails, failed)";
    /// Webhook delivery attempts by outcome.
    webhook_deliveries: Family<WebhookLabels, Counter> = "webhook_deliveries",
        "Webhook delivery attempts by outcome (delivered, failed and retried, dropped)";
    /// Webhook deliveries waiting in the vault's outbox.
    webhook_pending: Gauge = "webhook_pending",
        "Webhook deliveries waiting in the outbox";
    /// Renewals this replica waited for because another replica held the lease.
    lease_waits: Counter = "renewal_lease_waits",
        "Token renewals this replica waited for because another replica held the renewal lease";
    /// A shared vault database: failed queries, the pool, the change listener.
    database_errors: Counter = "vault_database_errors",
        "Queries to the shared vault database that failed (refused, timed out, or the database was away)";
    database_pool: Gauge = "vault_database_connections",
        "Connections this replica holds to the vault database";
    database_pool_idle: Gauge = "vault_database_connections_idle",
        "Of those, how many are idle";
    change_listener_up: Gauge = "vault_change_listener_up",
        "1 while this replica hears other replicas' changes (LISTEN), else 0";
    changes_heard: Counter = "vault_changes_heard",
        "Other replicas' changes this replica heard and applied";
    change_listener_lost: Counter = "vault_change_listener_lost",
        "Times the listening database connection was lost (everything is read again after)";
    /// Reloads of the policy file by outcome (`applied`, `refused`).
    policy_reloads: Family<ResultLabels, Counter> = "policy_reloads",
        "Reloads of the policy file by outcome (applied, refused: the previous policy stays)";
    /// When the policy in force was applied (unix seconds).
    policy_applied: Gauge = "policy_applied_timestamp_seconds",
        "When the policy in force was applied (unix seconds)";
    /// 1 for the SHA-256 of the policy file in force.
    policy_info: Family<PolicyLabels, Gauge> = "policy_info",
        "The policy file in force, by the SHA-256 of its text (value 1)";
    /// Rows of the vault's store that failed their MAC: written by something without
    /// the master key, and ignored.
    forged_rows: Counter = "vault_forged_rows",
        "Rows in the vault's store that failed their authentication (written without the master key) and were ignored";
    change_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64> = "vault_change_lag_seconds",
        "From the newest heard change's commit on another replica to its arrival here";
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Brings the vault database's figures up to `f` (read from the store when
    /// metrics are scraped).
    pub fn database(&self, f: DatabaseFigures) {
        let catch_up = |c: &Counter, to: u64| {
            c.inc_by(to.saturating_sub(c.get()));
        };
        catch_up(&self.database_errors, f.errors);
        catch_up(&self.changes_heard, f.heard);
        catch_up(&self.change_listener_lost, f.lost);
        self.database_pool
            .set(i64::try_from(f.pool).unwrap_or(i64::MAX));
        self.database_pool_idle
            .set(i64::try_from(f.idle).unwrap_or(i64::MAX));
        self.change_listener_up.set(i64::from(f.listening));
        self.change_lag_seconds.set(f.lag_ms as f64 / 1000.0);
    }

    /// The policy file was applied (at start or a reload): its text's SHA-256 and when.
    pub fn policy_applied(&self, sha256: &str, at_unix: i64, reload: bool) {
        if reload {
            self.policy_reloads
                .get_or_create(&ResultLabels { result: "applied" })
                .inc();
        }
        self.policy_applied.set(at_unix);
        self.policy_info.clear();
        self.policy_info
            .get_or_create(&PolicyLabels {
                sha256: sha256.to_owned(),
            })
            .set(1);
    }

    /// A reload of the policy file was refused; the previous policy stays.
    pub fn policy_refused(&self) {
        self.policy_reloads
            .get_or_create(&ResultLabels { result: "refused" })
            .inc();
    }

    /// The vault's count of forged rows found since start.
    pub fn forged_rows(&self, total: u64) {
        self.forged_rows
            .inc_by(total.saturating_sub(self.forged_rows.get()));
    }

    pub fn upstream_retry(&self, connector: &str) {
        self.upstream_retries
            .get_or_create(&ConnectorLabels {
                connector: connector.to_owned(),
            })
            .inc();
    }

    pub fn webhook(&self, outcome: &'static str) {
        self.webhook_deliveries
            .get_or_create(&WebhookLabels { outcome })
            .inc();
    }

    /// Counts an intercepted request's outcome.
    /// Outcomes and codes are static strings: counting a request allocates nothing
    /// unless it carried a credential (the connector id).
    pub fn request(&self, connector: &str, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                connector: connector.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Counts a refusal by its code and by its source.
    pub fn refusal(&self, code: &'static str, source: &'static str) {
        self.refusals.get_or_create(&CodeLabels { code }).inc();
        self.refusal_sources
            .get_or_create(&SourceLabels { source })
            .inc();
    }

    pub fn swap(&self, connector: &str) {
        self.swaps
            .get_or_create(&ConnectorLabels {
                connector: connector.to_owned(),
            })
            .inc();
    }

    pub fn refresh(&self, connector: &str, result: &str, seconds: f64) {
        self.refreshes
            .get_or_create(&RefreshLabels {
                connector: connector.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        self.refresh_seconds.observe(seconds);
    }

    /// The Prometheus text format (OpenMetrics flavour, which Prometheus reads).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A shared vault database's figures: cumulative counts and current levels.
#[derive(Debug, Default, Clone, Copy)]
pub struct DatabaseFigures {
    pub errors: u64,
    pub pool: u64,
    pub idle: u64,
    pub listening: bool,
    pub heard: u64,
    pub lost: u64,
    pub lag_ms: u64,
}

/// Holds a gauge up while alive: an open connection or tunnel.
pub struct Open(Gauge);

impl Open {
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}
