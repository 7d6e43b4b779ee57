//! AWS signatures on a request: the key id of a SigV4 signature is egret's placeholder,
//! checked like any other (the re-signing comes after the swap, with the body:
//! `forward::signed`); toward an AWS connector's host any other key id, and Signature
//! Version 2, are refused.

use std::borrow::Cow;
use std::sync::LazyLock;

use egret_policy::{AuthKind, Connector};
use http::header::AUTHORIZATION;
use http::request::Parts;
use memchr::memmem;
use secrecy::ExposeSecret;

use super::{Destination, Field, Halt, Lookup, SwapReport, check, record};
use crate::refusal::Refusal;

/// Checks the AWS signature `parts` carries, if any (cheaply skipped when none).
pub(super) fn signature(
    parts: &Parts,
    dest: Destination<'_>,
    lookup: &Lookup<'_>,
    report: &mut SwapReport,
) -> Result<(), Halt> {
    if !may_be_aws_signed(parts) {
        return Ok(());
    }
    if let Some((key_id, _)) = egret_signing::sigv4::access_key_id(parts) {
        aws_key_id(key_id, dest, lookup, report)
    } else if egret_signing::sigv4::signed_v2(parts) {
        refuse_sigv2(dest, lookup)
    } else {
        Ok(())
    }
}

/// Cheap: whether the request may carry an AWS signature (an Authorization header that
/// starts `AWS`, a query that names an AWS credential); only then is it read.
fn may_be_aws_signed(parts: &Parts) -> bool {
    parts
        .headers
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS"))
        || parts.uri.query().is_some_and(|q| {
            AWS_CREDENTIAL_FINDER.find(q.as_bytes()).is_some()
                || AWS_V2_FINDER.find(q.as_bytes()).is_some()
        })
}

static AWS_CREDENTIAL_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"X-Amz-Credential="));
static AWS_V2_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"AWSAccessKeyId="));

/// The AWS connector whose hosts include `dest`, if any.
fn aws_connector<'p>(dest: Destination<'_>, lookup: &Lookup<'p>) -> Option<&'p Connector> {
    lookup
        .policy
        .connectors
        .iter()
        .find(|c| matches!(c.auth, AuthKind::AwsSigV4(_)) && c.serves(dest.host, dest.port))
}

/// An AWS Signature Version 2 request toward an AWS connector: egret signs only
/// Version 4 (AWS itself retired Version 2 for S3).
fn refuse_sigv2(dest: Destination<'_>, lookup: &Lookup<'_>) -> Result<(), Halt> {
    match aws_connector(dest, lookup) {
        Some(c) => Err(Refusal::signature_invalid(
            c.id.as_str(),
            "it is signed with AWS Signature Version 2, which egret does not sign; use Version 4 (boto3: Config(signature_version=\"s3v4\"))",
        )
        .into()),
        None => Ok(()),
    }
}

/// The key id of a SigV4 signature: an AWS placeholder egret gave, checked like any
/// placeholder; toward an AWS connector's host, any other key id is refused (the
/// request would go out signed with keys egret did not give).
fn aws_key_id(
    key_id: &str,
    dest: Destination<'_>,
    lookup: &Lookup<'_>,
    report: &mut SwapReport,
) -> Result<(), Halt> {
    if !egret_vault::is_aws_key_id(key_id) {
        if let Some(c) = aws_connector(dest, lookup) {
            return Err(Refusal::signature_invalid(
                c.id.as_str(),
                "it is signed with an access key id egret did not give; sign with the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from `egret sandbox-env`",
            )
            .into());
        }
        return Ok(());
    }
    let found = check(key_id.as_bytes(), Field::SigV4, dest, lookup)?;
    let credential = &found.resolved.credential;
    // The real key id and session token go on the wire: answers are scanned for them.
    for input in ["access_key_id", "session_token"] {
        if let Some(value) = credential.value(Some(input)) {
            report.echo(value.expose_secret().as_bytes(), key_id.as_bytes());
        }
    }
    record(report, &found, Cow::Borrowed("aws sigv4"));
    Ok(())
}
