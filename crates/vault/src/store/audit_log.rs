//! The audit log: numbered events kept as batch rows (a row per write, its key the
//! number of its newest event). A backend stores and drops rows; the line format
//! (`{"seq":N,…}`), paging by event and the one pruning rule are written here, once.

use super::StoreError;

/// At most this many of the oldest rows are looked at for pruning on each append:
/// retention converges without one append paying for a large backlog.
const PRUNE_ROWS: usize = 64;

/// Which end of the audit log to read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFrom {
    /// Events with a sequence number above this, oldest first.
    After(u64),
    /// Events with a sequence number below this, newest first.
    Before(u64),
}

/// How much of the audit log is kept: the newest `keep` events, none older than
/// `max_age_secs` (the newest always stays, so numbering never starts over).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub keep: u64,
    pub max_age_secs: i64,
}

/// A backend's rows of audit events; [`AuditLog::audit_append`] and
/// [`AuditLog::audit_page`] are what the vault calls.
pub trait AuditLog: Send + Sync {
    /// Reserves `count` sequence numbers after the newest given and stores `lines` (as
    /// many JSON objects), numbered from the first by [`number_lines`], as one row keyed
    /// by its newest number. Returns the first number and the row. `durable: false` may
    /// skip the disk sync.
    fn append_row(
        &self,
        lines: &[u8],
        count: u64,
        at: i64,
        durable: bool,
    ) -> Result<(u64, Vec<u8>), StoreError>;

    /// Up to `max` rows (each one or more lines): for `After(s)`, those whose newest
    /// event is numbered above `s`, oldest first; for `Before(s)`, those whose oldest
    /// event is numbered below `s`, newest first.
    fn rows(&self, from: AuditFrom, max: usize) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Drops, of the `max` oldest rows other than the one whose newest event is
    /// `newest`, those whose newest event is numbered at or below `through` or was
    /// written before `before_at`.
    fn prune(
        &self,
        through: u64,
        before_at: i64,
        newest: u64,
        max: usize,
    ) -> Result<(), StoreError>;

    /// How long the request audit writer gathers events after the first of a batch
    /// before it stores them as one row (sooner when 4,096 wait): each row costs a
    /// backend a fixed amount of work, whatever its size.
    fn audit_gather(&self) -> std::time::Duration {
        std::time::Duration::from_millis(20)
    }

    /// Stores audit events that already carry their sequence numbers (a copy from
    /// another store), oldest first, and numbers later ones after them.
    fn audit_import(&self, _lines: &[Vec<u8>]) -> Result<(), StoreError> {
        Err(StoreError::Broken(
            "this store cannot take a copied audit log".to_owned(),
        ))
    }

    /// Appends audit events (JSON objects without `seq`, one a line) as one row,
    /// numbering them, then applies `retention`: of the oldest rows, those past the
    /// count or the age go, whole, and the newest row always stays (numbering never
    /// starts over). Returns the first number given and the stored lines.
    fn audit_append(
        &self,
        lines: &[u8],
        at: i64,
        durable: bool,
        retention: Retention,
    ) -> Result<(u64, Vec<u8>), StoreError> {
        let count = lines.split(|b| *b == b'\n').filter(|l| l.len() > 2).count() as u64;
        let (first, row) = if count == 0 {
            (0, Vec::new())
        } else {
            self.append_row(lines, count, at, durable)?
        };
        let newest = first + count.saturating_sub(1);
        if count > 0 {
            let through = newest.saturating_sub(retention.keep);
            self.prune(through, at - retention.max_age_secs, newest, PRUNE_ROWS)?;
        }
        Ok((first, row))
    }

    /// Up to `max` stored audit events (JSON lines with `seq`) from `from`: after it
    /// oldest first, or before it newest first.
    fn audit_page(&self, from: AuditFrom, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        // A row holds one or more events, so `max` rows hold at least `max` events.
        'rows: for row in self.rows(from, max)? {
            let mut lines: Vec<&[u8]> = row.split(|b| *b == b'\n').collect();
            if matches!(from, AuditFrom::Before(_)) {
                lines.reverse();
            }
            for line in lines {
                if out.len() >= max {
                    break 'rows;
                }
                let wanted = seq_of_line(line).is_some_and(|n| match from {
                    AuditFrom::After(s) => n > s,
                    AuditFrom::Before(s) => n < s,
                });
                if wanted {
                    out.push(line.to_vec());
                }
            }
        }
        Ok(out)
    }
}

/// Prefixes each line of `lines` (JSON objects) with `"seq":N,` from `first` on;
/// returns the numbered lines and the last number given (`first - 1` for none).
pub fn number_lines(lines: &[u8], first: u64) -> (Vec<u8>, u64) {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(lines.len() + lines.len() / 16);
    let mut seq = first.saturating_sub(1);
    for line in lines.split(|b| *b == b'\n').filter(|l| l.len() > 2) {
        seq += 1;
        if !out.is_empty() {
            out.push(b'\n');
        }
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{{\"seq\":{seq},");
        out.extend_from_slice(&line[1..]);
    }
    (out, seq)
}

/// The sequence number a stored audit line starts with (`{"seq":N,`).
pub fn seq_of_line(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}
