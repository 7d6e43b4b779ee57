//! Master key rotation: every sealed value re-sealed under a new key in one write
//! transaction, so a crash leaves the vault wholly under the old key or wholly under
//! the new one, never a mix.

use std::path::Path;

use redb::{Database, ReadableTable};

use crate::db::{AUTHORIZATIONS, CONNECTIONS, CONNECTORS, KEY_CHECK, META, aad};
use crate::error::VaultError;
use crate::key::MasterKey;
use crate::records::StoredConnection;
use crate::seal::Sealer;

/// How many records a rotation re-sealed, by table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    pub connectors: usize,
    pub connections: usize,
    pub authorizations: usize,
}

/// Re-seals the vault at `path` from `old` to `new`. The vault must not be open
/// elsewhere (redb locks the file: a running `egret serve` makes this fail).
pub fn rotate_key(path: &Path, old: &MasterKey, new: &MasterKey) -> Result<Rotated, VaultError> {
    // Opening checks that `old` is this vault's key before anything is written.
    drop(crate::Vault::open(path, old)?);
    let db = Database::open(path)?;
    let (from, to) = (Sealer::new(old), Sealer::new(new));
    let reseal = |table: &str, key: &str, sealed: &[u8]| -> Result<Vec<u8>, VaultError> {
        let plain = from
            .open(&aad(table, key), sealed)
            .ok_or_else(|| VaultError::Corrupt(format!("{table}/{key}")))?;
        Ok(to.seal(&aad(table, key), &plain))
    };
    let mut rotated = Rotated::default();
    let tx = db.begin_write()?;
    {
        let mut meta = tx.open_table(META)?;
        let stamp = meta
            .get(KEY_CHECK)?
            .map(|v| v.value().to_vec())
            .ok_or(VaultError::WrongKey)?;
        meta.insert(KEY_CHECK, reseal("meta", KEY_CHECK, &stamp)?.as_slice())?;

        for (name, table, count) in [
            ("connectors", CONNECTORS, &mut rotated.connectors),
            (
                "authorizations",
                AUTHORIZATIONS,
                &mut rotated.authorizations,
            ),
        ] {
            let mut t = tx.open_table(table)?;
            let rows = all_rows(&t)?;
            for (k, v) in rows {
                t.insert(k.as_str(), reseal(name, &k, &v)?.as_slice())?;
                *count += 1;
            }
        }

        let mut t = tx.open_table(CONNECTIONS)?;
        for (k, v) in all_rows(&t)? {
            let mut stored: StoredConnection =
                serde_json::from_slice(&v).map_err(|_| VaultError::Corrupt(k.clone()))?;
            stored.sealed = reseal("connections", &k, &stored.sealed)?;
            let record =
                serde_json::to_vec(&stored).map_err(|e| VaultError::Invalid(e.to_string()))?;
            t.insert(k.as_str(), record.as_slice())?;
            rotated.connections += 1;
        }
    }
    tx.commit()?;
    Ok(rotated)
}

fn all_rows<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
) -> Result<Vec<(String, Vec<u8>)>, VaultError> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        out.push((k.value().to_owned(), v.value().to_vec()));
    }
    Ok(out)
}
