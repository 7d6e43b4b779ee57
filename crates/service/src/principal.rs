//! Who is acting, and what they may do: decided here, once, for every front-end.
//!
//! [`authorize`] is a function of the principal's [`Role`], the operation and (for an
//! operation on one connection) the connection it targets:
//!
//! | role | may |
//! | --- | --- |
//! | `admin` | everything |
//! | `auditor` | read everything that is not secret (connectors, every connection, sandboxes, placeholders by hint, approvals, the audit log); change nothing |
//! | `platform` | mint and revoke placeholders and sandbox identities, make connect links, read connections and their status; not change connectors, not read the audit log |
//! | `user` | their own connections, the approvals about them, placeholders for them |

use egret_vault::{ConnectLink, ConnectionId, ConnectionName, Owner};

use crate::ServiceError;

/// What a principal may do, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Auditor,
    Platform,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Auditor => "auditor",
            Self::Platform => "platform",
            Self::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Admin, Self::Auditor, Self::Platform, Self::User]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin token: the JSON API, the CLI, an administrator's web UI session.
    Admin,
    /// A person acting for one owner: arrived by a connect link (perhaps for one
    /// connector and connection name) or named by an authenticating proxy's header.
    User(UserScope),
    /// A scoped API token (`token:<name>`) with its role; a `user` token acts for its
    /// owner only.
    Token {
        name: String,
        role: Role,
        scope: Option<UserScope>,
    },
    /// A person signed in with the organisation's identity provider: owner
    /// `user:<claim>`, with the role the provider's claims give (`admin`, `auditor` or
    /// `user`).
    Person { scope: UserScope, role: Role },
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
            Self::Token { name, .. } => format!("token:{name}"),
            Self::Person { scope, .. } => scope.owner.to_string(),
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Self::Admin => Role::Admin,
            Self::User(_) => Role::User,
            Self::Token { role, .. } | Self::Person { role, .. } => *role,
        }
    }

    /// The owner scope a `user` principal acts within (`None` for the other roles).
    pub fn user_scope(&self) -> Option<&UserScope> {
        match self {
            Self::User(scope) => Some(scope),
            Self::Token {
                role: Role::User,
                scope,
                ..
            } => scope.as_ref(),
            Self::Person {
                role: Role::User,
                scope,
            } => Some(scope),
            _ => None,
        }
    }
}

/// What a principal may be asked to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Create, change, delete or purge connectors.
    ChangeConnectors,
    /// Read connectors (never a secret).
    ReadConnectors,
    /// List connections (a user sees their own).
    ListConnections,
    /// Store a key, connect, test, relabel, narrow or disconnect one connection.
    ChangeConnection,
    /// Renew a connection's token now.
    RefreshConnection,
    /// Mint or revoke placeholders.
    Placeholders,
    /// List placeholders (by hint).
    ListPlaceholders,
    /// Issue or revoke sandbox identities.
    Sandboxes,
    /// List sandbox identities.
    ListSandboxes,
    /// Make connect links.
    ConnectLinks,
    /// Read the audit log.
    Audit,
    /// Read approvals (a user sees those about their connections).
    ReadApprovals,
    /// Approve or deny a held request (a user: those about their connections).
    DecideApprovals,
    /// Create, list and revoke API tokens.
    Tokens,
}

impl Operation {
    /// The least role that may do it, for refusals that say what is needed.
    fn needs(self) -> &'static str {
        match self {
            Self::ChangeConnectors | Self::RefreshConnection | Self::Tokens => "admin",
            Self::Audit => "admin or auditor",
            Self::Placeholders | Self::Sandboxes | Self::ConnectLinks => "admin or platform",
            Self::DecideApprovals | Self::ChangeConnection => "admin, or the connection's owner",
            Self::ReadConnectors | Self::ListPlaceholders | Self::ListSandboxes => {
                "admin, auditor or platform"
            }
            Self::ListConnections | Self::ReadApprovals => "any role",
        }
    }
}

