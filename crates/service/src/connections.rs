//! Connections: list them with their health, store a static key, connect over OAuth,
//! test, relabel, renew now, disconnect. Each operation checks what it must, does it,
//! audits it, and tells the webhooks.

use std::sync::Arc;

use egret_oauth::{Begun, Health};
use egret_policy::{AuthKind, Connector, EventKind, Policy};
use egret_vault::{ConnectionId, ConnectionInfo, ConnectionName, ConnectionStatus, Labels, Owner};
use egret_webhooks::{Event, EventSink};
use secrecy::SecretString;

use crate::principal::{Operation, Principal, authorize};
use crate::{Service, ServiceError, TestOutcome};

/// Which connections a listing shows; `None` fields filter nothing.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub connector: Option<String>,
    pub owner: Option<Owner>,
    pub name: Option<ConnectionName>,
    /// One status (`connected`, `refresh_failing`, `needs_reauth`, `connector_removed`).
    pub status: Option<String>,
}

/// A connection as listings show it: what is stored, how it is doing, what it lacks.
#[derive(Debug, Clone)]
pub struct ConnectionView {
    pub info: ConnectionInfo,
    pub health: Health,
    /// `connected`, `refresh_failing`, `needs_reauth` or `connector_removed`.
    pub status: &'static str,
    /// The connector's scopes the vendor did not grant.
    pub missing_scopes: Vec<String>,
    /// When its connector left the policy file (its connections kept, refused).
    pub connector_removed_at: Option<i64>,
    /// When they are erased, unless the connector comes back.
    pub purge_at: Option<i64>,
}

/// OpenID Connect's own scopes: vendors leave them out of the scopes an access token
/// carries (they ask for an ID token or a refresh token, not for an API's data).
const PROTOCOL_SCOPES: &[&str] = &[
    "openid",
    "offline_access",
    "profile",
    "email",
    "address",
    "phone",
];

/// The connector's declared scopes the vendor did not grant (scope drift: a reconnect
/// is needed to get them), OpenID Connect's own scopes aside. Empty for static keys.
pub fn missing_scopes(connector: Option<&Connector>, c: &ConnectionInfo) -> Vec<String> {
    let Some(AuthKind::OAuth2(o)) = connector.map(|c| &c.auth) else {
        return Vec::new();
    };
    if c.kind != egret_vault::ConnectionKind::Oauth2 || c.status != ConnectionStatus::Connected {
        return Vec::new();
    }
    o.scopes
        .iter()
        .filter(|s| !PROTOCOL_SCOPES.contains(&s.as_str()) && !c.scopes.contains(s))
        .cloned()
        .collect()
}

/// The connector `id` names, or why not.
fn known<'p>(policy: &'p Policy, id: &str) -> Result<&'p Connector, ServiceError> {
    policy
        .connector(id)
        .ok_or_else(|| ServiceError::unknown_connector(id, policy))
}

pub(crate) fn disabled(connector: &str) -> ServiceError {
    ServiceError::conflict(
        "connector_disabled",
        format!(
            "connector `{connector}` is disabled and takes no new connections; ask the operator to enable it"
        ),
    )
}

/// Whether `who` may hold a connection to `c` for `conn`'s owner: the connector's
/// `owners`, and a client-credentials app (the organisation's) connected only by an
/// administrator unless it takes users' connections.
/// Whether `who` may connect `c` for `owner` (what a page offers).
pub fn offered(who: &Principal, c: &Connector, owner: &Owner) -> bool {
    let conn = ConnectionId::new(c.id.as_str(), owner, &ConnectionName::default());
    owner_allowed(who, c, &conn).is_ok()
}

fn owner_allowed(who: &Principal, c: &Connector, conn: &ConnectionId) -> Result<(), ServiceError> {
    let client_credentials =
        matches!(&c.auth, AuthKind::OAuth2(o) if o.grant == egret_policy::Grant::ClientCredentials);
    let by_user = who.role() == crate::principal::Role::User;
    if c.owners.allow(conn.owner.as_str()) && !(client_credentials && by_user && !c.owners.user) {
        return Ok(());
    }
    let id = c.id.as_str();
    Err(ServiceError::Forbidden(if client_credentials {
        format!(
            "connector `{id}` uses OAuth client credentials: the organisation's own app, connected by an administrator for `org`; set `owners: [user]` on it to let each person connect their own"
        )
    } else {
        let whose = if c.owners.org {
            "`org`"
        } else {
            "people (`user:…`)"
        };
        format!(
            "connector `{id}` takes connections for {whose} only, not for `{}` (its `owners`)",
            conn.owner
        )
    }))
}

