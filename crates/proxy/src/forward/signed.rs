//! Step 4c: credentials that are computed, not swapped in. A request to an AWS
//! connector carries the sandbox SDK's SigV4 signature made with placeholder keys:
//! checked, then signed again with the connection's keys (or a role's taken with
//! them). A request to an HMAC connector is signed with the connection's secret as its
//! recipe says. The body is read whole only where a signature covers it and nothing
//! names its hash (bounded); signed `aws-chunked` bodies are re-signed as they stream.

use bytes::Bytes;
use egret_policy::{AuthKind, AwsSettings, Connector, HmacRecipe, InputField};
use egret_signing::SignError;
use egret_signing::sigv4::{self, Keys, Payload, chunks::ChunkResigner};
use http::request::Parts;
use http_body_util::{BodyExt, Either, Full};
use secrecy::{ExposeSecret, SecretString};

use crate::Proxy;
use crate::refusal::Refusal;
use crate::sandbox_body::SandboxBody;
use crate::swap::{SwapReport, Swapped};
use crate::upstream::UpstreamBody;

/// The largest body read whole to hash or sign it.
const SIGNED_BODY_MAX: usize = 16 * 1024 * 1024;
/// The largest `aws-chunked` chunk held to re-sign it.
const CHUNK_MAX: usize = 16 * 1024 * 1024;

/// Signs the request where its connector computes its credential; otherwise returns
/// the body as it is.
pub(super) async fn sign(
    proxy: &Proxy,
    report: &SwapReport,
    parts: &mut Parts,
    body: UpstreamBody,
) -> Result<UpstreamBody, Refusal> {
    if !report.signing {
        return Ok(body);
    }
    let policy = proxy.policy.load();
    let found = report.swapped.iter().find_map(|s| {
        let c = policy.connector(s.connector())?;
        matches!(c.auth, AuthKind::AwsSigV4(_) | AuthKind::Hmac(_)).then_some((c, s))
    });
    let Some((connector, swapped)) = found else {
        return Ok(body);
    };
    match &connector.auth {
        AuthKind::AwsSigV4(aws) => aws_sigv4(proxy, connector, aws, swapped, parts, body).await,
        AuthKind::Hmac(recipe) => hmac(proxy, connector, recipe, swapped, parts, body).await,
        _ => Ok(body),
    }
}

async fn aws_sigv4(
    proxy: &Proxy,
    connector: &Connector,
    aws: &AwsSettings,
    swapped: &Swapped,
    parts: &mut Parts,
    body: UpstreamBody,
) -> Result<UpstreamBody, Refusal> {
    let id = connector.id.as_str();
    let invalid = |e: SignError| Refusal::signature_invalid(id, &e.to_string());
    let signed = sigv4::read(parts)
        .map_err(invalid)?
        .ok_or_else(|| Refusal::signature_invalid(id, "it carries no AWS signature"))?;
    let placeholder_secret = SecretString::from(
        proxy
            .vault
            .aws_secret_placeholder(&signed.access_key_id)
            .expose()
            .to_owned(),
    );
    let placeholder = Keys {
        access_key_id: &signed.access_key_id,
        secret_access_key: &placeholder_secret,
        session_token: None,
    };
    let credential = &swapped.credential;
    let missing = |input: &str| Refusal::input_missing(id, input);
    let stored_id = credential
        .value(Some("access_key_id"))
        .ok_or_else(|| missing("access_key_id"))?
        .expose_secret()
        .to_owned();
    let stored = Keys {
        access_key_id: &stored_id,
        secret_access_key: credential
            .value(Some("secret_access_key"))
            .ok_or_else(|| missing("secret_access_key"))?,
        session_token: credential
            .value(Some("session_token"))
            .filter(|t| !t.expose_secret().is_empty()),
    };
    let role_keys = match &aws.assume_role {
        None => None,
        Some(role) => Some(
            proxy
                .secrets
                .assume_role(role, &aws.region, &stored, proxy.clock.unix())
                .await
                .map_err(|e| Refusal::secret_source_failed(id, e.source_name, &e.why))?,
        ),
    };
    let real = match &role_keys {
        None => stored,
        Some((akid, secret, token)) => Keys {
            access_key_id: akid,
            secret_access_key: secret,
            session_token: Some(token),
        },
    };
    let payload = sigv4::payload(parts, &signed).map_err(invalid)?;
    let (body, hash) = match payload {
        Payload::BodyHash => {
            let bytes = whole(proxy, body, id, "its body's SHA-256").await?;
            let hash = egret_signing::sha256_hex(&bytes);
            (Either::Right(Full::new(bytes)), Some(hash))
        }
        _ => (body, None),
    };
    let resigned = sigv4::resign(
        parts,
        &signed,
        &payload,
        hash.as_deref(),
        &placeholder,
        &real,
    )
    .map_err(invalid)?;
    match payload {
        Payload::SignedChunks { trailer } => {
            let resigner = ChunkResigner::new(&resigned, trailer, CHUNK_MAX);
            match body {
                Either::Left(sandbox) => match sandbox.into_plain() {
                    Some(incoming) => Ok(Either::Left(SandboxBody::resigned(incoming, resigner))),
                    None => Err(Refusal::internal("a body was re-signed twice")),
                },
                // Read whole already (for rules or an approval): re-signed at once.
                Either::Right(full) => {
                    let bytes = full
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    let mut resigner = resigner;
                    let out = resigner.push(&bytes).map_err(invalid)?;
                    resigner.finish().map_err(invalid)?;
                    Ok(Either::Right(Full::new(out)))
                }
            }
        }
        _ => Ok(body),
    }
}

async fn hmac(
    proxy: &Proxy,
    connector: &Connector,
    recipe: &HmacRecipe,
    swapped: &Swapped,
    parts: &mut Parts,
    body: UpstreamBody,
) -> Result<UpstreamBody, Refusal> {
    let id = connector.id.as_str();
    let signer = connector
        .inputs
        .iter()
        .find(|i| i.inject == InputField::Sign)
        .ok_or_else(|| Refusal::input_missing(id, "secret"))?;
    let key = swapped
        .credential
        .value(Some(&signer.name))
        .filter(|k| !k.expose_secret().is_empty())
        .ok_or_else(|| Refusal::input_missing(id, &signer.name))?;
    let (body, bytes) = if recipe.reads_body() {
        let bytes = whole(proxy, body, id, "its signature").await?;
        (Either::Right(Full::new(bytes.clone())), bytes)
    } else {
        (body, Bytes::new())
    };
    let now_ms = u64::try_from(proxy.clock.unix_ms()).unwrap_or(0);
    egret_signing::hmac::sign(parts, &bytes, key, recipe, now_ms)
        .map_err(|e| Refusal::signature_invalid(id, &e.to_string()))?;
    Ok(body)
}

/// The body, whole, up to [`SIGNED_BODY_MAX`].
async fn whole(
    proxy: &Proxy,
    body: UpstreamBody,
    connector: &str,
    what: &str,
) -> Result<Bytes, Refusal> {
    super::whole::upstream(proxy, body, SIGNED_BODY_MAX)
        .await?
        .ok_or_else(|| {
            Refusal::signature_invalid(
                connector,
                &format!(
                    "egret reads the body whole for {what}, and it is over {} MiB; send a smaller body (for S3, an x-amz-content-sha256 header, UNSIGNED-PAYLOAD or aws-chunked streaming)",
                    SIGNED_BODY_MAX / (1024 * 1024)
                ),
            )
        })
}
