//! Webhook deliveries owed, in `egret_outbox`, numbered by the `outbox` counter.

use egret_vault::store::{Outbox, StoreError};
use tokio_postgres::types::ToSql;

use crate::error::{db, pool};
use crate::{PgStore, i64_of, reserve, u64_of};

impl Outbox for PgStore {
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
}
