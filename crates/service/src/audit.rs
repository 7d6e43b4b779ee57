//! The audit log, as administrators read it: everything after a point (the API's
//! paging), or the newest events that match (the Activity page).

use std::sync::Arc;

use egret_vault::AuditEvent;

use crate::principal::{Operation, Principal, authorize};
use crate::{Service, ServiceError};

impl Service {
    /// Events numbered after `since`, oldest first, at most `limit`, optionally only one
    /// connector's and/or owner's.
    pub async fn audit_since(
        self: &Arc<Self>,
        who: &Principal,
        since: u64,
        limit: usize,
        connector: Option<String>,
        owner: Option<String>,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        authorize(who, Operation::Audit, None)?;
        self.blocking(move |s| {
            Ok(s.vault
                .audit_since(since, limit, connector.as_deref(), owner.as_deref())?)
        })
        .await
    }

    /// The newest `limit` events that `keep` wants, newest first, looking at no more
    /// than `scan` events.
    pub async fn audit_latest(
        self: &Arc<Self>,
        who: &Principal,
        limit: usize,
        scan: usize,
        keep: impl Fn(&AuditEvent) -> bool + Send + 'static,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        authorize(who, Operation::Audit, None)?;
        self.blocking(move |s| Ok(s.vault.audit_latest(limit, scan, keep)?))
            .await
    }
}
