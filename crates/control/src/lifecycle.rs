//! The policy in force is the file's connectors plus the control plane's: installing a
//! new one (start, reload, a connector created, changed or deleted) merges the two and
//! applies the kill switch to every connector that disappeared.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use egret_policy::{Policy, Source};
use egret_vault::{Vault, VaultError};

/// Installs policies into one egret's live policy, one at a time: a reload and an API
/// change must not lose each other's update. Each egret has its own (several run in
/// one test process), shared by its control plane and its reload watcher.
pub struct Lifecycle {
    live: Arc<ArcSwap<Policy>>,
    vault: Arc<Vault>,
    one_at_a_time: Mutex<()>,
}

impl Lifecycle {
    pub fn new(live: Arc<ArcSwap<Policy>>, vault: Arc<Vault>) -> Self {
        Self {
            live,
            vault,
            one_at_a_time: Mutex::new(()),
        }
    }

    /// The policy in force.
    pub fn live(&self) -> &Arc<ArcSwap<Policy>> {
        &self.live
    }

    /// Installs `file` merged with the API connectors. With `erase_removed`, every
    /// connector in force before and gone now loses its connections and placeholders
    /// (the kill switch); at start-up nothing is erased, so starting with the wrong file
    /// destroys nothing. Returns the ids that were killed.
    pub fn install(&self, file: Policy, erase_removed: bool) -> Result<Vec<String>, VaultError> {
        let _one = self.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        let new = merge(file, &self.vault)?;
        let old = self.live.load_full();
        let removed: Vec<String> = old
            .connectors
            .iter()
            .filter(|c| new.connector(c.id.as_str()).is_none())
            .map(|c| c.id.to_string())
            .collect();
        self.live.store(Arc::new(new));
        if !erase_removed {
            return Ok(Vec::new());
        }
        for id in &removed {
            let erased = self.vault.erase_connector(id)?;
            self.vault.audit(
                "connector.removed",
                Some(id),
                None,
                Some(format!(
                    "{erased} connections and their placeholders erased"
                )),
            )?;
            tracing::warn!(connector = %id, erased, "connector removed: its connections and placeholders are erased");
        }
        Ok(removed)
    }

    /// Re-installs the live policy after an API change (the file part is unchanged).
    pub fn refresh(&self) -> Result<Vec<String>, VaultError> {
        let current = (**self.live.load()).clone();
        self.install(current, true)
    }
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
