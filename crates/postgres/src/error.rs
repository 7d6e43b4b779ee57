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

/// A failed query. One the server did not answer says what to look at.
pub fn db(e: tokio_postgres::Error) -> StoreError {
    let text = describe(&e);
    if e.as_db_error().is_some() {
        StoreError::Database(text)
    } else {
        StoreError::Database(format!(
            "{text}; check that PostgreSQL is up and reachable (egret reconnects by itself)"
        ))
    }
}

/// No connection from the pool.
pub fn pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db(e),
        other => StoreError::Database(format!(
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
