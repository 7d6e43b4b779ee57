//! A declarative HMAC request signer: a [`Recipe`] names the parts that form the string
//! to sign, the algorithm and encoding, and where the timestamp and signature go. The
//! policy's `auth: hmac` connectors (and the built-in templates) are recipes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use http::header::HeaderName;
use http::request::Parts;
use http::uri::PathAndQuery;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::SignError;
use crate::encode::{hex, set_path_and_query, sha256_hex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

/// How bytes (the signature, or the key as stored) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
    /// The key only: used as its bytes.
    Raw,
}

/// One part of the string to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The timestamp egret set (see [`Timestamp`]).
    Timestamp,
    /// `GET`, `POST`, …
    Method,
    /// The URL path, as sent.
    Path,
    /// The query as sent (after the timestamp is set, without the signature), no `?`.
    Query,
    /// The path, and `?query` when there is one.
    PathAndQuery,
    /// The body's bytes.
    Body,
    /// The body's SHA-256, lower-case hex.
    BodySha256,
    /// A header's value (empty when absent).
    Header(String),
    /// Fixed text.
    Literal(String),
}

/// Where a value goes on the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A header, its value written after `prefix` (`sha256=`).
    Header { name: String, prefix: String },
    /// A query parameter, appended (any the sandbox sent is removed first).
    Query { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Milliseconds,
}

/// The timestamp egret sets on each signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    pub unit: TimeUnit,
    pub place: Place,
}

/// How a connector's requests are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub algorithm: Algorithm,
    /// How the signature is written.
    pub encoding: Encoding,
    /// How the stored key is read before use (`base64`: decoded first).
    pub key_encoding: Encoding,
    pub parts: Vec<Part>,
    /// Written between parts.
    pub separator: String,
    pub timestamp: Option<Timestamp>,
    pub signature: Place,
}

impl Recipe {
    /// Whether a part needs the body (the caller then reads it whole, bounded).
    pub fn reads_body(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Body | Part::BodySha256))
    }
}

/// Signs `parts` (with `body`) under `key` as `recipe` says, at `now_ms` (unix
/// milliseconds): sets the timestamp, removes any signature the sandbox sent, and puts
/// egret's in its place.
pub fn sign(
    parts: &mut Parts,
    body: &[u8],
    key: &SecretString,
    recipe: &Recipe,
    now_ms: u64,
) -> Result<(), SignError> {
    let timestamp = recipe.timestamp.as_ref().map(|t| match t.unit {
        TimeUnit::Seconds => (now_ms / 1000).to_string(),
        TimeUnit::Milliseconds => now_ms.to_string(),
    });
    remove(parts, &recipe.signature)?;
    if let (Some(t), Some(value)) = (&recipe.timestamp, &timestamp) {
        remove(parts, &t.place)?;
        put(parts, &t.place, value)?;
    }
    let text = string_to_sign(parts, body, recipe, timestamp.as_deref());
    let key = match recipe.key_encoding {
        Encoding::Base64 => {
            Zeroizing::new(STANDARD.decode(key.expose_secret().trim()).map_err(|_| {
                SignError::BadKey(
                    "the stored key is not base64, as the connector's key_encoding says",
                )
            })?)
        }
        Encoding::Hex | Encoding::Raw => Zeroizing::new(key.expose_secret().as_bytes().to_vec()),
    };
    let algorithm = match recipe.algorithm {
        Algorithm::Sha256 => aws_lc_rs::hmac::HMAC_SHA256,
        Algorithm::Sha512 => aws_lc_rs::hmac::HMAC_SHA512,
    };
    let mac = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(algorithm, &key), &text);
    let signature = match recipe.encoding {
        Encoding::Base64 => STANDARD.encode(mac.as_ref()),
        Encoding::Hex | Encoding::Raw => hex(mac.as_ref()),
    };
    put(parts, &recipe.signature, &signature)
}

/// The string to sign, as bytes (a body need not be text).
pub fn string_to_sign(
    parts: &Parts,
    body: &[u8],
    recipe: &Recipe,
    timestamp: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    for (i, part) in recipe.parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(recipe.separator.as_bytes());
        }
        match part {
            Part::Timestamp => out.extend_from_slice(timestamp.unwrap_or_default().as_bytes()),
            Part::Method => out.extend_from_slice(parts.method.as_str().as_bytes()),
            Part::Path => out.extend_from_slice(parts.uri.path().as_bytes()),
            Part::Query => out.extend_from_slice(parts.uri.query().unwrap_or_default().as_bytes()),
            Part::PathAndQuery => out.extend_from_slice(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/", PathAndQuery::as_str)
                    .as_bytes(),
            ),
            Part::Body => out.extend_from_slice(body),
            Part::BodySha256 => out.extend_from_slice(sha256_hex(body).as_bytes()),
            Part::Header(name) => {
                if let Some(v) = parts.headers.get(name.as_str()) {
                    out.extend_from_slice(v.as_bytes());
                }
            }
            Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
        }
    }
    out
}

