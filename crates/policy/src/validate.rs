//! Raw YAML structs -> [`Policy`]: every check that can point at a line does so here.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Located;
use crate::host::{HostPattern, normalize_host};
use crate::model::*;
use crate::raw::*;
use crate::secret_ref::SecretRef;
use crate::templates::{self, Defaults};

/// Checks a parsed file; `base` is the directory relative paths resolve against.
pub(crate) fn validate(raw: RawPolicy, file: &Path, base: &Path) -> Result<Policy, Located> {
    let v = Validator { file };
    if raw.version.value != 1 {
        return Err(v.at(
            &raw.version,
            "unsupported policy version; expected `version: 1`",
        ));
    }
    let proxy_listen = v.socket(raw.proxy.listen.as_ref(), "127.0.0.1:3128")?;
    let proxy_auth = match raw.proxy.auth.as_ref().map(|a| (a, a.value.as_str())) {
        None | Some((_, "none")) => ProxyAuth::None,
        Some((_, "basic")) => ProxyAuth::Basic,
        Some((a, _)) => return Err(v.at(a, "unknown proxy auth; expected `none` or `basic`")),
    };
    let control_listen = v.socket(raw.control.listen.as_ref(), "127.0.0.1:3129")?;
    let public_url = match raw.control.public_url {
        Some(url) => v.url(&url)?,
        None => format!("http://{control_listen}"),
    };
    let admin_token = raw
        .control
        .admin_token
        .as_ref()
        .map(|t| v.secret(t, base))
        .transpose()?;

    let vault_path = base.join(raw.vault.path.as_deref().unwrap_or("data/egret.redb"));
    let backend = match (raw.vault.backend.as_ref(), raw.vault.url.as_ref()) {
        (None, None) => VaultBackend::Redb,
        (Some(b), url) if b.value == "redb" => match url {
            None => VaultBackend::Redb,
            Some(u) => {
                return Err(v.at(
                    u,
                    "vault.url is for `backend: postgres`; remove it, or set the backend",
                ));
            }
        },
        (Some(b), Some(url)) if b.value == "postgres" => VaultBackend::Postgres {
            url: v.secret(url, base)?,
            ca_file: raw.vault.ca_file.as_deref().map(|p| base.join(p)),
        },
        (Some(b), None) if b.value == "postgres" => {
            return Err(v.at(
                b,
                "`backend: postgres` needs `url`, e.g. `url: ${env:EGRET_DATABASE_URL}`",
            ));
        }
        (Some(b), _) => {
            return Err(v.at(
                b,
                "unknown vault backend; expected `redb` (one egret, the default) or `postgres` (several replicas)",
            ));
        }
        (None, Some(u)) => {
            return Err(v.at(u, "vault.url needs `backend: postgres` beside it"));
        }
    };
    let master_key = match &raw.vault.master_key {
        Some(r) => v.secret(r, base)?,
        None => SecretRef::File(vault_path.with_file_name("master.key")),
    };

    let mut resolve = BTreeMap::new();
    for (host, addr) in &raw.upstream.resolve {
        let ip = addr.value.parse::<IpAddr>().map_err(|_| {
            v.at(
                addr,
                &format!(
                    "`{}` is not an IP address; expected e.g. `127.0.0.1`",
                    addr.value
                ),
            )
        })?;
        resolve.insert(normalize_host(host), ip);
    }

    // An entry that is an address or a CIDR block allows those addresses; any other
    // entry is a host name pattern.
    let mut allow = Vec::new();
    let mut allow_ips = Vec::new();
    for entry in &raw.network.allow {
        match crate::host::parse_ip_rule(&entry.value) {
            Some(Ok(net)) => allow_ips.push(net),
            Some(Err(m)) => return Err(v.at(entry, &m)),
            None => allow.push(v.host(entry)?),
        }
    }

    let mut seen = HashSet::new();
    let mut connectors = Vec::with_capacity(raw.connectors.len());
    for c in raw.connectors {
        let id_span = v.at(&c.id, "connector ids must be unique; this id is used twice");
        let connector = v.connector(c, base)?;
        if !seen.insert(connector.id.clone()) {
            return Err(id_span);
        }
        connectors.push(connector);
    }

    Ok(Policy {
        source: file.to_owned(),
        proxy: ProxySettings {
            listen: proxy_listen,
            auth: proxy_auth,
        },
        control: ControlSettings {
            listen: control_listen,
            public_url,
            admin_token,
        },
        ca: CaSettings {
            dir: base.join(raw.ca.dir.as_deref().unwrap_or("certs")),
            name_constraints: raw.ca.name_constraints.unwrap_or(false),
        },
        vault: VaultSettings {
            backend,
            path: vault_path,
            master_key,
        },
        upstream: UpstreamSettings {
            extra_ca: raw.upstream.extra_ca.iter().map(|p| base.join(p)).collect(),
            resolve,
        },
        network: NetworkSettings {
            allow,
            allow_ips,
            deny_private_ranges: raw.network.deny_private_ranges.unwrap_or(true),
        },
        limits: v.limits(&raw.limits)?,
        connectors_removed_retention: raw
            .connectors_removed_retention
            .as_ref()
            .map(|s| v.duration(s))
            .transpose()?
            .unwrap_or(Policy::DEFAULT_REMOVED_RETENTION),
        connectors,
        webhooks: raw
            .webhooks
            .iter()
            .map(|w| v.webhook(w, base))
            .collect::<Result<_, _>>()?,
        ui: raw
            .ui
            .as_ref()
            .map(|u| v.ui(u))
            .transpose()?
            .unwrap_or_default(),
    })
}

