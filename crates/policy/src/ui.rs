//! `ui:`: how the web UI meets people — a trusted header naming the user behind an
//! authenticating proxy, and which sites may embed its pages.

use crate::error::Located;
use crate::raw::{RawUi, S};
use crate::validate::Validator;

#[derive(Debug, Clone)]
pub struct UiSettings {
    /// A header an authenticating proxy in front of egret sets to the signed-in user
    /// (owner `user:<value>`), as Grafana's auth-proxy mode does; lower case.
    pub user_header: Option<String>,
    /// The only peers whose `user_header` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Origins allowed to embed the pages in a frame (`frame-ancestors`); none: no site.
    pub frame_ancestors: Vec<String>,
    /// Sign-in with the organisation's identity provider (OpenID Connect).
    pub oidc: Option<OidcSettings>,
    /// Whether the admin token signs in to the web UI (break-glass; `false` turns it off).
    pub admin_token_login: bool,
}

/// `ui.oidc`.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<crate::SecretRef>,
    pub scopes: Vec<String>,
    /// The ID-token claim that names the owner (`user:<value>`): `email` by default.
    pub owner_claim: String,
    pub admins: RoleMatch,
    pub auditors: RoleMatch,
    /// What "Sign in with …" names.
    pub name: String,
}

/// Who has a role, by the ID token's claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMatch {
    /// Compared without case.
    pub emails: Vec<String>,
    pub groups_claim: String,
    pub groups: Vec<String>,
}

impl RoleMatch {
    /// Whether the claims give this role: the email listed, or a group in the claim.
    pub fn matches(&self, email: Option<&str>, claims: &serde_json::Value) -> bool {
        let by_email = email.is_some_and(|e| self.emails.iter().any(|m| m.eq_ignore_ascii_case(e)));
        let by_group = claims
            .get(&self.groups_claim)
            .and_then(serde_json::Value::as_array)
            .is_some_and(|gs| {
                gs.iter()
                    .filter_map(serde_json::Value::as_str)
                    .any(|g| self.groups.iter().any(|m| m == g))
            });
        by_email || by_group
    }
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            user_header: None,
            trusted_proxies: Vec::new(),
            frame_ancestors: Vec::new(),
            oidc: None,
            admin_token_login: true,
        }
    }
}

impl UiSettings {
    /// Whether `peer` may name the user in `user_header`.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        let peer = crate::canonical_ip(peer);
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

impl Validator<'_> {
    pub(crate) fn ui(&self, raw: &S<RawUi>, base: &std::path::Path) -> Result<UiSettings, Located> {
        let r = &raw.value;
        let mut trusted_proxies = Vec::new();
        for p in &r.trusted_proxies {
            match crate::host::parse_ip_rule(&p.value) {
                Some(Ok(net)) => trusted_proxies.push(net),
                Some(Err(m)) => return Err(self.at(p, &m)),
                None => {
                    return Err(self.at(
                        p,
                        &format!(
                            "`{}` is not an address or CIDR block, e.g. 10.0.0.5 or 10.0.0.0/8",
                            p.value
                        ),
                    ));
                }
            }
        }
        let user_header = match &r.user_header {
            None => None,
            Some(h) => {
                let name = h.value.to_ascii_lowercase();
                let token = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !token {
                    return Err(self.at(h, &format!("`{}` is not a header name", h.value)));
                }
                if trusted_proxies.is_empty() {
                    return Err(self.at(
                        h,
                        "ui.user_header needs ui.trusted_proxies: the addresses of the proxy that sets it (anyone else could)",
                    ));
                }
                Some(name)
            }
        };
        let mut frame_ancestors = Vec::new();
        for o in &r.frame_ancestors {
            let ok = (o.value.starts_with("https://") || o.value.starts_with("http://"))
                && !o.value.contains([' ', ';', ',', '\'', '"']);
            if !ok {
                return Err(self.at(
                    o,
                    &format!(
                        "`{}` is not an origin, e.g. https://platform.example.com",
                        o.value
                    ),
                ));
            }
            frame_ancestors.push(o.value.trim_end_matches('/').to_owned());
        }
        let oidc = match &r.oidc {
            None => None,
            Some(o) => Some(self.oidc(o, base)?),
        };
        Ok(UiSettings {
            user_header,
            trusted_proxies,
            frame_ancestors,
            oidc,
            admin_token_login: r.admin_token_login.unwrap_or(true),
        })
    }

    fn oidc(
        &self,
        raw: &S<crate::raw::RawOidc>,
        base: &std::path::Path,
    ) -> Result<OidcSettings, Located> {
        let o = &raw.value;
        let issuer = self.url(&o.issuer)?.trim_end_matches('/').to_owned();
        let scopes = o
            .scopes
            .clone()
            .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
        if !scopes.iter().any(|s| s == "openid") {
            return Err(self.at(raw, "`ui.oidc.scopes` must include `openid`"));
        }
        let role = |m: &Option<crate::raw::RawRoleMatch>| {
            m.as_ref()
                .map(|m| RoleMatch {
                    emails: m.emails.clone(),
                    groups_claim: m.groups_claim.clone().unwrap_or_else(|| "groups".into()),
                    groups: m.groups.clone(),
                })
                .unwrap_or_else(|| RoleMatch {
                    groups_claim: "groups".into(),
                    ..RoleMatch::default()
                })
        };
        let host = issuer
            .split("://")
            .nth(1)
            .and_then(|r| r.split(['/', ':']).next())
            .unwrap_or(&issuer)
            .to_owned();
        Ok(OidcSettings {
            client_secret: o
                .client_secret
                .as_ref()
                .map(|s| self.secret(s, base))
                .transpose()?,
            client_id: o.client_id.value.clone(),
            scopes,
            owner_claim: o
                .owner_claim
                .as_ref()
                .map_or_else(|| "email".to_owned(), |c| c.value.clone()),
            admins: role(&o.admins),
            auditors: role(&o.auditors),
            name: o.name.clone().unwrap_or(host),
            issuer,
        })
    }
}
