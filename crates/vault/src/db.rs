//! The vault over its store, and the in-memory index the proxy's hot path reads.
//!
//! Every write commits to the store first and updates the index after, under one writer
//! lock, so memory never shows what the store does not hold. On a store shared by
//! replicas, others' changes reach the index through [`crate::changes`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use egret_clock::Clock;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::key::MasterKey;
use crate::placeholder::{Placeholder, PlaceholderHash};
use crate::records::*;
use crate::seal::Sealer;
use crate::store::{Change, RedbStore, Store, StoreError, Table};

pub(crate) const KEY_CHECK: &str = "key_check";
const KEY_CHECK_PLAIN: &[u8] = b"egret vault v1";

/// What a placeholder on a request stands for.
pub struct Resolved {
    pub placeholder: Arc<PlaceholderEntry>,
    pub credential: Arc<Credential>,
}

pub struct PlaceholderEntry {
    pub info: PlaceholderInfo,
    /// The connection it stands for (from `info`, built once).
    pub connection: ConnectionId,
    conn_key: Arc<str>,
}

impl PlaceholderEntry {
    fn new(info: PlaceholderInfo) -> Self {
        let connection = info.connection();
        let conn_key = Arc::from(connection.key());
        Self {
            info,
            connection,
            conn_key,
        }
    }
}

#[derive(Default)]
pub(crate) struct Index {
    pub(crate) placeholders: HashMap<PlaceholderHash, Arc<PlaceholderEntry>>,
    pub(crate) credentials: HashMap<Arc<str>, Arc<Credential>>,
    pub(crate) connections: BTreeMap<Arc<str>, ConnectionInfo>,
    pub(crate) sandboxes: HashMap<String, StoredSandbox>,
    /// Connectors gone from the policy, with when (see `retained`).
    pub(crate) removed: BTreeMap<String, i64>,
}

pub struct Vault {
    pub(crate) store: Box<dyn Store>,
    pub(crate) sealer: Sealer,
    index: RwLock<Index>,
    /// Serializes "commit, then update the index" so memory never runs ahead of disk.
    writer: Mutex<()>,
    /// Where "now" comes from for every timestamp and expiry the vault writes or checks.
    pub(crate) clock: Clock,
    /// Bumped on every change to the credentials (under the index's write lock): lets
    /// readers cache what they derive from them (the proxy's scanners per connector).
    generation: std::sync::atomic::AtomicU64,
    /// This process among the store's users: who holds a renewal lease.
    pub(crate) holder: String,
    /// Renewal leases this process holds, with the version each was claimed at.
    pub(crate) claims: Mutex<HashMap<String, u64>>,
    /// Told when the connectors stored through the API change (another replica's edit).
    pub(crate) on_connectors: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

/// What a connection's sealed blob holds: a static key, or an OAuth token pair.
#[derive(Serialize, Deserialize)]
pub(crate) struct SealedSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl Drop for SealedSecret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for s in [
            &mut self.api_key,
            &mut self.access_token,
            &mut self.refresh_token,
        ]
        .into_iter()
        .flatten()
        {
            s.zeroize();
        }
    }
}

impl Vault {
    /// Opens (or creates) the vault file and loads its index. A key that does not match
    /// the file's is refused before anything is written.
    pub fn open(path: &Path, key: &MasterKey) -> Result<Self, VaultError> {
        let store = RedbStore::open(path).map_err(|e| match e {
            StoreError::InUse => VaultError::InUse,
            other => other.into(),
        })?;
        Self::open_store(Box::new(store), key)
    }

    /// Opens the vault over `store` (the redb file, or a database shared by replicas)
    /// and loads its index. A key that does not match the store's is refused before
    /// anything is written.
    pub fn open_store(store: Box<dyn Store>, key: &MasterKey) -> Result<Self, VaultError> {
        let vault = Self {
            store,
            sealer: Sealer::new(key),
            index: RwLock::new(Index::default()),
            writer: Mutex::new(()),
            clock: Clock::system(),
            generation: std::sync::atomic::AtomicU64::new(0),
            holder: format!(
                "egret-{}-{}",
                std::process::id(),
                crate::random_token()
                    .expose_secret()
                    .get(..12)
                    .unwrap_or_default()
            ),
            claims: Mutex::new(HashMap::new()),
            on_connectors: Mutex::new(Vec::new()),
        };
        vault.check_or_stamp_key()?;
        vault.load()?;
        Ok(vault)
    }

