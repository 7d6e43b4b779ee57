//! PostgreSQL errors as the vault's store errors: what failed, never the URL's password.

use egret_vault::store::StoreError;

/// A database error, with PostgreSQL's own message when it sent one.
pub fn db(e: tokio_postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    };
    StoreError::Database(text)
}

pub fn pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db(e),
        other => StoreError::Database(format!("no database connection: {other}")),
    }
}
