//! `secret_sources:`: the organisation's own secret stores, where a connection's value
//! (or an input's) may live as a reference (`vault://…`, `aws-sm://…`, `gcp-sm://…`,
//! `op://…`) instead of in egret's vault. Configured once; egret only ever reads them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Located;
use crate::raw::S;
use crate::secret_ref::SecretRef;
use crate::validate::Validator;

/// The configured sources; each absent one refuses references to it.
#[derive(Debug, Clone, Default)]
pub struct SecretSources {
    pub vault: Option<VaultSource>,
    pub aws_sm: Option<AwsSmSource>,
    pub gcp_sm: Option<GcpSmSource>,
    pub op: Option<OpSource>,
}

impl SecretSources {
    /// The timing of the source `scheme` names; `None` when it is not configured.
    pub fn timing(&self, scheme: Scheme) -> Option<SourceTiming> {
        match scheme {
            Scheme::Vault => self.vault.as_ref().map(|v| v.timing),
            Scheme::AwsSm => self.aws_sm.as_ref().map(|v| v.timing),
            Scheme::GcpSm => self.gcp_sm.as_ref().map(|v| v.timing),
            Scheme::Op => self.op.as_ref().map(|v| v.timing),
        }
    }

    /// The CA files the configured sources name.
    pub fn ca_files(&self) -> Vec<PathBuf> {
        [
            self.vault.as_ref().and_then(|v| v.ca_file.clone()),
            self.aws_sm.as_ref().and_then(|v| v.ca_file.clone()),
            self.gcp_sm.as_ref().and_then(|v| v.ca_file.clone()),
            self.op.as_ref().and_then(|v| v.ca_file.clone()),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// How long values are kept, used while the source fails, and waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceTiming {
    /// A fetched value is used this long before it is fetched again (default 5m).
    pub cache_ttl: Duration,
    /// While the source fails, the last good value is used this long after it was
    /// fetched (default 1h); after that, requests are refused `secret_source_failed`.
    pub failure_ttl: Duration,
    /// One fetch, from connecting to the whole answer (default 5s).
    pub timeout: Duration,
}

impl Default for SourceTiming {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(300),
            failure_ttl: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
        }
    }
}

/// HashiCorp Vault or OpenBao, KV version 2.
#[derive(Debug, Clone)]
pub struct VaultSource {
    /// `https://vault:8200`, without a trailing slash.
    pub address: String,
    pub auth: VaultAuth,
    /// The CA that signed Vault's certificate, when not a public one.
    pub ca_file: Option<PathBuf>,
    /// `X-Vault-Namespace` (Vault Enterprise, HCP).
    pub namespace: Option<String>,
    pub timing: SourceTiming,
}

#[derive(Debug, Clone)]
pub enum VaultAuth {
    Token(SecretRef),
    /// `POST /v1/auth/<mount>/login` with the role and secret ids; the token it gives is
    /// kept until shortly before its lease ends.
    AppRole {
        role_id: String,
        secret_id: SecretRef,
        mount: String,
    },
}

/// AWS Secrets Manager, signed with SigV4 by egret with the keys of an AWS connection.
#[derive(Debug, Clone)]
pub struct AwsSmSource {
    pub region: String,
    /// The connection whose keys sign (`connector`, the organisation's connection, or
    /// `connector/owner/name`).
    pub connection: String,
    /// `https://secretsmanager.<region>.amazonaws.com` unless given.
    pub endpoint: String,
    pub ca_file: Option<PathBuf>,
    pub timing: SourceTiming,
}

/// Google Secret Manager, with an access token.
#[derive(Debug, Clone)]
pub struct GcpSmSource {
    /// An OAuth access token for a service account that may read the secrets.
    pub token: SecretRef,
    /// `https://secretmanager.googleapis.com` unless given.
    pub endpoint: String,
    pub ca_file: Option<PathBuf>,
    pub timing: SourceTiming,
}

