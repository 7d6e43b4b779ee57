//! The policy file as written: serde structs that mirror the YAML, with source locations
//! kept on every value that validation may still refuse.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub(crate) type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub version: S<u32>,
    #[serde(default)]
    pub proxy: RawProxy,
    #[serde(default)]
    pub control: RawControl,
    #[serde(default)]
    pub ca: RawCa,
    #[serde(default)]
    pub vault: RawVault,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub network: RawNetwork,
    #[serde(default)]
    pub limits: RawLimits,
    pub connectors_removed_retention: Option<S<String>>,
    #[serde(default)]
    pub connectors: Vec<RawConnector>,
    #[serde(default)]
    pub webhooks: Vec<S<RawWebhook>>,
    pub ui: Option<S<RawUi>>,
    pub approvals: Option<S<RawApprovals>>,
    #[serde(default)]
    pub secret_sources: crate::sources::RawSources,
}

/// `ui: {user_header, trusted_proxies, frame_ancestors}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUi {
    pub user_header: Option<S<String>>,
    #[serde(default)]
    pub trusted_proxies: Vec<S<String>>,
    #[serde(default)]
    pub frame_ancestors: Vec<S<String>>,
    /// Sign-in with the organisation's OpenID Connect identity provider.
    pub oidc: Option<S<RawOidc>>,
    /// `false`: the admin token no longer signs in to the web UI.
    pub admin_token_login: Option<bool>,
}

/// `ui.oidc: {issuer, client_id, client_secret, scopes, owner_claim, admins, auditors}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidc {
    pub issuer: S<String>,
    pub client_id: S<String>,
    pub client_secret: Option<S<String>>,
    pub scopes: Option<Vec<String>>,
    pub owner_claim: Option<S<String>>,
    pub admins: Option<RawRoleMatch>,
    pub auditors: Option<RawRoleMatch>,
    /// What the sign-in button says (default: the issuer's host).
    pub name: Option<String>,
}

/// Who has a role: by email, or by membership of a group in a claim.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoleMatch {
    #[serde(default)]
    pub emails: Vec<String>,
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `webhooks: [{url, secret: ${env:…}, events: [...]}]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub url: S<String>,
    pub secret: S<String>,
    #[serde(default)]
    pub events: Vec<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub max_header_bytes: Option<S<u64>>,
    pub max_headers: Option<S<u64>>,
    pub max_client_connections: Option<S<u64>>,
    pub tls_handshake_timeout: Option<S<String>>,
    pub request_head_timeout: Option<S<String>>,
    pub upstream_connect_timeout: Option<S<String>>,
    pub upstream_response_timeout: Option<S<String>>,
    pub tunnel_idle_timeout: Option<S<String>>,
    pub max_ttl: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub requests: S<u64>,
    pub per: S<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProxy {
    pub listen: Option<S<String>>,
    pub auth: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawControl {
    pub listen: Option<S<String>>,
    pub public_url: Option<S<String>>,
    pub admin_token: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCa {
    pub dir: Option<String>,
    pub name_constraints: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVault {
    pub backend: Option<S<String>>,
    pub path: Option<String>,
    pub url: Option<S<String>>,
    pub ca_file: Option<String>,
    pub master_key: Option<S<String>>,
    #[serde(default)]
    pub allow_plaintext: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    #[serde(default)]
    pub extra_ca: Vec<String>,
    #[serde(default)]
    pub resolve: BTreeMap<String, S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    #[serde(default)]
    pub allow: Vec<S<String>>,
    pub deny_private_ranges: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnector {
    pub id: S<String>,
    pub template: Option<S<String>>,
    #[serde(default)]
    pub settings: BTreeMap<String, RawSetting>,
    pub auth: Option<S<String>>,
    /// Named values, each with its own placeholder.
    #[serde(default)]
    pub inputs: Vec<S<crate::credential::RawInput>>,
    /// `auth: aws_sigv4`: region and role.
    pub aws: Option<S<crate::credential::RawAws>>,
    /// `auth: hmac`: how requests are signed.
    pub hmac: Option<S<crate::credential::RawHmac>>,
    pub grant: Option<S<String>>,
    pub oauth: Option<S<RawOAuth>>,
    #[serde(default)]
    pub egress: Vec<S<String>>,
    #[serde(default)]
    pub inject: RawInject,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub env: BTreeMap<String, S<String>>,
    pub rate_limit: Option<S<RawRateLimit>>,
    #[serde(default = "yes")]
    pub scan_answers: bool,
    pub test: Option<S<RawProbe>>,
    #[serde(default)]
    pub multiple_connections: bool,
    /// `[org]`, `[user]` or both: whose connections it takes.
    pub owners: Option<S<Vec<String>>>,
    pub request: Option<S<RawRequest>>,
    /// `read_only` (or `full`, the default).
    pub access: Option<S<String>>,
    /// Request rules, first match wins.
    #[serde(default)]
    pub rules: Vec<S<crate::access::RawRule>>,
    /// What a request no rule matches gets: `allow` (the default), `deny` or `approve`.
    pub default: Option<S<String>>,
    /// The connector is an MCP server: `{tools: {allow, deny, approve}}`.
    pub mcp: Option<S<crate::mcp::RawMcp>>,
    /// `{hold: 30s}`: how long a request waits for a person's approval.
    pub approvals: Option<S<RawConnectorApprovals>>,
    /// `{requests: 1000, per: 1d, concurrent: 8}`, per connection.
    pub limits: Option<S<RawBudget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnectorApprovals {
    pub hold: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub requests: Option<S<u64>>,
    pub per: Option<S<String>>,
    pub concurrent: Option<S<u64>>,
}

/// `approvals: {hold: 30s, expire: 1h}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApprovals {
    pub hold: Option<S<String>>,
    pub expire: Option<S<String>>,
}

