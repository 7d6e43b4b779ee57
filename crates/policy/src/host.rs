//! Host patterns: the one place that decides whether a request's host is named by a rule.

use std::fmt;
use std::net::IpAddr;

/// An egress or allow-list entry: `api.x.com`, `*.x.com`, either optionally with `:port`.
///
/// Names only: an IP literal is never a pattern, and an IP literal host never matches a
/// name (a CONNECT to `127.0.0.1` must not pass because some name resolves there).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    name: NamePattern,
    port: Option<u16>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum NamePattern {
    Exact(String),
    /// Holds the suffix with its leading dot (`.x.com`) so a match is one `ends_with`.
    AnySubdomain(String),
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        format!("`{text}` has an invalid port; expected a number 1-65535")
                    })?;
                (host, Some(port))
            }
            None => (text, None),
        };
        let host = host.to_ascii_lowercase();
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, host.clone()),
        };
        if name.parse::<IpAddr>().is_ok() || name.starts_with('[') {
            return Err(format!(
                "`{text}` is an IP address; egress entries are host names (`api.example.com` or `*.example.com`), and addresses go in network.allow as an address or CIDR block (any port)"
            ));
        }
        if !is_dns_name(&name) {
            return Err(format!(
                "`{text}` is not a host name; expected `api.example.com` or `*.example.com`, optionally with `:port`"
            ));
        }
        let name = if wildcard {
            NamePattern::AnySubdomain(format!(".{name}"))
        } else {
            NamePattern::Exact(name)
        };
        Ok(Self { name, port })
    }

    /// The DNS name this pattern stands for, without wildcard or port: `api.x.com`, or
    /// `x.com` for `*.x.com`.
    pub fn domain(&self) -> String {
        match &self.name {
            NamePattern::Exact(name) => name.clone(),
            NamePattern::AnySubdomain(suffix) => suffix.trim_start_matches('.').to_owned(),
        }
    }

    /// `host` must already be normalized with [`normalize_host`].
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        self.matches_name(host)
    }

    /// The name alone, whatever the port.
    pub fn matches_name(&self, host: &str) -> bool {
        match &self.name {
            NamePattern::Exact(name) => name == host,
            NamePattern::AnySubdomain(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            NamePattern::Exact(name) => f.write_str(name)?,
            NamePattern::AnySubdomain(suffix) => write!(f, "*{suffix}")?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Lower-cases a host and drops one trailing dot, so `API.x.com.` and `api.x.com` are one host.
pub fn normalize_host(host: &str) -> String {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

/// `network.allow` address rules: `10.1.2.3`, `10.0.0.0/8`, `fd00::/8`, `[::1]`.
/// `None` when `text` is not meant as an address (then it is a host pattern).
pub fn parse_ip_rule(text: &str) -> Option<Result<ipnet::IpNet, String>> {
    let text = text.trim();
    let bare = text
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(Ok(ipnet::IpNet::from(canonical_ip(ip))));
    }
    let (addr, prefix) = bare.split_once('/')?;
    addr.parse::<IpAddr>().ok()?;
    Some(match format!("{addr}/{prefix}").parse::<ipnet::IpNet>() {
        Ok(net) => Ok(net.trunc()),
        Err(_) => Err(format!(
            "`{text}` is not a valid CIDR block; expected an address and a prefix length, like 10.0.0.0/8 or fd00::/8"
        )),
    })
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`) as the IPv4 address it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address an IP-literal host names (brackets allowed), if it is one.
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().ok()
}

/// True when `host` is an IP literal (v4, or v6 with or without brackets).
pub fn is_ip_literal(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok()
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).expect("valid pattern")
    }

    #[test]
    fn exact_matches_only_itself() {
        assert!(p("api.x.com").matches("api.x.com", 443));
        assert!(!p("api.x.com").matches("x.api.x.com", 443));
        assert!(!p("api.x.com").matches("x.com", 443));
    }

    #[test]
    fn wildcard_needs_at_least_one_label() {
        assert!(p("*.x.com").matches("a.x.com", 443));
        assert!(p("*.x.com").matches("a.b.x.com", 443));
        assert!(!p("*.x.com").matches("x.com", 443));
        assert!(!p("*.x.com").matches("evilx.com", 443));
        assert!(!p("*.x.com").matches(".x.com", 443));
    }

    #[test]
    fn port_restricts_when_given() {
        assert!(p("api.x.com:8443").matches("api.x.com", 8443));
        assert!(!p("api.x.com:8443").matches("api.x.com", 443));
        assert!(p("api.x.com").matches("api.x.com", 8443));
    }

    #[test]
    fn ip_literals_are_refused_as_patterns() {
        assert!(HostPattern::parse("127.0.0.1").is_err());
        assert!(HostPattern::parse("[::1]:443").is_err());
        assert!(HostPattern::parse("bad host").is_err());
        assert!(HostPattern::parse("api.x.com:0").is_err());
        assert!(is_ip_literal("[::1]"));
        assert!(is_ip_literal("10.0.0.1"));
        assert!(!is_ip_literal("api.x.com"));
    }

    #[test]
    fn normalize_folds_case_and_trailing_dot() {
        assert_eq!(normalize_host("API.X.com."), "api.x.com");
        assert_eq!(p("API.X.COM").to_string(), "api.x.com");
    }
}