fn not_found(conn: &ConnectionId) -> ServiceError {
    ServiceError::not_found(
        "connection_not_found",
        format!(
            "there is no connection `{}` for connector `{}` and owner `{}`; `egret connection list` shows what there is",
            conn.name, conn.connector, conn.owner
        ),
    )
}

impl Service {
    /// The connections `filter` selects (a user sees only what their sign-in covers),
    /// from memory, with their health.
    pub fn connections(
        &self,
        who: &Principal,
        filter: &ConnectionFilter,
    ) -> Result<Vec<ConnectionView>, ServiceError> {
        authorize(who, Operation::ListConnections, None)?;
        let policy = self.policy.load();
        let (connector, owner, name) = match who.user_scope() {
            None => (
                filter.connector.as_deref(),
                filter.owner.as_ref(),
                filter.name.as_ref(),
            ),
            Some(scope) => (
                scope.connector.as_deref().or(filter.connector.as_deref()),
                Some(&scope.owner),
                scope.name.as_ref().or(filter.name.as_ref()),
            ),
        };
        let views = self
            .vault
            .connections(connector, owner)
            .into_iter()
            .filter(|c| name.is_none_or(|n| *n == c.name))
            .map(|info| self.view(&policy, info))
            .filter(|v| filter.status.as_deref().is_none_or(|s| s == v.status))
            .collect();
        Ok(views)
    }

    fn view(&self, policy: &Policy, info: ConnectionInfo) -> ConnectionView {
        let removed = self.vault.connector_removed_at(&info.connector);
        let health = self.broker.health(&info.id());
        let status = health.status(&info, removed.is_some());
        ConnectionView {
            missing_scopes: missing_scopes(policy.connector(&info.connector), &info),
            status,
            health,
            connector_removed_at: removed,
            purge_at: removed.map(|since| policy.removed_purge_at(since)),
            info,
        }
    }

    /// Whether a static key may be stored for `conn` now: the connector exists, is
    /// enabled, takes static keys, and the owner's other connections leave room.
    /// [`Service::store_key`] checks it too; a front-end may ask first, before it reads
    /// the key.
    pub fn may_store_key(&self, who: &Principal, conn: &ConnectionId) -> Result<(), ServiceError> {
        authorize(who, Operation::ChangeConnection, Some(conn))?;
        let policy = self.policy.load();
        let id = conn.connector.as_str();
        let c = known(&policy, id)?;
        if !c.enabled {
            return Err(disabled(id));
        }
        owner_allowed(who, c, conn)?;
        if let AuthKind::OAuth2(_) = c.auth {
            return Err(ServiceError::conflict(
                "wrong_auth_kind",
                format!(
                    "connector `{id}` uses OAuth 2.0, not a static key; connect it with `egret connection connect`"
                ),
            ));
        }
        self.one_per_owner(c, conn)
    }

    /// Stores (or replaces) a static key.
    pub async fn store_key(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
        key: SecretString,
    ) -> Result<ConnectionInfo, ServiceError> {
        self.store_keys(who, conn, vec![(None, GivenKey::Value(key))])
            .await
    }

    /// Stores (or replaces) a connection's values: one (`None`) for a connector of one
    /// value (or of one input), else one per input by name. Each may be a reference to
    /// an external secret store (`vault://…`), fetched when a request needs it. Every
    /// input not marked optional must be given; none the connector does not declare.
    pub async fn store_keys(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
        given: Vec<(Option<String>, GivenKey)>,
    ) -> Result<ConnectionInfo, ServiceError> {
        let by = who.label();
        self.may_store_key(who, conn)?;
        let values = {
            let policy = self.policy.load();
            let c = known(&policy, &conn.connector)?;
            key_values(&policy, c, given)?
        };
        let c = conn.clone();
        let info = self
            .blocking(move |s| {
                let info = s.vault.put_key(&c, values)?;
                s.vault
                    .audit_connection_by(&by, "connection.set_key", &c, None)?;
                Ok(info)
            })
            .await?;
        self.webhooks.emit(Event::connection(
            EventKind::ConnectionConnected,
            conn,
            "connected",
            "a key was stored",
        ));
        Ok(info)
    }

