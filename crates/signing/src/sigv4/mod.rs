//! AWS Signature Version 4, as a proxy needs it: read the signature on a request, check
//! it was made with the placeholder keys, and sign the same request with the real ones.
//!
//! The canonical request follows AWS's documentation ("Create a canonical request for
//! IAM"): the URI path encoded twice and normalized, except for S3, which signs it as
//! sent; the query decoded and encoded again, sorted; the signed headers trimmed; the
//! payload as `x-amz-content-sha256` names it, else the body's SHA-256.

mod canonical;
pub mod chunks;
#[cfg(test)]
mod tests;

use http::HeaderValue;
use http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::SignError;
use crate::encode::{hex, sha256_hex};

pub use canonical::canonical_request;

/// The algorithm name every SigV4 signature starts with.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of a body the signature does not cover.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// An `aws-chunked` body whose every chunk is signed.
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// The same, with signed trailing headers (a checksum) after the last chunk.
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// An `aws-chunked` body with unsigned chunks and an unsigned trailer.
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// A key pair (and session token) to sign with.
pub struct Keys<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a SecretString,
    pub session_token: Option<&'a SecretString>,
}

/// Where a request carries its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    Header,
    /// A presigned URL: `X-Amz-Credential`, `X-Amz-Signature`, … in the query.
    Query,
}

/// A signature read off a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub placement: Placement,
    pub access_key_id: String,
    /// `YYYYMMDD`, from the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// `YYYYMMDDTHHMMSSZ`, from `x-amz-date` (or `X-Amz-Date` in the query).
    pub amz_date: String,
    /// Lower-case, in the order given.
    pub signed_headers: Vec<String>,
    /// Lower-case hex.
    pub signature: String,
}

impl Signed {
    /// `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// How the request's body is covered, from `x-amz-content-sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The literal the canonical request ends with (`UNSIGNED-PAYLOAD`, a hex hash,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`): the body goes on as it is.
    Literal(String),
    /// Chunks signed one by one, each re-signed on the way (`-TRAILER`: and the trailer).
    SignedChunks { trailer: bool },
    /// Nothing names it: the body's SHA-256, which needs the body whole.
    BodyHash,
}

impl Payload {
    /// The payload literal in the canonical request, given the body's hash where needed.
    fn literal<'a>(&'a self, body_hash: Option<&'a str>) -> Result<&'a str, SignError> {
        match self {
            Self::Literal(l) => Ok(l),
            Self::SignedChunks { trailer: false } => Ok(STREAMING_SIGNED),
            Self::SignedChunks { trailer: true } => Ok(STREAMING_SIGNED_TRAILER),
            Self::BodyHash => body_hash.ok_or(SignError::Malformed("the body hash is missing")),
        }
    }
}

/// The access key id a request was signed with, if it carries a SigV4 signature: what
/// the swap looks up. Cheap; [`read`] parses the rest.
pub fn access_key_id(parts: &Parts) -> Option<(&str, Placement)> {
    if let Some(value) = parts.headers.get(http::header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
        && let Some(rest) = text.strip_prefix(ALGORITHM)
    {
        let credential = field(rest, "Credential")?;
        return Some((credential.split('/').next()?, Placement::Header));
    }
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if !k.eq_ignore_ascii_case("X-Amz-Credential") {
            return None;
        }
        // `AKIA…%2F20240101%2F…`: the key id is the part before the first slash.
        let end = v.find(['/', '%']).unwrap_or(v.len());
        Some((&v[..end], Placement::Query))
    })
}

/// True when `parts` carries an AWS Signature Version 2 (`Authorization: AWS KEY:SIG`,
/// or a presigned `AWSAccessKeyId=…&Signature=…` query).
pub fn signed_v2(parts: &Parts) -> bool {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS ") && v.as_bytes().contains(&b':'));
    header
        || parts.uri.query().is_some_and(|q| {
            q.split('&').any(|p| p.starts_with("AWSAccessKeyId="))
                && q.split('&').any(|p| p.starts_with("Signature="))
        })
}

