//! Which connection a record is about: its owner, its name, and the three together
//! (`connector`, `owner`, `name`) as [`ConnectionId`], the key every table and map uses.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who a connection belongs to: `org` or `user:<id>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Owner(String);

impl Owner {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "org" {
            return Ok(Self(text.to_owned()));
        }
        let valid_user = text.strip_prefix("user:").is_some_and(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._@-+".contains(&b))
        });
        if valid_user {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not an owner; expected `org` or `user:<id>` (id: letters, digits, `.`, `_`, `@`, `-`, `+`)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Owner {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<Owner> for String {
    fn from(o: Owner) -> String {
        o.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Which of an owner's connections to one connector: `default` unless the connector
/// allows several (`multiple_connections`). `[a-z0-9_-]`, at most 64 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionName(String);

impl ConnectionName {
    pub const DEFAULT: &'static str = "default";
    const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Result<Self, String> {
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not a connection name; use 1 to {} of a-z, 0-9, `_` and `-`",
                Self::MAX_LEN
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }

    /// The variable `sandbox-env` puts this connection's placeholder in: the
    /// connector's `var` for `default`, `var_NAME` (upper case, `-` as `_`) otherwise,
    /// so two connections to one connector never share a variable.
    pub fn env_var(&self, var: &str) -> String {
        if self.is_default() {
            var.to_owned()
        } else {
            format!("{var}_{}", self.0.to_ascii_uppercase().replace('-', "_"))
        }
    }

    /// ` --name NAME` for a command line, nothing for `default`.
    pub fn flag(&self) -> String {
        if self.is_default() {
            String::new()
        } else {
            format!(" --name {}", self.0)
        }
    }
}

impl Default for ConnectionName {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl TryFrom<String> for ConnectionName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<ConnectionName> for String {
    fn from(n: ConnectionName) -> String {
        n.0
    }
}

impl fmt::Display for ConnectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConnectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// One connection: a connector, the owner who authorized it, and its name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    pub connector: String,
    pub owner: Owner,
    pub name: ConnectionName,
}

impl ConnectionId {
    pub fn new(connector: &str, owner: &Owner, name: &ConnectionName) -> Self {
        Self {
            connector: connector.to_owned(),
            owner: owner.clone(),
            name: name.clone(),
        }
    }

    /// The owner's default connection to `connector`.
    pub fn default_of(connector: &str, owner: &Owner) -> Self {
        Self::new(connector, owner, &ConnectionName::default())
    }

    /// The table key: `connector/owner` for the default name, as vaults written before
    /// names existed hold it, and `connector/owner/name` otherwise. Unambiguous: neither
    /// a connector id nor an owner can hold a `/`.
    pub fn key(&self) -> String {
        if self.name.is_default() {
            format!("{}/{}", self.connector, self.owner)
        } else {
            format!("{}/{}/{}", self.connector, self.owner, self.name)
        }
    }
}

/// `connector/owner` or `connector/owner/name`, as in logs and messages.
impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
