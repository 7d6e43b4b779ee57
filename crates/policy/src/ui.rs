//! `ui:`: how the web UI meets people — a trusted header naming the user behind an
//! authenticating proxy, and which sites may embed its pages.

use crate::error::Located;
use crate::raw::{RawUi, S};
use crate::validate::Validator;

#[derive(Debug, Clone, Default)]
pub struct UiSettings {
    /// A header an authenticating proxy in front of egret sets to the signed-in user
    /// (owner `user:<value>`), as Grafana's auth-proxy mode does; lower case.
    pub user_header: Option<String>,
    /// The only peers whose `user_header` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Origins allowed to embed the pages in a frame (`frame-ancestors`); none: no site.
    pub frame_ancestors: Vec<String>,
}

impl UiSettings {
    /// Whether `peer` may name the user in `user_header`.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        let peer = crate::canonical_ip(peer);
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

impl Validator<'_> {
    pub(crate) fn ui(&self, raw: &S<RawUi>) -> Result<UiSettings, Located> {
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
        Ok(UiSettings {
            user_header,
            trusted_proxies,
            frame_ancestors,
        })
    }
}
