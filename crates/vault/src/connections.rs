//! Connections in the vault: each sealed under its table and key, its credential kept
//! open in memory for the proxy (`credential`), stored, relabelled and removed with the
//! index updated after the store.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::Vault;
use crate::db::{SealedSecret, aad, placeholder_removals};
use crate::error::VaultError;
use crate::records::*;
use crate::store::{Change, Table};

impl Vault {
    /// A stored connection record, opened: its info and its credential.
    pub(crate) fn open_connection(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<(ConnectionInfo, Credential), VaultError> {
        let stored: StoredConnection =
            serde_json::from_slice(value).map_err(|_| VaultError::Corrupt(key.to_owned()))?;
        let credential = self.open_credential(key, &stored)?;
        Ok((stored.info, credential))
    }

    fn open_credential(
        &self,
        key: &str,
        stored: &StoredConnection,
    ) -> Result<Credential, VaultError> {
        let corrupt = || VaultError::Corrupt(key.to_owned());
        let plain = self
            .sealer
            .open(&aad("connections", key), &stored.sealed)
            .ok_or_else(corrupt)?;
        let mut secret: SealedSecret = serde_json::from_slice(&plain).map_err(|_| corrupt())?;
        let value = match stored.info.kind {
            ConnectionKind::ApiKey => secret.api_key.take(),
            ConnectionKind::Oauth2 => secret.access_token.take(),
        };
        // A key kept in an external store has no value here until it is fetched.
        let value = match value {
            Some(v) => v,
            None if !secret.refs.is_empty() => String::new(),
            None => return Err(corrupt()),
        };
        Ok(Credential {
            secret: SecretString::from(value),
            values: std::mem::take(&mut secret.values)
                .into_iter()
                .map(|(k, v)| (k, SecretString::from(v)))
                .collect(),
            refs: std::mem::take(&mut secret.refs),
            refresh_token: secret.refresh_token.take().map(SecretString::from),
            kind: stored.info.kind,
            status: stored.info.status,
            expires_at: stored.info.expires_at,
            narrowed: secret.narrowed.take().map(Arc::from),
        })
    }

    /// Seals `secret`, commits the connection record, then updates the index: the one
    /// way a connection is written. `fenced`: the write ends a renewal this process
    /// claimed, and must not land if it lost the claim (see `renewal`).
    pub(crate) fn put_connection(
        &self,
        fenced: bool,
        info: ConnectionInfo,
        secret: &mut SealedSecret,
        mut credential: Credential,
    ) -> Result<ConnectionInfo, VaultError> {
        let key = info.id().key();
        // The owner's narrowing outlives a new key, a reconnect and a renewal: read from
        // the row as stored (another replica may have set it a moment ago).
        if secret.narrowed.is_none() {
            secret.narrowed = self.stored_narrowing(&key)?;
            credential.narrowed = secret.narrowed.as_deref().map(Arc::from);
        }
        let plain = Zeroizing::new(
            serde_json::to_vec(&*secret).map_err(|e| VaultError::Invalid(e.to_string()))?,
        );
        let sealed = self.sealer.seal(&aad("connections", &key), &plain);
        let record = serde_json::to_vec(&StoredConnection {
            info: info.clone(),
            sealed,
        })
        .map_err(|e| VaultError::Invalid(e.to_string()))?;
        let _w = self.lock_writer();
        match self.take_claim(&key).filter(|_| fenced) {
            // A renewal: written only if this process still holds the lease and nobody
            // wrote the row since it was claimed.
            Some(version) => {
                if !self
                    .store
                    .commit_renewal(&key, &self.holder, version, &record)?
                {
                    drop(_w);
                    self.reread(Table::Connections, &key)?;
                    return Err(VaultError::Superseded(info.id()));
                }
            }
            None => {
                self.store
                    .commit(vec![Change::put(Table::Connections, key.as_str(), record)])?
            }
        }
        let key: Arc<str> = Arc::from(key);
        let mut index = self.write_credentials();
        index.credentials.insert(key.clone(), Arc::new(credential));
        index.connections.insert(key, info.clone());
        Ok(info)
    }

    /// The owner's narrowing as the stored row has it (`None` without a row).
    fn stored_narrowing(&self, key: &str) -> Result<Option<String>, VaultError> {
        let Some(row) = self.store.get(Table::Connections, key)? else {
            return Ok(None);
        };
        let Ok(stored) = serde_json::from_slice::<StoredConnection>(&row) else {
            return Ok(None);
        };
        Ok(self
            .open_credential(key, &stored)
            .ok()
            .and_then(|c| c.narrowed.map(|n| n.to_string())))
    }

    /// Sets (or, with `None`, lifts) the owner's narrowing of what agents may do with
    /// connection `id` — JSON the caller validated. The credential is re-sealed as it is;
    /// a concurrent change (a renewal on another replica) is read again and kept.
    pub fn set_narrowing(
        &self,
        id: &ConnectionId,
        narrowed: Option<String>,
    ) -> Result<ConnectionInfo, VaultError> {
        self.rewrite_connection(id, |key, stored| {
            let plain = self
                .sealer
                .open(&aad("connections", key), &stored.sealed)
                .ok_or_else(|| VaultError::Corrupt(key.to_owned()))?;
            let mut secret: SealedSecret =
                serde_json::from_slice(&plain).map_err(|_| VaultError::Corrupt(key.to_owned()))?;
            secret.narrowed = narrowed.clone();
            let plain = Zeroizing::new(
                serde_json::to_vec(&secret).map_err(|e| VaultError::Invalid(e.to_string()))?,
            );
            stored.sealed = self.sealer.seal(&aad("connections", key), &plain);
            Ok(())
        })
    }

    /// The connection's current credential, from memory.
    pub fn credential(&self, id: &ConnectionId) -> Option<Arc<Credential>> {
        self.read_index()
            .credentials
            .get(id.key().as_str())
            .cloned()
    }

    pub fn connection(&self, id: &ConnectionId) -> Option<ConnectionInfo> {
        self.read_index()
            .connections
            .get(id.key().as_str())
            .cloned()
    }

    /// Stores (or replaces) a static key. Existing placeholders keep working.
    pub fn put_api_key(
        &self,
        id: &ConnectionId,
        api_key: &SecretString,
    ) -> Result<ConnectionInfo, VaultError> {
        self.put_key(id, vec![(String::new(), KeyValue::Value(api_key.clone()))])
    }

    /// Stores (or replaces) a connection's values: `""` names the one value of a
    /// single-input connector, other names its inputs (the first given stands as the
    /// connection's value). A value may be a reference to an external store. Existing
    /// placeholders keep working.
    pub fn put_key(
        &self,
        id: &ConnectionId,
        given: Vec<(String, KeyValue)>,
    ) -> Result<ConnectionInfo, VaultError> {
        if given.is_empty() {
            return Err(VaultError::Invalid(
                "no value given; send the key".to_owned(),
            ));
        }
        let mut values = std::collections::BTreeMap::new();
        let mut refs = std::collections::BTreeMap::new();
        let mut first: Option<String> = None;
        for (name, value) in given {
            match value {
                KeyValue::Value(v) => {
                    let text = v.expose_secret();
                    if text.is_empty() || text.contains(['\r', '\n', '\0']) {
                        let what = if name.is_empty() {
                            "the key".to_owned()
                        } else {
                            format!("`{name}`")
                        };
                        return Err(VaultError::Invalid(format!(
                            "{what} is empty or contains a line break; send only the value itself"
                        )));
                    }
                    if first.is_none() {
                        first = Some(text.to_owned());
                    }
                    if !name.is_empty() {
                        values.insert(name, text.to_owned());
                    }
                }
                KeyValue::Ref(r) => {
                    refs.insert(name, r);
                }
            }
        }
        // A new key keeps what people wrote on the connection.
        let previous = self.connection(id);
        let info = ConnectionInfo {
            connector: id.connector.clone(),
            owner: id.owner.clone(),
            name: id.name.clone(),
            kind: ConnectionKind::ApiKey,
            status: ConnectionStatus::Connected,
            connected_at: self.clock.unix(),
            refreshed_at: None,
            expires_at: None,
            scopes: Vec::new(),
            identity_label: previous.as_ref().and_then(|p| p.identity_label.clone()),
            description: previous.and_then(|p| p.description),
        };
        let credential = Credential {
            secret: SecretString::from(first.clone().unwrap_or_default()),
            values: values
                .iter()
                .map(|(k, v)| (k.clone(), SecretString::from(v.clone())))
                .collect(),
            refs: refs.clone(),
            refresh_token: None,
            kind: ConnectionKind::ApiKey,
            status: ConnectionStatus::Connected,
            expires_at: None,
            narrowed: None,
        };
        let mut secret = SealedSecret {
            api_key: first,
            access_token: None,
            refresh_token: None,
            narrowed: None,
            values,
            refs,
        };
        self.put_connection(false, info, &mut secret, credential)
    }

    /// Changes what people write on a connection (description, "connected as"); the
    /// sealed credential is rewritten as it is. Returns the connection as it is now.
    pub fn update_labels(
        &self,
        id: &ConnectionId,
        labels: Labels,
    ) -> Result<ConnectionInfo, VaultError> {
        self.rewrite_connection(id, |_, stored| {
            if let Some(d) = labels.description.clone() {
                stored.info.description = d;
            }
            if let Some(l) = labels.identity_label.clone() {
                stored.info.identity_label = l;
            }
            Ok(())
        })
    }

    /// Changes connection `id`'s stored row with `change` (given the row's key), written
    /// back only over what was read: a renewal committed by another replica meanwhile is
    /// not undone (the edit is tried again over it). The index follows.
    fn rewrite_connection(
        &self,
        id: &ConnectionId,
        mut change: impl FnMut(&str, &mut StoredConnection) -> Result<(), VaultError>,
    ) -> Result<ConnectionInfo, VaultError> {
        let key = id.key();
        let _w = self.lock_writer();
        let missing = || VaultError::NoConnection(id.clone());
        for _ in 0..5 {
            let row = self
                .store
                .get(Table::Connections, &key)?
                .ok_or_else(missing)?;
            let mut stored: StoredConnection =
                serde_json::from_slice(&row).map_err(|_| VaultError::Corrupt(key.clone()))?;
            change(&key, &mut stored)?;
            let record =
                serde_json::to_vec(&stored).map_err(|e| VaultError::Invalid(e.to_string()))?;
            if self.store.swap(Table::Connections, &key, &row, &record)? {
                let updated = stored.info.clone();
                let credential = self.open_credential(&key, &stored)?;
                let mut index = self.write_credentials();
                index
                    .credentials
                    .insert(Arc::from(key.as_str()), Arc::new(credential));
                index
                    .connections
                    .insert(Arc::from(key.as_str()), updated.clone());
                return Ok(updated);
            }
        }
        Err(VaultError::Invalid(
            "the connection kept changing while it was being edited; try again".to_owned(),
        ))
    }

    /// Removes a connection and every placeholder naming it, in one transaction.
    pub fn remove_connection(&self, id: &ConnectionId) -> Result<bool, VaultError> {
        let key = id.key();
        let _w = self.lock_writer();
        if !self.read_index().connections.contains_key(key.as_str()) {
            return Ok(false);
        }
        let doomed = self.placeholders_where(|e| *e.conn_key == *key);
        let mut changes = vec![Change::remove(Table::Connections, key.as_str())];
        changes.extend(placeholder_removals(&doomed));
        self.store.commit(changes)?;
        let mut index = self.write_credentials();
        index.connections.remove(key.as_str());
        index.credentials.remove(key.as_str());
        for h in &doomed {
            index.placeholders.remove(h);
        }
        Ok(true)
    }

    pub fn connections(
        &self,
        connector: Option<&str>,
        owner: Option<&Owner>,
    ) -> Vec<ConnectionInfo> {
        let index = self.read_index();
        index
            .connections
            .values()
            .filter(|c| connector.is_none_or(|id| c.connector == id))
            .filter(|c| owner.is_none_or(|o| &c.owner == o))
            .cloned()
            .collect()
    }

    /// The credentials of `connector`'s connected connections, with the index
    /// generation they were read at (it changes whenever they may have).
    pub fn live_credentials(&self, connector: &str) -> (u64, Vec<Arc<Credential>>) {
        let index = self.read_index();
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let prefix = format!("{connector}/");
        let live = index
            .credentials
            .iter()
            .filter(|(key, c)| key.starts_with(&prefix) && c.status == ConnectionStatus::Connected)
            .map(|(_, c)| c.clone())
            .collect();
        (generation, live)
    }
}
