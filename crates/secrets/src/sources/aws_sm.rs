//! AWS Secrets Manager: `aws-sm://NAME-OR-ARN[#FIELD]` is `GetSecretValue` (JSON 1.1
//! over `POST /`), signed by egret with SigV4 with the keys of the AWS connection the
//! source names; with `#FIELD`, the secret string is read as JSON and the field taken.

use egret_oauth::HttpClient;
use egret_policy::AwsSmSource;
use egret_signing::sigv4::{Keys, sign_new};
use http::Method;
use secrecy::SecretString;

use super::{field, json, request, transport};
use crate::{AwsKeysLookup, SourceError};

const SOURCE: &str = "aws_sm";

pub(crate) async fn fetch(
    keys: &AwsKeysLookup,
    client: &HttpClient,
    source: &AwsSmSource,
    path: &str,
) -> Result<SecretString, SourceError> {
    let (id, name) = match path.split_once('#') {
        Some((id, f)) => (id, Some(f)),
        None => (path, None),
    };
    let (key_id, secret, session) = keys(&source.connection).ok_or_else(|| {
        SourceError::new(
            SOURCE,
            format!(
                "its connection `{}` does not exist or holds no AWS keys stored in egret",
                source.connection
            ),
        )
    })?;
    let body = serde_json::json!({ "SecretId": id })
        .to_string()
        .into_bytes();
    let url = format!("{}/", source.endpoint);
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let req = request(
        Method::POST,
        &url,
        &[
            ("host", host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "secretsmanager.GetSecretValue"),
        ],
        body,
        SOURCE,
    )?;
    let (mut parts, body) = req.into_parts();
    let amz_date = crate::amz_date_now();
    sign_new(
        &mut parts,
        &body,
        &Keys {
            access_key_id: &key_id,
            secret_access_key: &secret,
            session_token: session.as_ref(),
        },
        &source.region,
        "secretsmanager",
        &amz_date,
    )
    .map_err(|e| SourceError::new(SOURCE, e.to_string()))?;
    let answer = client
        .send(http::Request::from_parts(parts, body))
        .await
        .map_err(|e| transport(SOURCE, e))?;
    let what = format!("secret {id}");
    let answer = json(SOURCE, &what, answer)?;
    let Some(name) = name else {
        return field(SOURCE, &answer, "SecretString", &what);
    };
    let text = answer
        .get("SecretString")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| SourceError::new(SOURCE, format!("{what} has no SecretString")))?;
    let object: serde_json::Value = serde_json::from_str(text).map_err(|_| {
        SourceError::new(
            SOURCE,
            format!("{what}: the secret is not JSON, so it has no field `{name}`"),
        )
    })?;
    field(SOURCE, &object, name, &what)
}
