//! Master key rotation: every sealed value re-sealed under a new key in one commit, so a
//! crash leaves the vault wholly under the old key or wholly under the new one, never a
//! mix. Works on either store.

use std::path::Path;

use crate::db::{KEY_CHECK, aad};
use crate::error::VaultError;
use crate::key::MasterKey;
use crate::records::StoredConnection;
use crate::seal::Sealer;
use crate::store::{Change, RedbStore, Store, StoreError, Table};

/// How many records a rotation re-sealed, by table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    pub connectors: usize,
    pub connections: usize,
    pub authorizations: usize,
    pub ui_sessions: usize,
    pub approvals: usize,
    /// Placeholder, sandbox and connect-link rows given the new key's MAC.
    pub authenticated: usize,
    /// Rows of those tables whose MAC failed under the old key: forged, and dropped.
    pub forged_dropped: usize,
}

/// Re-seals the vault at `path` from `old` to `new`. The vault must not be open
/// elsewhere (redb locks the file: a running `egret serve` makes this fail).
pub fn rotate_key(path: &Path, old: &MasterKey, new: &MasterKey) -> Result<Rotated, VaultError> {
    let store = RedbStore::open(path).map_err(|e| match e {
        StoreError::InUse => VaultError::InUse,
        other => other.into(),
    })?;
    rotate_store_key(&store, old, new)
}

/// Re-seals every sealed value in `store` from `old` to `new`, in one commit. `old` must
/// open the store's key check; nothing is written otherwise.
pub fn rotate_store_key(
    store: &dyn Store,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<Rotated, VaultError> {
    let (from, to) = (Sealer::new(old), Sealer::new(new));
    let reseal = |table: &str, key: &str, sealed: &[u8]| -> Result<Vec<u8>, VaultError> {
        let plain = from
            .open(&aad(table, key), sealed)
            .ok_or_else(|| VaultError::Corrupt(format!("{table}/{key}")))?;
        Ok(to.seal(&aad(table, key), &plain))
    };
    let stamp = store
        .get(Table::Meta, KEY_CHECK)?
        .ok_or(VaultError::WrongKey)?;
    if from.open(&aad("meta", KEY_CHECK), &stamp).is_none() {
        return Err(VaultError::WrongKey);
    }
    let mut rotated = Rotated::default();
    let mut changes = Vec::new();
    for (k, v) in store.scan(Table::Meta)? {
        // Every meta value is sealed (the key check, a shared store's CA).
        changes.push(Change::put(
            Table::Meta,
            k.as_str(),
            reseal("meta", &k, &v)?,
        ));
    }
    for (table, count) in [
        (Table::Connectors, &mut rotated.connectors),
        (Table::Authorizations, &mut rotated.authorizations),
        (Table::UiSessions, &mut rotated.ui_sessions),
        (Table::Approvals, &mut rotated.approvals),
    ] {
        for (k, v) in store.scan(table)? {
            // A pending authorization keeps its clear header; only its record is sealed.
            let row = match crate::pending::split(&v).filter(|_| table == Table::Authorizations) {
                Some(r) => crate::pending::join(
                    r.expires_at,
                    r.owner,
                    &reseal(table.name(), &k, r.sealed)?,
                ),
                None => reseal(table.name(), &k, &v)?,
            };
            changes.push(Change::put(table, k.as_str(), row));
            *count += 1;
        }
    }
    for (k, v) in store.scan(Table::Connections)? {
        let mut stored: StoredConnection =
            serde_json::from_slice(&v).map_err(|_| VaultError::Corrupt(k.clone()))?;
        stored.sealed = reseal("connections", &k, &stored.sealed)?;
        let record = serde_json::to_vec(&stored).map_err(|e| VaultError::Invalid(e.to_string()))?;
        changes.push(Change::put(Table::Connections, k.as_str(), record));
        rotated.connections += 1;
    }
    // The rows authenticated by a MAC get the new key's; forged ones are dropped.
    let (remacs, dropped) = crate::mac::remac(
        store,
        &crate::mac::RowMac::new(old),
        &crate::mac::RowMac::new(new),
    )?;
    rotated.authenticated = remacs.len() - dropped;
    rotated.forged_dropped = dropped;
    changes.extend(remacs);
    // From now on, a row without a MAC is forged (see `mac`): the flag, under the new key.
    if store.get(Table::Meta, crate::mac::UPGRADED)?.is_none() {
        changes.push(Change::put(
            Table::Meta,
            crate::mac::UPGRADED,
            to.seal(&aad("meta", crate::mac::UPGRADED), b"1"),
        ));
    }
    store.commit(changes)?;
    Ok(rotated)
}
