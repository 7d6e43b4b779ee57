//! The validated policy: types that cannot hold an invalid value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::host::HostPattern;
use crate::secret_ref::SecretRef;

#[derive(Debug, Clone)]
pub struct Policy {
    /// The file this policy was read from (or `<embedded>` for the built-in default).
    pub source: PathBuf,
    pub proxy: ProxySettings,
    pub control: ControlSettings,
    pub ca: CaSettings,
    pub vault: VaultSettings,
    pub upstream: UpstreamSettings,
    pub network: NetworkSettings,
    /// Operator overrides of the proxy's limits; unset ones keep the built-in default.
    /// Read at start-up (a reload does not resize a running listener).
    pub limits: LimitSettings,
    /// How long the connections of a connector gone from the file are kept (refused,
    /// but restorable by putting the connector back) before they are erased.
    pub connectors_removed_retention: Duration,
    pub connectors: Vec<Connector>,
    /// Where events about connections are delivered (`webhooks:`).
    pub webhooks: Vec<crate::Webhook>,
    /// How the web UI meets people (`ui:`).
    pub ui: crate::UiSettings,
    /// How requests held for a person's approval wait (`approvals:`).
    pub approvals: ApprovalSettings,
    /// The organisation's secret stores connection values may refer to.
    pub secret_sources: crate::SecretSources,
}

/// `approvals: {hold, expire}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// How long a held request waits for a decision before `approval_pending`.
    pub hold: Duration,
    /// How long an undecided approval stays open (a retry after approval goes through).
    pub expire: Duration,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(30),
            expire: Duration::from_secs(3600),
        }
    }
}

/// `connectors[].limits`: how much one connection may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests per window, with the window's length.
    pub requests: Option<(u64, Duration)>,
    /// Requests in flight at once (per replica).
    pub concurrent: Option<u32>,
}

/// Listen addresses from outside the policy file (`--proxy-listen`,
/// `EGRET_CONTROL_LISTEN`, …): each set one replaces the file's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenOverride {
    pub proxy: Option<std::net::SocketAddr>,
    pub control: Option<std::net::SocketAddr>,
}

impl Policy {
    /// `connectors_removed_retention` when the file sets none: 7 days.
    pub const DEFAULT_REMOVED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

    /// When the connections kept for a connector that left the policy at `since` (unix
    /// seconds) are erased.
    pub fn removed_purge_at(&self, since: i64) -> i64 {
        let retention =
            i64::try_from(self.connectors_removed_retention.as_secs()).unwrap_or(i64::MAX);
        since.saturating_add(retention)
    }
}

#[derive(Debug, Clone, Default)]
pub struct LimitSettings {
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub max_client_connections: Option<usize>,
    pub tls_handshake_timeout: Option<Duration>,
    pub request_head_timeout: Option<Duration>,
    pub upstream_connect_timeout: Option<Duration>,
    pub upstream_response_timeout: Option<Duration>,
    pub tunnel_idle_timeout: Option<Duration>,
    /// The longest lifetime a placeholder or a sandbox identity may be given.
    pub max_ttl: Option<Duration>,
}

impl LimitSettings {
    /// `max_ttl` when the policy sets none: 30 days.
    pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

    /// The longest lifetime a placeholder or a sandbox identity may be given.
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl.unwrap_or(Self::DEFAULT_MAX_TTL)
    }
}

/// At most `requests` per `per` toward a connector's hosts (a token bucket that holds
/// `requests` and refills over `per`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub listen: SocketAddr,
    pub auth: ProxyAuth,
}

/// How sandboxes identify themselves to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAuth {
    /// Anyone who reaches the port may use it.
    None,
    /// `Proxy-Authorization: Basic <sandbox-id>:<secret>` on every CONNECT and request.
    Basic,
}

#[derive(Debug, Clone)]
pub struct ControlSettings {
    pub listen: SocketAddr,
    pub public_url: String,
    /// `None`: `serve` generates a token file beside the vault.
    pub admin_token: Option<SecretRef>,
}

#[derive(Debug, Clone)]
pub struct CaSettings {
    pub dir: PathBuf,
    /// Create the CA limited to the connectors' egress domains (X.509 name constraints).
    pub name_constraints: bool,
}

#[derive(Debug, Clone)]
pub struct VaultSettings {
    pub backend: VaultBackend,
    /// The redb file (`backend: redb`); beside it, by default, the master key file.
    pub path: PathBuf,
    pub master_key: SecretRef,
    /// The CA that signed the database's certificate, when not a public one (TLS with
    /// `sslmode=require` in the URL): for `backend: postgres`, and for `vault migrate`.
    pub ca_file: Option<PathBuf>,
    /// Allows a database URL to a host other than this machine without TLS
    /// (`sslmode=require` or stronger); off, such a URL refuses the start.
    pub allow_plaintext: bool,
}

