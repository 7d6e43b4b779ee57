//! The audit log: an append-only table of decisions and changes, bounded in count and
//! age, each event also written as one JSON line on the `audit` tracing target (debug
//! level). [`AuditWriter`] takes the proxy's per-request events off the hot path and
//! writes them in batches.

mod writer;

use serde_json::value::RawValue;

use crate::db::Vault;
use crate::error::VaultError;
use crate::records::AuditEvent;
use crate::store::{AuditFrom, Retention};

pub use writer::AuditWriter;

/// How much of the audit log is kept. Older events are dropped as new ones arrive.
const RETENTION: Retention = Retention {
    keep: 100_000,
    max_age_secs: 30 * 24 * 3600,
};

/// An event before it has a sequence number and a time.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord {
    pub event: String,
    pub connector: Option<String>,
    pub owner: Option<String>,
    /// The connection's name, when it is not `default`.
    pub name: Option<String>,
    pub detail: Option<String>,
    /// Structured fields of a decision (host, method, status, …), already JSON. Never a
    /// secret.
    pub data: Option<Box<RawValue>>,
    /// Who did it (`admin`, `token:<name>`, `user:<id>`), for changes made through the
    /// control plane or the web UI.
    pub by: Option<String>,
}

impl AuditRecord {
    /// An event about one connection.
    pub fn about(event: &str, id: &crate::ConnectionId) -> Self {
        Self {
            event: event.to_owned(),
            connector: Some(id.connector.clone()),
            owner: Some(id.owner.to_string()),
            name: (!id.name.is_default()).then(|| id.name.to_string()),
            ..Self::default()
        }
    }

    /// `fields` as the record's structured data (`None` if it cannot be serialized,
    /// which typed events and JSON values never fail).
    pub fn with_data(mut self, fields: &impl serde::Serialize) -> Self {
        self.data = serde_json::value::to_raw_value(fields).ok();
        self
    }
}

/// An event as it waits to be stored: the fields of [`AuditEvent`] but its sequence
/// number, which the writer puts in front (`{"seq":N,` + the rest) as it stores it.
#[derive(serde::Serialize)]
struct Unnumbered<'a, D: serde::Serialize + ?Sized> {
    at: i64,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connector: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a D>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'a str>,
}

impl Vault {
    /// Appends an audit event. Never pass a secret or a placeholder in `detail`.
    pub fn audit(
        &self,
        event: &str,
        connector: Option<&str>,
        owner: Option<&str>,
        detail: Option<String>,
    ) -> Result<AuditEvent, VaultError> {
        self.append_one(AuditRecord {
            event: event.to_owned(),
            connector: connector.map(str::to_owned),
            owner: owner.map(str::to_owned),
            detail,
            ..AuditRecord::default()
        })
    }

    /// Appends an audit event about one connection (its name recorded when it is not
    /// `default`). Never pass a secret or a placeholder in `detail`.
    pub fn audit_connection(
        &self,
        event: &str,
        id: &crate::ConnectionId,
        detail: Option<String>,
    ) -> Result<AuditEvent, VaultError> {
        self.append_one(AuditRecord {
            detail,
            ..AuditRecord::about(event, id)
        })
    }

    /// [`Vault::audit`], naming who did it (`admin`, `token:<name>`, `user:<id>`).
    pub fn audit_by(
        &self,
        by: &str,
        event: &str,
        connector: Option<&str>,
        owner: Option<&str>,
        detail: Option<String>,
    ) -> Result<AuditEvent, VaultError> {
        self.append_one(AuditRecord {
            event: event.to_owned(),
            connector: connector.map(str::to_owned),
            owner: owner.map(str::to_owned),
            detail,
            by: Some(by.to_owned()),
            ..AuditRecord::default()
        })
    }

    /// [`Vault::audit_connection`], naming who did it.
    pub fn audit_connection_by(
        &self,
        by: &str,
        event: &str,
        id: &crate::ConnectionId,
        detail: Option<String>,
    ) -> Result<AuditEvent, VaultError> {
        self.append_one(AuditRecord {
            detail,
            by: Some(by.to_owned()),
            ..AuditRecord::about(event, id)
        })
    }

    fn append_one(&self, record: AuditRecord) -> Result<AuditEvent, VaultError> {
        self.append_audit(vec![record])?
            .pop()
            .ok_or_else(|| VaultError::Invalid("audit write produced no event".to_owned()))
    }

    /// Appends events in one durable transaction and applies retention.
    pub fn append_audit(&self, records: Vec<AuditRecord>) -> Result<Vec<AuditEvent>, VaultError> {
        let at = self.clock.unix();
        let mut lines = Vec::with_capacity(records.len() * 256);
        for r in &records {
            let event = Unnumbered {
                at,
                event: &r.event,
                connector: r.connector.as_deref(),
                owner: r.owner.as_deref(),
                name: r.name.as_deref(),
                detail: r.detail.as_deref(),
                data: r.data.as_deref(),
                by: r.by.as_deref(),
            };
            push_line(&mut lines, &event)?;
        }
        let first = self.store_lines(&lines, true, RETENTION)?;
        Ok(records
            .into_iter()
            .zip(first..)
            .map(|(r, seq)| AuditEvent {
                seq,
                at,
                event: r.event,
                connector: r.connector,
                owner: r.owner,
                name: r.name,
                detail: r.detail,
                data: r.data.and_then(|raw| serde_json::from_str(raw.get()).ok()),
                by: r.by,
            })
            .collect())
    }