/// 1Password Connect.
#[derive(Debug, Clone)]
pub struct OpSource {
    pub address: String,
    pub token: SecretRef,
    pub ca_file: Option<PathBuf>,
    pub timing: SourceTiming,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSources {
    pub vault: Option<S<RawVaultSource>>,
    pub aws_sm: Option<S<RawAwsSm>>,
    pub gcp_sm: Option<S<RawGcpSm>>,
    pub op: Option<S<RawOp>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTiming {
    pub cache_ttl: Option<S<String>>,
    pub failure_ttl: Option<S<String>>,
    pub timeout: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVaultSource {
    pub address: S<String>,
    pub token: Option<S<String>>,
    pub approle: Option<S<RawAppRole>>,
    pub ca_file: Option<String>,
    pub namespace: Option<String>,
    #[serde(flatten)]
    pub timing: RawTiming,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAppRole {
    pub role_id: String,
    pub secret_id: S<String>,
    pub mount: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAwsSm {
    pub region: S<String>,
    pub connection: S<String>,
    pub endpoint: Option<S<String>>,
    pub ca_file: Option<String>,
    #[serde(flatten)]
    pub timing: RawTiming,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGcpSm {
    pub token: S<String>,
    pub endpoint: Option<S<String>>,
    pub ca_file: Option<String>,
    #[serde(flatten)]
    pub timing: RawTiming,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOp {
    pub address: S<String>,
    pub token: S<String>,
    pub ca_file: Option<String>,
    #[serde(flatten)]
    pub timing: RawTiming,
}

impl Validator<'_> {
    pub(crate) fn sources(&self, raw: &RawSources, base: &Path) -> SecretSources {
        let v = self;
        let ca = |f: &Option<String>| f.as_ref().map(|p| crate::paths::joined(base, p));
        SecretSources {
            vault: raw.vault.as_ref().and_then(|s| {
                v.keep((|| {
                    let r = &s.value;
                    let auth = match (&r.token, &r.approle) {
                        (Some(t), None) => VaultAuth::Token(v.secret(t, base)?),
                        (None, Some(a)) => VaultAuth::AppRole {
                            role_id: a.value.role_id.clone(),
                            secret_id: v.secret(&a.value.secret_id, base)?,
                            mount: a.value.mount.clone().unwrap_or_else(|| "approle".to_owned()),
                        },
                        _ => {
                            return Err(v.at(
                                s,
                                "secret_sources.vault needs one of `token: ${env:VAULT_TOKEN}` or `approle: {role_id, secret_id}`",
                            ));
                        }
                    };
                    Ok(VaultSource {
                        address: v.url(&r.address)?.trim_end_matches('/').to_owned(),
                        auth,
                        ca_file: ca(&r.ca_file),
                        namespace: r.namespace.clone(),
                        timing: v.timing(&r.timing)?,
                    })
                })())
            }),
            aws_sm: raw.aws_sm.as_ref().and_then(|s| {
                v.keep((|| {
                    let r = &s.value;
                    let region = r.region.value.clone();
                    Ok(AwsSmSource {
                        endpoint: match &r.endpoint {
                            Some(e) => v.url(e)?.trim_end_matches('/').to_owned(),
                            None => format!("https://secretsmanager.{region}.amazonaws.com"),
                        },
                        region,
                        connection: r.connection.value.clone(),
                        ca_file: ca(&r.ca_file),
                        timing: v.timing(&r.timing)?,
                    })
                })())
            }),
            gcp_sm: raw.gcp_sm.as_ref().and_then(|s| {
                v.keep((|| {
                    let r = &s.value;
                    Ok(GcpSmSource {
                        token: v.secret(&r.token, base)?,
                        endpoint: match &r.endpoint {
                            Some(e) => v.url(e)?.trim_end_matches('/').to_owned(),
                            None => "https://secretmanager.googleapis.com".to_owned(),
                        },
                        ca_file: ca(&r.ca_file),
                        timing: v.timing(&r.timing)?,
                    })
                })())
            }),
            op: raw.op.as_ref().and_then(|s| {
                v.keep((|| {
                    let r = &s.value;
                    Ok(OpSource {
                        address: v.url(&r.address)?.trim_end_matches('/').to_owned(),
                        token: v.secret(&r.token, base)?,
                        ca_file: ca(&r.ca_file),
                        timing: v.timing(&r.timing)?,
                    })
                })())
            }),
        }
    }

    fn timing(&self, raw: &RawTiming) -> Result<SourceTiming, Located> {
        let d = SourceTiming::default();
        let get = |s: &Option<S<String>>, what: &str, default: Duration| match s {
            Some(s) => self.positive_duration(s, what),
            None => Ok(default),
        };
        Ok(SourceTiming {
            cache_ttl: get(&raw.cache_ttl, "cache_ttl", d.cache_ttl)?,
            failure_ttl: get(&raw.failure_ttl, "failure_ttl", d.failure_ttl)?,
            timeout: get(&raw.timeout, "timeout", d.timeout)?,
        })
    }
}

/// A reference to a value in an external store, checked for shape.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalRef {
    pub scheme: Scheme,
    /// Everything after `scheme://`.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Vault,
    AwsSm,
    GcpSm,
    Op,
}

impl Scheme {
    /// The source's name in `secret_sources:` and in errors and metrics.
    pub fn source(self) -> &'static str {
        match self {
            Self::Vault => "vault",
            Self::AwsSm => "aws_sm",
            Self::GcpSm => "gcp_sm",
            Self::Op => "op",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Vault => "vault://",
            Self::AwsSm => "aws-sm://",
            Self::GcpSm => "gcp-sm://",
            Self::Op => "op://",
        }
    }
}

impl ExternalRef {
    /// `vault://mount/path#field`, `aws-sm://name-or-arn[#json-field]`,
    /// `gcp-sm://projects/P/secrets/S/versions/V`, `op://vault/item/field`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let schemes = [Scheme::Vault, Scheme::AwsSm, Scheme::GcpSm, Scheme::Op];
        let Some((scheme, path)) = schemes
            .iter()
            .find_map(|s| text.strip_prefix(s.prefix()).map(|p| (*s, p)))
        else {
            return Err(format!(
                "`{}` is not a secret reference; expected vault://MOUNT/PATH#FIELD, aws-sm://NAME[#FIELD], gcp-sm://projects/P/secrets/S/versions/V or op://VAULT/ITEM/FIELD",
                text.chars().take(40).collect::<String>()
            ));
        };
        let ok = !path.is_empty()
            && path.len() <= 512
            && !path.contains(['?', ' ', '\\', '\r', '\n'])
            && !path.split(['/', '#']).any(|s| s == ".." || s == ".");
        let shape = match scheme {
            Scheme::Vault => path
                .split_once('#')
                .is_some_and(|(p, f)| p.contains('/') && !f.is_empty() && !p.starts_with('/')),
            Scheme::AwsSm => !path.starts_with('#'),
            Scheme::GcpSm => {
                let parts: Vec<&str> = path.split('/').collect();
                parts.len() == 6
                    && parts[0] == "projects"
                    && parts[2] == "secrets"
                    && parts[4] == "versions"
                    && parts.iter().all(|p| !p.is_empty())
            }
            Scheme::Op => path.split('/').filter(|p| !p.is_empty()).count() == 3,
        };
        if !ok || !shape {
            let example = match scheme {
                Scheme::Vault => "vault://secret/openai#api_key",
                Scheme::AwsSm => "aws-sm://prod/openai#api_key",
                Scheme::GcpSm => "gcp-sm://projects/p/secrets/s/versions/latest",
                Scheme::Op => "op://vault/item/field",
            };
            return Err(format!(
                "`{text}` is not a valid {} reference; expected e.g. {example}",
                scheme.source()
            ));
        }
        Ok(Self {
            scheme,
            path: path.to_owned(),
        })
    }
}

impl std::fmt::Display for ExternalRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.scheme.prefix(), self.path)
    }
}

impl std::fmt::Debug for ExternalRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_by_scheme_and_bad_ones_say_what_is_expected() {
        let r = ExternalRef::parse("vault://secret/openai#api_key").expect("vault");
        assert_eq!(
            (r.scheme, r.path.as_str()),
            (Scheme::Vault, "secret/openai#api_key")
        );
        assert!(ExternalRef::parse("aws-sm://prod/db#password").is_ok());
        assert!(ExternalRef::parse("aws-sm://arn:aws:secretsmanager:us-east-1:1:secret:x").is_ok());
        assert!(ExternalRef::parse("gcp-sm://projects/p/secrets/s/versions/latest").is_ok());
        assert!(ExternalRef::parse("op://Private/OpenAI/credential").is_ok());
        for bad in [
            "vault://secret/openai",
            "vault://secret#x",
            "vault://secret/../sys#x",
            "gcp-sm://projects/p/secrets/s",
            "op://a/b",
            "https://example.com",
        ] {
            assert!(ExternalRef::parse(bad).is_err(), "{bad}");
        }
    }
}