/// Where the vault keeps its records.
#[derive(Debug, Clone, PartialEq)]
pub enum VaultBackend {
    /// One redb file, for one egret (the default).
    Redb,
    /// A PostgreSQL database shared by several egret replicas. The URL may hold a
    /// password: a secret reference, resolved at start.
    Postgres { url: SecretRef },
}

#[derive(Debug, Clone, Default)]
pub struct UpstreamSettings {
    pub extra_ca: Vec<PathBuf>,
    /// Lower-cased host name -> address, like `curl --resolve`. Trusted: set by the operator.
    pub resolve: BTreeMap<String, IpAddr>,
}

#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub allow: Vec<HostPattern>,
    /// Addresses and CIDR blocks from `network.allow`: the only way to reach an IP
    /// literal, and exempt from `deny_private_ranges` (the operator named them).
    pub allow_ips: Vec<ipnet::IpNet>,
    pub deny_private_ranges: bool,
}

impl NetworkSettings {
    /// True when an explicit address rule covers `ip` (IPv4-mapped IPv6 as its IPv4).
    pub fn allows_ip(&self, ip: std::net::IpAddr) -> bool {
        let ip = crate::host::canonical_ip(ip);
        self.allow_ips.iter().any(|net| net.contains(&ip))
    }
}

/// A connector id: lower-case letters, digits, `-` and `_`, so it is safe in paths and logs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectorId(String);

impl ConnectorId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not a connector id; expected 1-64 characters of a-z, 0-9, `-` or `_`"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConnectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[derive(Debug, Clone)]
pub struct Connector {
    pub id: ConnectorId,
    /// The built-in vendor template it was filled from, if any.
    pub template: Option<String>,
    pub auth: AuthKind,
    pub egress: Vec<HostPattern>,
    pub inject: Injection,
    pub enabled: bool,
    /// Variables `egret sandbox-env` sets for a connection of this connector.
    pub env: Vec<(String, EnvValue)>,
    /// Where it was defined: the policy file, or the control plane (stored in the vault).
    pub source: Source,
    pub rate_limit: Option<RateLimit>,
    /// Scan every answer from its hosts for its live credentials (an upstream may store
    /// a key sent on one request and return it on another that carried none); `false`
    /// scans only answers to requests that carried one (faster, and leaves answers to
    /// other requests compressed).
    pub scan_answers: bool,
    /// The read-only request that tests a connection: the connector's own `test:`, or
    /// its template's identity request.
    pub test: Option<Probe>,
    /// Whether an owner may hold several named connections to it; by default one
    /// connection per connector, per owner.
    pub multiple_connections: bool,
    /// Whose connections it takes (`owners:`): by default every owner's, but only the
    /// organisation's (`org`) for a client-credentials app, which is the organisation's.
    pub owners: Owners,
    /// Base headers, user agent, response timeout and retries for the requests that
    /// carry its credential (`request:`).
    pub request: crate::RequestSettings,
    /// What an agent may do with its credential (`access`, `rules`, `default`, `mcp`).
    pub access: crate::Access,
    /// How long its requests wait for approval, instead of `approvals.hold`.
    pub approval_hold: Option<Duration>,
    /// How much each of its connections may be used (`limits:`).
    pub budget: Option<Budget>,
    /// The named values of a connection (`inputs:`), each with its own placeholder;
    /// empty: one value (a key, or an OAuth token). AWS connectors have theirs.
    pub inputs: Vec<crate::Input>,
}

/// Whose connections a connector takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owners {
    /// `org`, the organisation's own.
    pub org: bool,
    /// `user:<id>`, each person's.
    pub user: bool,
}

impl Owners {
    /// Whether the owner named `owner` (`org` or `user:…`) may hold a connection.
    pub fn allow(&self, owner: &str) -> bool {
        if owner == "org" { self.org } else { self.user }
    }
}

/// One read-only request that says whether a connection works, and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub method: String,
    /// `https://host[:port]/path`, to one of the connector's egress hosts.
    pub url: String,
    pub expect: u16,
    /// The header the credential goes in as-is; `None`: `Authorization: Bearer <token>`.
    pub header: Option<String>,
    /// The field of the JSON answer that names who is connected (`login`, `email`).
    pub identity_field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Policy,
    Api,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Api => "api",
        }
    }
}

