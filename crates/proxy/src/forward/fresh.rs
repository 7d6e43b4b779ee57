//! Step 4: placeholders swapped for fresh credentials. The swap reads the vault's
//! in-memory index; when it meets an OAuth token that is due, the token broker renews
//! it (one renewal per connection, however many requests wait) and the swap runs again.

use std::sync::Arc;

use arc_swap::Guard;
use egret_oauth::{Need, TokenError};
use egret_policy::Policy;
use egret_vault::{ConnectionKind, Credential, PlaceholderEntry, PlaceholderInfo};

use crate::Proxy;
use crate::binding::Bound;
use crate::refusal::Refusal;
use crate::swap::{self, Asked, Destination, Halt, Lookup, SwapReport};

/// A placeholder's connection and the credential the broker handed out for it.
pub(super) type Renewed = Vec<(Arc<PlaceholderEntry>, Arc<Credential>)>;

/// Why the swap sent nothing.
pub(super) enum Stop {
    Refuse(Refusal),
    /// A rule wants a person to approve the request for this placeholder's connection.
    Hold(Arc<PlaceholderEntry>, egret_policy::Verdict),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Self {
        Self::Refuse(r)
    }
}

impl Stop {
    /// For a swap whose rules were decided already (a replay): never a hold.
    pub(super) fn refusal(self) -> Refusal {
        match self {
            Self::Refuse(r) => r,
            Self::Hold(entry, _) => Refusal::internal(&format!(
                "a replayed request to {} asked for approval again",
                entry.info.connector
            )),
        }
    }
}

/// Swaps placeholders, asking the token broker for a fresh OAuth token each time the
/// swap finds one due for renewal. `renewed` holds credentials the broker gave already;
/// `approved`, the connections a person approved this request for.
pub(super) async fn swap(
    proxy: &Proxy,
    mut policy: Guard<Arc<Policy>>,
    parts: &mut http::request::Parts,
    bound: &Bound,
    mut renewed: Renewed,
    asked: Option<&Asked<'_>>,
    approved: &[egret_vault::ConnectionId],
) -> Result<SwapReport, Stop> {
    let dest = Destination {
        host: &bound.host,
        port: bound.port,
    };
    loop {
        let lookup = Lookup {
            policy: &policy,
            vault: &proxy.vault,
            now_unix: proxy.clock.unix(),
            renewed: &renewed,
            sandbox: bound.sandbox_id(),
            asked,
            approved,
        };
        let entry = match swap::swap_request(parts, dest, &lookup) {
            Ok(report) => return Ok(report),
            Err(Halt::Refuse(r)) => return Err(r.into()),
            Err(Halt::Approve(entry, verdict)) => return Err(Stop::Hold(entry, verdict)),
            Err(Halt::Renew(entry)) => entry,
            Err(Halt::Fetch(entry)) => {
                // Each connection's references are fetched at most once per request; a
                // fetched credential has none left, so this ends.
                let credential = fetch(proxy, &policy, &entry).await?;
                renewed.push((entry, credential));
                policy = proxy.policy.load();
                continue;
            }
        };
        // Each connection is renewed at most once per request; a renewed credential is
        // always accepted by the swap, so this ends.
        let connector = policy
            .connector(&entry.info.connector)
            .ok_or_else(Refusal::placeholder_unknown)?;
        let credential = proxy
            .broker
            .fresh(connector, &entry.connection, Need::Fresh)
            .await
            .map_err(|e| token_refusal(&entry.info, &e))?;
        renewed.push((entry, credential));
        policy = proxy.policy.load();
    }
}

/// The connection's credential with the values it keeps in external stores fetched.
async fn fetch(
    proxy: &Proxy,
    policy: &Policy,
    entry: &PlaceholderEntry,
) -> Result<Arc<Credential>, Refusal> {
    let connector = policy
        .connector(&entry.info.connector)
        .ok_or_else(Refusal::placeholder_unknown)?;
    let credential = proxy
        .vault
        .credential(&entry.connection)
        .ok_or_else(Refusal::placeholder_unknown)?;
    proxy
        .secrets
        .resolve(policy, connector, &credential)
        .await
        .map_err(|e| Refusal::secret_source_failed(connector.id.as_str(), e.source_name, &e.why))
}

/// The OAuth tokens a swapped request carries (an upstream 401 names one of these),
/// each connection marked as used so background renewal keeps it ahead of expiry.
pub(super) fn oauth_tokens(proxy: &Proxy, report: &SwapReport) -> Renewed {
    let used: Renewed = report
        .swapped
        .iter()
        .filter(|s| s.credential.kind == ConnectionKind::Oauth2)
        .map(|s| (s.placeholder.clone(), s.credential.clone()))
        .collect();
    for (entry, _) in &used {
        proxy.broker.touch(&entry.connection);
    }
    used
}

/// What the sandbox hears when a token cannot be had: the user must reconnect, the
/// vendor failed, or egret failed to store what the vendor gave (its own fault).
pub(super) fn token_refusal(info: &PlaceholderInfo, e: &TokenError) -> Refusal {
    let connector = &info.connector;
    match e {
        TokenError::InvalidGrant(_) | TokenError::NeedsReauth => {
            Refusal::connection_needs_reauth(&info.connection())
        }
        TokenError::NotConnected => Refusal::placeholder_unknown(),
        TokenError::Store(why) => Refusal::credentials_not_stored(connector, why),
        other => Refusal::token_refresh_failed(connector, other.is_timeout(), &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::{Code, Source};
    use egret_vault::Owner;

    fn entry() -> PlaceholderInfo {
        PlaceholderInfo {
            connector: "crm".into(),
            owner: Owner::parse("user:ann").expect("owner"),
            name: Default::default(),
            created_at: 0,
            expires_at: None,
            hint: "egp_AbCd".into(),
            sandbox: None,
            input: None,
        }
    }

    #[test]
    fn each_token_failure_has_its_refusal_and_source() {
        let cases = [
            (
                TokenError::NeedsReauth,
                Code::ConnectionNeedsReauth,
                Source::Policy,
            ),
            (
                TokenError::InvalidGrant("revoked".into()),
                Code::ConnectionNeedsReauth,
                Source::Policy,
            ),
            (
                TokenError::NotConnected,
                Code::PlaceholderUnknown,
                Source::Policy,
            ),
            (
                TokenError::Unreachable("503".into()),
                Code::TokenRefreshFailed,
                Source::Upstream,
            ),
            (
                TokenError::Store("disk full".into()),
                Code::Internal,
                Source::Internal,
            ),
        ];
        for (error, code, source) in cases {
            let refusal = token_refusal(&entry(), &error);
            assert_eq!((refusal.code, refusal.source()), (code, source), "{error}");
        }
    }

    #[test]
    fn a_store_failure_is_not_blamed_on_the_vendor() {
        let refusal = token_refusal(&entry(), &TokenError::Store("disk full".into()));
        assert_eq!(refusal.status, http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !refusal.message.contains("token endpoint"),
            "{}",
            refusal.message
        );
        assert!(
            refusal.message.contains("could not store"),
            "{}",
            refusal.message
        );
    }
}
