//! The vault over its store, and the in-memory index the proxy's hot path reads.
//!
//! Every write commits to the store first and updates the index after, under one writer
//! lock, so memory never shows what the store does not hold. On a store shared by
//! replicas, others' changes reach the index through [`crate::changes`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use egret_clock::Clock;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::error::VaultError;
use crate::key::MasterKey;
use crate::placeholder::PlaceholderHash;
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
    pub(crate) conn_key: Arc<str>,
}

impl PlaceholderEntry {
    pub(crate) fn new(info: PlaceholderInfo) -> Self {
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
    /// Authenticates the rows that grant a credential without holding one (`mac`).
    pub(crate) mac: crate::mac::RowMac,
    pub(crate) forgeries: crate::mac::Forgeries,
    index: RwLock<Index>,
    /// Serializes "commit, then update the index" so memory never runs ahead of disk.
    writer: Mutex<()>,
    /// Where "now" comes from for every timestamp and expiry the vault writes or checks.
    pub(crate) clock: Clock,
    /// Bumped on every change to the credentials (under the index's write lock): lets
    /// readers cache what they derive from them (the proxy's scanners per connector).
    pub(crate) generation: std::sync::atomic::AtomicU64,
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
    /// The owner's narrowing of what agents may do with it (JSON, as the policy writes
    /// rules), sealed with the credential so nobody with the store alone can lift it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrowed: Option<String>,
    /// The named inputs' values (a connector with `inputs`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub values: std::collections::BTreeMap<String, String>,
    /// Values kept in an external store: input name (`""`: the one value) -> reference.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub refs: std::collections::BTreeMap<String, String>,
}

impl Drop for SealedSecret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for v in self.values.values_mut() {
            v.zeroize();
        }
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
            mac: crate::mac::RowMac::new(key),
            forgeries: crate::mac::Forgeries::default(),
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
        vault.authenticate_old_rows()?;
        vault.load()?;
        vault.audit_forged();
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
        // A row that fails its MAC is left out (and reported): see `mac`.
        for (k, v) in self.store.scan(Table::Placeholders)? {
            if let Some(content) = self.authentic(Table::Placeholders, &k, &v) {
                let (hash, entry) = open_placeholder(&k, content)?;
                index.placeholders.insert(hash, Arc::new(entry));
            }
        }
        for (k, v) in self.store.scan(Table::Sandboxes)? {
            if let Some(content) = self.authentic(Table::Sandboxes, &k, &v) {
                let stored = open_sandbox(&k, content)?;
                index.sandboxes.insert(k, stored);
            }
        }
        for (k, v) in self.store.scan(Table::RemovedConnectors)? {
            index.removed.insert(k.clone(), open_removed(&k, &v)?);
        }
        *self.write_credentials() = index;
        Ok(())
    }

    /// Readiness: the store answers (and, shared, hears other replicas' changes).
    pub fn ping(&self) -> Result<(), VaultError> {
        Ok(self.store.health()?)
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
