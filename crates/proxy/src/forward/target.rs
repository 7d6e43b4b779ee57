//! The request head as it goes upstream: hop-by-hop headers gone (an upgrade's kept),
//! `Host` left to the client (it writes `Host` or `:authority` from the URI), and the
//! URI rebuilt once as `https://` + the tunnel's authority + the path and query.

use http::request::Parts;
use http::uri::{PathAndQuery, Scheme};
use http::{Uri, Version};

use crate::binding::Bound;
use crate::hop;
use crate::refusal::Refusal;

/// Prepares `parts` for the pooled client; true when it is an HTTP/1.1 upgrade
/// (WebSocket), which keeps its `Connection: upgrade` and `Upgrade`.
pub(super) fn upstream_head(parts: &mut Parts, bound: &Bound) -> Result<bool, Refusal> {
    let upgrade = parts.version == Version::HTTP_11 && hop::is_upgrade(&parts.headers);
    hop::strip(&mut parts.headers, upgrade);
    parts.headers.remove(http::header::HOST);
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTPS)
        .authority(bound.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| Refusal::bad_request("the request target is not a valid URI"))?;
    // The version stays the sandbox's: `Upstream::request` picks the pool by it.
    Ok(upgrade)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(version: Version, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().version(version).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn an_origin_form_h1_request_goes_out_absolute_without_hop_headers() {
        let bound = Bound::new("api.x.com".into(), 8443).expect("bound");
        let mut p = parts(
            Version::HTTP_11,
            "/v1/items?q=1",
            &[
                ("host", "api.x.com:8443"),
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("te", "gzip"),
            ],
        );
        assert!(!upstream_head(&mut p, &bound).expect("head"));
        assert_eq!(p.uri, "https://api.x.com:8443/v1/items?q=1");
        assert_eq!(p.version, Version::HTTP_11);
        for gone in ["host", "connection", "x-hop", "te"] {
            assert!(!p.headers.contains_key(gone), "{gone}");
        }
    }

    #[test]
    fn an_h2_request_keeps_its_path_and_a_websocket_keeps_its_upgrade() {
        let bound = Bound::new("api.x.com".into(), 443).expect("bound");
        let mut p = parts(Version::HTTP_2, "https://api.x.com/s", &[]);
        assert!(!upstream_head(&mut p, &bound).expect("h2"));
        assert_eq!(p.uri, "https://api.x.com/s");
        assert_eq!(p.version, Version::HTTP_2, "the pool is picked by it");
        let mut ws = parts(
            Version::HTTP_11,
            "/ws",
            &[("connection", "Upgrade"), ("upgrade", "websocket")],
        );
        assert!(upstream_head(&mut ws, &bound).expect("ws"));
        assert_eq!(ws.headers["upgrade"], "websocket");
        assert_eq!(ws.headers["connection"], "upgrade");
    }
}
