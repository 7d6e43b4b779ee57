//! The tables egret keeps in PostgreSQL, and their migrations: numbered steps applied in
//! order, each once, under a transaction-scoped advisory lock so replicas starting
//! together migrate one at a time (and the others find the work done).
//!
//! Every value a person must not read is sealed by the vault before it gets here.

use tokio_postgres::Client;

use crate::error::db;
use egret_vault::store::StoreError;

/// Any number, the same in every egret: the lock migrations run under.
const MIGRATION_LOCK: i64 = 0x6567_7265_745f_6d67;

/// Migration steps; step `n` takes the schema from version `n` to `n + 1`.
const STEPS: &[&str] = &[
    // 1: every keyed record (connections, placeholders, sandboxes, …) with its version and,
    // for connections, the renewal lease; the audit log (a row per write: the events it
    // numbered `first_seq..=seq`, as JSON lines); the webhook outbox; the counters that
    // number those two across replicas; the leaders of background tasks.
    "CREATE TABLE egret_records (
        tbl text NOT NULL,
        key text NOT NULL,
        value bytea NOT NULL,
        version bigint NOT NULL DEFAULT 1,
        lease_holder text,
        lease_until timestamptz,
        PRIMARY KEY (tbl, key)
    );
    CREATE TABLE egret_audit (
        seq bigint PRIMARY KEY,
        first_seq bigint NOT NULL,
        at bigint NOT NULL,
        lines text NOT NULL
    );
    CREATE INDEX egret_audit_first_seq ON egret_audit (first_seq);
    CREATE TABLE egret_outbox (
        seq bigint PRIMARY KEY,
        row text NOT NULL
    );
    CREATE TABLE egret_counters (
        name text PRIMARY KEY,
        value bigint NOT NULL
    );
    INSERT INTO egret_counters VALUES ('audit', 0), ('outbox', 0);
    CREATE TABLE egret_leaders (
        task text PRIMARY KEY,
        holder text NOT NULL,
        until timestamptz NOT NULL
    );",
    // 2: a row of `egret_audit` is a batch of request events, tens of kilobytes of
    // JSON lines that PostgreSQL compresses on insert, on the machine the database shares
    // with its clients. lz4 does it about ten times faster than the default pglz (one
    // batch of 1,000 events: 0.17 ms against 1.9 ms of the server's CPU) to the same size.
    // A server built without lz4 keeps pglz.
    "DO $$ BEGIN
        ALTER TABLE egret_audit ALTER COLUMN lines SET COMPRESSION lz4;
    EXCEPTION WHEN feature_not_supported THEN
        RAISE NOTICE 'this PostgreSQL has no lz4: the audit log is compressed with pglz';
    END $$;",
];

/// The schema version this egret writes.
pub const VERSION: i32 = STEPS.len() as i32;

/// Brings the schema to [`VERSION`]; refuses a database a newer egret migrated.
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await
        .map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS egret_schema (version integer NOT NULL)")
        .await
        .map_err(db)?;
    let row = tx
        .query_one("SELECT coalesce(max(version), 0) FROM egret_schema", &[])
        .await
        .map_err(db)?;
    let at: i32 = row.get(0);
    if at > VERSION {
        return Err(StoreError::Broken(format!(
            "the database's egret schema is version {at}, newer than this egret's ({VERSION}); run the newer egret, or restore a backup from before the upgrade"
        )));
    }
    for (n, step) in STEPS
        .iter()
        .enumerate()
        .skip(usize::try_from(at).unwrap_or(0))
    {
        tx.batch_execute(step).await.map_err(db)?;
        let version = i32::try_from(n + 1).unwrap_or(i32::MAX);
        tx.execute("DELETE FROM egret_schema", &[])
            .await
            .map_err(db)?;
        tx.execute("INSERT INTO egret_schema VALUES ($1)", &[&version])
            .await
            .map_err(db)?;
        tracing::info!(version, "vault database schema migrated");
    }
    tx.commit().await.map_err(db)
}
