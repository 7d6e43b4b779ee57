//! Nothing leaks back: an upstream that echoes a request (debug endpoints, error pages,
//! httpbin-style APIs) must not hand the sandbox the credential egret injected. Every
//! credential sent on a request — in any mixture of the forms an upstream can trivially
//! apply (`egret_redact`) — is replaced in the response's headers, body and trailers by
//! the same form of what the sandbox sent in its place; a connector's other stored
//! credentials by a fixed word.
//!
//! This module picks the credentials and caches the matchers; the matching and the
//! streaming scan are `egret_redact`'s. Compressed bodies cannot be scanned as they
//! stream, so egret asks for `identity` on requests that carry a credential and refuses
//! an answer that is encoded anyway (`response_unscannable`).

use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use egret_redact::{Echo, Redacted, Redactor, Scanner};

/// What replaces a connector's stored credential found in an answer to a request that
/// did not carry it (there is no placeholder of the sandbox's to put back).
pub const WITHHELD: &[u8] = b"egret-credential-withheld";

/// Redactors already built, by a digest of their credential pairs: building one costs
/// tens of microseconds, and the same credential and placeholder come back request
/// after request. The digest, not the credential, is the key.
pub struct Redactors {
    by_echoes: quick_cache::sync::Cache<[u8; 32], Arc<Redactor>>,
    /// Per connector: every live credential of it, built at a vault generation.
    by_connector: std::sync::Mutex<std::collections::HashMap<String, Arc<Stored>>>,
}

/// A connector's live credentials and their redactor, as of a vault generation.
pub struct Stored {
    generation: u64,
    /// The credentials scanned for (to tell when a request already carries them all).
    pub credentials: Vec<Arc<egret_vault::Credential>>,
    pub redactor: Option<Arc<Redactor>>,
}

impl Redactors {
    pub fn new(capacity: usize) -> Self {
        Self {
            by_echoes: quick_cache::sync::Cache::new(capacity.max(1)),
            by_connector: std::sync::Mutex::default(),
        }
    }

    /// The redactor for every live credential of `connector` (each replaced by
    /// [`WITHHELD`]), rebuilt only when the vault has changed since.
    pub fn for_connector(&self, vault: &egret_vault::Vault, connector: &str) -> Arc<Stored> {
        let now = vault.generation();
        {
            let cached = self.by_connector.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(hit) = cached.get(connector).filter(|s| s.generation == now) {
                return hit.clone();
            }
        }
        let (generation, credentials) = vault.live_credentials(connector);
        // Every value of each: one key, or each input of a connection that has several.
        let echoes: Vec<Echo> = credentials
            .iter()
            .flat_map(|c| c.secrets())
            .map(|secret| {
                let secret = secrecy::ExposeSecret::expose_secret(secret);
                Echo::fixed(secret.as_bytes(), WITHHELD)
            })
            .collect();
        let stored = Arc::new(Stored {
            generation,
            redactor: Redactor::new(&echoes),
            credentials,
        });
        let mut cached = self.by_connector.lock().unwrap_or_else(|p| p.into_inner());
        cached.insert(connector.to_owned(), stored.clone());
        stored
    }

    /// The redactor for `echoes`; `None` when the request carried no credential.
    pub fn for_echoes(&self, echoes: &[Echo]) -> Option<Arc<Redactor>> {
        if echoes.is_empty() {
            return None;
        }
        let mut digest = Sha256::new();
        for echo in echoes {
            for part in [echo.sent.as_slice(), &echo.shown] {
                digest.update((part.len() as u64).to_le_bytes());
                digest.update(part);
            }
        }
        let key: [u8; 32] = digest.finalize().into();
        if let Some(hit) = self.by_echoes.get(&key) {
            return Some(hit);
        }
        let built = Redactor::new(echoes)?;
        self.by_echoes.insert(key, built.clone());
        Some(built)
    }
}
