//! Placeholders in the vault: minted (only their hash is stored), listed, revoked, and
//! resolved on every proxied request from memory (read through to a shared store when
//! memory may be behind).

use std::sync::Arc;
use std::time::Duration;

use crate::db::PlaceholderEntry;
use crate::error::VaultError;
use crate::placeholder::{Placeholder, PlaceholderHash};
use crate::records::*;
use crate::store::{Change, Table};
use crate::{Resolved, Vault};

/// What a minted placeholder looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `egp_` + 40 letters and digits.
    Opaque,
    /// `AKIA` + 16 of `A-Z2-7`, as an AWS access key id.
    AwsKeyId,
}

impl Vault {
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
        self.mint_placeholders(id, ttl, sandbox, &[(None, Shape::Opaque)])?
            .pop()
            .ok_or_else(|| VaultError::Invalid("nothing to mint".to_owned()))
    }

    /// Mints one placeholder per input (`None`: the connection's one value), all in
    /// one commit, each with the same lifetime and sandbox.
    pub fn mint_placeholders(
        &self,
        id: &ConnectionId,
        ttl: Option<Duration>,
        sandbox: Option<&str>,
        inputs: &[(Option<String>, Shape)],
    ) -> Result<Vec<(Placeholder, PlaceholderInfo)>, VaultError> {
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
        let created_at = self.clock.unix();
        let mut minted = Vec::with_capacity(inputs.len());
        let mut changes = Vec::with_capacity(inputs.len());
        for (input, shape) in inputs {
            let placeholder = match shape {
                Shape::Opaque => Placeholder::mint(),
                Shape::AwsKeyId => Placeholder::mint_aws_key_id(),
            };
            let info = PlaceholderInfo {
                connector: id.connector.clone(),
                owner: id.owner.clone(),
                name: id.name.clone(),
                created_at,
                expires_at: ttl.map(|t| {
                    created_at.saturating_add(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
                }),
                hint: placeholder.hint(),
                sandbox: sandbox.map(str::to_owned),
                input: input.clone(),
            };
            let hash = placeholder.hash();
            let record =
                serde_json::to_vec(&info).map_err(|e| VaultError::Invalid(e.to_string()))?;
            let record = self.mac.wrap(Table::Placeholders, &hash.hex(), &record);
            changes.push(Change::put(Table::Placeholders, hash.hex(), record));
            minted.push((hash, placeholder, info));
        }
        self.store.commit(changes)?;
        let mut index = self.write_index();
        Ok(minted
            .into_iter()
            .map(|(hash, placeholder, info)| {
                index
                    .placeholders
                    .insert(hash, Arc::new(PlaceholderEntry::new(info.clone())));
                (placeholder, info)
            })
            .collect())
    }

    /// The secret access key placeholder that goes with an AWS key id placeholder:
    /// derived (40 characters, as AWS's), never stored. A request signed with the key
    /// id but another secret is refused.
    pub fn aws_secret_placeholder(&self, key_id: &str) -> Placeholder {
        use base64::Engine;
        let derived = self
            .mac
            .derive("aws secret access key placeholder", key_id.as_bytes());
        let text = base64::engine::general_purpose::STANDARD.encode(&derived[..30]);
        Placeholder::derived(text.replace(['+', '/'], "x"))
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
}
