//! Deciding an approval: approve (once, or for a while) or deny, with a note. The one
//! who decides was allowed by the service layer; here the decision is written (a
//! compare-and-set: of two deciding at once, one wins), audited with who decided, told
//! to the webhooks, and wakes the request held in this process (others read it within
//! [`crate::POLL`]).

use std::time::Duration;

use egret_policy::EventKind;
use egret_vault::{Approval, ApprovalStatus, AuditRecord};
use egret_webhooks::Event;
use serde_json::json;

use crate::{ApprovalError, Approvals};

/// How long an approval covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// This request (or its retry) once.
    Once,
    /// Every request of the same rule, connection and sandbox for this long.
    For(Duration),
}

impl Grant {
    /// `once`, or a duration such as `1h` or `30m` (at most 30 days).
    pub fn parse(text: &str) -> Result<Self, ApprovalError> {
        if text == "once" {
            return Ok(Self::Once);
        }
        match humantime_like(text) {
            Some(d) if !d.is_zero() && d <= Duration::from_secs(30 * 24 * 3600) => Ok(Self::For(d)),
            _ => Err(ApprovalError::Invalid(format!(
                "`{text}` is not how long an approval covers; expected `once` or a duration up to 30 days, e.g. `1h`"
            ))),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Once => "once".to_owned(),
            Self::For(d) => format!("{}s", d.as_secs()),
        }
    }
}

/// `90s`, `30m`, `1h`, `2d`: a number and a unit.
fn humantime_like(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// A person's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve { grant: Grant, note: Option<String> },
    Deny { note: Option<String> },
}

/// The longest note kept.
const NOTE_MAX: usize = 500;

impl Approvals {
    /// Decides approval `id` as `by` (`admin`, `user:alice`, …): only a pending one.
    pub fn decide(
        &self,
        id: &str,
        decision: Decision,
        by: &str,
    ) -> Result<Approval, ApprovalError> {
        let note = match &decision {
            Decision::Approve { note, .. } | Decision::Deny { note } => note
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| n.chars().take(NOTE_MAX).collect::<String>()),
        };
        let now = self.clock.unix();
        let written = self.vault.update_approval(id, |cur| {
            let status = cur.status_at(now);
            if status != ApprovalStatus::Pending {
                return None;
            }
            let mut next = cur.clone();
            next.decided_by = Some(by.to_owned());
            next.decided_at = Some(now);
            next.note = note.clone();
            match &decision {
                Decision::Approve { grant, .. } => {
                    next.status = ApprovalStatus::Approved;
                    next.grant_until = match grant {
                        Grant::Once => None,
                        Grant::For(d) => {
                            Some(now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
                        }
                    };
                }
                Decision::Deny { .. } => next.status = ApprovalStatus::Denied,
            }
            Some(next)
        })?;
        let Some(approval) = written else {
            let current = self
                .vault
                .approval(id)?
                .ok_or_else(|| ApprovalError::NotFound(id.to_owned()))?;
            return Err(ApprovalError::Settled {
                id: id.to_owned(),
                status: current.status_at(now).as_str(),
            });
        };
        self.wake(id);
        self.told_decided(&approval, &decision);
        Ok(approval)
    }

    fn told_decided(&self, a: &Approval, decision: &Decision) {
        let (event, grant) = match decision {
            Decision::Approve { grant, .. } => ("approval.approved", Some(grant.label())),
            Decision::Deny { .. } => ("approval.denied", None),
        };
        let data = json!({
            "id": a.id,
            "connector": a.connector,
            "owner": a.owner,
            "name": a.name,
            "sandbox": a.sandbox,
            "status": a.status.as_str(),
            "decided_by": a.decided_by,
            "note": a.note,
            "for": grant,
            "grant_until": a.grant_until,
            "method": a.method,
            "host": a.host,
            "path": a.path,
            "rule": a.rule,
        });
        let record = AuditRecord {
            by: a.decided_by.clone(),
            ..AuditRecord::about(event, &a.connection()).with_data(&data)
        };
        if let Err(e) = self.vault.append_audit(vec![record]) {
            tracing::warn!(error = %e, "an approval decision could not be audited");
        }
        self.events.emit(Event {
            kind: EventKind::ApprovalDecided,
            data,
        });
    }
}
