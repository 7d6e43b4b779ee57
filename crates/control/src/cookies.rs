//! The cookies egret sets, one way: over https each is named with the `__Host-` prefix
//! (a browser then takes it only from a secure origin, for this host alone, never from a
//! subdomain, and only with `Path=/`) and is `Secure`; over plain http it keeps its own
//! name and path.

use axum::http::{HeaderMap, HeaderValue, header};

/// One cookie: its name, where it is sent over plain http, and its `SameSite`.
#[derive(Debug, Clone, Copy)]
pub struct Cookie {
    pub name: &'static str,
    pub path: &'static str,
    pub same_site: &'static str,
}

impl Cookie {
    /// Its name as set and read: `__Host-` + name when `secure`.
    pub fn name(&self, secure: bool) -> String {
        if secure {
            format!("__Host-{}", self.name)
        } else {
            self.name.to_owned()
        }
    }

    /// `Set-Cookie` for `value` (`None` clears it) for `max_age` seconds.
    pub fn set(&self, value: Option<&str>, max_age: u64, secure: bool) -> HeaderValue {
        let (path, flag) = if secure {
            ("/", "; Secure")
        } else {
            (self.path, "")
        };
        let (value, max_age) = value.map_or(("", 0), |v| (v, max_age));
        let text = format!(
            "{}={value}; HttpOnly; SameSite={}; Path={path}; Max-Age={max_age}{flag}",
            self.name(secure),
            self.same_site
        );
        // Built from base64url text and fixed words: always a valid header value.
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Its value in the request, if it carries it.
    pub fn read(&self, headers: &HeaderMap, secure: bool) -> Option<String> {
        let wanted = self.name(secure);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Cookie = Cookie {
        name: "egret_ui",
        path: "/ui",
        same_site: "Strict",
    };

    #[test]
    fn over_https_a_cookie_is_a_host_cookie() {
        let set = C.set(Some("v"), 60, true);
        assert_eq!(
            set.to_str().expect("text"),
            "__Host-egret_ui=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=60; Secure"
        );
        let set = C.set(Some("v"), 60, false);
        assert_eq!(
            set.to_str().expect("text"),
            "egret_ui=v; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=60"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("egret_ui=plain; __Host-egret_ui=host"),
        );
        assert_eq!(C.read(&h, true).as_deref(), Some("host"));
        assert_eq!(C.read(&h, false).as_deref(), Some("plain"));
        assert!(
            C.set(None, 60, true)
                .to_str()
                .expect("text")
                .contains("Max-Age=0")
        );
    }
}