/// The SigV4 signature on `parts`; `Ok(None)` when it carries none.
pub fn read(parts: &Parts) -> Result<Option<Signed>, SignError> {
    match access_key_id(parts) {
        None => Ok(None),
        Some((_, Placement::Header)) => read_header(parts).map(Some),
        Some((_, Placement::Query)) => read_query(parts).map(Some),
    }
}

fn read_header(parts: &Parts) -> Result<Signed, SignError> {
    let text = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(ALGORITHM))
        .ok_or(SignError::Malformed("no Authorization header"))?;
    let credential = field(text, "Credential").ok_or(SignError::Malformed("no Credential"))?;
    let signed_headers =
        field(text, "SignedHeaders").ok_or(SignError::Malformed("no SignedHeaders"))?;
    let signature = field(text, "Signature").ok_or(SignError::Malformed("no Signature"))?;
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or(SignError::Malformed(
            "no x-amz-date header (a Date header alone is not supported)",
        ))?;
    signed(
        Placement::Header,
        credential,
        signed_headers,
        signature,
        amz_date,
    )
}

fn read_query(parts: &Parts) -> Result<Signed, SignError> {
    let params = canonical::query_params(parts.uri.query().unwrap_or_default());
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(SignError::Malformed(
            "X-Amz-Algorithm is not AWS4-HMAC-SHA256",
        ));
    }
    signed(
        Placement::Query,
        get("X-Amz-Credential").ok_or(SignError::Malformed("no X-Amz-Credential"))?,
        get("X-Amz-SignedHeaders").ok_or(SignError::Malformed("no X-Amz-SignedHeaders"))?,
        get("X-Amz-Signature").ok_or(SignError::Malformed("no X-Amz-Signature"))?,
        get("X-Amz-Date").ok_or(SignError::Malformed("no X-Amz-Date"))?,
    )
}