    /// Changes what people write on a connection (a string sets, `None` inside clears):
    /// at most 500 characters of description and 200 of "connected as", on one line.
    pub async fn update_labels(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
        labels: Labels,
    ) -> Result<ConnectionInfo, ServiceError> {
        let by = who.label();
        authorize(who, Operation::ChangeConnection, Some(conn))?;
        for (field, value, max) in [
            ("description", &labels.description, 500),
            ("identity_label", &labels.identity_label, 200),
        ] {
            if let Some(Some(text)) = value
                && (text.chars().count() > max || text.chars().any(char::is_control))
            {
                return Err(ServiceError::invalid(
                    field,
                    format!(
                        "`{field}` must be at most {max} characters, without control characters"
                    ),
                ));
            }
        }
        let fields: Vec<&str> = [
            labels.description.is_some().then_some("description"),
            labels.identity_label.is_some().then_some("identity_label"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let detail = format!("changed: {}", fields.join(", "));
        let c = conn.clone();
        self.blocking(move |s| {
            let info = s.vault.update_labels(&c, labels)?;
            s.vault
                .audit_connection_by(&by, "connection.update", &c, Some(detail))?;
            Ok(info)
        })
        .await
    }

    /// Disconnects: revokes an OAuth grant at the vendor when it can, and erases the
    /// connection and its placeholders in any case. Returns what the vendor said of the
    /// revocation (`revoked`, `not_supported`, `failed: …`).
    pub async fn disconnect(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
    ) -> Result<String, ServiceError> {
        let by = who.label();
        authorize(who, Operation::ChangeConnection, Some(conn))?;
        let policy = self.policy.load_full();
        let (removed, revocation) = self
            .broker
            .disconnect(policy.connector(&conn.connector), conn)
            .await?;
        if !removed {
            return Err(not_found(conn));
        }
        let revoked = match &revocation {
            None => "not_supported".to_owned(),
            Some(Ok(())) => "revoked".to_owned(),
            Some(Err(e)) => format!("failed: {e}"),
        };
        let detail = revocation
            .is_some()
            .then(|| format!("vendor revocation: {revoked}"));
        let c = conn.clone();
        self.blocking(move |s| {
            s.vault
                .audit_connection_by(&by, "connection.remove", &c, detail)?;
            Ok(())
        })
        .await?;
        self.webhooks.emit(Event::connection(
            EventKind::ConnectionRemoved,
            conn,
            "removed",
            "disconnected",
        ));
        Ok(revoked)
    }

    /// One real, read-only request with the connection's credential (renewed first when
    /// due); the outcome is audited and kept for the listing.
    pub async fn test(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
    ) -> Result<TestOutcome, ServiceError> {
        let by = who.label();
        authorize(who, Operation::ChangeConnection, Some(conn))?;
        let policy = self.policy.load_full();
        let id = conn.connector.as_str();
        let c = known(&policy, id)?;
        if self.vault.connection(conn).is_none() {
            return Err(not_found(conn));
        }
        let outcome = self.tester.test(c, conn).await.ok_or_else(|| {
            // Said to whoever pressed Test, perhaps a user: what to do, in words; the
            // policy's syntax is the administrator's (README, "connectors[].test").
            ServiceError::conflict(
                "no_test_request",
                if who.role() == crate::principal::Role::User {
                    format!(
                        "`{id}` cannot be tested from egret; ask your administrator to add a test request to it"
                    )
                } else {
                    format!(
                        "connector `{id}` has no test request; give it one (`test:` in the policy, see the README) or use a template that brings one"
                    )
                },
            )
        })?;
        self.broker.record_test(conn, outcome.ok, outcome.status);
        let detail = format!(
            "{}: {}",
            if outcome.ok { "ok" } else { "failed" },
            outcome.message
        );
        if let Some(found) = outcome.identity.clone() {
            self.fill_identity(conn, found).await?;
        }
        let c = conn.clone();
        self.blocking(move |s| {
            s.vault
                .audit_connection_by(&by, "connection.test", &c, Some(detail))?;
            Ok(())
        })
        .await?;
        Ok(outcome)
    }

    /// Starts connecting an OAuth connection: egret's sign-in link to hand the user
    /// (authorization code; it opens a page naming the connector and owner, see
    /// `sign_in_start`), or the connection itself (client credentials).
    pub async fn connect(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
    ) -> Result<Begun, ServiceError> {
        self.begin_connect(who, conn, None).await
    }

    /// As `connect`, from the browser that will sign in (the web UI's session, whose
    /// binding cookie holds `binding`): the sign-in is bound to it at once
    /// (`Begun::Bound`), and works nowhere else.
    pub async fn connect_here(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
        binding: &SecretString,
    ) -> Result<Begun, ServiceError> {
        self.begin_connect(who, conn, Some(binding)).await
    }

    async fn begin_connect(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
        here: Option<&SecretString>,
    ) -> Result<Begun, ServiceError> {
        authorize(who, Operation::ChangeConnection, Some(conn))?;
        let policy = self.policy.load_full();
        let id = conn.connector.as_str();
        let c = known(&policy, id)?;
        if !c.enabled {
            return Err(disabled(id));
        }
        if !matches!(c.auth, AuthKind::OAuth2(_)) {
            return Err(ServiceError::conflict(
                "wrong_auth_kind",
                format!(
                    "connector `{id}` uses a static key; store it with `egret connection set-key`"
                ),
            ));
        }
        owner_allowed(who, c, conn)?;
        self.one_per_owner(c, conn)?;
        let begun = self
            .broker
            .begin(c, conn, here)
            .await
            .map_err(|e| crate::error::token_error(id, &e))?;
        if let Begun::Connected(_) = &begun {
            self.learn_identity(conn);
        }
        Ok(begun)
    }

    /// Renews an OAuth connection's token now, whatever its expiry ("Refresh now"); a
    /// static key is left as it is.
    pub async fn refresh_now(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
    ) -> Result<(), ServiceError> {
        authorize(who, Operation::RefreshConnection, Some(conn))?;
        let policy = self.policy.load_full();
        let id = conn.connector.as_str();
        let c = known(&policy, id)?;
        if self.vault.connection(conn).is_none() {
            return Err(not_found(conn));
        }
        if !matches!(c.auth, AuthKind::OAuth2(_)) {
            return Err(ServiceError::conflict(
                "wrong_auth_kind",
                format!("connector `{id}` uses a static key: there is nothing to renew"),
            ));
        }
        self.broker
            .fresh(c, conn, egret_oauth::Need::Keepalive)
            .await
            .map(drop)
            .map_err(|e| crate::error::token_error(id, &e))
    }

    /// One connection per connector, per owner, unless the connector allows several: a
    /// second name is a conflict naming the one in the way.
    fn one_per_owner(
        &self,
        connector: &Connector,
        conn: &ConnectionId,
    ) -> Result<(), ServiceError> {
        if connector.multiple_connections {
            return Ok(());
        }
        match egret_oauth::TokenStore::other_connection(&*self.vault, conn) {
            None => Ok(()),
            Some(other) => Err(ServiceError::conflict(
                "one_connection_per_owner",
                format!(
                    "`{}` is connected to `{}` already (as `{}`) and the connector allows one connection per owner; use that name, remove it first, or set `multiple_connections: true` on the connector",
                    conn.owner, conn.connector, other.name
                ),
            )),
        }
    }

    /// Fills "connected as" with `found` when nothing filled it yet (the vendor's ID
    /// token, or a person).
    async fn fill_identity(
        self: &Arc<Self>,
        conn: &ConnectionId,
        found: String,
    ) -> Result<(), ServiceError> {
        let c = conn.clone();
        self.blocking(move |s| {
            if s.vault
                .connection(&c)
                .is_some_and(|info| info.identity_label.is_none())
            {
                s.vault.update_labels(
                    &c,
                    Labels {
                        identity_label: Some(Some(found)),
                        description: None,
                    },
                )?;
            }
            Ok(())
        })
        .await
    }

    /// After a connect: when the vendor's ID token named nobody and the connector has an
    /// identity request, asks the vendor who is connected (in the background: the
    /// user's page does not wait on it).
    pub fn learn_identity(self: &Arc<Self>, conn: &ConnectionId) {
        let policy = self.policy.load();
        let Some(c) = policy.connector(&conn.connector) else {
            return;
        };
        let wants = c.test.as_ref().is_some_and(|t| t.identity_field.is_some());
        let known = self
            .vault
            .connection(conn)
            .is_some_and(|info| info.identity_label.is_some());
        if !wants || known {
            return;
        }
        let (this, c, conn) = (self.clone(), c.clone(), conn.clone());
        tokio::spawn(async move {
            let Some(outcome) = this.tester.test(&c, &conn).await else {
                return;
            };
            match outcome.identity {
                Some(found) => {
                    if let Err(e) = this.fill_identity(&conn, found).await {
                        tracing::warn!(connector = %c.id, error = %e, "cannot record who is connected");
                    }
                }
                None => {
                    tracing::info!(connector = %c.id, message = %outcome.message, "the identity request named nobody");
                }
            }
        });
    }

    /// The OAuth sign-in link was opened (`GET /oauth/start`): which connector and owner
    /// it is for. Nothing is spent or bound.
    pub async fn sign_in_start(
        &self,
        state: &str,
    ) -> Result<egret_oauth::SignInStart, egret_oauth::CallbackError> {
        self.broker.sign_in_start(state).await
    }

    /// The person who opened the link continued (`POST /oauth/start`): binds the sign-in
    /// to their browser (`binding`, its cookie's secret); the vendor's URL.
    pub async fn start_sign_in(
        &self,
        state: &str,
        binding: &SecretString,
    ) -> Result<String, egret_oauth::CallbackError> {
        self.broker.start(state, binding).await
    }

    /// The vendor sent the browser back (`/oauth/callback`) with `outcome` (the code, or
    /// the vendor's error): completes the connection when the browser's `binding`
    /// matches the one its start link set.
    pub async fn complete_sign_in(
        self: &Arc<Self>,
        state: &str,
        outcome: Result<&str, &str>,
        binding: Option<&str>,
    ) -> Result<ConnectionInfo, egret_oauth::CallbackError> {
        let info = self.broker.complete(state, outcome, binding).await?;
        self.learn_identity(&info.id());
        Ok(info)
    }
}

/// A connection's use against its connector's budget (`connectors[].limits`), as every
/// replica recorded it (at most one flush, a second, behind).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BudgetUse {
    /// Requests allowed per window, and the window (`1d`).
    pub budget: u64,
    pub per: String,
    /// Requests in the current window, and when it ends (unix seconds).
    pub used: u64,
    pub window_ends_at: i64,
    /// Requests in the last 24 hours.
    pub used_24h: u64,
    /// Requests in flight at once (per replica), when limited.
    pub concurrent: Option<u32>,
}

impl Service {
    /// Each connection's use of its budget, where its connector has one (reads the
    /// store: off the async workers).
    pub async fn budget_use(
        self: &Arc<Self>,
        conns: Vec<ConnectionId>,
    ) -> Result<Vec<Option<BudgetUse>>, ServiceError> {
        self.blocking(move |s| {
            let policy = s.policy.load();
            let now = s.now();
            conns
                .iter()
                .map(|conn| {
                    let connector = policy.connector(&conn.connector).and_then(|c| c.budget);
                    let budget = match s.narrowing(conn) {
                        Some(n) => n.budget_over(connector),
                        None => connector,
                    };
                    let Some(budget) = budget else {
                        return Ok(None);
                    };
                    let Some((limit, per)) = budget.requests else {
                        return Ok(None);
                    };
                    let secs = i64::try_from(per.as_secs()).unwrap_or(i64::MAX).max(1);
                    let start = now - now.rem_euclid(secs);
                    let (used, used_24h) = s.vault.budget_use(conn, start, now)?;
                    Ok(Some(BudgetUse {
                        budget: limit,
                        per: humantime::format_duration(per).to_string(),
                        used,
                        window_ends_at: start.saturating_add(secs),
                        used_24h,
                        concurrent: budget.concurrent,
                    }))
                })
                .collect()
        })
        .await
    }
}

impl Service {
    /// The owner's narrowing of `conn`, as stored (`None`: the connector's rules alone).
    pub fn narrowing(&self, conn: &ConnectionId) -> Option<egret_policy::Narrowing> {
        egret_policy::Narrowing::read(&self.narrowing_json(conn)?).ok()
    }