/// Removes what stands at `place` (a header, or every query parameter of that name).
fn remove(parts: &mut Parts, place: &Place) -> Result<(), SignError> {
    match place {
        Place::Header { name, .. } => {
            parts.headers.remove(name.as_str());
            Ok(())
        }
        Place::Query { name } => {
            let Some(query) = parts.uri.query() else {
                return Ok(());
            };
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty() && p.split('=').next() != Some(name.as_str()))
                .collect();
            let path = parts.uri.path().to_owned();
            let text = if kept.is_empty() {
                path
            } else {
                format!("{path}?{}", kept.join("&"))
            };
            set_path_and_query(parts, text)
        }
    }
}

fn put(parts: &mut Parts, place: &Place, value: &str) -> Result<(), SignError> {
    match place {
        Place::Header { name, prefix } => {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SignError::BadKey("the signature header name is not valid"))?;
            let mut value = HeaderValue::from_str(&format!("{prefix}{value}"))
                .map_err(|_| SignError::BadKey("the signature is not a valid header value"))?;
            value.set_sensitive(true);
            parts.headers.insert(name, value);
            Ok(())
        }
        Place::Query { name } => {
            let pq = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
            let joiner = if parts.uri.query().is_some_and(|q| !q.is_empty()) {
                '&'
            } else if pq.ends_with('?') {
                ' '
            } else {
                '?'
            };
            let mut text = pq.to_owned();
            if joiner != ' ' {
                text.push(joiner);
            }
            let encoded =
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
            text.push_str(&format!("{name}={encoded}"));
            set_path_and_query(parts, text)
        }
    }
}

/// Built-in recipes for real APIs, each reproducing its vendor's documented example in
/// this crate's tests.
pub mod recipes {
    use super::*;

    /// Binance's `SIGNED` endpoints: `HMAC-SHA256(secret, query + body)`, hex, as the
    /// `signature` query parameter, with a `timestamp` (ms) parameter set first.
    pub fn binance() -> Recipe {
        Recipe {
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            key_encoding: Encoding::Raw,
            parts: vec![Part::Query, Part::Body],
            separator: String::new(),
            timestamp: Some(Timestamp {
                unit: TimeUnit::Milliseconds,
                place: Place::Query {
                    name: "timestamp".to_owned(),
                },
            }),
            signature: Place::Query {
                name: "signature".to_owned(),
            },
        }
    }

    /// GitHub-style webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC of the body>`.
    pub fn github_webhook() -> Recipe {
        Recipe {
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            key_encoding: Encoding::Raw,
            parts: vec![Part::Body],
            separator: String::new(),
            timestamp: None,
            signature: Place::Header {
                name: "x-hub-signature-256".to_owned(),
                prefix: "sha256=".to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str) -> Parts {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .expect("request")
            .into_parts()
            .0
    }

    /// Binance's documented example ("SIGNED Endpoint Examples for POST /api/v3/order",
    /// HMAC keys): the query string below signs to the signature their docs print.
    #[test]
    fn binance_documented_example_signs_byte_for_byte() {
        let secret = SecretString::from(
            "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j".to_owned(),
        );
        // The sandbox's SDK put its own timestamp and a signature made with a placeholder:
        // both are replaced.
        let mut p = parts(
            "POST",
            "https://api.binance.com/api/v3/order?symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1&signature=egp_placeholder",
        );
        sign(&mut p, b"", &secret, &recipes::binance(), 1_499_827_319_559).expect("sign");
        assert_eq!(
            p.uri.query().expect("query"),
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
    }

    /// The same example with the parameters in the body (Binance's "Example 2"): the
    /// string to sign is query + body, and the signature goes in the query.
    #[test]
    fn binance_signs_the_body_with_the_query() {
        let secret = SecretString::from(
            "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j".to_owned(),
        );
        let mut p = parts("POST", "https://api.binance.com/api/v3/order");
        let body = b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000";
        sign(
            &mut p,
            body,
            &secret,
            &recipes::binance(),
            1_499_827_319_559,
        )
        .expect("sign");
        // HMAC-SHA256 of "timestamp=1499827319559" + the body, computed with Python's hmac.
        assert_eq!(
            p.uri.query().expect("query"),
            "timestamp=1499827319559&signature=4ec8fd8ed2512d79b71064a37c946eb99700673bf09e9feafe7cd5f968455b17"
        );
    }

    /// GitHub's documented test values ("Validating webhook deliveries"): secret
    /// `It's a Secret to Everybody`, payload `Hello, World!`.
    #[test]
    fn github_webhook_documented_example_signs_byte_for_byte() {
        let secret = SecretString::from("It's a Secret to Everybody".to_owned());
        let mut p = parts("POST", "https://hooks.example.com/in");
        p.headers.insert(
            "x-hub-signature-256",
            HeaderValue::from_static("sha256=egp_placeholder"),
        );
        sign(
            &mut p,
            b"Hello, World!",
            &secret,
            &recipes::github_webhook(),
            0,
        )
        .expect("sign");
        assert_eq!(
            p.headers["x-hub-signature-256"],
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn a_key_that_is_not_base64_is_a_clear_error() {
        let mut recipe = recipes::github_webhook();
        recipe.key_encoding = Encoding::Base64;
        let mut p = parts("POST", "https://x/");
        let err = sign(
            &mut p,
            b"",
            &SecretString::from("not base64!".to_owned()),
            &recipe,
            0,
        )
        .expect_err("refused");
        assert!(matches!(err, SignError::BadKey(_)));
    }
}