fn signed(
    placement: Placement,
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: &str,
) -> Result<Signed, SignError> {
    let mut scope = credential.split('/');
    let (Some(akid), Some(date), Some(region), Some(service), Some("aws4_request"), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(SignError::Malformed(
            "Credential is not KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if date.len() != 8 || !digits(date) {
        return Err(SignError::Malformed(
            "the credential scope's date is not YYYYMMDD",
        ));
    }
    if amz_date.len() != 16 || !amz_date.starts_with(date) || !amz_date.ends_with('Z') {
        return Err(SignError::Malformed(
            "x-amz-date is not YYYYMMDDTHHMMSSZ of the scope's day",
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignError::Malformed("Signature is not 64 hex digits"));
    }
    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .map(str::to_ascii_lowercase)
        .collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(SignError::Malformed("SignedHeaders has an empty name"));
    }
    Ok(Signed {
        placement,
        access_key_id: akid.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        amz_date: amz_date.to_owned(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// `name=value` from the comma-separated fields of an Authorization header.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split(',').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v.trim())
    })
}

/// How the body of a request signed as `signed` is covered.
pub fn payload(parts: &Parts, signed: &Signed) -> Result<Payload, SignError> {
    let given = match signed.placement {
        Placement::Header => parts
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        Placement::Query => canonical::query_params(parts.uri.query().unwrap_or_default())
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("X-Amz-Content-Sha256"))
            .map(|(_, v)| v),
    };
    let Some(given) = given else {
        // A presigned S3 URL covers no body; every other request signs the body's hash.
        return Ok(
            if signed.placement == Placement::Query && signed.service == "s3" {
                Payload::Literal(UNSIGNED_PAYLOAD.to_owned())
            } else {
                Payload::BodyHash
            },
        );
    };
    let is_hash = given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit());
    match given.as_str() {
        _ if is_hash => Ok(Payload::Literal(given)),
        UNSIGNED_PAYLOAD | STREAMING_UNSIGNED_TRAILER => Ok(Payload::Literal(given)),
        STREAMING_SIGNED => Ok(Payload::SignedChunks { trailer: false }),
        STREAMING_SIGNED_TRAILER => Ok(Payload::SignedChunks { trailer: true }),
        _ => Err(SignError::UnsupportedPayload(given)),
    }
}

/// What re-signing a request yields for its body: the seed signatures a signed
/// `aws-chunked` body chains from.
#[derive(Clone)]
pub struct Resigned {
    pub amz_date: String,
    pub scope: String,
    /// The sandbox's signature (made with the placeholder keys).
    pub placeholder_seed: String,
    /// The signature egret put on the request.
    pub real_seed: String,
    pub placeholder_key: Zeroizing<Vec<u8>>,
    pub real_key: Zeroizing<Vec<u8>>,
}

/// Checks that `parts` was signed (as `signed` says) with `placeholder`, then signs it
/// again with `real`: the key id, the session token and the signature replaced in the
/// header or the query. `body_hash`: the body's hex SHA-256 where the payload is
/// [`Payload::BodyHash`].
pub fn resign(
    parts: &mut Parts,
    signed: &Signed,
    payload: &Payload,
    body_hash: Option<&str>,
    placeholder: &Keys<'_>,
    real: &Keys<'_>,
) -> Result<Resigned, SignError> {
    let literal = payload.literal(body_hash)?;
    let scope = signed.scope();
    let placeholder_key = signing_key(placeholder.secret_access_key, signed);
    let canonical = canonical_request(parts, signed, literal)?;
    let expected = signature(&placeholder_key, &signed.amz_date, &scope, &canonical);
    if !bool::from(expected.as_bytes().ct_eq(signed.signature.as_bytes())) {
        return Err(SignError::Mismatch);
    }
    let real_key = signing_key(real.secret_access_key, signed);
    let real_seed = match signed.placement {
        Placement::Header => resign_header(parts, signed, literal, &real_key, real)?,
        Placement::Query => resign_query(parts, signed, literal, &real_key, real)?,
    };
    Ok(Resigned {
        amz_date: signed.amz_date.clone(),
        scope,
        placeholder_seed: signed.signature.clone(),
        real_seed,
        placeholder_key,
        real_key,
    })
}

const SECURITY_TOKEN: &str = "x-amz-security-token";

fn resign_header(
    parts: &mut Parts,
    signed: &Signed,
    literal: &str,
    key: &[u8],
    real: &Keys<'_>,
) -> Result<String, SignError> {
    let mut signed = signed.clone();
    // The sandbox holds no session token; the real one (if any) goes on, signed.
    parts.headers.remove(SECURITY_TOKEN);
    signed.signed_headers.retain(|h| h != SECURITY_TOKEN);
    if let Some(token) = real.session_token {
        let mut value = HeaderValue::from_str(token.expose_secret())
            .map_err(|_| SignError::BadKey("the session token is not a valid header value"))?;
        value.set_sensitive(true);
        parts.headers.insert(SECURITY_TOKEN, value);
        signed.signed_headers.push(SECURITY_TOKEN.to_owned());
        signed.signed_headers.sort();
    }
    let canonical = canonical_request(parts, &signed, literal)?;
    let signature = signature(key, &signed.amz_date, &signed.scope(), &canonical);
    set_authorization(parts, real.access_key_id, &signed, &signature)?;
    Ok(signature)
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
fn set_authorization(
    parts: &mut Parts,
    access_key_id: &str,
    signed: &Signed,
    signature: &str,
) -> Result<(), SignError> {
    let header = format!(
        "{ALGORITHM} Credential={access_key_id}/{}, SignedHeaders={}, Signature={signature}",
        signed.scope(),
        signed.signed_headers.join(";"),
    );
    let mut value = HeaderValue::from_str(&header)
        .map_err(|_| SignError::BadKey("the access key id is not a valid header value"))?;
    value.set_sensitive(true);
    parts.headers.insert(http::header::AUTHORIZATION, value);
    Ok(())
}

fn resign_query(
    parts: &mut Parts,
    signed: &Signed,
    literal: &str,
    key: &[u8],
    real: &Keys<'_>,
) -> Result<String, SignError> {
    let mut params: Vec<(String, String)> =
        canonical::query_params(parts.uri.query().unwrap_or_default())
            .into_iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("X-Amz-Signature")
                    && !k.eq_ignore_ascii_case("X-Amz-Security-Token")
            })
            .collect();
    for (k, v) in &mut params {
        if k.eq_ignore_ascii_case("X-Amz-Credential") {
            *v = format!("{}/{}", real.access_key_id, signed.scope());
        }
    }
    if let Some(token) = real.session_token {
        params.push((
            "X-Amz-Security-Token".to_owned(),
            token.expose_secret().to_owned(),
        ));
    }
    canonical::set_query(parts, &params)?;
    let canonical = canonical_request(parts, signed, literal)?;
    let signature = signature(key, &signed.amz_date, &signed.scope(), &canonical);
    params.push(("X-Amz-Signature".to_owned(), signature.clone()));
    canonical::set_query(parts, &params)?;
    Ok(signature)
}