    /// The store under this vault (for `vault migrate` and readiness).
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The same vault reading the time from `clock` (a test's, which it can move).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock this vault reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn check_or_stamp_key(&self) -> Result<(), VaultError> {
        let opens = |sealed: &[u8]| {
            let opened = self.sealer.open(&aad("meta", KEY_CHECK), sealed);
            opened.as_deref().map(Vec::as_slice) == Some(KEY_CHECK_PLAIN)
        };
        // Read first: a wrong key must not cost the store a write.
        let stamp = match self.store.get(Table::Meta, KEY_CHECK)? {
            Some(stamp) => stamp,
            None => {
                let sealed = self.sealer.seal(&aad("meta", KEY_CHECK), KEY_CHECK_PLAIN);
                // Replicas starting together: the first stamp wins, the others check it.
                self.store.put_if_absent(Table::Meta, KEY_CHECK, &sealed)?
            }
        };
        if !opens(&stamp) {
            return Err(VaultError::WrongKey);
        }
        Ok(())
    }

    /// Reads every indexed table into a new index and puts it in place: at start, and
    /// when changes from other replicas may have been missed.
    pub(crate) fn load(&self) -> Result<(), VaultError> {
        let mut index = Index::default();
        for (k, v) in self.store.scan(Table::Connections)? {
            let key: Arc<str> = Arc::from(k);
            let (info, credential) = self.open_connection(&key, &v)?;
            index.credentials.insert(key.clone(), Arc::new(credential));
            index.connections.insert(key, info);
        }
        for (k, v) in self.store.scan(Table::Placeholders)? {
            let (hash, entry) = open_placeholder(&k, &v)?;
            index.placeholders.insert(hash, Arc::new(entry));
        }
        for (k, v) in self.store.scan(Table::Sandboxes)? {
            let stored = open_sandbox(&k, &v)?;
            index.sandboxes.insert(k, stored);
        }
        for (k, v) in self.store.scan(Table::RemovedConnectors)? {
            index.removed.insert(k.clone(), open_removed(&k, &v)?);
        }
        *self.write_credentials() = index;
        Ok(())
    }

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
        Ok(Credential {
            secret: SecretString::from(value.ok_or_else(corrupt)?),
            refresh_token: secret.refresh_token.take().map(SecretString::from),
            kind: stored.info.kind,
            status: stored.info.status,
            expires_at: stored.info.expires_at,
        })
    }

    /// Seals `secret`, commits the connection record, then updates the index: the one
    /// way a connection is written. `fenced`: the write ends a renewal this process
    /// claimed, and must not land if it lost the claim (see `renewal`).
    pub(crate) fn put_connection(
        &self,
        fenced: bool,
        info: ConnectionInfo,
        secret: &SealedSecret,
        credential: Credential,
    ) -> Result<ConnectionInfo, VaultError> {
        let key = info.id().key();
        let plain = Zeroizing::new(
            serde_json::to_vec(secret).map_err(|e| VaultError::Invalid(e.to_string()))?,
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

    /// Readiness: the store answers (and, shared, hears other replicas' changes).
    pub fn ping(&self) -> Result<(), VaultError> {
        Ok(self.store.health()?)
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
        if api_key.expose_secret().is_empty()
            || api_key.expose_secret().contains(['\r', '\n', '\0'])
        {
            return Err(VaultError::Invalid(
                "the key is empty or contains a line break; send only the key itself".to_owned(),
            ));
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
        let secret = SealedSecret {
            api_key: Some(api_key.expose_secret().to_owned()),
            access_token: None,
            refresh_token: None,
        };
        let credential = Credential {
            secret: api_key.clone(),
            refresh_token: None,
            kind: ConnectionKind::ApiKey,
            status: ConnectionStatus::Connected,
            expires_at: None,
        };
        self.put_connection(false, info, &secret, credential)
    }

    /// Changes what people write on a connection (description, "connected as"); the
    /// sealed credential is rewritten as it is. Returns the connection as it is now.
    pub fn update_labels(
        &self,
        id: &ConnectionId,
        labels: Labels,
    ) -> Result<ConnectionInfo, VaultError> {
        let key = id.key();
        let _w = self.lock_writer();
        let missing = || VaultError::NoConnection(id.clone());
        // Read, change, and write back only over what was read: a renewal committed by
        // another replica meanwhile is not undone (the edit is tried again over it).
        for _ in 0..5 {
            let row = self
                .store
                .get(Table::Connections, &key)?
                .ok_or_else(missing)?;
            let mut stored: StoredConnection =
                serde_json::from_slice(&row).map_err(|_| VaultError::Corrupt(key.clone()))?;
            if let Some(d) = labels.description.clone() {
                stored.info.description = d;
            }
            if let Some(l) = labels.identity_label.clone() {
                stored.info.identity_label = l;
            }
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

    /// Mints a placeholder for an existing connection.
    pub fn mint_placeholder(
        &self,
        id: &ConnectionId,
        ttl: Option<Duration>,
    ) -> Result<(Placeholder, PlaceholderInfo), VaultError> {
        self.mint_placeholder_for(id, ttl, None)
    }

    /// Mints a placeholder usable only by requests from `sandbox` when one is given.
    pub fn mint_placeholder_for(
        &self,
        id: &ConnectionId,
        ttl: Option<Duration>,
        sandbox: Option<&str>,
    ) -> Result<(Placeholder, PlaceholderInfo), VaultError> {
        let key: Arc<str> = Arc::from(id.key());
        let _w = self.lock_writer();
        if let Some(s) = sandbox
            && !self.read_index().sandboxes.contains_key(s)
        {
            return Err(VaultError::Invalid(format!(
                "there is no sandbox `{s}`; create it with POST /v1/sandboxes first"
            )));
        }
        if !self.read_index().connections.contains_key(&key) {
            return Err(VaultError::NoConnection(id.clone()));
        }
        let placeholder = Placeholder::mint();
        let created_at = self.clock.unix();
        let info = PlaceholderInfo {
            connector: id.connector.clone(),
            owner: id.owner.clone(),
            name: id.name.clone(),
            created_at,
            expires_at: ttl
                .map(|t| created_at.saturating_add(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))),
            hint: placeholder.hint(),
            sandbox: sandbox.map(str::to_owned),
        };
        let hash = placeholder.hash();
        let record = serde_json::to_vec(&info).map_err(|e| VaultError::Invalid(e.to_string()))?;
        self.store
            .commit(vec![Change::put(Table::Placeholders, hash.hex(), record)])?;
        let entry = Arc::new(PlaceholderEntry::new(info.clone()));
        self.write_index().placeholders.insert(hash, entry);
        Ok((placeholder, info))
    }

    pub fn revoke_placeholder(
        &self,
        placeholder: &Placeholder,
    ) -> Result<PlaceholderInfo, VaultError> {
        self.revoke_hash(placeholder.hash())
    }

    /// Revokes the placeholder whose id (the hex SHA-256 the listing by id shows) this
    /// is: how the web UI revokes one it never saw.
    pub fn revoke_placeholder_id(&self, id: &str) -> Result<PlaceholderInfo, VaultError> {
        let hash = PlaceholderHash::from_hex(id).ok_or(VaultError::NoPlaceholder)?;
        self.revoke_hash(hash)
    }

    /// Live placeholders with their ids (hex SHA-256: not secret, the placeholder cannot
    /// be had from it), oldest first.
    pub fn placeholders_by_id(&self, now_unix: i64) -> Vec<(String, PlaceholderInfo)> {
        let index = self.read_index();
        let mut list: Vec<(String, PlaceholderInfo)> = index
            .placeholders
            .iter()
            .filter(|(_, e)| e.info.expires_at.is_none_or(|x| x > now_unix))
            .map(|(h, e)| (h.hex(), e.info.clone()))
            .collect();
        list.sort_by(|a, b| (a.1.created_at, &a.1.hint).cmp(&(b.1.created_at, &b.1.hint)));
        list
    }

    fn revoke_hash(&self, hash: PlaceholderHash) -> Result<PlaceholderInfo, VaultError> {
        let _w = self.lock_writer();
        let entry = self
            .read_index()
            .placeholders
            .get(&hash)
            .cloned()
            .ok_or(VaultError::NoPlaceholder)?;
        self.store
            .commit(vec![Change::remove(Table::Placeholders, hash.hex())])?;
        self.write_index().placeholders.remove(&hash);
        Ok(entry.info.clone())
    }

    /// Placeholders not yet expired, oldest first, optionally of one connector, owner or
    /// sandbox: metadata and the short hint only, never the placeholder itself.
    pub fn placeholders(
        &self,
        connector: Option<&str>,
        owner: Option<&Owner>,
        sandbox: Option<&str>,
        now_unix: i64,
    ) -> Vec<PlaceholderInfo> {
        let index = self.read_index();
        let mut list: Vec<PlaceholderInfo> = index
            .placeholders
            .values()
            .map(|e| &e.info)
            .filter(|i| i.expires_at.is_none_or(|e| e > now_unix))
            .filter(|i| connector.is_none_or(|c| i.connector == c))
            .filter(|i| owner.is_none_or(|o| &i.owner == o))
            .filter(|i| sandbox.is_none_or(|s| i.sandbox.as_deref() == Some(s)))
            .cloned()
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.hint).cmp(&(b.created_at, &b.hint)));
        list
    }

    /// The hot path: memory only, no disk. Expired placeholders and placeholders whose
    /// connection is gone resolve to `None`.
    pub fn resolve(&self, hash: &PlaceholderHash, now_unix: i64) -> Option<Resolved> {
        // Checked here too: the key's hex is built only when memory is not current.
        if !self.store.memory_current() {
            self.read_through_placeholder(hash);
        }
        let index = self.read_index();
        let placeholder = index.placeholders.get(hash)?.clone();
        if placeholder.info.expires_at.is_some_and(|e| e <= now_unix) {
            return None;
        }
        let credential = index.credentials.get(&placeholder.conn_key)?.clone();
        Some(Resolved {
            placeholder,
            credential,
        })
    }

    /// Puts `value` under `key` in a table of expiring rows (pending sign-ins, connect
    /// links, UI sessions), in the same commit dropping the rows that have expired and,
    /// beyond `keep`, those expiring soonest. `expires_at` reads a row's expiry (`None`:
    /// unreadable, dropped). Bounds what a caller starting them in a loop makes the
    /// vault hold.
    pub(crate) fn put_expiring(
        &self,
        table: Table,
        key: String,
        value: Vec<u8>,
        keep: usize,
        expires_at: impl Fn(&str, &[u8]) -> Option<i64>,
    ) -> Result<(), VaultError> {
        let now = self.clock.unix();
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for (k, v) in self.store.scan(table)? {
            match expires_at(&k, &v) {
                Some(at) if at > now => live.push((at, k)),
                _ => dead.push(k),
            }
        }
        live.sort();
        let excess = (live.len() + 1).saturating_sub(keep);
        dead.extend(live.into_iter().take(excess).map(|(_, k)| k));
        let mut changes: Vec<Change> = dead.into_iter().map(|k| Change::remove(table, k)).collect();
        changes.push(Change::put(table, key, value));
        Ok(self.store.commit(changes)?)
    }

    /// The placeholder's row and its connection's, read from the store (see
    /// [`Vault::read_through`]).
    fn read_through_placeholder(&self, hash: &PlaceholderHash) {
        if !self.read_through(Table::Placeholders, &hash.hex()) {
            return;
        }
        let conn = self
            .read_index()
            .placeholders
            .get(hash)
            .map(|e| e.conn_key.clone());
        if let Some(conn) = conn {
            self.read_through(Table::Connections, &conn);
        }
    }

    /// Placeholders matching `doomed`, from the index: what a removal must take along.
    /// Call with the writer lock held so the set cannot change before the commit.
    pub(crate) fn placeholders_where(
        &self,
        doomed: impl Fn(&PlaceholderEntry) -> bool,
    ) -> Vec<PlaceholderHash> {
        self.read_index()
            .placeholders
            .iter()
            .filter(|(_, e)| doomed(e))
            .map(|(h, _)| *h)
            .collect()
    }

    // Index updates are plain map inserts and removes, which do not panic: a lock poisoned
    // by a panic elsewhere still guards a consistent index, so it is used as is.
    pub(crate) fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The index for a change to credentials: it bumps the generation, under the write
    /// lock, so a reader of [`Vault::live_credentials`] sees the change or a new number.
    pub(crate) fn write_credentials(&self) -> RwLockWriteGuard<'_, Index> {
        let guard = self.write_index();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        guard
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

    /// The credentials' generation now (see [`Vault::live_credentials`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The changes that delete these placeholders.
pub(crate) fn placeholder_removals(hashes: &[PlaceholderHash]) -> impl Iterator<Item = Change> {
    hashes
        .iter()
        .map(|h| Change::remove(Table::Placeholders, h.hex()))
}

/// A stored placeholder record, opened: its hash (the key) and its entry.
pub(crate) fn open_placeholder(
    key: &str,
    value: &[u8],
) -> Result<(PlaceholderHash, PlaceholderEntry), VaultError> {
    let corrupt = || VaultError::Corrupt(format!("placeholders/{key}"));
    let hash = PlaceholderHash::from_hex(key).ok_or_else(corrupt)?;
    let info: PlaceholderInfo = serde_json::from_slice(value).map_err(|_| corrupt())?;
    Ok((hash, PlaceholderEntry::new(info)))
}

pub(crate) fn open_sandbox(key: &str, value: &[u8]) -> Result<StoredSandbox, VaultError> {
    serde_json::from_slice(value).map_err(|_| VaultError::Corrupt(format!("sandbox {key}")))
}

pub(crate) fn open_removed(key: &str, value: &[u8]) -> Result<i64, VaultError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| VaultError::Corrupt(format!("removed_connectors/{key}")))
}

/// Associated data: the table and the record's key, so a sealed value cannot be moved.
pub(crate) fn aad(table: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(table.len() + 1 + key.len());
    out.extend_from_slice(table.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}
