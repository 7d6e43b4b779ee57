//! Rows that hold no secret but grant one: a placeholder's hash and its connection, a
//! sandbox identity, a connect link. Whoever can write the store (the PostgreSQL database,
//! a backup restored over it) but has no master key must not be able to add or change
//! one: each such row carries a MAC under a key derived from the master key, over its
//! table, its key and its content. A row whose MAC fails is ignored — never loaded,
//! never answered — and reported once (an audit event, a metric, a log line); it does not
//! stop the start.
//!
//! Rows written before MACs existed are authenticated once, at the first start of a
//! version that knows them (a flag in `meta` records it); after that, a row without a MAC
//! is as forged as one with a wrong MAC. Upgrade every replica together.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::key::MasterKey;
use crate::store::{Store, Table};

/// Begins an authenticated row (then the 32-byte MAC, then the content).
const MAGIC: &[u8] = b"egm1";
const MAC_LEN: usize = 32;

/// The tables whose rows carry a MAC.
pub(crate) const AUTHENTICATED: [Table; 4] = [
    Table::Placeholders,
    Table::Sandboxes,
    Table::ConnectLinks,
    Table::ApiTokens,
];

/// `meta` flag: rows from before MACs have been authenticated (once).
pub(crate) const UPGRADED: &str = "row_macs_v1";

pub(crate) struct RowMac {
    key: Zeroizing<[u8; 32]>,
}

impl RowMac {
    /// The MAC key, derived from the master key (never the master key itself, which
    /// seals).
    pub(crate) fn new(master: &MasterKey) -> Self {
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(master.bytes()).expect("HMAC takes any key");
        derive.update(b"egret row authentication v1");
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&derive.finalize().into_bytes());
        Self { key }
    }

    fn tag(&self, table: Table, key: &str, content: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_slice()).expect("HMAC takes any key");
        for part in [table.name().as_bytes(), key.as_bytes(), content] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }

    /// A value derived from `data` under this key (not a row's MAC: `label` keeps the
    /// two apart), for values egret can compute again rather than store.
    pub(crate) fn derive(&self, label: &str, data: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_slice()).expect("HMAC takes any key");
        mac.update(b"egret derived value v1\0");
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// The row to store for `content` under `table`/`key`.
    pub(crate) fn wrap(&self, table: Table, key: &str, content: &[u8]) -> Vec<u8> {
        let tag = self.tag(table, key, content).finalize().into_bytes();
        let mut row = Vec::with_capacity(MAGIC.len() + MAC_LEN + content.len());
        row.extend_from_slice(MAGIC);
        row.extend_from_slice(&tag);
        row.extend_from_slice(content);
        row
    }

    /// The content of a stored row, when its MAC holds (compared in constant time).
    pub(crate) fn open<'a>(&self, table: Table, key: &str, row: &'a [u8]) -> Option<&'a [u8]> {
        let rest = row.strip_prefix(MAGIC)?;
        if rest.len() < MAC_LEN {
            return None;
        }
        let (tag, content) = rest.split_at(MAC_LEN);
        self.tag(table, key, content)
            .verify_slice(tag)
            .ok()
            .map(|()| content)
    }
}

/// Whether `row` was written before MACs existed.
pub(crate) fn unauthenticated(row: &[u8]) -> bool {
    !row.starts_with(MAGIC)
}

/// Forged rows this process found, each reported once.
#[derive(Default)]
pub(crate) struct Forgeries {
    pub(crate) count: AtomicU64,
    pub(crate) reported: Mutex<HashSet<(Table, String)>>,
    /// Found, not yet in the audit log: rows are read under the writer lock, which the
    /// audit log takes too, so their events are written once it is released.
    pub(crate) unaudited: Mutex<Vec<String>>,
}

/// Re-MACs `store`'s authenticated rows from `old` to `new` (key rotation): the changes
/// to commit, and how many rows were dropped as forged. A row from before MACs counts as
/// authentic only while the store has not been upgraded.
pub(crate) fn remac(
    store: &dyn Store,
    old: &RowMac,
    new: &RowMac,
) -> Result<(Vec<crate::store::Change>, usize), VaultError> {
    let upgraded = store.get(Table::Meta, UPGRADED)?.is_some();
    let mut changes = Vec::new();
    let mut dropped = 0;
    for table in AUTHENTICATED {
        for (k, v) in store.scan(table)? {
            let content = match old.open(table, &k, &v) {
                Some(content) => Some(content.to_vec()),
                None if !upgraded && unauthenticated(&v) => Some(v.clone()),
                None => None,
            };
            match content {
                Some(content) => changes.push(crate::store::Change::put(
                    table,
                    k.as_str(),
                    new.wrap(table, &k, &content),
                )),
                None => {
                    dropped += 1;
                    changes.push(crate::store::Change::remove(table, k.as_str()));
                }
            }
        }
    }
    Ok((changes, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_opens_only_where_and_as_it_was_written_under_the_same_key() {
        let key = MasterKey::generate();
        let mac = RowMac::new(&key);
        let row = mac.wrap(Table::Placeholders, "abc", b"{\"connector\":\"x\"}");
        assert_eq!(
            mac.open(Table::Placeholders, "abc", &row),
            Some(&b"{\"connector\":\"x\"}"[..])
        );
        assert!(
            mac.open(Table::Placeholders, "abd", &row).is_none(),
            "moved"
        );
        assert!(
            mac.open(Table::Sandboxes, "abc", &row).is_none(),
            "other table"
        );
        let mut changed = row.clone();
        *changed.last_mut().expect("content") ^= 1;
        assert!(
            mac.open(Table::Placeholders, "abc", &changed).is_none(),
            "changed"
        );
        assert!(
            RowMac::new(&MasterKey::generate())
                .open(Table::Placeholders, "abc", &row)
                .is_none(),
            "another key"
        );
        assert!(
            mac.open(Table::Placeholders, "abc", b"{\"connector\":\"x\"}")
                .is_none()
        );
        assert!(unauthenticated(b"{\"connector\":\"x\"}") && !unauthenticated(&row));
    }
}
