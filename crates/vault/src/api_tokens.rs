//! Scoped API tokens: `egt_` and 43 random characters (256 bits), handed out once and
//! then only recognised by their SHA-256, the row's key. Each row names the token, its
//! role and (for a `user` token) the owner it acts for, and carries the row MAC (a row
//! written into the store without the master key grants nothing). Read from the store
//! on every use, so a revoked token is refused by every replica at once.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::db::Vault;
use crate::error::VaultError;
use crate::names::Owner;
use crate::sandboxes::sha256_hex;
use crate::store::{Change, Table};

/// What prefixes every API token (so a leaked one is recognisable, and never taken for
/// a placeholder or the admin token).
pub const API_TOKEN_PREFIX: &str = "egt_";

/// How often a token's last use is written (at most).
const LAST_USE_EVERY: i64 = 60;

/// A token as listings show it: never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenInfo {
    pub name: String,
    /// `admin`, `auditor`, `platform` or `user` (the service layer reads it).
    pub role: String,
    /// For a `user` token: the owner it acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

/// `[a-z0-9-_.]{1,64}`: a token's name.
pub fn valid_token_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

impl Vault {
    /// Makes a token named `info.name` (refused when the name is taken by a live one);
    /// the token is returned once.
    pub fn create_api_token(&self, info: &ApiTokenInfo) -> Result<SecretString, VaultError> {
        if !valid_token_name(&info.name) {
            return Err(VaultError::Invalid(format!(
                "`{}` is not a token name; expected 1-64 characters of a-z, 0-9, `-`, `_` or `.`",
                info.name
            )));
        }
        let now = self.clock.unix();
        if self
            .api_tokens()?
            .iter()
            .any(|(_, t)| t.name == info.name && t.expires_at.is_none_or(|e| e > now))
        {
            return Err(VaultError::Invalid(format!(
                "a token named `{}` exists already; revoke it first or choose another name",
                info.name
            )));
        }
        let token = SecretString::from(format!(
            "{API_TOKEN_PREFIX}{}",
            crate::random_token().expose_secret()
        ));
        let key = sha256_hex(token.expose_secret());
        self.put_api_token(&key, info)?;
        Ok(token)
    }

    /// The live token `token` is, by its hash: its info (and its last use noted, at most
    /// once a minute). `None` for an unknown, expired or forged one.
    pub fn use_api_token(&self, token: &str) -> Result<Option<ApiTokenInfo>, VaultError> {
        let key = sha256_hex(token);
        let Some(row) = self.store.get(Table::ApiTokens, &key)? else {
            return Ok(None);
        };
        let info = self
            .authentic(Table::ApiTokens, &key, &row)
            .and_then(|content| serde_json::from_slice::<ApiTokenInfo>(content).ok());
        self.audit_forged();
        let now = self.clock.unix();
        let Some(mut info) = info.filter(|i| i.expires_at.is_none_or(|e| e > now)) else {
            return Ok(None);
        };
        if info
            .last_used_at
            .is_none_or(|at| at + LAST_USE_EVERY <= now)
        {
            info.last_used_at = Some(now);
            let new = self.api_token_row(&key, &info)?;
            // Lost to a concurrent use or a revocation: either way, nothing to redo.
            let _ = self.store.swap(Table::ApiTokens, &key, &row, &new)?;
        }
        Ok(Some(info))
    }

    /// Every token (live or expired), by name.
    pub fn api_token_list(&self) -> Result<Vec<ApiTokenInfo>, VaultError> {
        let mut list: Vec<ApiTokenInfo> = self.api_tokens()?.into_iter().map(|(_, t)| t).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    /// Revokes the tokens named `name`; whether there was one.
    pub fn revoke_api_token(&self, name: &str) -> Result<bool, VaultError> {
        let doomed: Vec<Change> = self
            .api_tokens()?
            .into_iter()
            .filter(|(_, t)| t.name == name)
            .map(|(k, _)| Change::remove(Table::ApiTokens, k))
            .collect();
        let any = !doomed.is_empty();
        if any {
            self.store.commit(doomed)?;
        }
        Ok(any)
    }

    fn api_tokens(&self) -> Result<Vec<(String, ApiTokenInfo)>, VaultError> {
        let rows = self.store.scan(Table::ApiTokens)?;
        let list = rows
            .into_iter()
            .filter_map(|(k, v)| {
                let info = self
                    .authentic(Table::ApiTokens, &k, &v)
                    .and_then(|c| serde_json::from_slice::<ApiTokenInfo>(c).ok())?;
                Some((k, info))
            })
            .collect();
        self.audit_forged();
        Ok(list)
    }

    fn api_token_row(&self, key: &str, info: &ApiTokenInfo) -> Result<Vec<u8>, VaultError> {
        let row = serde_json::to_vec(info).map_err(|e| VaultError::Invalid(e.to_string()))?;
        Ok(self.mac.wrap(Table::ApiTokens, key, &row))
    }

    fn put_api_token(&self, key: &str, info: &ApiTokenInfo) -> Result<(), VaultError> {
        let row = self.api_token_row(key, info)?;
        Ok(self
            .store
            .commit(vec![Change::put(Table::ApiTokens, key, row)])?)
    }
}
