//! Copying a vault from one store to another (`egret vault migrate`): every record as it
//! is (still sealed: the copy needs no key), the audit log with its numbers, the webhook
//! outbox; then a read-back that compares the two.

use crate::error::VaultError;
use crate::store::{AuditFrom, Change, Store, Table};

/// What a copy moved, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Rows per table, in [`Table::ALL`] order.
    pub records: Vec<(Table, usize)>,
    pub audit_events: usize,
    pub webhook_deliveries: usize,
}

/// Audit events copied per write.
const AUDIT_BATCH: usize = 2000;

/// Copies everything in `from` into `to`, which must hold nothing yet, then reads `to`
/// back and compares: any difference is an error (and `to` should be emptied before a
/// second try).
pub fn copy_store(from: &dyn Store, to: &dyn Store) -> Result<Copied, VaultError> {
    let mut copied = Copied::default();
    let mut changes = Vec::new();
    for table in Table::ALL {
        let rows = from.scan(table)?;
        copied.records.push((table, rows.len()));
        changes.extend(rows.into_iter().map(|(k, v)| Change::put(table, k, v)));
    }
    to.commit(changes)?;

    let mut after = 0;
    loop {
        let page = from.audit_page(AuditFrom::After(after), AUDIT_BATCH)?;
        let Some(last) = page.last() else { break };
        after = crate::store::seq_of_line(last).unwrap_or(u64::MAX);
        copied.audit_events += page.len();
        to.audit_import(&page)?;
        if page.len() < AUDIT_BATCH {
            break;
        }
    }

    let outbox = from.outbox_rows(usize::MAX)?;
    copied.webhook_deliveries = outbox.len();
    to.outbox_push(outbox.into_iter().map(|(_, row)| row).collect(), usize::MAX)?;

    verify(from, to, &copied)?;
    Ok(copied)
}

/// Reads `to` back and compares it with `from`, table by table.
fn verify(from: &dyn Store, to: &dyn Store, copied: &Copied) -> Result<(), VaultError> {
    let differs = |what: String| {
        VaultError::Invalid(format!(
            "the copy differs from the source in {what}; empty the target and run the migration again"
        ))
    };
    for table in Table::ALL {
        if from.scan(table)? != to.scan(table)? {
            return Err(differs(format!("table {}", table.name())));
        }
    }
    let mut after = 0;
    let mut seen = 0;
    loop {
        let a = from.audit_page(AuditFrom::After(after), AUDIT_BATCH)?;
        let b = to.audit_page(AuditFrom::After(after), AUDIT_BATCH)?;
        if a != b {
            return Err(differs(format!("the audit log after event {after}")));
        }
        let Some(last) = a.last() else { break };
        seen += a.len();
        after = crate::store::seq_of_line(last).unwrap_or(u64::MAX);
    }
    if seen != copied.audit_events {
        return Err(differs("the audit log's length".to_owned()));
    }
    let (a, b) = (from.outbox_rows(usize::MAX)?, to.outbox_rows(usize::MAX)?);
    let rows = |v: Vec<(u64, Vec<u8>)>| v.into_iter().map(|(_, r)| r).collect::<Vec<_>>();
    if rows(a) != rows(b) {
        return Err(differs("the webhook outbox".to_owned()));
    }
    Ok(())
}
