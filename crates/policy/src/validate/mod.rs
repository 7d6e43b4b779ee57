//! Raw YAML structs -> [`Policy`]: every check that can point at a line does so here.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Located, Problems};
use crate::host::{HostPattern, normalize_host};
use crate::model::*;
use crate::raw::*;
use crate::secret_ref::SecretRef;
use crate::sources::Scheme;

mod connector;

/// Checks a parsed file; `base` is the directory relative paths resolve against. Every
/// problem is found: a value that is wrong is noted and replaced by its default, so the
/// rest of the file is still checked (a connector stops at its first problem).
pub(crate) fn validate(raw: RawPolicy, file: &Path, base: &Path) -> Result<Policy, Problems> {
    let v = Validator {
        file,
        problems: RefCell::default(),
        sources_configured: RefCell::default(),
    };
    if raw.version.value != 1 {
        // Another version's keys mean other things: nothing past this is worth reading.
        return Err(Problems::one(v.at(
            &raw.version,
            "unsupported policy version; expected `version: 1`",
        )));
    }
    let policy = v.policy(raw, file, base);
    match Problems::new(v.problems.into_inner()) {
        Some(problems) => Err(problems),
        None => Ok(policy),
    }
}

impl Validator<'_> {
    fn policy(&self, raw: RawPolicy, file: &Path, base: &Path) -> Policy {
        let v = self;
        let proxy_listen = v.socket(raw.proxy.listen.as_ref(), DEFAULT_PROXY_LISTEN);
        let proxy_auth = match raw.proxy.auth.as_ref().map(|a| (a, a.value.as_str())) {
            None | Some((_, "none")) => ProxyAuth::None,
            Some((_, "basic")) => ProxyAuth::Basic,
            Some((a, _)) => {
                v.note(v.at(a, "unknown proxy auth; expected `none` or `basic`"));
                ProxyAuth::None
            }
        };
        let control_listen = v.socket(raw.control.listen.as_ref(), DEFAULT_CONTROL_LISTEN);
        let public_url = raw
            .control
            .public_url
            .and_then(|url| v.keep(v.url(&url)))
            .unwrap_or_else(|| format!("http://{control_listen}"));
        let admin_token = raw
            .control
            .admin_token
            .as_ref()
            .and_then(|t| v.keep(v.secret(t, base)));

        let vault_path =
            crate::paths::joined(base, raw.vault.path.as_deref().unwrap_or("data/egret.redb"));
        let backend = v
            .keep(v.backend(raw.vault.backend.as_ref(), raw.vault.url.as_ref(), base))
            .unwrap_or(VaultBackend::Redb);
        let master_key = raw
            .vault
            .master_key
            .as_ref()
            .and_then(|r| v.keep(v.secret(r, base)))
            .unwrap_or_else(|| SecretRef::File(vault_path.with_file_name("master.key")));

        let mut resolve = BTreeMap::new();
        for (host, addr) in &raw.upstream.resolve {
            match addr.value.parse::<IpAddr>() {
                Ok(ip) => {
                    resolve.insert(normalize_host(host), ip);
                }
                Err(_) => v.note(v.at(
                    addr,
                    &format!(
                        "`{}` is not an IP address; expected e.g. `127.0.0.1`",
                        addr.value
                    ),
                )),
            }
        }

        // An entry that is an address or a CIDR block allows those addresses; any other
        // entry is a host name pattern.
        let mut allow = Vec::new();
        let mut allow_ips = Vec::new();
        for entry in &raw.network.allow {
            match crate::host::parse_ip_rule(&entry.value) {
                Some(Ok(net)) => allow_ips.push(net),
                Some(Err(m)) => v.note(v.at(entry, &m)),
                None => allow.extend(v.keep(v.host(entry))),
            }
        }

        let mut seen = HashSet::new();
        // Before the connectors: a client secret may name one of these sources.
        let secret_sources = v.sources(&raw.secret_sources, base);
        *v.sources_configured.borrow_mut() =
            [Scheme::Vault, Scheme::AwsSm, Scheme::GcpSm, Scheme::Op]
                .into_iter()
                .filter(|s| secret_sources.timing(*s).is_some())
                .collect();
        let mut connectors = Vec::with_capacity(raw.connectors.len());
        for c in raw.connectors {
            let reused = v.at(&c.id, "connector ids must be unique; this id is used twice");
            if !seen.insert(c.id.value.clone()) {
                v.note(reused);
            }
            connectors.extend(v.keep(v.connector(c, base)));
        }

        Policy {
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
                dir: crate::paths::joined(base, raw.ca.dir.as_deref().unwrap_or("certs")),
                name_constraints: raw.ca.name_constraints.unwrap_or(false),
            },
            vault: VaultSettings {
                backend,
                path: vault_path,
                master_key,
                ca_file: raw
                    .vault
                    .ca_file
                    .as_deref()
                    .map(|p| crate::paths::joined(base, p)),
                allow_plaintext: raw.vault.allow_plaintext,
            },
            upstream: UpstreamSettings {
                extra_ca: raw
                    .upstream
                    .extra_ca
                    .iter()
                    .map(|p| crate::paths::joined(base, p))
                    .collect(),
                resolve,
            },
            network: NetworkSettings {
                allow,
                allow_ips,
                deny_private_ranges: raw.network.deny_private_ranges.unwrap_or(true),
            },
            limits: v.limits(&raw.limits),
            connectors_removed_retention: raw
                .connectors_removed_retention
                .as_ref()
                .and_then(|s| v.keep(v.duration(s)))
                .unwrap_or(Policy::DEFAULT_REMOVED_RETENTION),
            connectors,
            webhooks: raw
                .webhooks
                .iter()
                .filter_map(|w| v.keep(v.webhook(w, base)))
                .collect(),
            ui: raw
                .ui
                .as_ref()
                .and_then(|u| v.keep(v.ui(u, base)))
                .unwrap_or_default(),
            approvals: raw
                .approvals
                .as_ref()
                .and_then(|a| v.keep(v.approvals(a)))
                .unwrap_or_default(),
            secret_sources,
        }
    }

    fn backend(
        &self,
        backend: Option<&S<String>>,
        url: Option<&S<String>>,
        base: &Path,
    ) -> Result<VaultBackend, Located> {
        let v = self;
        match (backend, url) {
            (None, None) => Ok(VaultBackend::Redb),
            (Some(b), None) if b.value == "redb" => Ok(VaultBackend::Redb),
            (Some(b), Some(u)) if b.value == "redb" => Err(v.at(
                u,
                "vault.url is for `backend: postgres`; remove it, or set the backend",
            )),
            (Some(b), Some(url)) if b.value == "postgres" => Ok(VaultBackend::Postgres {
                url: v.secret(url, base)?,
            }),
            (Some(b), None) if b.value == "postgres" => Err(v.at(
                b,
                "`backend: postgres` needs `url`, e.g. `url: ${env:EGRET_DATABASE_URL}`",
            )),
            (Some(b), _) => Err(v.at(
                b,
                "unknown vault backend; expected `redb` (one egret, the default) or `postgres` (several replicas)",
            )),
            (None, Some(u)) => Err(v.at(u, "vault.url needs `backend: postgres` beside it")),
        }
    }

    /// `result`'s value; or its problem noted, and `None`, so checking goes on.
    pub(crate) fn keep<T>(&self, result: Result<T, Located>) -> Option<T> {
        result.map_err(|problem| self.note(problem)).ok()
    }

    pub(crate) fn note(&self, problem: Located) {
        self.problems.borrow_mut().push(problem);
    }
}

