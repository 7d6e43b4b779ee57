//! Who is acting, and what they may do: decided here, once, for every front-end.
//!
//! [`authorize`] is a function of the principal, the operation and (for an operation on
//! one connection) the connection it targets. Administrators may do everything; a user
//! acts for one owner, within the connector and connection name their sign-in covers.

use egret_vault::{ConnectLink, ConnectionId, ConnectionName, Owner};

use crate::ServiceError;

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin token: the JSON API, the CLI, an administrator's web UI session.
    Admin,
    /// A person acting for one owner: arrived by a connect link (perhaps for one
    /// connector and connection name) or named by an authenticating proxy's header.
    User(UserScope),
}

/// What a user's sign-in covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScope {
    pub owner: Owner,
    /// Only this connector, when set.
    pub connector: Option<String>,
    /// Only this connection name, when set.
    pub name: Option<ConnectionName>,
}

impl From<&ConnectLink> for UserScope {
    fn from(link: &ConnectLink) -> Self {
        Self {
            owner: link.owner.clone(),
            connector: link.connector.clone(),
            name: link.name.clone(),
        }
    }
}

impl UserScope {
    /// Whether this scope covers the connection `conn`.
    pub fn covers(&self, conn: &ConnectionId) -> bool {
        conn.owner == self.owner
            && self
                .connector
                .as_deref()
                .is_none_or(|c| c == conn.connector.as_str())
            && self.name.as_ref().is_none_or(|n| *n == conn.name)
    }
}

impl Principal {
    /// How the audit log and logs name this principal (never a secret).
    pub fn label(&self) -> String {
        match self {
            Self::Admin => "admin".to_owned(),
            Self::User(scope) => scope.owner.to_string(),
        }
    }
}

/// What a principal may be asked to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Create, change, delete or purge connectors.
    ChangeConnectors,
    /// List connections (a user sees their own).
    ListConnections,
    /// Store a key, connect, test, relabel or disconnect one connection.
    ChangeConnection,
    /// Renew a connection's token now.
    RefreshConnection,
    /// Mint, list or revoke placeholders.
    Placeholders,
    /// Issue, list or revoke sandbox identities.
    Sandboxes,
    /// Make connect links.
    ConnectLinks,
    /// Read the audit log.
    Audit,
}

/// Whether `principal` may do `operation` (to the connection `target`, for operations
/// on one connection).
pub fn authorize(
    principal: &Principal,
    operation: Operation,
    target: Option<&ConnectionId>,
) -> Result<(), ServiceError> {
    let scope = match principal {
        Principal::Admin => return Ok(()),
        Principal::User(scope) => scope,
    };
    match operation {
        Operation::ListConnections => Ok(()),
        Operation::ChangeConnection => match target {
            Some(conn) if scope.covers(conn) => Ok(()),
            _ => Err(ServiceError::Forbidden(
                "This link does not cover that connection; nothing was changed.".to_owned(),
            )),
        },
        Operation::ChangeConnectors
        | Operation::RefreshConnection
        | Operation::Placeholders
        | Operation::Sandboxes
        | Operation::ConnectLinks
        | Operation::Audit => Err(ServiceError::Forbidden(format!(
            "{} may only act on their own connections; this needs an administrator",
            scope.owner
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(connector: Option<&str>, name: Option<&str>) -> Principal {
        Principal::User(UserScope {
            owner: Owner::parse("user:alice").expect("owner"),
            connector: connector.map(str::to_owned),
            name: name.map(|n| ConnectionName::parse(n).expect("name")),
        })
    }

    fn conn(connector: &str, owner: &str, name: &str) -> ConnectionId {
        ConnectionId::new(
            connector,
            &Owner::parse(owner).expect("owner"),
            &ConnectionName::parse(name).expect("name"),
        )
    }

    /// Every principal against every operation and target that tells them apart.
    #[test]
    fn who_may_do_what() {
        use Operation::*;
        let own = conn("github", "user:alice", "default");
        let own_other_name = conn("github", "user:alice", "work");
        let own_other_connector = conn("slack", "user:alice", "default");
        let someone_else = conn("github", "user:bob", "default");
        let anyone = user(None, None);
        let github_only = user(Some("github"), None);
        let github_default = user(Some("github"), Some("default"));
        #[rustfmt::skip]
        let table: &[(&Principal, Operation, Option<&ConnectionId>, bool)] = &[
            (&Principal::Admin, ChangeConnectors, None, true),
            (&Principal::Admin, ChangeConnection, Some(&someone_else), true),
            (&Principal::Admin, RefreshConnection, Some(&own), true),
            (&Principal::Admin, Placeholders, None, true),
            (&Principal::Admin, Sandboxes, None, true),
            (&Principal::Admin, ConnectLinks, None, true),
            (&Principal::Admin, Audit, None, true),
            (&anyone, ListConnections, None, true),
            (&anyone, ChangeConnection, Some(&own), true),
            (&anyone, ChangeConnection, Some(&own_other_name), true),
            (&anyone, ChangeConnection, Some(&own_other_connector), true),
            (&anyone, ChangeConnection, Some(&someone_else), false),
            (&anyone, ChangeConnection, None, false),
            (&github_only, ChangeConnection, Some(&own_other_name), true),
            (&github_only, ChangeConnection, Some(&own_other_connector), false),
            (&github_default, ChangeConnection, Some(&own), true),
            (&github_default, ChangeConnection, Some(&own_other_name), false),
            (&anyone, RefreshConnection, Some(&own), false),
            (&anyone, ChangeConnectors, None, false),
            (&anyone, Placeholders, None, false),
            (&anyone, Sandboxes, None, false),
            (&anyone, ConnectLinks, None, false),
            (&anyone, Audit, None, false),
        ];
        for (who, op, target, allowed) in table {
            let got = authorize(who, *op, *target);
            assert_eq!(got.is_ok(), *allowed, "{who:?} {op:?} {target:?}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, ServiceError::Forbidden(_)), "{e:?}");
            }
        }
    }

    #[test]
    fn principals_are_named_in_the_audit_log_without_secrets() {
        assert_eq!(Principal::Admin.label(), "admin");
        assert_eq!(user(None, None).label(), "user:alice");
    }
}
