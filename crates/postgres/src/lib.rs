//! The vault's store in PostgreSQL, shared by several egret replicas.
//!
//! Owns the schema and its migrations (`schema`), the queries behind each
//! [`egret_vault::store::Store`] method (here), the renewal lease and its fence, the
//! notifications every write sends and the listener that hears other replicas' (`listen`).
//! It keeps only what the vault hands it: secrets arrive sealed and nothing here can open
//! them. It must not log a value or the database URL's password.
//!
//! The vault's API is synchronous (the redb store blocks on its disk the same way), so
//! the queries run on a small runtime of their own and a caller waits for the answer,
//! bounded by [`QUERY_TIMEOUT`]: egret's async threads call the vault off themselves
//! (`spawn_blocking`) for writes, and the request path reads memory.

mod error;
mod listen;
mod schema;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use egret_vault::store::{
    AuditFrom, Change, ChangeSink, Retention, Store, StoreError, StoreStats, Table, number_lines,
};
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
}

impl PgStore {
    /// Connects to `url`, creates or migrates the schema, and checks the database
    /// answers. With `sslmode=require` in the URL the connection is TLS (rustls,
    /// aws-lc-rs), the server's certificate verified against the public roots and
    /// `extra_ca` (PEM); otherwise it is plain TCP: egret never sends the vault over TLS
    /// it has not verified, which is what `prefer` would do.
    pub fn connect(url: &str, extra_ca: Option<&std::path::Path>) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Database(format!(
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
            .map_err(|e| StoreError::Database(format!("cannot start the database runtime: {e}")))?;
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
            .map_err(|e| StoreError::Database(format!("cannot build the connection pool: {e}")))?;
        let store = Self {
            runtime: Some(runtime),
            handle,
            pool,
            config,
            tls,
            origin: random_id(),
            hearing: Arc::new(Hearing::default()),
            errors: Arc::new(AtomicU64::new(0)),
            describe,
        };
        let p = store.pool.clone();
        let where_ = store.describe.clone();
        store
            .run(async move {
                let mut client = p.get().await.map_err(|e| {
                    let why = crate::error::pool_cause(e);
                    StoreError::Database(format!(
                        "cannot reach {where_}: {why}; check vault.url and that PostgreSQL is running"
                    ))
                })?;
                schema::migrate(&mut client).await
            })
            .map_err(|e| match e {
                StoreError::Database(m) if m.contains("did not answer within") => {
                    StoreError::Database(format!(
                        "{} did not answer in time; check vault.url and that PostgreSQL is running",
                        store.describe
                    ))
                }
                other => other,
            })?;
        Ok(store)
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
                    Err(StoreError::Database(format!(
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
            .map_err(|_| StoreError::Database("the database task stopped".to_owned()))?
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
        StoreError::Database(format!(
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
    tx: &tokio_postgres::Transaction<'_>,
    counter: &str,
    n: u64,
) -> Result<i64, StoreError> {
    let row = tx
        .query_one(
            "UPDATE egret_counters SET value = value + $1 WHERE name = $2 RETURNING value",
            &[&i64_of(n), &counter],
        )
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

impl Store for PgStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn ping(&self) -> Result<(), StoreError> {
        let p = self.pool.clone();
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            c.simple_query("SELECT 1").await.map_err(db)?;
            Ok(())
        })
    }

    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (p, key) = (self.pool.clone(), key.to_owned());
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            let row = c
                .query_opt(
                    "SELECT value FROM egret_records WHERE tbl = $1 AND key = $2",
                    &[&table.name(), &key],
                )
                .await
                .map_err(db)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn scan(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let p = self.pool.clone();
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            let rows = c
                .query(
                    "SELECT key, value FROM egret_records WHERE tbl = $1 ORDER BY key",
                    &[&table.name()],
                )
                .await
                .map_err(db)?;
            Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn commit(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let notices = self.notices(changes.iter().map(|c| (c.table, c.key.as_str())));
        let p = self.pool.clone();
        self.run(async move {
            let mut c = p.get().await.map_err(pool)?;
            let tx = c.transaction().await.map_err(db)?;
            let upsert = tx.prepare(UPSERT).await.map_err(db)?;
            let delete = tx
                .prepare("DELETE FROM egret_records WHERE tbl = $1 AND key = $2")
                .await
                .map_err(db)?;
            for change in &changes {
                let name = change.table.name();
                match &change.value {
                    Some(v) => tx.execute(&upsert, &[&name, &change.key, v]).await,
                    None => tx.execute(&delete, &[&name, &change.key]).await,
                }
                .map_err(db)?;
            }
            for n in &notices {
                tx.execute(NOTIFY, &[n]).await.map_err(db)?;
            }
            tx.commit().await.map_err(db)
        })
    }

    fn put_if_absent(&self, table: Table, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (p, key, value) = (self.pool.clone(), key.to_owned(), value.to_vec());
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            c.execute(
                "INSERT INTO egret_records (tbl, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&table.name(), &key, &value],
            )
            .await
            .map_err(db)?;
            let row = c
                .query_one(
                    "SELECT value FROM egret_records WHERE tbl = $1 AND key = $2",
                    &[&table.name(), &key],
                )
                .await
                .map_err(db)?;
            Ok(row.get(0))
        })
    }

    fn take(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let notices = self.notices([(table, key)]);
        let (p, key) = (self.pool.clone(), key.to_owned());
        self.run(async move {
            let mut c = p.get().await.map_err(pool)?;
            let tx = c.transaction().await.map_err(db)?;
            let row = tx
                .query_opt(
                    "DELETE FROM egret_records WHERE tbl = $1 AND key = $2 RETURNING value",
                    &[&table.name(), &key],
                )
                .await
                .map_err(db)?;
            for n in &notices {
                tx.execute(NOTIFY, &[n]).await.map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn swap(
        &self,
        table: Table,
        key: &str,
        expected: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.update_one(
            "UPDATE egret_records SET value = $4, version = version + 1
             WHERE tbl = $1 AND key = $2 AND value = $3",
            vec![
                Box::new(table.name()),
                Box::new(key.to_owned()),
                Box::new(expected.to_vec()),
                Box::new(new.to_vec()),
            ],
            (table, key),
        )
    }

    fn claim_renewal(
        &self,
        key: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let (p, key, holder) = (self.pool.clone(), key.to_owned(), holder.to_owned());
        let secs = lease.as_secs_f64();
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            let row = c
                .query_opt(
                    "UPDATE egret_records
                     SET lease_holder = $2, lease_until = now() + make_interval(secs => $3)
                     WHERE tbl = 'connections' AND key = $1
                       AND (lease_until IS NULL OR lease_until < now() OR lease_holder = $2)
                     RETURNING version",
                    &[&key, &holder, &secs],
                )
                .await
                .map_err(db)?;
            Ok(row.map(|r| u64_of(r.get(0))))
        })
    }

    fn commit_renewal(
        &self,
        key: &str,
        holder: &str,
        version: u64,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        // The fence: still this holder's, and nobody wrote the row since the claim.
        self.update_one(
            "UPDATE egret_records
             SET value = $4, version = version + 1, lease_holder = NULL, lease_until = NULL
             WHERE tbl = 'connections' AND key = $1 AND lease_holder = $2 AND version = $3",
            vec![
                Box::new(key.to_owned()),
                Box::new(holder.to_owned()),
                Box::new(i64_of(version)),
                Box::new(value.to_vec()),
            ],
            (Table::Connections, key),
        )
    }

    fn release_renewal(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let (p, key, holder) = (self.pool.clone(), key.to_owned(), holder.to_owned());
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            c.execute(
                "UPDATE egret_records SET lease_holder = NULL, lease_until = NULL
                 WHERE tbl = 'connections' AND key = $1 AND lease_holder = $2",
                &[&key, &holder],
            )
            .await
            .map_err(db)?;
            Ok(())
        })
    }

    fn lead(&self, task: &str, holder: &str, lease: Duration) -> Result<bool, StoreError> {
        let (p, task, holder) = (self.pool.clone(), task.to_owned(), holder.to_owned());
        let secs = lease.as_secs_f64();
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            let row = c
                .query_opt(
                    "INSERT INTO egret_leaders (task, holder, until)
                     VALUES ($1, $2, now() + make_interval(secs => $3))
                     ON CONFLICT (task) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
                     WHERE egret_leaders.until < now() OR egret_leaders.holder = EXCLUDED.holder
                     RETURNING holder",
                    &[&task, &holder, &secs],
                )
                .await
                .map_err(db)?;
            Ok(row.is_some())
        })
    }

    fn audit_append(
        &self,
        lines: &[u8],
        at: i64,
        _durable: bool,
        retention: Retention,
    ) -> Result<(u64, Vec<u8>), StoreError> {
        let count = lines.split(|b| *b == b'\n').filter(|l| l.len() > 2).count() as u64;
        let lines = lines.to_vec();
        let p = self.pool.clone();
        self.run(async move {
            let mut c = p.get().await.map_err(pool)?;
            let tx = c.transaction().await.map_err(db)?;
            let last = reserve(&tx, "audit", count).await?;
            let first = (u64_of(last) + 1).saturating_sub(count);
            let (numbered, _) = number_lines(&lines, first);
            if count > 0 {
                // One row per batch, as in the redb file: a busy proxy's request events
                // cost the database one insert per batch, not one per request.
                tx.execute(
                    "INSERT INTO egret_audit (seq, first_seq, at, lines) VALUES ($1, $2, $3, $4)",
                    &[
                        &last,
                        &i64_of(first),
                        &at,
                        &String::from_utf8_lossy(&numbered),
                    ],
                )
                .await
                .map_err(db)?;
            }
            // Retention, now and then: rows past the count, then past the age; whole rows
            // go, and the newest stays.
            if u64_of(last) / 512 != first.saturating_sub(1) / 512 {
                let cutoff = at - retention.max_age_secs;
                tx.execute(
                    "DELETE FROM egret_audit WHERE seq < $1 AND (seq <= $1 - $2 OR at < $3)",
                    &[&last, &i64_of(retention.keep), &cutoff],
                )
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok((first, numbered))
        })
    }

    fn audit_page(&self, from: AuditFrom, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let p = self.pool.clone();
        let limit = i64_of(max as u64);
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            // A row holds one or more events, so `max` rows hold at least `max` events.
            let rows = match from {
                AuditFrom::After(s) => {
                    c.query(
                        "SELECT lines FROM egret_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                        &[&i64_of(s), &limit],
                    )
                    .await
                }
                AuditFrom::Before(s) => {
                    c.query(
                        "SELECT lines FROM egret_audit WHERE first_seq < $1 ORDER BY seq DESC LIMIT $2",
                        &[&i64_of(s), &limit],
                    )
                    .await
                }
            }
            .map_err(db)?;
            let mut out = Vec::new();
            'rows: for r in rows {
                let text: String = r.get(0);
                let mut lines: Vec<&str> = text.split('\n').collect();
                if matches!(from, AuditFrom::Before(_)) {
                    lines.reverse();
                }
                for line in lines {
                    if out.len() >= max {
                        break 'rows;
                    }
                    let seq = egret_vault::store::seq_of_line(line.as_bytes());
                    let wanted = seq.is_some_and(|n| match from {
                        AuditFrom::After(s) => n > s,
                        AuditFrom::Before(s) => n < s,
                    });
                    if wanted {
                        out.push(line.as_bytes().to_vec());
                    }
                }
            }
            Ok(out)
        })
    }