/// The derived signing key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
/// service), "aws4_request")`.
pub fn signing_key(secret: &SecretString, signed: &Signed) -> Zeroizing<Vec<u8>> {
    let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret.expose_secret().len()));
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret.expose_secret().as_bytes());
    let k_date = mac(&seed, signed.date.as_bytes());
    let k_region = mac(&k_date, signed.region.as_bytes());
    let k_service = mac(&k_region, signed.service.as_bytes());
    mac(&k_service, b"aws4_request")
}

/// The signature of `canonical` under `key`, lower-case hex.
pub fn signature(key: &[u8], amz_date: &str, scope: &str, canonical: &str) -> String {
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    hex(&mac(key, to_sign.as_bytes()))
}

pub(crate) fn mac(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    Zeroizing::new(aws_lc_rs::hmac::sign(&key, data).as_ref().to_vec())
}

/// Signs a request from scratch with `keys` (egret's own calls to AWS, such as Secrets
/// Manager): sets `x-amz-date`, `x-amz-content-sha256`, the session token and
/// `Authorization` over `host`, the `x-amz-*` headers and `content-type`.
pub fn sign_new(
    parts: &mut Parts,
    body: &[u8],
    keys: &Keys<'_>,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Result<(), SignError> {
    let hash = sha256_hex(body);
    let set = |parts: &mut Parts, name: &'static str, value: &str| {
        HeaderValue::from_str(value)
            .map(|v| {
                parts.headers.insert(name, v);
            })
            .map_err(|_| SignError::BadKey("a value is not a valid header value"))
    };
    set(parts, "x-amz-date", amz_date)?;
    set(parts, "x-amz-content-sha256", &hash)?;
    if let Some(token) = keys.session_token {
        set(parts, SECURITY_TOKEN, token.expose_secret())?;
    }
    let mut names: Vec<String> = parts
        .headers
        .keys()
        .map(|n| n.as_str().to_owned())
        .filter(|n| n == "host" || n == "content-type" || n.starts_with("x-amz-"))
        .collect();
    if !names.iter().any(|n| n == "host") {
        names.push("host".to_owned());
    }
    names.sort();
    names.dedup();
    let signed = Signed {
        placement: Placement::Header,
        access_key_id: keys.access_key_id.to_owned(),
        date: amz_date.get(..8).unwrap_or_default().to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        amz_date: amz_date.to_owned(),
        signed_headers: names,
        signature: String::new(),
    };
    let canonical = canonical_request(parts, &signed, &hash)?;
    let key = signing_key(keys.secret_access_key, &signed);
    let signature = signature(&key, amz_date, &signed.scope(), &canonical);
    set_authorization(parts, keys.access_key_id, &signed, &signature)
}