/// What a sandbox variable holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// The connection's placeholder (its first input's, where it has several).
    Placeholder,
    /// The placeholder of the named input.
    Input(String),
    /// `https://` + the connector's first egress host (SDKs that need a base URL).
    Url,
    /// A fixed value the policy gives (`AWS_REGION`).
    Fixed(String),
}

impl EnvValue {
    pub fn name(&self) -> String {
        match self {
            Self::Placeholder => "placeholder".to_owned(),
            Self::Input(name) => format!("input:{name}"),
            Self::Url => "url".to_owned(),
            Self::Fixed(value) => format!("text:{value}"),
        }
    }
}

impl Connector {
    pub fn serves(&self, host: &str, port: u16) -> bool {
        self.egress.iter().any(|p| p.matches(host, port))
    }

    /// The named input.
    pub fn input(&self, name: &str) -> Option<&crate::Input> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// The input whose placeholder a sandbox holds in place of the connection's one
    /// placeholder: the first that is not only for signing (for AWS, the key id).
    pub fn first_input(&self) -> Option<&crate::Input> {
        self.inputs.first()
    }
}

#[derive(Debug, Clone)]
pub enum AuthKind {
    /// Static values: one key, or the connector's named `inputs`.
    ApiKey,
    OAuth2(Box<OAuthSettings>),
    /// AWS keys: the sandbox's SigV4 signatures checked and made again with them.
    AwsSigV4(Box<crate::AwsSettings>),
    /// A secret that signs each request (the recipe says how).
    Hmac(Box<crate::HmacRecipe>),
}

impl AuthKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::OAuth2(_) => "oauth2",
            Self::AwsSigV4(_) => "aws_sigv4",
            Self::Hmac(_) => "hmac",
        }
    }

    /// Whether a connection holds values a person gives (not an OAuth grant).
    pub fn takes_keys(&self) -> bool {
        !matches!(self, Self::OAuth2(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    AuthorizationCode,
    ClientCredentials,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Basic,
    Post,
}

#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub grant: Grant,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub issuer: Option<String>,
    pub revocation_url: Option<String>,
    pub client_id: String,
    pub client_secret: Option<SecretRef>,
    pub scopes: Vec<String>,
    pub pkce: bool,
    pub client_auth: ClientAuth,
    pub refresh_skew: Duration,
    /// How long a token-endpoint call may take before it counts as failed.
    pub timeout: Duration,
    pub extra_params: BTreeMap<String, String>,
    /// Refuse a sign-in whose vendor identity (this ID-token claim) is not the owner's
    /// id (`user:<id>`): for organisations whose owner ids are those emails or names.
    pub identity_match: Option<IdentityClaim>,
}

impl OAuthSettings {
    /// The OAuth app's client secret as it reads now (a file or variable may change);
    /// `None` when there is none or it cannot be read. For taking it out of what a vendor
    /// writes, where a secret that cannot be read has nothing to take out.
    pub fn client_secret_now(&self) -> Option<secrecy::SecretString> {
        self.client_secret.as_ref()?.read().ok().flatten()
    }
}

/// The ID-token claim `identity_match` compares with the owner's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityClaim {
    Email,
    PreferredUsername,
    Sub,
}

impl IdentityClaim {
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::PreferredUsername => "preferred_username",
            Self::Sub => "sub",
        }
    }
}

/// Where a placeholder may stand on a request toward the connector's hosts.
/// `Authorization` (Bearer, or inside Basic) always counts; these are in addition.
#[derive(Debug, Clone, Default)]
pub struct Injection {
    /// Lower-cased header names.
    pub headers: Vec<String>,
    pub query: Vec<String>,
}

/// What the proxy does with a `host:port` a sandbox asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A connector serves this host: terminate TLS and swap placeholders.
    Intercept,
    /// `network.allow` names it: relay bytes untouched.
    Tunnel,
    Deny,
}

impl Policy {
    /// The policy as served from `proxy` and `control`, the addresses actually bound
    /// (a `:0` port resolved by the system). The default public URL follows the
    /// control address; one the file sets stays as it is.
    pub fn bound_to(&mut self, proxy: std::net::SocketAddr, control: std::net::SocketAddr) {
        if self.control.public_url == format!("http://{}", self.control.listen) {
            self.control.public_url = format!("http://{control}");
        }
        self.proxy.listen = proxy;
        self.control.listen = control;
    }

