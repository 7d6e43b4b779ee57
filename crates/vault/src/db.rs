//! The redb file, its tables, and the in-memory index the proxy's hot path reads.
//!
//! Every write commits to redb first and updates the index after, under one writer lock,
//! so memory never shows what the disk does not hold.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use egret_clock::Clock;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::key::MasterKey;
use crate::placeholder::{Placeholder, PlaceholderHash};
use crate::records::*;
use crate::seal::Sealer;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Connectors created through the control plane (sealed: they may hold a client secret).
pub(crate) const CONNECTORS: TableDefinition<&str, &[u8]> = TableDefinition::new("connectors");
pub(crate) const CONNECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("connections");
pub(crate) const PLACEHOLDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("placeholders");
/// Sandbox identities (id -> secret hash).
pub(crate) const SANDBOXES: TableDefinition<&str, &[u8]> = TableDefinition::new("sandboxes");
/// Connectors found gone from the policy file (id -> unix seconds when), whose
/// connections are kept for `connectors_removed_retention`.
pub(crate) const REMOVED_CONNECTORS: TableDefinition<&str, i64> =
    TableDefinition::new("removed_connectors");
/// Webhook deliveries owed, by sequence number (oldest first): see `outbox`.
pub(crate) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("webhook_outbox");
/// Connect links by the SHA-256 (hex) of their ticket: see `links`.
pub(crate) const CONNECT_LINKS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("connect_links");
/// Pending OAuth authorizations, keyed by the SHA-256 of their `state`.
pub(crate) const AUTHORIZATIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("authorizations");
/// Audit events, a row per write: the value is the events as JSON lines (oldest first),
/// the key the sequence number of the row's newest event. A batch of request events is
/// one row: one B-tree insert per batch instead of one per request. A single event is a
/// one-line row, as every row of older vaults is.
pub(crate) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

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
    pub(crate) db: Database,
    pub(crate) sealer: Sealer,
    index: RwLock<Index>,
    /// Serializes "commit, then update the index" so memory never runs ahead of disk.
    writer: Mutex<()>,
    /// Where "now" comes from for every timestamp and expiry the vault writes or checks.
    pub(crate) clock: Clock,
    /// Bumped on every change to the credentials (under the index's write lock): lets
    /// readers cache what they derive from them (the proxy's scanners per connector).
    generation: std::sync::atomic::AtomicU64,
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
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => VaultError::InUse,
            other => other.into(),
        })?;
        let vault = Self {
            db,
            sealer: Sealer::new(key),
            index: RwLock::new(Index::default()),
            writer: Mutex::new(()),
            clock: Clock::system(),
            generation: std::sync::atomic::AtomicU64::new(0),
        };
        vault.check_or_stamp_key()?;
        vault.load()?;
        Ok(vault)
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
        // Read first: a wrong key must not cost the file a write transaction.
        {
            let tx = self.db.begin_read()?;
            if let Ok(meta) = tx.open_table(META) {
                let stamp = meta.get(KEY_CHECK)?;
                if let Some(sealed) = stamp {
                    let opened = self.sealer.open(&aad("meta", KEY_CHECK), sealed.value());
                    if opened.as_deref().map(Vec::as_slice) != Some(KEY_CHECK_PLAIN) {
                        return Err(VaultError::WrongKey);
                    }
                }
            }
        }
        let tx = self.db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let stamp = meta.get(KEY_CHECK)?.map(|v| v.value().to_vec());
            match stamp {
                Some(sealed) => {
                    let opened = self.sealer.open(&aad("meta", KEY_CHECK), &sealed);
                    if opened.as_deref().map(Vec::as_slice) != Some(KEY_CHECK_PLAIN) {
                        return Err(VaultError::WrongKey);
                    }
                }
                None => {
                    let sealed = self.sealer.seal(&aad("meta", KEY_CHECK), KEY_CHECK_PLAIN);
                    meta.insert(KEY_CHECK, sealed.as_slice())?;
                }
            }
            // Create every table now so readers never meet a missing one.
            tx.open_table(CONNECTORS)?;
            tx.open_table(CONNECTIONS)?;
            tx.open_table(PLACEHOLDERS)?;
            tx.open_table(AUTHORIZATIONS)?;
            tx.open_table(SANDBOXES)?;
            tx.open_table(AUDIT)?;
            tx.open_table(REMOVED_CONNECTORS)?;
            tx.open_table(OUTBOX)?;
            tx.open_table(CONNECT_LINKS)?;
        }
        Ok(tx.commit()?)
    }

    fn load(&self) -> Result<(), VaultError> {
        let tx = self.db.begin_read()?;
        let mut index = Index::default();
        let connections = tx.open_table(CONNECTIONS)?;
        for row in connections.iter()? {
            let (k, v) = row?;
            let key: Arc<str> = Arc::from(k.value());
            let stored: StoredConnection = serde_json::from_slice(v.value())
                .map_err(|_| VaultError::Corrupt(key.to_string()))?;
            let credential = self.open_credential(&key, &stored)?;
            index.credentials.insert(key.clone(), Arc::new(credential));
            index.connections.insert(key, stored.info);
        }
        let placeholders = tx.open_table(PLACEHOLDERS)?;
        for row in placeholders.iter()? {
            let (k, v) = row?;
            let hash =
                parse_hex(k.value()).ok_or_else(|| VaultError::Corrupt(k.value().to_owned()))?;
            let info: PlaceholderInfo = serde_json::from_slice(v.value())
                .map_err(|_| VaultError::Corrupt(k.value().to_owned()))?;
            index
                .placeholders
                .insert(hash, Arc::new(PlaceholderEntry::new(info)));
        }
        index.sandboxes = self.load_sandboxes(&tx)?.into_iter().collect();
        index.removed = Self::load_removed(&tx)?;
        *self.write_credentials() = index;
        Ok(())
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
    /// way a connection is written.
    pub(crate) fn put_connection(
        &self,
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
        self.write(|tx| {
            tx.open_table(CONNECTIONS)?
                .insert(key.as_str(), record.as_slice())?;
            Ok(())
        })?;
        let key: Arc<str> = Arc::from(key);
        let mut index = self.write_credentials();
        index.credentials.insert(key.clone(), Arc::new(credential));
        index.connections.insert(key, info.clone());
        Ok(info)
    }

    /// Readiness: the file still answers a read transaction.
    pub fn ping(&self) -> Result<(), VaultError> {
        let tx = self.db.begin_read()?;
        tx.open_table(META)?;
        Ok(())
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
        self.put_connection(info, &secret, credential)
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
        let mut info = self
            .read_index()
            .connections
            .get(key.as_str())
            .cloned()
            .ok_or_else(missing)?;
        if let Some(d) = labels.description {
            info.description = d;
        }
        if let Some(l) = labels.identity_label {
            info.identity_label = l;
        }
        let updated = info.clone();
        self.write(|tx| {
            let mut table = tx.open_table(CONNECTIONS)?;
            let sealed = {
                let row = table.get(key.as_str())?.ok_or_else(missing)?;
                let stored: StoredConnection = serde_json::from_slice(row.value())
                    .map_err(|_| VaultError::Corrupt(key.clone()))?;
                stored.sealed
            };
            let record = serde_json::to_vec(&StoredConnection { info, sealed })
                .map_err(|e| VaultError::Invalid(e.to_string()))?;
            table.insert(key.as_str(), record.as_slice())?;
            Ok(())
        })?;
        self.write_index()
            .connections
            .insert(Arc::from(key.as_str()), updated.clone());
        Ok(updated)
    }

    /// Removes a connection and every placeholder naming it, in one transaction.
    pub fn remove_connection(&self, id: &ConnectionId) -> Result<bool, VaultError> {
        let key = id.key();
        let _w = self.lock_writer();
        if !self.read_index().connections.contains_key(key.as_str()) {
            return Ok(false);
        }
        let doomed = self.placeholders_where(|e| *e.conn_key == *key);
        self.write(|tx| {
            tx.open_table(CONNECTIONS)?.remove(key.as_str())?;
            Self::delete_placeholders(tx, &doomed)
        })?;
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
        self.write(|tx| {
            tx.open_table(PLACEHOLDERS)?
                .insert(hash.hex().as_str(), record.as_slice())?;
            Ok(())
        })?;
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
        let hash = parse_hex(id).ok_or(VaultError::NoPlaceholder)?;
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
        self.write(|tx| {
            tx.open_table(PLACEHOLDERS)?.remove(hash.hex().as_str())?;
            Ok(())
        })?;
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

    /// Deletes placeholder records inside a write transaction.
    pub(crate) fn delete_placeholders(
        tx: &WriteTransaction,
        hashes: &[PlaceholderHash],
    ) -> Result<(), VaultError> {
        let mut table = tx.open_table(PLACEHOLDERS)?;
        for h in hashes {
            table.remove(h.hex().as_str())?;
        }
        Ok(())
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

    pub(crate) fn write(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        self.write_with(true, f)
    }

    /// A write that syncs to disk only when `durable`; a later durable commit persists it.
    pub(crate) fn write_with(
        &self,
        durable: bool,
        f: impl FnOnce(&WriteTransaction) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        let mut tx = self.db.begin_write()?;
        if !durable {
            tx.set_durability(redb::Durability::None)?;
        }
        f(&tx)?;
        Ok(tx.commit()?)
    }
}

/// Associated data: the table and the record's key, so a sealed value cannot be moved.
pub(crate) fn aad(table: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(table.len() + 1 + key.len());
    out.extend_from_slice(table.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}

fn parse_hex(text: &str) -> Option<PlaceholderHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(PlaceholderHash(out))
}
