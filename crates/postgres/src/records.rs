//! The vault's keyed rows in `egret_records`: a row per table and key, with a version
//! every write advances (the renewal fence reads it); each commit notifies the others.

use egret_vault::store::{Change, Records, StoreError, Table};

use crate::error::{db, pool};
use crate::{NOTIFY, PgStore, UPSERT};

impl Records for PgStore {
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
}
