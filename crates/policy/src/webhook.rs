//! `webhooks:`: where egret tells the platform what happened to connections, and which
//! events each receiver wants.

use std::path::Path;

use crate::error::Located;
use crate::raw::{RawWebhook, S};
use crate::secret_ref::SecretRef;
use crate::validate::Validator;

/// A receiver of events: signed with its secret as the Standard Webhooks specification
/// says, delivered at least once.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    /// `whsec_<base64>` (the bytes after the prefix are the key) or any other text (its
    /// bytes are the key).
    pub secret: SecretRef,
    /// The events it receives; every event when the file names none.
    pub events: Vec<EventKind>,
}

impl Webhook {
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.contains(&kind)
    }
}

/// What a webhook can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    ConnectionConnected,
    ConnectionRemoved,
    ConnectionRefreshFailing,
    ConnectionNeedsReauth,
    ConnectionRecovered,
    ConnectorDeleted,
    ApprovalRequested,
    ApprovalDecided,
    ConnectionBudgetExhausted,
}

impl EventKind {
    pub const ALL: [Self; 9] = [
        Self::ConnectionConnected,
        Self::ConnectionRemoved,
        Self::ConnectionRefreshFailing,
        Self::ConnectionNeedsReauth,
        Self::ConnectionRecovered,
        Self::ConnectorDeleted,
        Self::ApprovalRequested,
        Self::ApprovalDecided,
        Self::ConnectionBudgetExhausted,
    ];

    /// The event's `type`, as receivers see it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ConnectionConnected => "connection.connected",
            Self::ConnectionRemoved => "connection.removed",
            Self::ConnectionRefreshFailing => "connection.refresh_failing",
            Self::ConnectionNeedsReauth => "connection.needs_reauth",
            Self::ConnectionRecovered => "connection.recovered",
            Self::ConnectorDeleted => "connector.deleted",
            Self::ApprovalRequested => "approval.requested",
            Self::ApprovalDecided => "approval.decided",
            Self::ConnectionBudgetExhausted => "connection.budget_exhausted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == text)
    }
}

impl Validator<'_> {
    pub(crate) fn webhook(&self, raw: &S<RawWebhook>, base: &Path) -> Result<Webhook, Located> {
        let w = &raw.value;
        let url = self.url(&w.url)?;
        let secret = self.secret(&w.secret, base)?;
        let mut events = Vec::new();
        for e in &w.events {
            let kind = EventKind::parse(&e.value).ok_or_else(|| {
                let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                self.at(
                    e,
                    &format!(
                        "unknown event `{}`; expected one of {}",
                        e.value,
                        known.join(", ")
                    ),
                )
            })?;
            if !events.contains(&kind) {
                events.push(kind);
            }
        }
        if events.is_empty() {
            events = EventKind::ALL.to_vec();
        }
        Ok(Webhook {
            url,
            secret,
            events,
        })
    }
}

/// A receiver's URL as logs, the audit log and listings show it: without a user and
/// password before the host, and without its query and fragment, any of which may carry
/// a token.
pub fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod shown_tests {
    #[test]
    fn a_receivers_url_is_shown_without_its_credentials() {
        for (url, shown) in [
            (
                "https://hooks.example.com/in?token=abc#x",
                "https://hooks.example.com/in",
            ),
            (
                "https://user:pass@hooks.example.com/in",
                "https://hooks.example.com/in",
            ),
            (
                "https://a@b@hooks.example.com:8443",
                "https://hooks.example.com:8443",
            ),
            (
                "http://127.0.0.1:9/hooks/egret",
                "http://127.0.0.1:9/hooks/egret",
            ),
        ] {
            assert_eq!(super::shown_url(url), shown, "{url}");
        }
    }
}
