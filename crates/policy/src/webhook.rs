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
}

impl EventKind {
    pub const ALL: [Self; 6] = [
        Self::ConnectionConnected,
        Self::ConnectionRemoved,
        Self::ConnectionRefreshFailing,
        Self::ConnectionNeedsReauth,
        Self::ConnectionRecovered,
        Self::ConnectorDeleted,
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
