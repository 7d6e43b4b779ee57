//! Host binding: the CONNECT authority, the TLS SNI and every request's `Host` /
//! `:authority` name one host, or the request is refused (superfly/tokenizer #56: a
//! tunnel to one host must never carry a credential toward another).

use http::request::Parts;
use http::uri::Authority;

use crate::refusal::Refusal;

/// The host a tunnel was opened to, as the CONNECT named it.
#[derive(Debug, Clone)]
pub struct Bound {
    pub host: String,
    pub port: u16,
    /// `host[:port]` (default port left out), built once for every request's URI.
    pub authority: Authority,
    /// The SNI the sandbox sent, when it named a different host.
    pub sni_mismatch: Option<String>,
    /// The sandbox that opened the tunnel (proxy authentication), if any.
    pub(crate) sandbox: Option<crate::proxy_auth::Sandbox>,
}

impl Bound {
    /// The id of the sandbox that opened the tunnel, if proxy authentication is on.
    pub fn sandbox_id(&self) -> Option<&str> {
        self.sandbox.as_ref().map(|s| &*s.id)
    }

    /// `None` when `host` cannot form an authority (the CONNECT parsed, so it can).
    pub fn new(host: String, port: u16) -> Option<Self> {
        let text = if port == 443 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let authority = text.parse().ok()?;
        Some(Self {
            host,
            port,
            authority,
            sni_mismatch: None,
            sandbox: None,
        })
    }
}

/// Refuses a request whose names disagree with the tunnel's.
pub fn check(parts: &Parts, bound: &Bound) -> Result<(), Refusal> {
    if let Some(sni) = &bound.sni_mismatch {
        return Err(Refusal::host_mismatch(
            bound.authority.as_str(),
            &format!("TLS SNI {sni}"),
        ));
    }
    if let Some(authority) = parts.uri.authority() {
        agrees(authority, bound)?;
    }
    match parts.headers.get(http::header::HOST) {
        // The usual case, the very authority of the CONNECT: nothing to parse.
        Some(value)
            if value
                .as_bytes()
                .eq_ignore_ascii_case(bound.authority.as_str().as_bytes()) =>
        {
            Ok(())
        }
        Some(value) => {
            let authority = value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<Authority>().ok())
                .ok_or_else(|| Refusal::bad_request("the Host header is not a valid host"))?;
            agrees(&authority, bound)
        }
        None if parts.uri.authority().is_none() => {
            Err(Refusal::bad_request("the request has no Host header"))
        }
        None => Ok(()),
    }
}

fn agrees(authority: &Authority, bound: &Bound) -> Result<(), Refusal> {
    // `bound.host` is normalized already: lowercase, no trailing dot.
    let host = authority.host();
    let same_host = host
        .strip_suffix('.')
        .unwrap_or(host)
        .eq_ignore_ascii_case(&bound.host);
    // A name without a port means the scheme's default; accept it for the tunnel's port,
    // which is how clients write Host for https on 443 and often on other ports too.
    let same_port = authority.port_u16().is_none_or(|p| p == bound.port);
    if same_host && same_port {
        Ok(())
    } else {
        Err(Refusal::host_mismatch(
            bound.authority.as_str(),
            authority.as_str(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host: Option<&str>) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        b.body(()).expect("request").into_parts().0
    }

    fn bound() -> Bound {
        Bound::new("api.x.com".into(), 8443).expect("bound")
    }

    #[test]
    fn agreeing_names_pass() {
        check(&parts("/p", Some("api.x.com:8443")), &bound()).expect("same");
        check(&parts("/p", Some("API.X.com")), &bound()).expect("no port");
        check(&parts("https://api.x.com:8443/p", None), &bound()).expect("h2 authority");
    }

    #[test]
    fn any_disagreement_is_refused() {
        for (uri, host) in [
            ("/p", Some("evil.x.com:8443")),
            ("/p", Some("api.x.com:443")),
            ("https://evil.x.com/p", Some("api.x.com")),
            ("https://api.x.com:8443/p", Some("evil.x.com")),
        ] {
            let e = check(&parts(uri, host), &bound()).expect_err("mismatch");
            assert_eq!(e.code, "host_mismatch", "{uri} {host:?}");
        }
        assert_eq!(
            check(&parts("/p", None), &bound())
                .expect_err("no host")
                .code,
            "bad_request"
        );
        let mut b = bound();
        b.sni_mismatch = Some("evil.x.com".into());
        assert_eq!(
            check(&parts("/p", Some("api.x.com")), &b)
                .expect_err("sni")
                .code,
            "host_mismatch"
        );
    }
}