    /// Stores `lines` (events without sequence numbers, one JSON object a line) as one
    /// row, numbering them, and applies `retention`; returns the first number given.
    /// `durable: false` skips the disk sync: the events reach the disk with the next
    /// durable commit (the request writer's, between its once-a-second syncs).
    fn store_lines(
        &self,
        lines: &[u8],
        durable: bool,
        retention: Retention,
    ) -> Result<u64, VaultError> {
        let _w = self.lock_writer();
        let at = self.clock.unix();
        let (first, row) = self.store.audit_append(lines, at, durable, retention)?;
        // Opt-in (`EGRET_LOG=info,audit=debug`): at the default level a line per request
        // would double the log volume of a busy proxy. The vault keeps every event anyway.
        if tracing::enabled!(target: "audit", tracing::Level::DEBUG) {
            for line in row.split(|b| *b == b'\n') {
                tracing::debug!(target: "audit", "{}", String::from_utf8_lossy(line));
            }
        }
        Ok(first)
    }

    /// Audit events with `seq > since`, oldest first, at most `limit`, optionally only
    /// those of one connector and/or owner.
    pub fn audit_since(
        &self,
        since: u64,
        limit: usize,
        connector: Option<&str>,
        owner: Option<&str>,
    ) -> Result<Vec<AuditEvent>, VaultError> {
        let mut out = Vec::new();
        let mut after = since;
        while out.len() < limit {
            let page = self.store.audit_page(AuditFrom::After(after), PAGE)?;
            let Some(last) = page.last() else { break };
            after = crate::store::seq_of_line(last).unwrap_or(u64::MAX);
            for line in &page {
                let e: AuditEvent = serde_json::from_slice(line)
                    .map_err(|_| VaultError::Corrupt(format!("audit after {since}")))?;
                if connector.is_some_and(|c| e.connector.as_deref() != Some(c))
                    || owner.is_some_and(|o| e.owner.as_deref() != Some(o))
                {
                    continue;
                }
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(out)
    }

    /// The newest audit events that `keep` accepts, newest first, at most `limit`,
    /// looking at no more than `scan` events (the log holds up to 100 000).
    pub fn audit_latest(
        &self,
        limit: usize,
        scan: usize,
        keep: impl Fn(&AuditEvent) -> bool,
    ) -> Result<Vec<AuditEvent>, VaultError> {
        let mut out = Vec::new();
        let mut seen = 0usize;
        let mut before = u64::MAX;
        while out.len() < limit && seen < scan {
            let page = self.store.audit_page(AuditFrom::Before(before), PAGE)?;
            let Some(last) = page.last() else { break };
            before = crate::store::seq_of_line(last).unwrap_or(0);
            for line in &page {
                if out.len() >= limit || seen >= scan {
                    break;
                }
                seen += 1;
                let e: AuditEvent = serde_json::from_slice(line)
                    .map_err(|_| VaultError::Corrupt("audit".to_owned()))?;
                if keep(&e) {
                    out.push(e);
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(out)
    }
}

/// Audit events read from the store at a time.
const PAGE: usize = 512;

/// Appends `event` to `lines` as one JSON line.
fn push_line(lines: &mut Vec<u8>, event: &impl serde::Serialize) -> Result<(), VaultError> {
    if !lines.is_empty() {
        lines.push(b'\n');
    }
    serde_json::to_writer(&mut *lines, event).map_err(|e| VaultError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;
    use crate::records::now;

    fn events(n: usize) -> Vec<u8> {
        let mut lines = Vec::new();
        for i in 0..n {
            let event = Unnumbered::<()> {
                at: now(),
                event: &format!("test.{i}"),
                connector: None,
                owner: None,
                name: None,
                detail: None,
                data: None,
                by: None,
            };
            push_line(&mut lines, &event).expect("line");
        }
        lines
    }

    fn kept(v: &Vault) -> Vec<u64> {
        let all = v.audit_since(0, 1000, None, None).expect("read");
        all.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn retention_keeps_the_newest_by_count_and_drops_those_past_the_age() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("open");
        let five = Retention {
            keep: 5,
            max_age_secs: 3600,
        };
        for _ in 0..3 {
            v.store_lines(&events(4), false, five).expect("append");
        }
        // A batch is one row and goes whole: at least the newest five stay.
        assert_eq!(kept(&v), (5..=12).collect::<Vec<_>>());
        // Sequence numbers go on from the newest kept, never reused.
        v.store_lines(&events(1), true, five).expect("append");
        assert_eq!(kept(&v), vec![9, 10, 11, 12, 13]);
        // Reading from the middle of a row starts after `since`.
        let after = v.audit_since(10, 2, None, None).expect("read");
        assert_eq!(
            after.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![11, 12]
        );
        // Everything is past an age below zero, whatever the count allows, but the
        // newest stays so that sequence numbers never start over.
        let expired = Retention {
            keep: 1000,
            max_age_secs: -1,
        };
        v.store_lines(&events(1), true, expired).expect("append");
        assert_eq!(kept(&v), vec![14]);
    }
}
