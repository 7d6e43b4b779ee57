//! `${env:NAME}` / `${file:PATH}` references: the only way a secret may appear in a policy.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a secret lives. A policy file never holds the value itself; a connector
/// created through the control plane carries its value, sealed in the vault at rest.
#[derive(Clone)]
pub enum SecretRef {
    Env(String),
    /// Already resolved against the policy file's directory.
    File(PathBuf),
    /// Given through the control plane; shown only masked.
    Stored(std::sync::Arc<secrecy::SecretString>),
    /// Kept in an external secret store (`vault://…`): read from the value the running
    /// egret last fetched (`egret-secrets` keeps it current), `None` before that.
    External(std::sync::Arc<ExternalSecret>),
}

/// A secret in an external store and the value last fetched for it.
pub struct ExternalSecret {
    pub reference: crate::ExternalRef,
    value: std::sync::RwLock<Option<secrecy::SecretString>>,
}

impl ExternalSecret {
    pub fn new(reference: crate::ExternalRef) -> Self {
        Self {
            reference,
            value: std::sync::RwLock::new(None),
        }
    }

    /// The value last fetched, if any (and not given up on).
    pub fn get(&self) -> Option<secrecy::SecretString> {
        self.value.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, value: Option<secrecy::SecretString>) {
        *self.value.write().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

impl PartialEq for SecretRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Env(a), Self::Env(b)) => a == b,
            (Self::File(a), Self::File(b)) => a == b,
            (Self::Stored(a), Self::Stored(b)) => std::sync::Arc::ptr_eq(a, b),
            (Self::External(a), Self::External(b)) => a.reference == b.reference,
            _ => false,
        }
    }
}

impl SecretRef {
    /// Parses a reference; relative file paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let inner = text
            .trim()
            .strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| {
                "secrets are never literal in a policy file; expected `${env:NAME}` or `${file:PATH}`"
                    .to_owned()
            })?;
        if let Some(name) = inner.strip_prefix("env:") {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!(
                    "`{name}` is not an environment variable name; expected `${{env:NAME}}`"
                ));
            }
            return Ok(Self::Env(name.to_owned()));
        }
        if let Some(path) = inner.strip_prefix("file:") {
            if path.is_empty() {
                return Err("empty path; expected `${file:PATH}`".to_owned());
            }
            return Ok(Self::File(crate::paths::joined(base, path)));
        }
        Err(format!(
            "unknown reference `{text}`; expected `${{env:NAME}}` or `${{file:PATH}}`"
        ))
    }
}

impl SecretRef {
    /// As [`SecretRef::parse`], or a reference to an external secret store
    /// (`vault://…`, `aws-sm://…`, `gcp-sm://…`, `op://…`): for the secrets egret may
    /// fetch while it runs (an OAuth app's client secret), not those it needs to start.
    pub fn parse_or_external(text: &str, base: &Path) -> Result<Self, String> {
        let trimmed = text.trim();
        if ["vault://", "aws-sm://", "gcp-sm://", "op://"]
            .iter()
            .any(|s| trimmed.starts_with(s))
        {
            let reference = crate::ExternalRef::parse(trimmed)?;
            return Ok(Self::External(std::sync::Arc::new(ExternalSecret::new(
                reference,
            ))));
        }
        Self::parse(text, base)
    }

    /// Reads the secret now. `Ok(None)`: the variable is unset or empty, or the file does
    /// not exist. File contents are trimmed (a trailing newline is not part of a secret).
    pub fn read(&self) -> std::io::Result<Option<secrecy::SecretString>> {
        match self {
            Self::Stored(value) => Ok(Some((**value).clone())),
            Self::External(external) => Ok(external.get()),
            Self::Env(name) => Ok(std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(secrecy::SecretString::from)),
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some(secrecy::SecretString::from(text.trim().to_owned()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "${{env:{name}}}"),
            Self::File(path) => write!(f, "${{file:{}}}", path.display()),
            Self::External(external) => write!(f, "{}", external.reference),
            Self::Stored(value) => {
                use secrecy::ExposeSecret;
                // At most the last 4 characters, and only of a secret long enough that
                // they give nothing away.
                let v = value.expose_secret();
                let tail: String = if v.chars().count() >= 16 {
                    let skip = v.chars().count() - 4;
                    v.chars().skip(skip).collect()
                } else {
                    String::new()
                };
                write!(f, "••••{tail}")
            }
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_and_file_and_refuses_literals() {
        let base = Path::new("/etc/egret");
        assert_eq!(
            SecretRef::parse("${env:A_B}", base),
            Ok(SecretRef::Env("A_B".into()))
        );
        assert_eq!(
            SecretRef::parse("${file:data/k}", base),
            Ok(SecretRef::File(PathBuf::from("/etc/egret/data/k")))
        );
        assert_eq!(
            SecretRef::parse("${file:/abs/k}", base),
            Ok(SecretRef::File(PathBuf::from("/abs/k")))
        );
        assert!(SecretRef::parse("hunter2", base).is_err());
        assert!(SecretRef::parse("${vault:x}", base).is_err());
        assert!(SecretRef::parse("${env:}", base).is_err());
    }
}
