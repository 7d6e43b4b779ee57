//! The policy in force is the file's connectors plus the control plane's: installing a
//! new one (start, reload, a connector created, changed or deleted) merges the two.
//!
//! A connector gone from the file is refused at once (the kill switch) but its sealed
//! connections are kept for `connectors_removed_retention`, so an editor's half-saved
//! file or a branch switch erases nothing: the stanza coming back restores them, and
//! they are erased only when the retention ends or an operator purges them. Deleting a
//! connector through the API or CLI still erases at once.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use egret_policy::{Policy, Source};
use egret_vault::{Vault, VaultError};
use tracing::{info, warn};

/// Why a policy is being installed: it decides what happens to connectors that left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Start-up: connectors with stored connections but absent from the file start their
    /// retention (unless it already runs); nothing is erased.
    Start,
    /// The policy file changed: connectors gone from it start their retention, those
    /// back in it are restored.
    Reload,
    /// An API connector was created, changed or deleted (a deletion erased already).
    ApiChange,
}

/// What an install did to connectors that left or came back.
#[derive(Debug, Default)]
pub struct Installed {
    /// Connectors no longer in force whose connections are now kept, refused.
    pub retained: Vec<String>,
    /// Connectors back in force whose kept connections serve again.
    pub restored: Vec<String>,
}

/// Why `egret connector purge` did not erase.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error(
        "connector `{0}` is in force; remove it from the policy file first (or delete it, if it was created through the API)"
    )]
    InForce(String),
    #[error("connector `{0}` has nothing stored to purge")]
    NothingStored(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Installs policies into one egret's live policy, one at a time: a reload and an API
/// change must not lose each other's update. Each egret has its own (several run in
/// one test process), shared by its control plane and its reload watcher.
pub struct Lifecycle {
    live: Arc<ArcSwap<Policy>>,
    vault: Arc<Vault>,
    one_at_a_time: Mutex<()>,
    /// The policy file's last reload, when it was refused and none has succeeded since:
    /// the server runs the previous policy, and `status` and the Activity page say so.
    refused: Mutex<Option<RefusedReload>>,
}

/// A reload of the policy file that was refused.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefusedReload {
    /// Unix seconds.
    pub at: i64,
    /// `file:line:col: what is wrong`.
    pub error: String,
}

impl Lifecycle {
    pub fn new(live: Arc<ArcSwap<Policy>>, vault: Arc<Vault>) -> Self {
        Self {
            live,
            vault,
            one_at_a_time: Mutex::new(()),
            refused: Mutex::new(None),
        }
    }

    /// Records that the policy file's reload was refused (the previous policy stays).
    pub fn reload_refused(&self, error: String) {
        let at = self.vault.clock().unix();
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(RefusedReload { at, error });
    }

    /// The last reload, when it was refused and none has succeeded since.
    pub fn refused_reload(&self) -> Option<RefusedReload> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The vault whose connections this lifecycle keeps or erases.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// The policy in force.
    pub fn live(&self) -> &Arc<ArcSwap<Policy>> {
        &self.live
    }

    /// Installs `file` merged with the API connectors; a connector that left is refused
    /// from this moment on and its connections are kept (see the module doc).
    pub fn install(&self, mut file: Policy, why: Install) -> Result<Installed, VaultError> {
        let _one = self.lock();
        let old = self.live.load_full();
        // The listeners stay bound where they are until a restart: the policy in force
        // says where egret really listens (which is also what no request may reach).
        if why != Install::Start {
            file.bound_to(old.proxy.listen, old.control.listen);
        }
        let new = merge(file, &self.vault)?;
        // Client secrets fetched from external stores carry over to the new policy.
        new.keep_fetched_from(&old);
        if why == Install::Reload {
            // The file is in force again: nothing refused stands.
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let stored = self.vault.stored_connector_ids();
        let gone: Vec<String> = match why {
            Install::Reload => old
                .connectors
                .iter()
                .filter(|c| new.connector(c.id.as_str()).is_none())
                .map(|c| c.id.to_string())
                .collect(),
            Install::Start => stored
                .iter()
                .filter(|id| new.connector(id).is_none())
                .cloned()
                .collect(),
            Install::ApiChange => Vec::new(),
        };
        let back: Vec<String> = self
            .vault
            .removed_connectors()
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| new.connector(id).is_some())
            .collect();
        // The kill switch first: from here on no request uses a connector that left.
        let new = Arc::new(new);
        self.live.store(new.clone());
        let mut done = Installed::default();
        let now = self.vault.clock().unix();
        for id in gone {
            if !stored.contains(&id) {
                info!(connector = %id, "connector removed from the policy; it had no connections");
                self.vault.audit(
                    "connector.removed",
                    Some(&id),
                    None,
                    Some("not in the policy any more; it had no connections".to_owned()),
                )?;
                continue;
            }
            let connections = self.vault.connections(Some(&id), None).len();
            let newly = self.vault.note_connector_removed(&id, now)?;
            let since = self.vault.connector_removed_at(&id).unwrap_or(now);
            let until = format_unix(new.removed_purge_at(since));
            let what = format!(
                "not in the policy any more: refused at once; connections kept: {}, until {until} (connectors_removed_retention); they serve again if it comes back, and `egret connector purge {id}` erases them now",
                connections_word(connections),
            );
            if newly {
                warn!(connector = %id, connections, until = %until, "connector removed from the policy: refused, its connections are kept until the retention ends");
                self.vault
                    .audit("connector.removed", Some(&id), None, Some(what))?;
            }
            done.retained.push(id);
        }
        for id in back {
            if let Some(since) = self.vault.forget_connector_removed(&id)? {
                let connections = self.vault.connections(Some(&id), None).len();
                let what = format!(
                    "back in the policy: connections kept since {} serve again: {}",
                    format_unix(since),
                    connections_word(connections)
                );
                info!(connector = %id, connections, "connector back in the policy: its kept connections serve again");
                self.vault
                    .audit("connector.restored", Some(&id), None, Some(what))?;
                done.restored.push(id);
            }
        }
        Ok(done)
    }

