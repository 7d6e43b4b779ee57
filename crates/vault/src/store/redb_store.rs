//! The embedded store: one redb file, locked by the one egret that opens it. Nothing is
//! shared, so renewal claims and background leadership are always granted.
//!
//! The layout is the one earlier versions wrote (a table per [`Table`], `removed_connectors`
//! holding `i64`s, the audit log as batch rows), so an existing vault opens unchanged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use super::{
    AuditFrom, AuditLog, Change, ChangeFeed, Leases, Outbox, Records, StoreError, Table,
    number_lines, seq_of_line,
};

type Bytes = TableDefinition<'static, &'static str, &'static [u8]>;

const REMOVED: TableDefinition<&str, i64> = TableDefinition::new("removed_connectors");
/// Audit events, a row per write: the value is the events as JSON lines (oldest first),
/// the key the sequence number of the row's newest event. A batch of request events is
/// one row: one B-tree insert per batch instead of one per request.
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Webhook deliveries owed, by sequence number (oldest first).
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("webhook_outbox");
/// The newest number given by each numbered table (`outbox`), so that a number freed
/// by a delivery removed at the end is never given again (a late update of the old
/// delivery must not land on a new one). Absent in files from before: the table's
/// newest key stands in.
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

fn bytes(table: Table) -> Bytes {
    TableDefinition::new(table.name())
}

pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// Opens (or creates) the file and every table, so readers never meet a missing one.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse,
            other => broken(other),
        })?;
        let store = Self {
            db,
            path: path.to_owned(),
        };
        store.write(true, |tx| {
            for t in Table::ALL {
                if t == Table::RemovedConnectors {
                    tx.open_table(REMOVED)?;
                } else {
                    tx.open_table(bytes(t))?;
                }
            }
            tx.open_table(AUDIT)?;
            tx.open_table(OUTBOX)?;
            tx.open_table(COUNTERS)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn write(
        &self,
        durable: bool,
        f: impl FnOnce(&WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write()?;
        if !durable {
            tx.set_durability(redb::Durability::None).map_err(broken)?;
        }
        f(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn apply(tx: &WriteTransaction, change: &Change) -> Result<(), StoreError> {
        if change.table == Table::RemovedConnectors {
            let mut t = tx.open_table(REMOVED)?;
            match &change.value {
                Some(v) => {
                    t.insert(change.key.as_str(), decode_i64(&change.key, v)?)?;
                }
                None => {
                    t.remove(change.key.as_str())?;
                }
            }
            return Ok(());
        }
        let mut t = tx.open_table(bytes(change.table))?;
        match &change.value {
            Some(v) => {
                t.insert(change.key.as_str(), v.as_slice())?;
            }
            None => {
                t.remove(change.key.as_str())?;
            }
        }
        Ok(())
    }
}

fn decode_i64(key: &str, v: &[u8]) -> Result<i64, StoreError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("removed_connectors/{key}")))
}

/// A failure of the file: the disk or its permissions, which a retry does not mend.
fn broken(e: impl std::fmt::Display) -> StoreError {
    StoreError::Broken(format!(
        "vault storage failed: {e}; check the disk and the vault file's permissions"
    ))
}

/// Every redb error is a failure of the file: `?` turns each kind into one.
macro_rules! storage_from {
    ($($kind:ty),* $(,)?) => {$(
        impl From<$kind> for StoreError {
            fn from(e: $kind) -> Self {
                broken(e)
            }
        }
    )*};
}

storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
);

impl Records for RedbStore {
    fn describe(&self) -> String {
        format!("redb file {}", self.path.display())
    }

    fn ping(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_read()?;
        tx.open_table(bytes(Table::Meta))?;
        Ok(())
    }

    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        if table == Table::RemovedConnectors {
            let t = tx.open_table(REMOVED)?;
            return Ok(t.get(key)?.map(|v| v.value().to_string().into_bytes()));
        }
        let t = tx.open_table(bytes(table))?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    fn scan(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read()?;
        let mut out = Vec::new();
        if table == Table::RemovedConnectors {
            for row in tx.open_table(REMOVED)?.iter()? {
                let (k, v) = row?;
                out.push((k.value().to_owned(), v.value().to_string().into_bytes()));
            }
            return Ok(out);
        }
        for row in tx.open_table(bytes(table))?.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn commit(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        self.write(true, |tx| {
            for c in &changes {
                Self::apply(tx, c)?;
            }
            Ok(())
        })
    }

    fn put_if_absent(&self, table: Table, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut now = Vec::new();
        self.write(true, |tx| {
            let mut t = tx.open_table(bytes(table))?;
            let existing = t.get(key)?.map(|v| v.value().to_vec());
            now = match existing {
                Some(v) => v,
                None => {
                    t.insert(key, value)?;
                    value.to_vec()
                }
            };
            Ok(())
        })?;
        Ok(now)
    }

    fn take(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut found = None;
        self.write(true, |tx| {
            let mut t = tx.open_table(bytes(table))?;
            found = t.remove(key)?.map(|v| v.value().to_vec());
            Ok(())
        })?;
        Ok(found)
    }

    fn swap(
        &self,
        table: Table,
        key: &str,
        expected: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let mut swapped = false;
        self.write(true, |tx| {
            let mut t = tx.open_table(bytes(table))?;
            let same = t.get(key)?.is_some_and(|v| v.value() == expected);
            if same {
                t.insert(key, new)?;
                swapped = true;
            }
            Ok(())
        })?;
        Ok(swapped)
    }
}

impl Leases for RedbStore {
    fn claim_renewal(&self, _: &str, _: &str, _: Duration) -> Result<Option<u64>, StoreError> {
        // One process owns this file (redb locks it): nobody else renews.
        Ok(Some(0))
    }

