//! PostgreSQL errors as the vault's store errors: what failed, never the URL's password.

use egret_vault::store::StoreError;

/// What went wrong, with the cause tokio-postgres keeps underneath ("error connecting to
/// server: Connection refused").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// A failed query, by kind. One the server did not answer says what to look at.
pub fn db(e: tokio_postgres::Error) -> StoreError {
    let text = describe(&e);
    match e.as_db_error() {
        None => StoreError::Unavailable(format!(
            "{text}; check that PostgreSQL is up and reachable (egret reconnects by itself)"
        )),
        Some(d) => of_state(d.code().code(), text),
    }
}

/// The kind of a failure the server reported, by its SQLSTATE class.
fn of_state(state: &str, text: String) -> StoreError {
    match state.get(..2).unwrap_or_default() {
        // Integrity constraints; serialization failures and deadlocks.
        "23" | "40" => StoreError::Conflict(text),
        // Data exceptions; data or index corruption.
        "22" | "XX" if state != "XX000" => StoreError::Corrupt(text),
        // Connections, resources, shutdowns, system errors, a missing database or role:
        // the database is away or not ready, and egret retries.
        "08" | "53" | "57" | "58" | "3D" | "28" => StoreError::Unavailable(text),
        _ => StoreError::Broken(format!("the vault database refused egret's query: {text}")),
    }
}

/// No connection from the pool.
pub fn pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db(e),
        other => StoreError::Unavailable(format!(
            "no database connection ({other}); check that PostgreSQL is up and reachable (egret reconnects by itself)"
        )),
    }
}

/// Why the pool gave no connection, in a few words (start-up adds what to check).
pub fn pool_cause(e: deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => describe(&e),
        other => other.to_string(),
    }
}
