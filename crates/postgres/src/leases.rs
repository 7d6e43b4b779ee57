//! Renewal leases (with the version fence) on `egret_records`, and background-task
//! leadership in `egret_leaders`.

use std::time::Duration;

use egret_vault::store::{Leases, StoreError, Table};

use crate::error::{db, pool};
use crate::{PgStore, i64_of, u64_of};

impl Leases for PgStore {
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
}
