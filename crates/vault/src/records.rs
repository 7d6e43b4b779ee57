//! What the vault stores, as plain serde records. Secret material never sits in these
//! structs in the clear on disk: it travels through [`crate::seal`] first.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use crate::names::{ConnectionId, ConnectionName, Owner};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    ApiKey,
    Oauth2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connected,
    NeedsReauth,
}

/// A connection as the control plane shows it: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionInfo {
    pub connector: String,
    pub owner: Owner,
    /// `default` unless the connector allows several connections per owner; records
    /// written before names existed read as `default`.
    #[serde(default)]
    pub name: ConnectionName,
    pub kind: ConnectionKind,
    pub status: ConnectionStatus,
    /// Unix seconds.
    pub connected_at: i64,
    /// When egret last renewed the token (OAuth only).
    #[serde(default)]
    pub refreshed_at: Option<i64>,
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// "Connected as": who signed in at the vendor, when it said (ID token), or what a
    /// person wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_label: Option<String>,
    /// Written by a person, shown to agents ("staging CRM, read only"). Kept when the
    /// credential is replaced (a new key, a reconnect, a renewal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ConnectionInfo {
    pub fn id(&self) -> ConnectionId {
        ConnectionId::new(&self.connector, &self.owner, &self.name)
    }
}

/// A change to what people write on a connection: `None` leaves a field as it is,
/// `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct Labels {
    pub description: Option<Option<String>>,
    pub identity_label: Option<Option<String>>,
}

/// The on-disk connection record: the info plus the sealed credential.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredConnection {
    #[serde(flatten)]
    pub info: ConnectionInfo,
    #[serde(with = "b64")]
    pub sealed: Vec<u8>,
}

/// The secret half of a connection, only ever in memory or sealed. Replaced whole on
/// every change, so an `Arc<Credential>` names one version of it.
pub struct Credential {
    /// What the swap puts on the wire: the static key or the OAuth access token (for a
    /// connection of several inputs, the first one's; empty where it is a reference not
    /// yet fetched).
    pub secret: SecretString,
    /// The named inputs' values, for a connector with `inputs` (AWS keys, say).
    pub values: std::collections::BTreeMap<String, SecretString>,
    /// Values kept in an external secret store: input name (`""` for the one value) ->
    /// reference (`vault://…`). Fetched before use (see [`Credential::fetched`]).
    pub refs: std::collections::BTreeMap<String, String>,
    pub refresh_token: Option<SecretString>,
    pub kind: ConnectionKind,
    pub status: ConnectionStatus,
    /// Unix seconds; `None` when the vendor gave no lifetime.
    pub expires_at: Option<i64>,
    /// What its owner narrowed agents to (JSON: `access`, `rules`, `default`,
    /// `limits`), on top of the connector's rules; `None`: the connector's alone.
    pub narrowed: Option<std::sync::Arc<str>>,
}

impl Credential {
    /// The value of `input` (`None`: the connection's one value).
    pub fn value(&self, input: Option<&str>) -> Option<&SecretString> {
        match input {
            None => Some(&self.secret),
            Some(name) => self.values.get(name),
        }
    }

    /// This credential with the values its references name filled in, the references
    /// gone: what the swap sends. `fetched` maps input names (`""`: the one value);
    /// `first` names the connector's first input, whose value stands as `secret`.
    pub fn fetched(
        &self,
        mut fetched: std::collections::BTreeMap<String, SecretString>,
        first: Option<&str>,
    ) -> Self {
        let mut secret = fetched.remove("").unwrap_or_else(|| self.secret.clone());
        let mut values = self.values.clone();
        values.extend(fetched);
        if let Some(v) = first.and_then(|f| values.get(f)) {
            secret = v.clone();
        }
        Self {
            secret,
            values,
            refs: Default::default(),
            refresh_token: self.refresh_token.clone(),
            kind: self.kind,
            status: self.status,
            expires_at: self.expires_at,
            narrowed: self.narrowed.clone(),
        }
    }

    /// Every value it holds: the one value and each input's (what answers are
    /// scanned for).
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        std::iter::once(&self.secret)
            .chain(self.values.values())
            .filter(|s| !s.expose_secret().is_empty())
    }

    /// True while the token may still be sent: connected and not yet expired.
    pub fn usable_at(&self, now_unix: i64) -> bool {
        self.status == ConnectionStatus::Connected && self.expires_at.is_none_or(|e| e > now_unix)
    }

    /// True when an OAuth token should be renewed before use: it expires within `skew`,
    /// or the connection needs re-authorization (which the broker reports).
    pub fn needs_renewal(&self, now_unix: i64, skew_secs: i64) -> bool {
        self.kind == ConnectionKind::Oauth2
            && (self.status != ConnectionStatus::Connected
                || self
                    .expires_at
                    .is_some_and(|e| e <= now_unix.saturating_add(skew_secs)))
    }
}

/// One value given for a connection: the value itself, or where it is kept.
pub enum KeyValue {
    Value(SecretString),
    /// A reference to an external store (`vault://mount/path#field`), checked by the
    /// caller.
    Ref(String),
}

/// A token response, as the vault stores it.
pub struct TokenSet {
    /// Who signed in, from the ID token when the vendor sent one.
    pub identity: Option<Identity>,
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Why tokens are being stored: a new grant or a renewal of the existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUpdate {
    Authorized,
    Refreshed,
}

/// An authorization the user has started but not finished, kept until its callback.
pub struct PendingAuthorization {
    pub connector: String,
    pub owner: Owner,
    pub name: ConnectionName,
    pub pkce_verifier: Option<SecretString>,
    pub redirect_uri: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The vendor's authorization URL, which egret's start link redirects to.
    pub vendor_url: Option<String>,
    /// SHA-256 (hex) of the binding secret set as a cookie in the browser that opened
    /// the start link: only that browser can finish the sign-in.
    pub binding: Option<String>,
}

impl PendingAuthorization {
    pub fn connection(&self) -> ConnectionId {
        ConnectionId::new(&self.connector, &self.owner, &self.name)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(redacted)")
    }
}

/// A placeholder's record, stored under the SHA-256 of the placeholder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaceholderInfo {
    pub connector: String,
    pub owner: Owner,
    /// The connection it stands for (`default` in records written before names).
    #[serde(default)]
    pub name: ConnectionName,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Short, non-secret prefix (`egp_AbCd…`) so operators can tell placeholders apart.
    pub hint: String,
    /// When set, only requests from this sandbox may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// The input of the connection it stands for, where the connector has several
    /// (`api_key`, `access_key_id`); `None`: the connection's one value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

impl PlaceholderInfo {
    pub fn connection(&self) -> ConnectionId {
        ConnectionId::new(&self.connector, &self.owner, &self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    pub at: i64,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The connection's name, when it is not `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Structured fields of a decision: host, method, path (no query), status, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// Who did it (`admin`, `token:<name>`, `user:<id>`), for changes made through the
    /// control plane or the web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Who signed in at the vendor, from an ID token's claims (never a secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub sub: Option<String>,
    pub email: Option<String>,
    /// The ID token's `email_verified`, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
}

impl Identity {
    /// "Connected as": the email, else the username, the name, or the subject.
    pub fn label(&self) -> Option<String> {
        self.email
            .clone()
            .or_else(|| self.preferred_username.clone())
            .or_else(|| self.name.clone())
            .or_else(|| self.sub.clone())
    }
}

/// A sandbox as the control plane shows it: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxInfo {
    pub id: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredSandbox {
    #[serde(flatten)]
    pub info: SandboxInfo,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
}

impl fmt::Debug for StoredSandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.info.fmt(f)
    }
}