    fn commit_renewal(&self, key: &str, _: &str, _: u64, value: &[u8]) -> Result<bool, StoreError> {
        // A renewal never brings back a connection removed while it ran.
        let mut written = false;
        self.write(true, |tx| {
            let mut t = tx.open_table(bytes(Table::Connections))?;
            if t.get(key)?.is_some() {
                t.insert(key, value)?;
                written = true;
            }
            Ok(())
        })?;
        Ok(written)
    }

    fn release_renewal(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn lead(&self, _: &str, _: &str, _: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }
}

impl AuditLog for RedbStore {
    fn append_row(
        &self,
        lines: &[u8],
        count: u64,
        _at: i64,
        durable: bool,
    ) -> Result<(u64, Vec<u8>), StoreError> {
        let mut out = (0, Vec::new());
        self.write(durable, |tx| {
            let mut table = tx.open_table(AUDIT)?;
            let first = table.last()?.map_or(0, |(k, _)| k.value()) + 1;
            let (row, _) = number_lines(lines, first);
            table.insert(first + count - 1, row.as_slice())?;
            out = (first, row);
            Ok(())
        })?;
        Ok(out)
    }

    fn rows(&self, from: AuditFrom, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(AUDIT)?;
        let mut out = Vec::new();
        match from {
            AuditFrom::After(since) => {
                for stored in table.range(since.saturating_add(1)..)?.take(max) {
                    out.push(stored?.1.value().to_vec());
                }
            }
            AuditFrom::Before(before) => {
                // Rows keyed below `before` qualify; so may the one holding `before`
                // (its key, the newest number, is above it).
                if let Some(stored) = table.range(before..)?.next() {
                    let row = stored?.1.value().to_vec();
                    if seq_of_line(&row).is_some_and(|first| first < before) {
                        out.push(row);
                    }
                }
                for stored in table.range(..before)?.rev() {
                    if out.len() >= max {
                        break;
                    }
                    out.push(stored?.1.value().to_vec());
                }
            }
        }
        Ok(out)
    }

    fn prune(
        &self,
        through: u64,
        before_at: i64,
        newest: u64,
        max: usize,
    ) -> Result<(), StoreError> {
        // Not synced on its own: the drop reaches the disk with the next durable commit.
        self.write(false, |tx| {
            let mut table = tx.open_table(AUDIT)?;
            let mut last_doomed = None;
            for stored in table.range(..newest)?.take(max) {
                let (k, v) = stored?;
                let key = k.value();
                let newest_line = v.value().rsplit(|b| *b == b'\n').next().unwrap_or_default();
                let old =
                    serde_json::from_slice::<AuditAt>(newest_line).is_ok_and(|e| e.at < before_at);
                if key > through && !old {
                    break;
                }
                last_doomed = Some(key);
            }
            if let Some(last) = last_doomed {
                table.retain_in(..=last, |_, _| false)?;
            }
            Ok(())
        })
    }
}

impl Outbox for RedbStore {
    fn outbox_push(&self, rows: Vec<Vec<u8>>, cap: usize) -> Result<usize, StoreError> {
        let mut dropped = 0;
        self.write(true, |tx| {
            let mut table = tx.open_table(OUTBOX)?;
            let mut counters = tx.open_table(COUNTERS)?;
            let given = counters.get("outbox")?.map_or(0, |v| v.value());
            let first = table.last()?.map_or(0, |(k, _)| k.value()).max(given) + 1;
            for (key, row) in (first..).zip(&rows) {
                table.insert(key, row.as_slice())?;
            }
            counters.insert("outbox", first + rows.len() as u64 - 1)?;
            let len = usize::try_from(table.len()?).unwrap_or(usize::MAX);
            for _ in 0..len.saturating_sub(cap) {
                if table.pop_first()?.is_some() {
                    dropped += 1;
                }
            }
            Ok(())
        })?;
        Ok(dropped)
    }

    fn outbox_rows(&self, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for row in table.iter()?.take(max) {
            let (k, v) = row?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn outbox_update(&self, seq: u64, row: Option<&[u8]>) -> Result<(), StoreError> {
        self.write(true, |tx| {
            let mut table = tx.open_table(OUTBOX)?;
            match row {
                // Only a delivery still there is kept: one dropped meanwhile stays gone.
                Some(r) => {
                    if table.get(seq)?.is_some() {
                        table.insert(seq, r)?;
                    }
                }
                None => {
                    table.remove(seq)?;
                }
            }
            Ok(())
        })
    }

    fn outbox_len(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(OUTBOX)?.len()?)
    }
}

/// One file, one process: nothing to hear, nothing to count.
impl ChangeFeed for RedbStore {}

/// Just the time of a stored event, for the age check.
#[derive(serde::Deserialize)]
struct AuditAt {
    at: i64,
}