    /// The secrets of this policy kept in external stores (OAuth client secrets given
    /// as `vault://…`), for the running egret to fetch and keep current.
    pub fn external_secrets(&self) -> Vec<std::sync::Arc<crate::ExternalSecret>> {
        self.connectors
            .iter()
            .filter_map(|c| match &c.auth {
                AuthKind::OAuth2(o) => match &o.client_secret {
                    Some(SecretRef::External(e)) => Some(e.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Gives this (new) policy's external secrets the values `old` has fetched for the
    /// same references: a reload does not leave them empty until the next fetch.
    pub fn keep_fetched_from(&self, old: &Policy) {
        let known = old.external_secrets();
        for secret in self.external_secrets() {
            if let Some(value) = known
                .iter()
                .find(|k| k.reference == secret.reference)
                .and_then(|k| k.get())
            {
                secret.set(Some(value));
            }
        }
    }

    /// A warning for every connector secret reference (`${env:…}`, `${file:…}`) that
    /// does not resolve now, naming the connector: better said at `policy check` and at
    /// start than when a user first connects.
    pub fn unresolved_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.connectors {
            let AuthKind::OAuth2(o) = &c.auth else {
                continue;
            };
            let Some(reference) = &o.client_secret else {
                continue;
            };
            // Fetched by the running egret from its store, not read here.
            if matches!(reference, SecretRef::External(_)) {
                continue;
            }
            let why = match reference.read() {
                Ok(Some(_)) => continue,
                Ok(None) => match reference {
                    SecretRef::Env(_) => "is not set (or empty)".to_owned(),
                    _ => "does not exist".to_owned(),
                },
                Err(e) => format!("cannot be read: {e}"),
            };
            out.push(format!(
                "connector `{}`: oauth.client_secret {reference} {why}; connecting and renewing its tokens will fail until it resolves",
                c.id
            ));
        }
        for w in &self.webhooks {
            let why = match w.secret.read() {
                Ok(Some(_)) => continue,
                Ok(None) => "does not resolve".to_owned(),
                Err(e) => format!("cannot be read: {e}"),
            };
            out.push(format!(
                "webhook {}: its secret {} {why}; its deliveries wait in the outbox until it resolves",
                w.url.split(['?', '#']).next().unwrap_or_default(),
                w.secret
            ));
        }
        out
    }

    /// Applies listen addresses given outside the file (flags, environment), which win
    /// over it; `control.public_url` follows when it was the default.
    pub fn listen_at(&mut self, given: ListenOverride) {
        let proxy = given.proxy.unwrap_or(self.proxy.listen);
        let control = given.control.unwrap_or(self.control.listen);
        self.bound_to(proxy, control);
    }

    /// True when `self` (a file just read) asks for other listen addresses than the
    /// running `served` policy is bound to; a `:0` port asks for none in particular.
    pub fn moves_listeners(&self, served: &Policy) -> bool {
        let moved = |wanted: std::net::SocketAddr, bound: std::net::SocketAddr| {
            wanted != bound && !(wanted.port() == 0 && wanted.ip() == bound.ip())
        };
        moved(self.proxy.listen, served.proxy.listen)
            || moved(self.control.listen, served.control.listen)
    }

    pub fn connector(&self, id: &str) -> Option<&Connector> {
        self.connectors.iter().find(|c| c.id.as_str() == id)
    }

    /// `host` must be normalized ([`crate::normalize_host`]). Connector hosts win over
    /// `network.allow`, so a credential host is never tunneled blind.
    pub fn route(&self, host: &str, port: u16) -> Route {
        // An address never matches a name rule; only an address rule lets it out, and
        // only tunneled: no connector is bound to an address.
        if let Some(ip) = crate::host::ip_literal(host) {
            return if self.network.allows_ip(ip) {
                Route::Tunnel
            } else {
                Route::Deny
            };
        }
        if self.connectors.iter().any(|c| c.serves(host, port)) {
            Route::Intercept
        } else if self.network.allow.iter().any(|p| p.matches(host, port)) {
            Route::Tunnel
        } else {
            Route::Deny
        }
    }

    /// The domains a name-constrained CA is limited to: each connector egress host, and
    /// the parent domain of each `*.` pattern (a constraint covers all subdomains).
    pub fn intercepted_domains(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .connectors
            .iter()
            .flat_map(|c| c.egress.iter())
            .map(HostPattern::domain)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every host the proxy lets out, for refusal messages.
    /// The connector whose egress names `host` on another port than `port`, and that
    /// entry: what a refusal can point the sandbox to.
    pub fn allows_elsewhere(&self, host: &str, port: u16) -> Option<(&Connector, &HostPattern)> {
        self.connectors.iter().find_map(|c| {
            c.egress
                .iter()
                .find(|p| p.matches_name(host) && !p.matches(host, port))
                .map(|p| (c, p))
        })
    }
}