pub(crate) struct Validator<'a> {
    file: &'a Path,
}

impl Validator<'_> {
    pub(crate) fn at<T>(&self, span: &S<T>, message: &str) -> Located {
        Located {
            file: self.file.to_owned(),
            line: span.referenced.line(),
            column: span.referenced.column(),
            message: message.to_owned(),
        }
    }

    fn socket(&self, value: Option<&S<String>>, default: &str) -> Result<SocketAddr, Located> {
        match value {
            None => default.parse().map_err(|_| self.bare(default)),
            Some(s) => s.value.parse().map_err(|_| {
                self.at(
                    s,
                    &format!(
                        "`{}` is not a listen address; expected `IP:PORT` such as `127.0.0.1:3128`",
                        s.value
                    ),
                )
            }),
        }
    }

    fn bare(&self, what: &str) -> Located {
        Located {
            file: self.file.to_owned(),
            line: 0,
            column: 0,
            message: format!("bad built-in default `{what}`"),
        }
    }

    pub(crate) fn url(&self, s: &S<String>) -> Result<String, Located> {
        let ok = (s.value.starts_with("https://") || s.value.starts_with("http://"))
            && !s.value.contains(char::is_whitespace);
        if ok {
            Ok(s.value.trim_end_matches('/').to_owned())
        } else {
            Err(self.at(
                s,
                &format!("`{}` is not a URL; expected `https://host/path`", s.value),
            ))
        }
    }

    pub(crate) fn secret(&self, s: &S<String>, base: &Path) -> Result<SecretRef, Located> {
        SecretRef::parse(&s.value, base).map_err(|m| self.at(s, &m))
    }

    /// A duration like `30s` or `5m`.
    pub(crate) fn duration(&self, s: &S<String>) -> Result<Duration, Located> {
        humantime::parse_duration(&s.value).map_err(|_| {
            self.at(
                s,
                &format!(
                    "`{}` is not a duration; expected e.g. `60s` or `5m`",
                    s.value
                ),
            )
        })
    }

    /// A duration above zero; `what` names the key in the error.
    pub(crate) fn positive_duration(&self, s: &S<String>, what: &str) -> Result<Duration, Located> {
        let d = self.duration(s)?;
        if d.is_zero() {
            return Err(self.at(s, &format!("`{what}` must be above zero, e.g. `10s`")));
        }
        Ok(d)
    }

    /// A count above zero that fits the platform.
    fn count(&self, s: &S<u64>, what: &str) -> Result<usize, Located> {
        usize::try_from(s.value)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| self.at(s, &format!("`{what}` must be a number above zero")))
    }

    fn limits(&self, raw: &RawLimits) -> Result<LimitSettings, Located> {
        let count = |s: &Option<S<u64>>, what| s.as_ref().map(|s| self.count(s, what)).transpose();
        let duration = |s: &Option<S<String>>, what| {
            s.as_ref()
                .map(|s| self.positive_duration(s, what))
                .transpose()
        };
        Ok(LimitSettings {
            max_header_bytes: count(&raw.max_header_bytes, "max_header_bytes")?,
            max_headers: count(&raw.max_headers, "max_headers")?,
            max_client_connections: count(&raw.max_client_connections, "max_client_connections")?,
            tls_handshake_timeout: duration(&raw.tls_handshake_timeout, "tls_handshake_timeout")?,
            request_head_timeout: duration(&raw.request_head_timeout, "request_head_timeout")?,
            upstream_connect_timeout: duration(
                &raw.upstream_connect_timeout,
                "upstream_connect_timeout",
            )?,
            upstream_response_timeout: duration(
                &raw.upstream_response_timeout,
                "upstream_response_timeout",
            )?,
            tunnel_idle_timeout: duration(&raw.tunnel_idle_timeout, "tunnel_idle_timeout")?,
            max_ttl: duration(&raw.max_ttl, "max_ttl")?,
        })
    }

    fn rate_limit(&self, raw: &S<RawRateLimit>) -> Result<RateLimit, Located> {
        let requests = u32::try_from(raw.value.requests.value)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                self.at(
                    &raw.value.requests,
                    "`requests` must be a number from 1 to 4294967295",
                )
            })?;
        let per = self.positive_duration(&raw.value.per, "per")?;
        Ok(RateLimit { requests, per })
    }

    fn host(&self, s: &S<String>) -> Result<HostPattern, Located> {
        HostPattern::parse(&s.value).map_err(|m| self.at(s, &m))
    }

    fn connector(&self, c: RawConnector, base: &Path) -> Result<Connector, Located> {
        let id = ConnectorId::parse(&c.id.value).map_err(|m| self.at(&c.id, &m))?;
        let defaults = match &c.template {
            Some(t) => {
                let template = templates::find(&t.value).ok_or_else(|| {
                    self.at(
                        t,
                        &format!(
                            "unknown template `{}`; built-in templates: {}",
                            t.value,
                            templates::names()
                        ),
                    )
                })?;
                Some(template.defaults(&c.settings).map_err(|m| self.at(t, &m))?)
            }
            None if !c.settings.is_empty() => {
                return Err(self.at(
                    &c.id,
                    "`settings` only applies with `template`; name a template or remove `settings`",
                ));
            }
            None => None,
        };
        // A template is a vendor's OAuth app: `auth: oauth2` unless the stanza says otherwise.
        let auth_name = c
            .auth
            .as_ref()
            .map(|a| a.value.as_str())
            .or(defaults.as_ref().map(|_| "oauth2"));
        let auth = match auth_name {
            Some("api_key") => {
                if let Some(o) = &c.oauth {
                    return Err(self.at(o, "`oauth` is set but `auth` is `api_key`; set `auth: oauth2` or remove `oauth`"));
                }
                if let Some(g) = &c.grant {
                    return Err(self.at(g, "`grant` only applies to `auth: oauth2`"));
                }
                AuthKind::ApiKey
            }
            Some("oauth2") => {
                let oauth = c.oauth.as_ref().ok_or_else(|| {
                    self.at(&c.id, &format!("connector `{id}` has `auth: oauth2` but no `oauth:` block; add client_id, client_secret and token_url"))
                })?;
                AuthKind::OAuth2(Box::new(self.oauth(
                    oauth,
                    c.grant.as_ref(),
                    base,
                    defaults.as_ref(),
                )?))
            }
            Some(_) => {
                let a = c
                    .auth
                    .as_ref()
                    .map(|a| self.at(a, "unknown auth; expected `api_key` or `oauth2`"));
                return Err(a.unwrap_or_else(|| self.bare("auth")));
            }
            None => {
                return Err(self.at(
                    &c.id,
                    &format!(
                        "connector `{id}` has no `auth`; expected `auth: api_key` or `auth: oauth2`"
                    ),
                ));
            }
        };
        let egress = if c.egress.is_empty() {
            let from_template = defaults
                .as_ref()
                .map(|d| d.egress.as_slice())
                .unwrap_or_default();
            if from_template.is_empty() {
                return Err(self.at(&c.id, &format!("connector `{id}` has no `egress` hosts; list the hosts its credential may be sent to")));
            }
            from_template
                .iter()
                .map(|h| HostPattern::parse(h).map_err(|m| self.at(&c.id, &m)))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            c.egress
                .iter()
                .map(|h| self.host(h))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut headers = Vec::new();
        for h in &c.inject.headers {
            let name = h.value.to_ascii_lowercase();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid
                || matches!(
                    name.as_str(),
                    "host" | "proxy-authorization" | "cookie" | "set-cookie"
                )
            {
                return Err(self.at(h, &format!("`{}` cannot carry a credential; expected a header name such as `x-api-key`", h.value)));
            }
            if name != "authorization" {
                headers.push(name);
            }
        }
        let mut query = Vec::new();
        for q in &c.inject.query {
            if q.value.is_empty() || q.value.contains(['&', '=', '#', ' ']) {
                return Err(self.at(q, &format!("`{}` is not a query parameter name", q.value)));
            }
            query.push(q.value.clone());
        }
        let env = if c.env.is_empty() {
            default_env(id.as_str(), c.template.as_ref().map(|t| t.value.as_str()))
        } else {
            let mut env = Vec::new();
            for (name, what) in &c.env {
                let valid = name.bytes().enumerate().all(|(i, b)| {
                    b.is_ascii_uppercase() || b == b'_' || (i > 0 && b.is_ascii_digit())
                }) && !name.is_empty();
                if !valid {
                    return Err(self.at(what, &format!("`{name}` is not an environment variable name; expected e.g. `DATABRICKS_TOKEN`")));
                }
                let value = match what.value.as_str() {
                    "placeholder" => EnvValue::Placeholder,
                    "url" => EnvValue::Url,
                    _ => return Err(self.at(what, "expected `placeholder` (the connection's placeholder) or `url` (https:// + the first egress host)")),
                };
                env.push((name.clone(), value));
            }
            env
        };
        let rate_limit = c
            .rate_limit
            .as_ref()
            .map(|r| self.rate_limit(r))
            .transpose()?;
        let test =
            match &c.test {
                Some(t) => Some(self.probe(t, &egress)?),
                None => defaults.as_ref().and_then(|d| d.identity.as_ref()).map(
                    |(method, url, field)| Probe {
                        method: (*method).to_owned(),
                        url: url.clone(),
                        expect: 200,
                        header: None,
                        identity_field: Some((*field).to_owned()),
                    },
                ),
            };
        let request = c
            .request
            .as_ref()
            .map(|r| self.request_settings(r, &headers))
            .transpose()?
            .unwrap_or_default();
        Ok(Connector {
            test,
            id,
            env,
            rate_limit,
            source: Source::Policy,
            template: c.template.as_ref().map(|t| t.value.clone()),
            auth,
            egress,
            inject: Injection { headers, query },
            enabled: c.enabled,
            scan_answers: c.scan_answers,
            multiple_connections: c.multiple_connections,
            request,
        })
    }

    /// A connector's own `test:`: to one of its egress hosts, over https.
    fn probe(&self, t: &S<RawProbe>, egress: &[HostPattern]) -> Result<Probe, Located> {
        let raw = &t.value;
        let method = raw
            .method
            .clone()
            .unwrap_or_else(|| "GET".to_owned())
            .to_uppercase();
        if !["GET", "HEAD", "POST"].contains(&method.as_str()) {
            return Err(self.at(
                t,
                "`test.method` must be GET, HEAD or POST (a test must not change anything)",
            ));
        }
        let url = match (&raw.path, &raw.url) {
            (Some(path), None) if path.starts_with('/') => {
                let host = egress
                    .iter()
                    .map(ToString::to_string)
                    .find(|h| !h.starts_with('*'))
                    .ok_or_else(|| self.at(t, "every egress host has a wildcard; give `test.url` with the host to test"))?;
                format!("https://{host}{path}")
            }
            (None, Some(url)) if url.starts_with("https://") => url.clone(),
            _ => {
                return Err(self.at(t, "`test` needs `path: /…` (to the first egress host) or `url: https://…`, not both"));
            }
        };
        let host = url
            .strip_prefix("https://")
            .and_then(|r| r.split('/').next())
            .unwrap_or_default();
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().unwrap_or(0)),
            None => (host, 443),
        };
        if !egress
            .iter()
            .any(|e| e.matches(&normalize_host(name), port))
        {
            return Err(self.at(
                t,
                &format!("`test` goes to {host}, which is not one of the connector's egress hosts"),
            ));
        }
        Ok(Probe {
            method,
            url,
            expect: raw.expect.unwrap_or(200),
            header: raw.header.as_ref().map(|h| h.to_ascii_lowercase()),
            identity_field: raw.identity.clone(),
        })
    }

    fn oauth(
        &self,
        o: &S<RawOAuth>,
        grant: Option<&S<String>>,
        base: &Path,
        defaults: Option<&Defaults>,
    ) -> Result<OAuthSettings, Located> {
        let none = Defaults::default();
        let d = defaults.unwrap_or(&none);
        let grant = match grant.map(|g| (g, g.value.as_str())) {
            None => d.grant.unwrap_or(Grant::AuthorizationCode),
            Some((_, "authorization_code")) => Grant::AuthorizationCode,
            Some((_, "client_credentials")) => Grant::ClientCredentials,
            Some((g, _)) => {
                return Err(self.at(
                    g,
                    "unknown grant; expected `authorization_code` or `client_credentials`",
                ));
            }
        };
        let raw = &o.value;
        let opt_url = |u: &Option<S<String>>| u.as_ref().map(|u| self.url(u)).transpose();
        let authorize_url = opt_url(&raw.authorize_url)?.or_else(|| d.authorize_url.clone());
        let token_url = opt_url(&raw.token_url)?.or_else(|| d.token_url.clone());
        let issuer = opt_url(&raw.issuer)?.or_else(|| d.issuer.clone());
        let revocation_url = opt_url(&raw.revocation_url)?.or_else(|| d.revocation_url.clone());
        if token_url.is_none() && issuer.is_none() {
            return Err(self.at(o, "`oauth` needs `token_url` (or `issuer` for discovery)"));
        }
        if grant == Grant::AuthorizationCode && authorize_url.is_none() && issuer.is_none() {
            return Err(self.at(
                o,
                "the authorization-code grant needs `authorize_url` (or `issuer` for discovery)",
            ));
        }
        let client_id = raw
            .client_id
            .as_ref()
            .filter(|c| !c.value.is_empty())
            .ok_or_else(|| self.at(o, "`oauth` needs `client_id`"))?
            .value
            .clone();
        let client_secret = raw
            .client_secret
            .as_ref()
            .map(|s| self.secret(s, base))
            .transpose()?;
        let client_auth = match raw.client_auth.as_ref().map(|c| (c, c.value.as_str())) {
            None => d.client_auth.unwrap_or(ClientAuth::Basic),
            Some((_, "basic")) => ClientAuth::Basic,
            Some((_, "post")) => ClientAuth::Post,
            Some((c, _)) => {
                return Err(self.at(c, "unknown client_auth; expected `basic` or `post`"));
            }
        };
        let refresh_skew = match &raw.refresh_skew {
            Some(s) => self.duration(s)?,
            None => Duration::from_secs(60),
        };
        let timeout = match &raw.timeout {
            Some(s) => self.positive_duration(s, "timeout")?,
            None => Duration::from_secs(10),
        };
        let identity_match = match raw.identity_match.as_ref().map(|c| (c, c.value.as_str())) {
            None => None,
            Some((_, "email")) => Some(IdentityClaim::Email),
            Some((_, "preferred_username")) => Some(IdentityClaim::PreferredUsername),
            Some((_, "sub")) => Some(IdentityClaim::Sub),
            Some((c, _)) => {
                return Err(self.at(
                    c,
                    "unknown identity_match; expected `email`, `preferred_username` or `sub`",
                ));
            }
        };
        Ok(OAuthSettings {
            identity_match,
            grant,
            authorize_url,
            token_url,
            issuer,
            revocation_url,
            client_id,
            client_secret,
            scopes: if raw.scopes.is_empty() {
                d.scopes.clone()
            } else {
                raw.scopes.clone()
            },
            pkce: raw.pkce.unwrap_or(true),
            client_auth,
            refresh_skew,
            timeout,
            extra_params: d
                .extra_params
                .iter()
                .chain(&raw.extra_params)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

/// The variables a vendor's own SDK reads, by template or well-known connector id;
/// otherwise `<ID>_TOKEN`.
fn default_env(id: &str, template: Option<&str>) -> Vec<(String, EnvValue)> {
    let p = |n: &str| (n.to_owned(), EnvValue::Placeholder);
    let u = |n: &str| (n.to_owned(), EnvValue::Url);
    match template.unwrap_or(id) {
        "databricks" => vec![u("DATABRICKS_HOST"), p("DATABRICKS_TOKEN")],
        "github" => vec![p("GITHUB_TOKEN"), p("GH_TOKEN")],
        "openai" => vec![p("OPENAI_API_KEY")],
        "anthropic" => vec![p("ANTHROPIC_API_KEY")],
        "slack" => vec![p("SLACK_TOKEN")],
        "atlassian" => vec![p("ATLASSIAN_TOKEN")],
        "google" => vec![p("GOOGLE_OAUTH_ACCESS_TOKEN")],
        _ => vec![p(&format!(
            "{}_TOKEN",
            id.to_ascii_uppercase().replace('-', "_")
        ))],
    }
}

/// The directory a policy file's relative paths resolve against.
pub(crate) fn base_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}
