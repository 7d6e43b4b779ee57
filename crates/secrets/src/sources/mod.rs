//! One module per kind of store; each turns a reference into a request to the store's
//! own HTTP API and its answer into the value.

pub(crate) mod aws_sm;
pub(crate) mod gcp_sm;
pub(crate) mod op;
pub(crate) mod vault;

use egret_oauth::{HttpClient, HttpError};
use egret_policy::{ExternalRef, Policy, Scheme};
use secrecy::SecretString;

use crate::{Secrets, SourceError};

pub(crate) async fn fetch(
    secrets: &Secrets,
    client: &HttpClient,
    policy: &Policy,
    reference: &ExternalRef,
) -> Result<SecretString, SourceError> {
    let s = &policy.secret_sources;
    let missing = || {
        let source = reference.scheme.source();
        SourceError::new(
            source,
            format!("no `secret_sources.{source}` is configured"),
        )
    };
    match reference.scheme {
        Scheme::Vault => {
            let source = s.vault.as_ref().ok_or_else(missing)?;
            vault::fetch(&secrets.vault_login, client, source, &reference.path).await
        }
        Scheme::AwsSm => {
            let source = s.aws_sm.as_ref().ok_or_else(missing)?;
            aws_sm::fetch(&secrets.aws_keys, client, source, &reference.path).await
        }
        Scheme::GcpSm => {
            let source = s.gcp_sm.as_ref().ok_or_else(missing)?;
            gcp_sm::fetch(client, source, &reference.path).await
        }
        Scheme::Op => {
            let source = s.op.as_ref().ok_or_else(missing)?;
            op::fetch(client, source, &reference.path).await
        }
    }
}

/// A source's configured token, read now (a file or variable may change).
pub(crate) fn token(
    source: &'static str,
    reference: &egret_policy::SecretRef,
) -> Result<SecretString, SourceError> {
    match reference.read() {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(SourceError::new(
            source,
            format!("its token {reference} does not resolve (unset, empty or missing)"),
        )),
        Err(e) => Err(SourceError::new(
            source,
            format!("its token {reference} cannot be read: {e}"),
        )),
    }
}

/// A transport failure, said plainly.
pub(crate) fn transport(source: &'static str, e: HttpError) -> SourceError {
    SourceError::new(source, e.to_string())
}

/// The JSON answer of a successful call; a refusal named by its status otherwise.
pub(crate) fn json(
    source: &'static str,
    what: &str,
    answer: http::Response<Vec<u8>>,
) -> Result<serde_json::Value, SourceError> {
    let status = answer.status();
    if !status.is_success() {
        let why = match status.as_u16() {
            401 | 403 => format!(
                "{what}: access denied (HTTP {status}); check the source's token and its permissions"
            ),
            404 => format!("{what}: not found (HTTP 404)"),
            _ => format!("{what}: HTTP {status}"),
        };
        return Err(SourceError::new(source, why));
    }
    serde_json::from_slice(answer.body())
        .map_err(|_| SourceError::new(source, format!("{what}: the answer is not JSON")))
}

/// A string field of a JSON object, or why not.
pub(crate) fn field(
    source: &'static str,
    object: &serde_json::Value,
    name: &str,
    what: &str,
) -> Result<SecretString, SourceError> {
    match object.get(name) {
        Some(serde_json::Value::String(v)) if !v.is_empty() => Ok(SecretString::from(v.clone())),
        Some(serde_json::Value::String(_)) => Err(SourceError::new(
            source,
            format!("{what}: field `{name}` is empty"),
        )),
        Some(_) => Err(SourceError::new(
            source,
            format!("{what}: field `{name}` is not a string"),
        )),
        None => Err(SourceError::new(
            source,
            format!("{what} has no field `{name}`"),
        )),
    }
}

pub(crate) fn request(
    method: http::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    source: &'static str,
) -> Result<http::Request<Vec<u8>>, SourceError> {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body)
        .map_err(|_| SourceError::new(source, "the request to the source could not be built (an address or a header that is not valid)"))
}

/// RFC 3986 unreserved characters stay bare in a path segment; the rest is `%XX`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}