const DEFAULT_PROXY_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 3128);
const DEFAULT_CONTROL_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 3129);

pub(crate) struct Validator<'a> {
    file: &'a Path,
    /// What is wrong so far, in the order found.
    problems: RefCell<Vec<Located>>,
    /// The external secret sources the file configures.
    pub(crate) sources_configured: RefCell<Vec<Scheme>>,
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

    /// A listen address, `default` when unset or wrong (and then noted).
    fn socket(&self, value: Option<&S<String>>, default: SocketAddr) -> SocketAddr {
        let Some(s) = value else { return default };
        s.value.parse().unwrap_or_else(|_| {
            self.note(self.at(
                s,
                &format!(
                    "`{}` is not a listen address; expected `IP:PORT` such as `127.0.0.1:3128`",
                    s.value
                ),
            ));
            default
        })
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

    /// Each limit on its own: a wrong one is noted and left at its default.
    fn limits(&self, raw: &RawLimits) -> LimitSettings {
        let count =
            |s: &Option<S<u64>>, what| s.as_ref().and_then(|s| self.keep(self.count(s, what)));
        let duration = |s: &Option<S<String>>, what| {
            s.as_ref()
                .and_then(|s| self.keep(self.positive_duration(s, what)))
        };
        LimitSettings {
            max_header_bytes: count(&raw.max_header_bytes, "max_header_bytes"),
            max_headers: count(&raw.max_headers, "max_headers"),
            max_client_connections: count(&raw.max_client_connections, "max_client_connections"),
            tls_handshake_timeout: duration(&raw.tls_handshake_timeout, "tls_handshake_timeout"),
            request_head_timeout: duration(&raw.request_head_timeout, "request_head_timeout"),
            upstream_connect_timeout: duration(
                &raw.upstream_connect_timeout,
                "upstream_connect_timeout",
            ),
            upstream_response_timeout: duration(
                &raw.upstream_response_timeout,
                "upstream_response_timeout",
            ),
            tunnel_idle_timeout: duration(&raw.tunnel_idle_timeout, "tunnel_idle_timeout"),
            max_ttl: duration(&raw.max_ttl, "max_ttl"),
        }
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

    fn approvals(
        &self,
        raw: &S<crate::raw::RawApprovals>,
    ) -> Result<crate::ApprovalSettings, Located> {
        let mut out = crate::ApprovalSettings::default();
        if let Some(h) = &raw.value.hold {
            out.hold = self.positive_duration(h, "hold")?;
        }
        if let Some(e) = &raw.value.expire {
            out.expire = self.positive_duration(e, "expire")?;
        }
        Ok(out)
    }

    pub(crate) fn budget(&self, raw: &S<crate::raw::RawBudget>) -> Result<crate::Budget, Located> {
        let b = &raw.value;
        let requests = match (&b.requests, &b.per) {
            (Some(n), Some(per)) if n.value > 0 => {
                Some((n.value, self.positive_duration(per, "per")?))
            }
            (Some(n), Some(_)) => return Err(self.at(n, "`requests` must be at least 1")),
            (Some(n), None) => {
                return Err(self.at(n, "`requests` needs `per`, the window, e.g. `per: 1d`"));
            }
            (None, Some(per)) => {
                return Err(self.at(per, "`per` needs `requests`, e.g. `requests: 1000`"));
            }
            (None, None) => None,
        };
        let concurrent = match &b.concurrent {
            Some(c) => Some(
                u32::try_from(c.value)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| self.at(c, "`concurrent` must be a number from 1"))?,
            ),
            None => None,
        };
        if requests.is_none() && concurrent.is_none() {
            return Err(self.at(
                raw,
                "`limits` limits nothing; give `requests` with `per`, and/or `concurrent`",
            ));
        }
        Ok(crate::Budget {
            requests,
            concurrent,
        })
    }

    fn host(&self, s: &S<String>) -> Result<HostPattern, Located> {
        HostPattern::parse(&s.value).map_err(|m| self.at(s, &m))
    }
}

/// The directory a policy file's relative paths resolve against.
pub(crate) fn base_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}
