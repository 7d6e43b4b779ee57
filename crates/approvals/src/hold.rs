//! Holding a request: find what covers it, or ask, then wait within the hold.

use std::sync::Arc;
use std::time::Duration;

use egret_policy::EventKind;
use egret_vault::{Approval, ApprovalStatus, AuditRecord, ConnectionId};
use egret_webhooks::Event;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{ApprovalError, Approvals, POLL, new_id, preview};

/// A request a rule wants approved, as the proxy saw it (before any swap: it carries
/// placeholders, never a credential).
#[derive(Debug, Clone)]
pub struct Ask {
    pub connection: ConnectionId,
    pub sandbox: Option<String>,
    pub method: String,
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    pub body: Vec<u8>,
    /// The rule's name (or `#n`, `default`, `mcp.tools.approve`) and its reason.
    pub rule: String,
    pub reason: String,
}

/// What became of a held request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Approved (now or before): send it.
    Granted { id: String },
    Denied {
        id: String,
        by: Option<String>,
        note: Option<String>,
    },
    /// Not decided within the hold: the agent retries after `retry_after` seconds.
    Pending { id: String, retry_after: u64 },
}

impl Ask {
    fn body_sha256(&self) -> String {
        let digest = Sha256::digest(&self.body);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `a` is this very request (method, host, path, query, body), from the same
    /// sandbox, on the same connection.
    fn same_request(&self, a: &Approval, body_sha256: &str) -> bool {
        self.same_place(a)
            && a.method == self.method
            && a.host == self.host
            && a.path == self.path
            && a.query == self.query.as_deref().map(crate::preview::redact_query)
            && a.body_sha256 == body_sha256
    }

    fn same_place(&self, a: &Approval) -> bool {
        a.connection() == self.connection && a.sandbox == self.sandbox
    }
}

impl Approvals {
    /// Holds `ask` for at most `hold`: granted at once when an approval covers it (an
    /// approval "for" a while of the same rule, connection and sandbox; or this very
    /// request approved once and not yet sent), refused when this very request was
    /// denied, else it waits on its approval (the same request waiting already, or a new
    /// one, told to the webhooks) until it is decided or the hold ends.
    pub async fn hold(self: &Arc<Self>, ask: Ask, hold: Duration) -> Result<Held, ApprovalError> {
        let id = match self.blocking(move |s| s.settle_or_ask(&ask)).await? {
            Ok(held) => return Ok(held),
            Err(id) => id,
        };
        let waiter = self.waiter(&id);
        let deadline = tokio::time::Instant::now() + hold;
        let held = loop {
            // Registered before the read: a decision between the two still wakes it.
            let woken = waiter.notified();
            let read = id.clone();
            let found = self
                .blocking(move |s| {
                    let Some(now) = s.vault.approval(&read)? else {
                        return Err(ApprovalError::NotFound(read));
                    };
                    Ok((s.outcome(&now)?, now.expires_at))
                })
                .await;
            let expires_at = match found {
                Ok((Some(held), _)) => break Ok(held),
                Ok((None, at)) => at,
                Err(e) => break Err(e),
            };
            if tokio::time::Instant::now() >= deadline {
                let left = expires_at.saturating_sub(self.clock.unix());
                break Ok(Held::Pending {
                    id: id.clone(),
                    retry_after: u64::try_from(left).unwrap_or(0).clamp(1, 30),
                });
            }
            let _ =
                tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + POLL), woken)
                    .await;
        };
        self.forget_waiter(&id, &waiter);
        held
    }

    /// A decided approval's meaning for the request waiting on it (`None`: still
    /// pending). An approval "once" is spent by the request it lets through.
    fn outcome(&self, a: &Approval) -> Result<Option<Held>, ApprovalError> {
        let id = a.id.clone();
        match a.status_at(self.clock.unix()) {
            ApprovalStatus::Pending => Ok(None),
            ApprovalStatus::Approved => {
                if a.grant_until.is_none() && !self.spend(a)? {
                    // Another request (a retry on another replica) spent it first.
                    return Ok(Some(Held::Pending { id, retry_after: 1 }));
                }
                Ok(Some(Held::Granted { id }))
            }
            ApprovalStatus::Denied => Ok(Some(Held::Denied {
                id,
                by: a.decided_by.clone(),
                note: a.note.clone(),
            })),
            ApprovalStatus::Expired => Ok(Some(Held::Pending { id, retry_after: 1 })),
        }
    }

    /// Marks an approval "once" spent; `false` when it was spent already.
    fn spend(&self, a: &Approval) -> Result<bool, ApprovalError> {
        Ok(self
            .vault
            .update_approval(&a.id, |cur| {
                (!cur.used).then(|| Approval {
                    used: true,
                    ..cur.clone()
                })
            })?
            .is_some())
    }

    /// What the store says of `ask` already (`Ok`), or the id of the approval to wait
    /// on (`Err`): the same request pending, or a new approval.
    fn settle_or_ask(&self, ask: &Ask) -> Result<Result<Held, String>, ApprovalError> {
        let now = self.clock.unix();
        let body_sha256 = ask.body_sha256();
        let expire = i64::try_from(self.policy.load().approvals.expire.as_secs()).unwrap_or(3600);
        for a in self.vault.approvals()? {
            if !ask.same_place(&a) {
                continue;
            }
            let status = a.status_at(now);
            let recent = a.decided_at.is_some_and(|at| at + expire > now);
            if status == ApprovalStatus::Approved
                && a.rule == ask.rule
                && a.grant_until.is_some_and(|until| until > now)
            {
                return Ok(Ok(Held::Granted { id: a.id }));
            }
            if !ask.same_request(&a, &body_sha256) {
                continue;
            }
            match status {
                ApprovalStatus::Approved
                    if a.grant_until.is_none() && !a.used && recent && self.spend(&a)? =>
                {
                    return Ok(Ok(Held::Granted { id: a.id }));
                }
                ApprovalStatus::Denied if recent => {
                    return Ok(Ok(Held::Denied {
                        id: a.id,
                        by: a.decided_by,
                        note: a.note,
                    }));
                }
                ApprovalStatus::Pending => return Ok(Err(a.id)),
                _ => {}
            }
        }
        let approval = Approval {
            id: new_id(),
            connector: ask.connection.connector.clone(),
            owner: ask.connection.owner.clone(),
            name: ask.connection.name.clone(),
            sandbox: ask.sandbox.clone(),
            method: ask.method.clone(),
            host: ask.host.clone(),
            path: ask.path.clone(),
            query: ask.query.as_deref().map(crate::preview::redact_query),
            body_preview: preview(&ask.body),
            body_sha256,
            rule: ask.rule.clone(),
            reason: ask.reason.clone(),
            created_at: now,
            expires_at: now.saturating_add(expire),
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            note: None,
            grant_until: None,
            used: false,
        };
        self.vault.put_approval(&approval)?;
        self.told_requested(&approval);
        Ok(Err(approval.id))
    }

    fn told_requested(&self, a: &Approval) {
        let url = self.page_url(&a.id);
        let data = json!({
            "id": a.id,
            "connector": a.connector,
            "owner": a.owner,
            "name": a.name,
            "sandbox": a.sandbox,
            "method": a.method,
            "host": a.host,
            "path": a.path,
            "rule": a.rule,
            "reason": a.reason,
            "expires_at": a.expires_at,
            "url": url,
        });
        let record = AuditRecord::about("approval.requested", &a.connection()).with_data(&data);
        if let Err(e) = self.vault.append_audit(vec![record]) {
            tracing::warn!(error = %e, "an approval request could not be audited");
        }
        self.events.emit(Event {
            kind: EventKind::ApprovalRequested,
            data,
        });
    }
}
