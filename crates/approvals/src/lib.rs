//! Approvals: a request a rule marks `approve` waits here until a person decides.
//!
//! Owns holding a request ([`Approvals::hold`]: a grant that covers it already, the
//! same request waiting already, or a new approval, then the wait for a decision within
//! the hold), deciding one ([`Approvals::decide`], by whoever the service layer allowed),
//! what a person is shown of the request (`preview`: the body's first 4 KiB with
//! placeholders and credential-like values redacted) and what is told of it (webhooks
//! `approval.requested` and `approval.decided`, an audit event for each, naming who
//! decided). Approvals live in the vault's store, so a request held on one replica is
//! released by a decision made through another: the holder reads its approval every
//! [`POLL`] and is woken at once by a decision made in the same process.
//!
//! It must not decide who may decide (the service layer does) nor know HTTP; it never
//! stores or shows a credential.

mod decide;
mod error;
mod hold;
mod preview;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use egret_clock::Clock;
use egret_policy::Policy;
use egret_vault::Vault;
use egret_webhooks::EventSink;
use tokio::sync::Notify;

pub use decide::{Decision, Grant};
pub use egret_vault::{Approval, ApprovalStatus};
pub use error::ApprovalError;
pub use hold::{Ask, Held};
pub use preview::{PREVIEW_MAX, preview};

/// How often a held request reads its approval (a decision made on another replica).
pub const POLL: Duration = Duration::from_millis(200);

/// The most of a body a held request keeps; a bigger one is refused with this named.
pub const BODY_MAX: usize = 1024 * 1024;

/// Approvals over the vault, with the webhooks and audit they feed.
pub struct Approvals {
    vault: Arc<Vault>,
    policy: Arc<ArcSwap<Policy>>,
    events: Arc<dyn EventSink>,
    clock: Clock,
    /// Requests held in this process, by approval id: woken by a decision made here.
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Approvals {
    pub fn new(
        vault: Arc<Vault>,
        policy: Arc<ArcSwap<Policy>>,
        events: Arc<dyn EventSink>,
        clock: Clock,
    ) -> Self {
        Self {
            vault,
            policy,
            events,
            clock,
            waiters: Mutex::new(HashMap::new()),
        }
    }

    /// The approval `id` as the store holds it now, its status as of now.
    pub fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalError> {
        let now = self.clock.unix();
        Ok(self.vault.approval(id)?.map(|a| as_of(a, now)))
    }

    /// Every approval, newest first, each with its status as of now.
    pub fn list(&self) -> Result<Vec<Approval>, ApprovalError> {
        let now = self.clock.unix();
        Ok(self
            .vault
            .approvals()?
            .into_iter()
            .map(|a| as_of(a, now))
            .collect())
    }

    /// Where a person decides approval `id`: `<public_url>/ui/approvals/<id>`.
    pub fn page_url(&self, id: &str) -> String {
        let policy = self.policy.load();
        format!(
            "{}/ui/approvals/{id}",
            policy.control.public_url.trim_end_matches('/')
        )
    }

    /// Runs store work (a disk sync, a database round trip) off the async workers.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Approvals) -> Result<T, ApprovalError> + Send + 'static,
    ) -> Result<T, ApprovalError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|_| {
                ApprovalError::Invalid(
                    "the approval's store work was interrupted; retry".to_owned(),
                )
            })?
    }

    fn waiter(&self, id: &str) -> Arc<Notify> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        waiters.entry(id.to_owned()).or_default().clone()
    }

    fn wake(&self, id: &str) {
        let waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = waiters.get(id) {
            n.notify_waiters();
        }
    }

    fn forget_waiter(&self, id: &str, mine: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        // Another request may wait on the same approval: only the last one out removes it.
        if waiters
            .get(id)
            .is_some_and(|n| Arc::strong_count(n) <= 2 && Arc::ptr_eq(n, mine))
        {
            waiters.remove(id);
        }
    }
}

/// `a` with a pending status past its expiry shown as expired.
fn as_of(mut a: Approval, now: i64) -> Approval {
    a.status = a.status_at(now);
    a
}

/// A new approval id: `apr_` and 22 random letters and digits (128 bits).
fn new_id() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!("apr_{}", text.replace(['-', '_'], "x"))
}

#[cfg(test)]
mod tests;
