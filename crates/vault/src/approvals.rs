//! Approvals: requests a rule holds until a person decides (issue 26). Each is one
//! sealed row (its body preview is the sandbox's data) keyed by its id, so every
//! replica sees a decision made on another. Deciding is a compare-and-set on the row: of
//! two people deciding at once, one wins and the other is told it was decided already.
//! What an approval means for a request (who may decide, what a grant covers) is the
//! `egret-approvals` crate's business; here are the records.

use serde::{Deserialize, Serialize};

use crate::db::{Vault, aad};
use crate::error::VaultError;
use crate::names::{ConnectionId, ConnectionName, Owner};
use crate::store::Table;

/// Approvals kept at most (pending and decided, until they are pruned); the oldest go.
const KEEP: usize = 10_000;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    /// Nobody decided before it expired.
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Expired]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One held request and what became of it. Never holds a credential: the body preview
/// and query are redacted before they get here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub connector: String,
    pub owner: Owner,
    pub name: ConnectionName,
    /// The sandbox identity the request came from (proxy authentication), if any.
    pub sandbox: Option<String>,
    pub method: String,
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    /// The first 4 KiB of the body, placeholders and credential-like values redacted.
    pub body_preview: String,
    /// SHA-256 (hex) of the whole body: a retry of the same request matches it.
    pub body_sha256: String,
    /// The rule's name, or `#n` (from 1), or `default`.
    pub rule: String,
    pub reason: String,
    pub created_at: i64,
    /// Undecided by then: expired.
    pub expires_at: i64,
    pub status: ApprovalStatus,
    /// Who decided: `admin`, `user:<id>`, ….
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub note: Option<String>,
    /// An approval "for 1h": every request of the same rule, connection and sandbox
    /// until then. `None` for "once".
    pub grant_until: Option<i64>,
    /// An approval "once" was spent by the request it let through.
    pub used: bool,
}

impl Approval {
    pub fn connection(&self) -> ConnectionId {
        ConnectionId::new(&self.connector, &self.owner, &self.name)
    }

    /// Its status as of `now`: a pending approval past its expiry is expired.
    pub fn status_at(&self, now: i64) -> ApprovalStatus {
        match self.status {
            ApprovalStatus::Pending if now >= self.expires_at => ApprovalStatus::Expired,
            s => s,
        }
    }

    /// Until when the row is worth keeping: a decided approval is kept a week (for the
    /// listing and retries), a pending one until then after it expires.
    fn keep_until(&self) -> i64 {
        let week = 7 * 24 * 3600;
        self.decided_at
            .unwrap_or(self.expires_at)
            .max(self.grant_until.unwrap_or(0))
            .saturating_add(week)
    }
}

impl Vault {
    /// Stores a new approval, dropping those past their keeping (and the oldest beyond
    /// the cap).
    pub fn put_approval(&self, approval: &Approval) -> Result<(), VaultError> {
        let sealed = self.seal_approval(approval)?;
        self.put_expiring(
            Table::Approvals,
            approval.id.clone(),
            sealed,
            KEEP,
            |k, v| self.open_approval(k, v).map(|a| a.keep_until()),
        )
    }

    /// The approval `id`, as the store holds it now (another replica's decision too).
    pub fn approval(&self, id: &str) -> Result<Option<Approval>, VaultError> {
        let Some(row) = self.store.get(Table::Approvals, id)? else {
            return Ok(None);
        };
        Ok(self.open_approval(id, &row))
    }

    /// Every approval the store holds, newest first.
    pub fn approvals(&self) -> Result<Vec<Approval>, VaultError> {
        let mut all: Vec<Approval> = self
            .store
            .scan(Table::Approvals)?
            .into_iter()
            .filter_map(|(k, v)| self.open_approval(&k, &v))
            .collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(all)
    }

    /// Changes approval `id` with `change` only if nobody changed it meanwhile (on any
    /// replica); `change` returns `None` to leave it. Returns what was written, or
    /// `None` when `change` declined or a concurrent change won.
    pub fn update_approval(
        &self,
        id: &str,
        change: impl Fn(&Approval) -> Option<Approval>,
    ) -> Result<Option<Approval>, VaultError> {
        let Some(row) = self.store.get(Table::Approvals, id)? else {
            return Ok(None);
        };
        let Some(current) = self.open_approval(id, &row) else {
            return Err(VaultError::Corrupt(format!("approvals/{id}")));
        };
        let Some(next) = change(&current) else {
            return Ok(None);
        };
        let sealed = self.seal_approval(&next)?;
        if self.store.swap(Table::Approvals, id, &row, &sealed)? {
            Ok(Some(next))
        } else {
            Ok(None)
        }
    }

    fn seal_approval(&self, approval: &Approval) -> Result<Vec<u8>, VaultError> {
        let plain = serde_json::to_vec(approval).map_err(|e| VaultError::Invalid(e.to_string()))?;
        Ok(self.sealer.seal(&aad("approvals", &approval.id), &plain))
    }

    fn open_approval(&self, key: &str, sealed: &[u8]) -> Option<Approval> {
        let plain = self.sealer.open(&aad("approvals", key), sealed)?;
        serde_json::from_slice(&plain).ok()
    }
}