    /// Re-installs the live policy after an API change (the file part is unchanged).
    pub fn refresh(&self) -> Result<Installed, VaultError> {
        let current = (**self.live.load()).clone();
        self.install(current, Install::ApiChange)
    }

    /// Erases the kept connections of every connector whose retention has ended.
    /// Returns the ids erased, with how many connections each had.
    pub fn purge_expired(&self) -> Result<Vec<(String, usize)>, VaultError> {
        let _one = self.lock();
        let live = self.live.load_full();
        let now = self.vault.clock().unix();
        let mut purged = Vec::new();
        for (id, since) in self.vault.removed_connectors() {
            if live.connector(&id).is_some() || live.removed_purge_at(since) > now {
                continue;
            }
            let erased = self.vault.erase_connector(&id)?;
            warn!(connector = %id, erased, "retention of a removed connector ended: its connections and placeholders are erased");
            self.vault.audit(
                "connector.purged",
                Some(&id),
                None,
                Some(format!(
                    "removed from the policy at {} and not back within connectors_removed_retention: {} erased, with the placeholders",
                    format_unix(since),
                    connections_word(erased)
                )),
            )?;
            purged.push((id, erased));
        }
        Ok(purged)
    }

    /// An operator's purge: erases at once what a connector that left the policy kept.
    /// Returns how many connections were erased.
    pub fn purge(&self, id: &str) -> Result<usize, PurgeError> {
        let _one = self.lock();
        if self.live.load().connector(id).is_some() {
            return Err(PurgeError::InForce(id.to_owned()));
        }
        let noted = self.vault.connector_removed_at(id).is_some();
        if !noted && !self.vault.stored_connector_ids().contains(id) {
            return Err(PurgeError::NothingStored(id.to_owned()));
        }
        let erased = self.vault.erase_connector(id)?;
        warn!(connector = %id, erased, "removed connector purged by an operator: its connections and placeholders are erased");
        self.vault.audit(
            "connector.purge",
            Some(id),
            None,
            Some(format!(
                "purged by an operator: {} erased, with the placeholders",
                connections_word(erased)
            )),
        )?;
        Ok(erased)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `1 connection`, `3 connections`.
pub(crate) fn connections_word(n: usize) -> String {
    if n == 1 {
        "1 connection".to_owned()
    } else {
        format!("{n} connections")
    }
}

/// `2026-11-26T13:52:37Z`, for log lines and audit details a person reads.
pub fn format_unix(unix: i64) -> String {
    let at = u64::try_from(unix)
        .ok()
        .and_then(|s| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(s)));
    at.map_or_else(
        || unix.to_string(),
        |t| humantime::format_rfc3339_seconds(t).to_string(),
    )
}

/// `file` (a policy from the file, or the live one) with the stored API connectors in
/// place of any it carries. A file connector wins an id clash; the API one is skipped
/// with a warning and stays stored.
pub fn merge(mut file: Policy, vault: &Vault) -> Result<Policy, VaultError> {
    file.connectors.retain(|c| c.source == Source::Policy);
    for (id, entry) in vault.api_connectors()? {
        if file.connector(&id).is_some() {
            tracing::warn!(connector = %id, "the policy file defines this connector too; the file's definition is in force");
            continue;
        }
        match egret_policy::parse_api_connector(&entry) {
            Ok(c) => file.connectors.push(c),
            Err(e) => {
                tracing::error!(connector = %id, error = %e, "stored connector no longer validates; skipped")
            }
        }
    }
    Ok(file)
}
