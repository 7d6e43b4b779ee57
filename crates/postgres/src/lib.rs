//! The vault's store in PostgreSQL, shared by several egret replicas.
//!
//! Owns the schema and its migrations (`schema`), the queries behind each trait of the
//! store seam — keyed rows and their notifications (`records`), the renewal lease and its
//! fence and task leadership (`leases`), the audit log (`audit`), the webhook outbox
//! (`outbox`), changes heard and health (`changes`) — and the listener that hears other
//! replicas' notifications (`listen`). This file connects and holds what they share.
//! It keeps only what the vault hands it: secrets arrive sealed and nothing here can open
//! them. It must not log a value or the database URL's password.
//!
//! The vault's API is synchronous (the redb store blocks on its disk the same way), so
//! the queries run on a small runtime of their own and a caller waits for the answer,
//! bounded by [`QUERY_TIMEOUT`]: egret's async threads call the vault off themselves
//! (`spawn_blocking`) for writes, and the request path reads memory.

mod audit;
mod changes;
mod error;
mod leases;
mod listen;
mod outbox;
mod records;
mod schema;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use egret_vault::store::{StoreError, Table};
use tokio_postgres::types::ToSql;

use crate::error::{db, pool};
pub use crate::listen::Hearing;

/// Longest a query may take before the caller is told the database failed.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest start-up waits for the database before it gives up with a clear message.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections kept open to the database by each replica.
const POOL_SIZE: usize = 8;
/// The channel every write notifies and every replica listens on.
pub const CHANNEL: &str = "egret_changes";
/// A commit changing more rows than this notifies "read everything again" instead.
const NOTIFY_EACH_UP_TO: usize = 64;

/// How long a replica may go without hearing changes before it stops trusting memory.
pub const DEAF_BOUND: Duration = Duration::from_secs(3);

/// The PostgreSQL store.
pub struct PgStore {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    describe: String,
    /// This replica in notifications: its own are not applied twice.
    origin: String,
    hearing: Arc<Hearing>,
    /// Queries that failed, for metrics.
    errors: Arc<AtomicU64>,
    /// The audit counter as this replica last left it (-1: not read yet): the next batch
    /// is numbered from it before the database is asked (see `audit.rs`).
    audit_seen: Arc<std::sync::atomic::AtomicI64>,
    /// How often an audit batch is numbered from `audit_seen` before the counter is
    /// locked instead (0 in a test of the locking path).
    claim_tries: usize,
}