/// Whether `principal` may do `operation` (to the connection `target`, for operations
/// on one connection).
pub fn authorize(
    principal: &Principal,
    operation: Operation,
    target: Option<&ConnectionId>,
) -> Result<(), ServiceError> {
    use Operation::*;
    let role = principal.role();
    let refused = || {
        ServiceError::Forbidden(format!(
            "{} (role {}) may not do this; it needs the role {}. Nothing was changed.",
            principal.label(),
            role.as_str(),
            operation.needs()
        ))
    };
    let allowed = match role {
        Role::Admin => true,
        Role::Auditor => matches!(
            operation,
            ReadConnectors
                | ListConnections
                | ListPlaceholders
                | ListSandboxes
                | Audit
                | ReadApprovals
        ),
        Role::Platform => matches!(
            operation,
            ReadConnectors
                | ListConnections
                | Placeholders
                | ListPlaceholders
                | Sandboxes
                | ListSandboxes
                | ConnectLinks
        ),
        Role::User => {
            let Some(scope) = principal.user_scope() else {
                return Err(refused());
            };
            match operation {
                ListConnections | ReadApprovals => true,
                ChangeConnection | DecideApprovals | Placeholders => {
                    if !target.is_some_and(|conn| scope.covers(conn)) {
                        return Err(ServiceError::Forbidden(match principal {
                            Principal::User(_) => {
                                "This link does not cover that connection; nothing was changed."
                                    .to_owned()
                            }
                            _ => format!(
                                "{} may act on their own connections only; this one is not theirs, and nothing was changed.",
                                principal.label()
                            ),
                        }));
                    }
                    true
                }
                _ => false,
            }
        }
    };
    if allowed { Ok(()) } else { Err(refused()) }
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
        let token = |role: Role, scope: Option<UserScope>| Principal::Token {
            name: "t".into(),
            role,
            scope,
        };
        let auditor = token(Role::Auditor, None);
        let platform = token(Role::Platform, None);
        let admin_token = token(Role::Admin, None);
        let user_token = token(
            Role::User,
            Some(UserScope {
                owner: Owner::parse("user:alice").expect("owner"),
                connector: None,
                name: None,
            }),
        );
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
            (&anyone, Placeholders, Some(&own), true),
            (&anyone, Placeholders, Some(&someone_else), false),
            (&anyone, DecideApprovals, Some(&own), true),
            (&anyone, DecideApprovals, Some(&someone_else), false),
            (&anyone, Tokens, None, false),
            (&auditor, ReadConnectors, None, true),
            (&auditor, ListConnections, None, true),
            (&auditor, ListSandboxes, None, true),
            (&auditor, ListPlaceholders, None, true),
            (&auditor, ReadApprovals, None, true),
            (&auditor, Audit, None, true),
            (&auditor, ChangeConnection, Some(&own), false),
            (&auditor, DecideApprovals, Some(&own), false),
            (&auditor, Placeholders, None, false),
            (&auditor, ChangeConnectors, None, false),
            (&platform, Placeholders, None, true),
            (&platform, Sandboxes, None, true),
            (&platform, ConnectLinks, None, true),
            (&platform, ListConnections, None, true),
            (&platform, ChangeConnectors, None, false),
            (&platform, Audit, None, false),
            (&platform, Tokens, None, false),
            (&platform, ChangeConnection, Some(&own), false),
            (&user_token, ChangeConnection, Some(&own), true),
            (&user_token, ChangeConnection, Some(&someone_else), false),
            (&user_token, Sandboxes, None, false),
            (&admin_token, Tokens, None, true),
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
        let t = Principal::Token {
            name: "agent-platform".into(),
            role: Role::Platform,
            scope: None,
        };
        assert_eq!(t.label(), "token:agent-platform");
        let refused = authorize(&t, Operation::ChangeConnectors, None).expect_err("no");
        assert!(
            refused.to_string().contains("needs the role admin"),
            "{refused}"
        );
    }
}
