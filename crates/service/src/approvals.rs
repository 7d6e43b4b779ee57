//! Approvals as people see and decide them. Who may: an administrator, every approval;
//! a user, those about their own connections (within what their sign-in covers) — so a
//! request is decided by the person whose credential it would spend, and an `org`
//! connection's by administrators. Someone who may not see an approval is told it does
//! not exist.

use std::sync::Arc;

use egret_approvals::{Approval, ApprovalError, ApprovalStatus, Decision};

use crate::principal::{Operation, Principal, Role, authorize};
use crate::{Service, ServiceError};

/// Which approvals a listing wants.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
    pub connector: Option<String>,
    pub owner: Option<String>,
}

impl From<ApprovalError> for ServiceError {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::Store(v) => v.into(),
            ApprovalError::NotFound(_) => Self::not_found("approval_not_found", e.to_string()),
            ApprovalError::Settled { .. } => Self::conflict("approval_decided", e.to_string()),
            ApprovalError::Invalid(m) => Self::invalid("for", m),
        }
    }
}

/// Whether `who` may see `a`: a user, the approvals about their connections; an
/// `org` connection's only administrators and auditors.
fn may_see(who: &Principal, a: &Approval) -> bool {
    match who.role() {
        Role::Admin | Role::Auditor => true,
        Role::Platform => false,
        Role::User => who.user_scope().is_some_and(|s| s.covers(&a.connection())),
    }
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(
        "approval_not_found",
        format!("there is no approval `{id}` you may see; GET /v1/approvals lists yours"),
    )
}

impl Service {
    /// The approvals `who` may decide that `filter` wants, newest first.
    pub async fn approvals(
        self: &Arc<Self>,
        who: &Principal,
        filter: ApprovalFilter,
    ) -> Result<Vec<Approval>, ServiceError> {
        authorize(who, Operation::ReadApprovals, None)?;
        let who = who.clone();
        self.blocking(move |s| {
            Ok(s.approvals
                .list()?
                .into_iter()
                .filter(|a| may_see(&who, a))
                .filter(|a| filter.status.is_none_or(|st| a.status == st))
                .filter(|a| filter.connector.as_deref().is_none_or(|c| a.connector == c))
                .filter(|a| {
                    filter
                        .owner
                        .as_deref()
                        .is_none_or(|o| a.owner.as_str() == o)
                })
                .collect())
        })
        .await
    }

    /// One approval, if `who` may see it.
    pub async fn approval(
        self: &Arc<Self>,
        who: &Principal,
        id: String,
    ) -> Result<Approval, ServiceError> {
        authorize(who, Operation::ReadApprovals, None)?;
        let who = who.clone();
        self.blocking(move |s| {
            s.approvals
                .get(&id)?
                .filter(|a| may_see(&who, a))
                .ok_or_else(|| not_found(&id))
        })
        .await
    }

    /// Approves or denies approval `id` as `who`.
    pub async fn decide_approval(
        self: &Arc<Self>,
        who: &Principal,
        id: String,
        decision: Decision,
    ) -> Result<Approval, ServiceError> {
        let who = who.clone();
        self.blocking(move |s| {
            let current = s
                .approvals
                .get(&id)?
                .filter(|a| may_see(&who, a))
                .ok_or_else(|| not_found(&id))?;
            authorize(
                &who,
                Operation::DecideApprovals,
                Some(&current.connection()),
            )?;
            Ok(s.approvals.decide(&current.id, decision, &who.label())?)
        })
        .await
    }

    /// Where approval `id` is decided in the web UI.
    pub fn approval_url(&self, id: &str) -> String {
        self.approvals.page_url(id)
    }
}
