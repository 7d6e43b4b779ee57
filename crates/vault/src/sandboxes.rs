//! Sandbox identities: an id and a secret the sandbox presents to the proxy
//! (`Proxy-Authorization: Basic id:secret`). Only the secret's SHA-256 is stored; the
//! proxy checks it from memory.

use rand::Rng;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use subtle::ConstantTimeEq;

use crate::db::{Vault, placeholder_removals};
use crate::error::VaultError;
use crate::records::{SandboxInfo, StoredSandbox};
use crate::store::{Change, Table};

/// `[a-z0-9-_]{1,64}`: safe in URLs, logs and the userinfo of a proxy URL.
pub fn valid_sandbox_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// 256 random bits, base64url: a secret egret hands out once and then only recognises
/// by its SHA-256 (sign-in bindings, connect-link tickets, web UI sessions).
pub fn random_token() -> SecretString {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of `text`, lower-case hex: how the vault keeps a secret it must only
/// recognise (sandbox secrets, OAuth states, sign-in bindings).
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Which issue of a sandbox's credentials a connection authenticated with (the stored
/// hash of its secret: opaque, never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxIssue(String);

impl std::fmt::Debug for SandboxIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SandboxIssue(..)")
    }
}

impl Vault {
    /// Creates a sandbox (a random id when `id` is `None`), or issues a new secret for an
    /// existing one (the old secret stops working). The secret is returned once.
    pub fn issue_sandbox(
        &self,
        id: Option<&str>,
        ttl_secs: Option<u64>,
    ) -> Result<(SandboxInfo, SecretString), VaultError> {
        let id = match id {
            Some(id) if valid_sandbox_id(id) => id.to_owned(),
            Some(id) => {
                return Err(VaultError::Invalid(format!(
                    "`{id}` is not a sandbox id; expected 1-64 characters of a-z, 0-9, `-` or `_`"
                )));
            }
            None => format!("sbx-{}", random(12).to_ascii_lowercase()),
        };
        let secret = SecretString::from(format!("egs_{}", random(40)));
        let created_at = self.clock.unix();
        let info = SandboxInfo {
            id: id.clone(),
            created_at,
            expires_at: ttl_secs
                .map(|t| created_at.saturating_add(i64::try_from(t).unwrap_or(i64::MAX))),
        };
        let stored = StoredSandbox {
            info: info.clone(),
            secret_sha256: sha256_hex(secret.expose_secret()),
        };
        let record = serde_json::to_vec(&stored).map_err(|e| VaultError::Invalid(e.to_string()))?;
        let record = self.mac.wrap(Table::Sandboxes, id.as_str(), &record);
        let _w = self.lock_writer();
        self.store
            .commit(vec![Change::put(Table::Sandboxes, id.as_str(), record)])?;
        self.write_index().sandboxes.insert(id, stored);
        Ok((info, secret))
    }

    pub fn sandboxes(&self) -> Vec<SandboxInfo> {
        let index = self.read_index();
        let mut list: Vec<SandboxInfo> = index.sandboxes.values().map(|s| s.info.clone()).collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Revokes a sandbox and every placeholder bound to it, in one transaction.
    pub fn revoke_sandbox(&self, id: &str) -> Result<bool, VaultError> {
        let _w = self.lock_writer();
        if !self.read_index().sandboxes.contains_key(id) {
            return Ok(false);
        }
        let doomed = self.placeholders_where(|e| e.info.sandbox.as_deref() == Some(id));
        let mut changes = vec![Change::remove(Table::Sandboxes, id)];
        changes.extend(placeholder_removals(&doomed));
        self.store.commit(changes)?;
        let mut index = self.write_index();
        index.sandboxes.remove(id);
        for h in &doomed {
            index.placeholders.remove(h);
        }
        Ok(true)
    }

    /// The proxy's check, from memory: a live sandbox with this secret. `Some` names the
    /// issue of the credentials that passed, to check again later ([`Vault::sandbox_still_valid`]).
    pub fn authenticate_sandbox(
        &self,
        id: &str,
        secret: &str,
        now_unix: i64,
    ) -> Option<SandboxIssue> {
        self.read_through(Table::Sandboxes, id);
        let index = self.read_index();
        let s = index.sandboxes.get(id)?;
        if s.info.expires_at.is_some_and(|e| e <= now_unix) {
            return None;
        }
        // Both sides are hashes of the same length: comparing them leaks nothing useful
        // about the secret, but stay constant-time anyway.
        let given = sha256_hex(secret);
        let same: bool = given.as_bytes().ct_eq(s.secret_sha256.as_bytes()).into();
        same.then(|| SandboxIssue(s.secret_sha256.clone()))
    }

    /// True while the credentials that passed as `issue` are in force: the sandbox is
    /// neither revoked, expired, nor issued new credentials since. The proxy asks on
    /// every request inside a tunnel, so revocation reaches open tunnels.
    pub fn sandbox_still_valid(&self, id: &str, issue: &SandboxIssue, now_unix: i64) -> bool {
        self.read_through(Table::Sandboxes, id);
        let index = self.read_index();
        index.sandboxes.get(id).is_some_and(|s| {
            s.info.expires_at.is_none_or(|e| e > now_unix) && s.secret_sha256 == issue.0
        })
    }
}