    /// The owner's narrowing of `conn` as JSON, as it was set.
    pub fn narrowing_json(&self, conn: &ConnectionId) -> Option<serde_json::Value> {
        let text = self.vault.credential(conn)?.narrowed.clone()?;
        serde_json::from_str(&text).ok()
    }

    /// Narrows what agents may do with `conn` (`Some`: `{"access"?, "rules"?,
    /// "default"?, "limits"?}`, on top of the connector's rules), or lifts the owner's
    /// narrowing (`None`). The owner or an administrator; limits wider than the
    /// connector's are refused. Audited.
    pub async fn narrow(
        self: &Arc<Self>,
        who: &Principal,
        conn: &ConnectionId,
        narrowing: Option<serde_json::Value>,
    ) -> Result<ConnectionInfo, ServiceError> {
        authorize(who, Operation::ChangeConnection, Some(conn))?;
        let policy = self.policy.load();
        let connector = known(&policy, &conn.connector)?;
        let text = match &narrowing {
            Some(v) => {
                egret_policy::Narrowing::parse(v, connector)
                    .map_err(|why| ServiceError::invalid("rules", why))?;
                Some(v.to_string())
            }
            None => None,
        };
        let (conn, by) = (conn.clone(), who.label());
        self.blocking(move |s| {
            let info = s.vault.set_narrowing(&conn, text)?;
            let record = egret_vault::AuditRecord {
                by: Some(by.clone()),
                ..egret_vault::AuditRecord::about("connection.narrowed", &conn)
                    .with_data(&serde_json::json!({ "by": by, "narrowing": narrowing }))
            };
            s.vault.append_audit(vec![record])?;
            Ok(info)
        })
        .await
    }
}

/// A value given for a connection: the value, or where it is kept.
pub enum GivenKey {
    Value(SecretString),
    /// `vault://…`, `aws-sm://…`, `gcp-sm://…`, `op://…`.
    Ref(String),
}

/// What is given, checked against the connector's inputs, in the connector's order.
fn key_values(
    policy: &egret_policy::Policy,
    c: &egret_policy::Connector,
    given: Vec<(Option<String>, GivenKey)>,
) -> Result<Vec<(String, egret_vault::KeyValue)>, ServiceError> {
    let convert = |name: &str, g: GivenKey| -> Result<egret_vault::KeyValue, ServiceError> {
        Ok(match g {
            GivenKey::Value(v) => egret_vault::KeyValue::Value(v),
            GivenKey::Ref(r) => {
                let field = if name.is_empty() { "ref" } else { "values" };
                egret_secrets::check_reference(policy, &r)
                    .map_err(|why| ServiceError::invalid(field, why))?;
                egret_vault::KeyValue::Ref(r)
            }
        })
    };
    if c.inputs.is_empty() {
        let mut given = given.into_iter();
        return match (given.next(), given.next()) {
            (Some((None, g)), None) => Ok(vec![(String::new(), convert("", g)?)]),
            _ => Err(ServiceError::invalid(
                "values",
                format!(
                    "connector `{}` takes one key: send {{\"key\": \"…\"}}",
                    c.id
                ),
            )),
        };
    }
    let names = || {
        c.inputs
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut by_name: Vec<(String, GivenKey)> = Vec::new();
    for (name, g) in given {
        let name = match name {
            Some(n) => n,
            // `{"key"}` where there is one input.
            None if c.inputs.len() == 1 => c.inputs[0].name.clone(),
            None => {
                return Err(ServiceError::invalid(
                    "values",
                    format!(
                        "connector `{}` takes several values; send {{\"values\": {{…}}}} with {}",
                        c.id,
                        names()
                    ),
                ));
            }
        };
        if c.input(&name).is_none() {
            return Err(ServiceError::invalid(
                "values",
                format!(
                    "connector `{}` has no input `{name}`; its inputs: {}",
                    c.id,
                    names()
                ),
            ));
        }
        by_name.push((name, g));
    }
    let mut out = Vec::new();
    for input in &c.inputs {
        match by_name.iter().position(|(n, _)| n == &input.name) {
            Some(i) => {
                let (name, g) = by_name.swap_remove(i);
                out.push((name.clone(), convert(&name, g)?));
            }
            None if input.optional => {}
            None => {
                return Err(ServiceError::invalid(
                    "values",
                    format!(
                        "connector `{}` needs `{}` too; give every input: {}",
                        c.id,
                        input.name,
                        names()
                    ),
                ));
            }
        }
    }
    Ok(out)
}