/// `request: {headers: {Name: value}, user_agent, timeout, retries: {max, on, max_wait}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequest {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub user_agent: Option<String>,
    pub timeout: Option<S<String>>,
    pub retries: Option<S<RawRetries>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetries {
    pub max: Option<u32>,
    pub on: Option<Vec<u16>>,
    pub max_wait: Option<S<String>>,
}

/// `test: {method: GET, path: /v1/me, expect: 200}`: the read-only request `connection
/// test` makes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    pub method: Option<String>,
    /// Appended to `https://` + the first egress host without a wildcard.
    pub path: Option<String>,
    /// A whole `https://` URL instead (its host must be one of the connector's).
    pub url: Option<String>,
    pub expect: Option<u16>,
    /// The header the credential goes in, as-is (default: `Authorization: Bearer`).
    pub header: Option<String>,
    /// The field of the JSON answer naming who is connected (fills "connected as").
    pub identity: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOAuth {
    pub authorize_url: Option<S<String>>,
    pub token_url: Option<S<String>>,
    pub issuer: Option<S<String>>,
    pub revocation_url: Option<S<String>>,
    pub client_id: Option<S<String>>,
    pub client_secret: Option<S<String>>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub pkce: Option<bool>,
    pub client_auth: Option<S<String>>,
    pub refresh_skew: Option<S<String>>,
    pub identity_match: Option<S<String>>,
    pub timeout: Option<S<String>>,
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInject {
    #[serde(default)]
    pub headers: Vec<S<String>>,
    #[serde(default)]
    pub query: Vec<S<String>>,
}

/// A template setting: one value, or a list (`services: [s3, sts]`), read as the
/// template's comma-separated text.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawSetting {
    One(String),
    Many(Vec<String>),
}

impl RawSetting {
    pub(crate) fn text(&self) -> String {
        match self {
            Self::One(s) => s.clone(),
            Self::Many(list) => list.join(","),
        }
    }
}

fn yes() -> bool {
    true
}