    fn outbox_push(&self, rows: Vec<Vec<u8>>, cap: usize) -> Result<usize, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let p = self.pool.clone();
        self.run(async move {
            let mut c = p.get().await.map_err(pool)?;
            let tx = c.transaction().await.map_err(db)?;
            let last = reserve(&tx, "outbox", rows.len() as u64).await?;
            let first = last - i64_of(rows.len() as u64) + 1;
            let seqs: Vec<i64> = (first..=last).collect();
            let texts: Vec<String> = rows
                .iter()
                .map(|r| String::from_utf8_lossy(r).into_owned())
                .collect();
            tx.execute(
                "INSERT INTO egret_outbox (seq, row) SELECT * FROM unnest($1::bigint[], $2::text[])",
                &[&seqs, &texts],
            )
            .await
            .map_err(db)?;
            let dropped = tx
                .execute(
                    "DELETE FROM egret_outbox WHERE seq IN (
                        SELECT seq FROM egret_outbox ORDER BY seq
                        LIMIT greatest(0, (SELECT count(*) FROM egret_outbox) - $1))",
                    &[&i64_of(cap as u64)],
                )
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(usize::try_from(dropped).unwrap_or(usize::MAX))
        })
    }

    fn outbox_rows(&self, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let p = self.pool.clone();
        let limit = i64_of(max as u64);
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            let rows = c
                .query(
                    "SELECT seq, row FROM egret_outbox ORDER BY seq LIMIT $1",
                    &[&limit],
                )
                .await
                .map_err(db)?;
            Ok(rows
                .into_iter()
                .map(|r| (u64_of(r.get(0)), r.get::<_, String>(1).into_bytes()))
                .collect())
        })
    }

    fn outbox_update(&self, seq: u64, row: Option<&[u8]>) -> Result<(), StoreError> {
        let p = self.pool.clone();
        let row = row.map(|r| String::from_utf8_lossy(r).into_owned());
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            let seq = i64_of(seq);
            let params: [&(dyn ToSql + Sync); 2];
            match &row {
                Some(r) => {
                    params = [&seq, r];
                    c.execute("UPDATE egret_outbox SET row = $2 WHERE seq = $1", &params)
                        .await
                }
                None => {
                    c.execute("DELETE FROM egret_outbox WHERE seq = $1", &[&seq])
                        .await
                }
            }
            .map_err(db)?;
            Ok(())
        })
    }

    fn outbox_len(&self) -> Result<u64, StoreError> {
        let p = self.pool.clone();
        self.run(async move {
            let c = p.get().await.map_err(pool)?;
            let row = c
                .query_one("SELECT count(*) FROM egret_outbox", &[])
                .await
                .map_err(db)?;
            Ok(u64_of(row.get(0)))
        })
    }

    fn audit_import(&self, lines: &[Vec<u8>]) -> Result<(), StoreError> {
        // A row per copied event (their times differ), with its number.
        let mut seqs = Vec::with_capacity(lines.len());
        let mut ats = Vec::with_capacity(lines.len());
        let mut texts = Vec::with_capacity(lines.len());
        for line in lines {
            let seq = egret_vault::store::seq_of_line(line).ok_or_else(|| {
                StoreError::Corrupt("an audit event without its number".to_owned())
            })?;
            seqs.push(i64_of(seq));
            ats.push(at_of(line));
            texts.push(String::from_utf8_lossy(line).into_owned());
        }
        let p = self.pool.clone();
        self.run(async move {
            let mut c = p.get().await.map_err(pool)?;
            let tx = c.transaction().await.map_err(db)?;
            tx.execute(
                "INSERT INTO egret_audit (seq, first_seq, at, lines)
                 SELECT s, s, a, l FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS t(s, a, l)",
                &[&seqs, &ats, &texts],
            )
            .await
            .map_err(db)?;
            tx.execute(
                "UPDATE egret_counters SET value = greatest(value, (SELECT coalesce(max(seq), 0) FROM egret_audit)) WHERE name = 'audit'",
                &[],
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    fn watch(&self, sink: Arc<dyn ChangeSink>) {
        let mut config = self.config.clone();
        // Named apart in pg_stat_activity: the one connection that must stay up.
        config.application_name(format!(
            "{}-listen",
            self.config.get_application_name().unwrap_or("egret")
        ));
        listen::start(
            &self.handle,
            config,
            self.tls.clone(),
            self.origin.clone(),
            self.hearing.clone(),
            sink,
        );
    }

    fn stats(&self) -> Option<StoreStats> {
        let pool = self.pool.status();
        let h = &self.hearing;
        Some(StoreStats {
            errors: self.errors.load(Ordering::Relaxed),
            pool_size: pool.size as u64,
            pool_idle: pool.available as u64,
            listening: h.listening(),
            changes_heard: h.heard.load(Ordering::Relaxed),
            change_lag_ms: h.lag_ms.load(Ordering::Relaxed),
            listener_lost: h.lost.load(Ordering::Relaxed),
        })
    }

    fn memory_current(&self) -> bool {
        self.hearing.current(DEAF_BOUND)
    }

    fn health(&self) -> Result<(), StoreError> {
        self.ping()?;
        self.hearing.healthy().map_err(StoreError::Database)
    }
}
