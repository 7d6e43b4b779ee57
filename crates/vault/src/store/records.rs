//! Keyed rows: the vault's tables, written in atomic commits.

use super::{Change, StoreError, Table};

pub trait Records: Send + Sync {
    /// `redb file /var/lib/egret/egret.redb`, `postgres db@host`: for logs and errors,
    /// never a password.
    fn describe(&self) -> String;

    /// Readiness: the store answers.
    fn ping(&self) -> Result<(), StoreError>;

    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every row of `table`, in key order.
    fn scan(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Applies `changes` in one transaction: all or none.
    fn commit(&self, changes: Vec<Change>) -> Result<(), StoreError>;

    /// Puts `value` under `key` unless a row is there; returns what is there after.
    fn put_if_absent(&self, table: Table, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Removes the row and returns what it held, atomically: a second taker gets `None`.
    fn take(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replaces the row with `new` only if it still holds `expected`; false otherwise.
    fn swap(
        &self,
        table: Table,
        key: &str,
        expected: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError>;
}
