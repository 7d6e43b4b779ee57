//! The canonical request: method, URI, query, signed headers, payload — each written the
//! way AWS's documentation says, so a signature computed here matches the SDK's.

use http::request::Parts;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::Signed;
use crate::SignError;

/// RFC 3986 unreserved characters stay bare; everything else is `%XX`, upper case.
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same, leaving `/` bare: for URI paths.
const AWS_PATH: &AsciiSet = &AWS_ENCODE.remove(b'/');

/// The canonical request of `parts` for `signed`, ending with the `payload` literal.
pub fn canonical_request(
    parts: &Parts,
    signed: &Signed,
    payload: &str,
) -> Result<String, SignError> {
    let mut out = String::with_capacity(512);
    out.push_str(parts.method.as_str());
    out.push('\n');
    out.push_str(&canonical_uri(parts.uri.path(), &signed.service));
    out.push('\n');
    out.push_str(&canonical_query(
        parts.uri.query().unwrap_or_default(),
        signed.placement == super::Placement::Query,
    ));
    out.push('\n');
    for name in &signed.signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&header_value(parts, name)?);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload);
    Ok(out)
}

/// S3 signs the path as sent; every other service the path with `.`/`..` segments
/// resolved, encoded once more.
fn canonical_uri(path: &str, service: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    if service == "s3" || service == "s3-object-lambda" || service == "s3express" {
        return path.to_owned();
    }
    let normalized = remove_dot_segments(path);
    utf8_percent_encode(&normalized, AWS_PATH).to_string()
}

/// RFC 3986 section 5.2.4, with a trailing slash kept where the path had one.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut joined = out.join("/");
    if !joined.starts_with('/') {
        joined.insert(0, '/');
    }
    if (path.ends_with("/.") || path.ends_with("/..")) && !joined.ends_with('/') {
        joined.push('/');
    }
    joined
}

/// The query's parameters, decoded (`+` stays `+`: AWS SDKs encode spaces as `%20`).
pub(crate) fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

/// Each parameter encoded the AWS way, sorted by name then value; a presigned URL's
/// own signature left out.
fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_params(query)
        .into_iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (encode(&k), encode(&v)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, AWS_ENCODE).to_string()
}

/// A signed header's canonical value: every value of it, trimmed, inner runs of spaces
/// made one, joined with `,`. `host` falls back to the URI's authority (HTTP/2).
fn header_value(parts: &Parts, name: &str) -> Result<String, SignError> {
    let mut values = parts.headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        if name == "host"
            && let Some(authority) = parts.uri.authority()
        {
            return Ok(authority.as_str().to_owned());
        }
        return Err(SignError::Malformed("a signed header is missing"));
    }
    let mut out = String::new();
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = String::from_utf8_lossy(value.as_bytes());
        let mut last_space = false;
        for c in text.trim().chars() {
            if c == ' ' {
                if !last_space {
                    out.push(c);
                }
                last_space = true;
            } else {
                out.push(c);
                last_space = false;
            }
        }
    }
    Ok(out)
}

/// Replaces the request's query with `params`, encoded the AWS way (so what is sent is
/// what was signed).
pub(crate) fn set_query(parts: &mut Parts, params: &[(String, String)]) -> Result<(), SignError> {
    let mut text = parts.uri.path().to_owned();
    for (i, (k, v)) in params.iter().enumerate() {
        text.push(if i == 0 { '?' } else { '&' });
        text.push_str(&encode(k));
        text.push('=');
        text.push_str(&encode(v));
    }
    crate::encode::set_path_and_query(parts, text)
}
