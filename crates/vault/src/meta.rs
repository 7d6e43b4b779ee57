//! Sealed values the whole vault shares, kept in its `meta` table: on a store shared by
//! replicas, the interception CA, so every replica issues leaves a sandbox trusts.

use zeroize::Zeroizing;

use crate::db::{Vault, aad};
use crate::error::VaultError;
use crate::store::Table;

impl Vault {
    /// Puts `value` (sealed) under `name`, unless it holds that already; returns what it
    /// held before, opened.
    pub fn replace_shared(
        &self,
        name: &str,
        value: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        if name == crate::db::KEY_CHECK {
            return Err(VaultError::Invalid(format!("`{name}` is reserved")));
        }
        let ad = aad("meta", name);
        let before = match self.store.get(Table::Meta, name)? {
            Some(sealed) => Some(
                self.sealer
                    .open(&ad, &sealed)
                    .ok_or_else(|| VaultError::Corrupt(format!("meta/{name}")))?,
            ),
            None => None,
        };
        if before.as_ref().is_none_or(|b| b.as_slice() != value) {
            let sealed = self.sealer.seal(&ad, value);
            self.store
                .commit(vec![crate::store::Change::put(Table::Meta, name, sealed)])?;
        }
        Ok(before)
    }

    /// The sealed value `name`, opened; created with `make` by the first process to ask
    /// (replicas starting together agree on the first one stored). Returns it and
    /// whether this call created it.
    pub fn shared_secret(
        &self,
        name: &str,
        make: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, VaultError>,
    ) -> Result<(Zeroizing<Vec<u8>>, bool), VaultError> {
        if name == crate::db::KEY_CHECK {
            return Err(VaultError::Invalid(format!("`{name}` is reserved")));
        }
        let ad = aad("meta", name);
        let open = |sealed: &[u8]| {
            self.sealer
                .open(&ad, sealed)
                .ok_or_else(|| VaultError::Corrupt(format!("meta/{name}")))
        };
        if let Some(sealed) = self.store.get(Table::Meta, name)? {
            return Ok((open(&sealed)?, false));
        }
        let plain = make()?;
        let sealed = self.sealer.seal(&ad, &plain);
        let stored = self.store.put_if_absent(Table::Meta, name, &sealed)?;
        let created = stored == sealed;
        Ok((open(&stored)?, created))
    }
}