impl PgStore {
    /// Connects to `url`, creates or migrates the schema, and checks the database
    /// answers. With `sslmode=require` in the URL the connection is TLS (rustls,
    /// aws-lc-rs), the server's certificate verified against the public roots and
    /// `extra_ca` (PEM); otherwise it is plain TCP: egret never sends the vault over TLS
    /// it has not verified, which is what `prefer` would do.
    pub fn connect(url: &str, extra_ca: Option<&std::path::Path>) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Unavailable(format!(
                "vault.url is not a PostgreSQL URL ({e}); expected postgres://user@host:5432/database"
            ))
        })?;
        if config.get_ssl_mode() != tokio_postgres::config::SslMode::Require {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        if config.get_application_name().is_none() {
            config.application_name("egret");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let describe = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("egret-postgres")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the database runtime: {e}"))
            })?;
        let handle = runtime.handle().clone();
        let tls = tls(extra_ca)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(QUERY_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot build the connection pool: {e}"))
            })?;
        let store = Self {
            runtime: Some(runtime),
            handle,
            pool,
            config,
            tls,
            origin: random_id(),
            hearing: Arc::new(Hearing::default()),
            errors: Arc::new(AtomicU64::new(0)),
            audit_seen: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
            claim_tries: audit::CLAIM_TRIES,
            describe,
        };
        let p = store.pool.clone();
        let where_ = store.describe.clone();
        store
            .run(async move {
                let mut client = p.get().await.map_err(|e| {
                    let why = crate::error::pool_cause(e);
                    StoreError::Unavailable(format!(
                        "cannot reach {where_}: {why}; check vault.url and that PostgreSQL is running"
                    ))
                })?;
                schema::migrate(&mut client).await
            })
            .map_err(|e| match e {
                StoreError::Unavailable(m) if m.contains("did not answer within") => {
                    StoreError::Unavailable(format!(
                        "{} did not answer in time; check vault.url and that PostgreSQL is running",
                        store.describe
                    ))
                }
                other => other,
            })?;
        Ok(store)
    }

    /// This store numbers every audit batch under the counter's lock, never from the
    /// value it last saw: for tests of that path (replicas contending for numbers).
    #[doc(hidden)]
    #[must_use]
    pub fn always_lock_audit_counter(mut self) -> Self {
        self.claim_tries = 0;
        self
    }

    /// The listener's state, for readiness and metrics.
    pub fn hearing(&self) -> Arc<Hearing> {
        self.hearing.clone()
    }

    /// Connections in the pool now, and how many of them are idle.
    pub fn pool_use(&self) -> (usize, usize) {
        let s = self.pool.status();
        (s.size, s.available)
    }

    /// Whether the store holds no vault yet (`vault migrate` refuses a target that does).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let p = self.pool.clone();
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            let row = c
                .query_one(
                    "SELECT (SELECT count(*) FROM egret_records) + (SELECT count(*) FROM egret_audit) + (SELECT count(*) FROM egret_outbox)",
                    &[],
                )
                .await
                .map_err(db)?;
            Ok(row.get::<_, i64>(0) == 0)
        })
    }

    /// Runs `f` on the store's runtime and waits for it, at most [`QUERY_TIMEOUT`].
    fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let errors = self.errors.clone();
        self.handle.spawn(async move {
            let out = tokio::time::timeout(QUERY_TIMEOUT, f)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(format!(
                        "the database did not answer within {} s",
                        QUERY_TIMEOUT.as_secs()
                    )))
                });
            if out.is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            let _ = tx.send(out);
        });
        rx.recv()
            .map_err(|_| StoreError::Unavailable("the database task stopped".to_owned()))?
    }

    /// Runs an `UPDATE` of at most one row (`params` owned: the query runs on the
    /// store's runtime) and, when it changed the row, tells the other replicas about
    /// `row` in the same transaction. Whether it changed the row.
    fn update_one(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Sync + Send>>,
        row: (Table, &str),
    ) -> Result<bool, StoreError> {
        let notices = self.notices([row]);
        let p = self.pool.clone();
        self.run(async move {
            let mut c = p.get().await.map_err(pool)?;
            let tx = c.transaction().await.map_err(db)?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
            let n = tx.execute(sql, &refs).await.map_err(db)?;
            if n == 1 {
                for notice in &notices {
                    tx.execute(NOTIFY, &[notice]).await.map_err(db)?;
                }
            }
            tx.commit().await.map_err(db)?;
            Ok(n == 1)
        })
    }

    /// The notifications a commit of `changes` sends (in its own transaction).
    fn notices<'a>(&self, changes: impl IntoIterator<Item = (Table, &'a str)>) -> Vec<String> {
        let indexed: Vec<(Table, &str)> =
            changes.into_iter().filter(|(t, _)| t.indexed()).collect();
        if indexed.len() > NOTIFY_EACH_UP_TO {
            return vec![listen::payload(&self.origin, None)];
        }
        indexed
            .into_iter()
            .map(|row| listen::payload(&self.origin, Some(row)))
            .collect()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.hearing.stop();
        // Dropping a runtime blocks; egret may drop the vault on an async thread.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Where a database URL points, and whether it asks for TLS.
pub struct Target {
    /// Its hosts, as people write them.
    pub hosts: String,
    /// Every host is this machine (loopback, `localhost`, a Unix socket).
    pub hosts_local: bool,
    /// `sslmode=require`: TLS, verified (see [`PgStore::connect`]).
    pub tls_required: bool,
}

/// What [`Target`] a URL names (`None` when it is not one).
pub fn describe_target(url: &str) -> Option<Target> {
    use tokio_postgres::config::Host;
    let config: tokio_postgres::Config = url.parse().ok()?;
    let local = |h: &Host| match h {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Host::Unix(_) => true,
    };
    let hosts = config.get_hosts();
    Some(Target {
        hosts: hosts
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        hosts_local: hosts.iter().all(local),
        tls_required: config.get_ssl_mode() == tokio_postgres::config::SslMode::Require,
    })
}

/// `postgres user@host:port/db` for a URL (`None` when it is not one): no password.
pub fn describe_url(url: &str) -> Option<String> {
    url.parse::<tokio_postgres::Config>()
        .ok()
        .map(|c| describe(&c))
}

/// `postgres user@host:port/db`: no password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres {}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

/// TLS to the database, as `egret-outbound` states it for the vault database: the
/// public roots and `extra_ca` (`vault.ca_file`); used when the URL's `sslmode` asks.
fn tls(
    extra_ca: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let config = egret_outbound::database_tls(extra_ca).map_err(|e| {
        StoreError::Unavailable(format!(
            "vault.ca_file: {e}; expected the PEM certificate of the CA that signed the database's"
        ))
    })?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn random_id() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(12)
        .map(char::from)
        .collect()
}

/// Reserves `n` numbers of `counter` (`audit`, `outbox`) in `tx`; the last one given.
/// The counter's row lock orders concurrent reservations: numbers are gap-free across
/// replicas and none is given twice.
async fn reserve(
    tx: &deadpool_postgres::Transaction<'_>,
    counter: &str,
    n: u64,
) -> Result<i64, StoreError> {
    let reserve = tx
        .prepare_cached(
            "UPDATE egret_counters SET value = value + $1 WHERE name = $2 RETURNING value",
        )
        .await
        .map_err(db)?;
    let row = tx
        .query_one(&reserve, &[&i64_of(n), &counter])
        .await
        .map_err(db)?;
    Ok(row.get(0))
}

/// A stored audit line's time (`"at":N`), 0 when it has none.
fn at_of(line: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(line);
    text.split_once("\"at\":")
        .and_then(|(_, rest)| {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '-'))
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .unwrap_or(0)
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

const UPSERT: &str = "INSERT INTO egret_records (tbl, key, value) VALUES ($1, $2, $3)
    ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value, version = egret_records.version + 1";
const NOTIFY: &str = "SELECT pg_notify('egret_changes', $1)";
