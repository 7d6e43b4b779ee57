//! Google Secret Manager: `gcp-sm://projects/P/secrets/S/versions/V` is
//! `GET /v1/projects/P/secrets/S/versions/V:access` with the source's access token; the
//! value is the answer's `payload.data`, base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use egret_oauth::HttpClient;
use egret_policy::GcpSmSource;
use http::Method;
use secrecy::{ExposeSecret, SecretString};

use super::{json, request, token, transport};
use crate::SourceError;

const SOURCE: &str = "gcp_sm";

pub(crate) async fn fetch(
    client: &HttpClient,
    source: &GcpSmSource,
    path: &str,
) -> Result<SecretString, SourceError> {
    let token = token(SOURCE, &source.token)?;
    let bearer = format!("Bearer {}", token.expose_secret());
    let path: Vec<String> = path.split('/').map(super::encode).collect();
    let url = format!("{}/v1/{}:access", source.endpoint, path.join("/"));
    let req = request(
        Method::GET,
        &url,
        &[("authorization", &bearer)],
        Vec::new(),
        SOURCE,
    )?;
    let answer = client.send(req).await.map_err(|e| transport(SOURCE, e))?;
    let what = "the secret version".to_owned();
    let answer = json(SOURCE, &what, answer)?;
    let data = answer
        .pointer("/payload/data")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| SourceError::new(SOURCE, "the answer has no payload.data"))?;
    let bytes = STANDARD
        .decode(data)
        .map_err(|_| SourceError::new(SOURCE, "payload.data is not base64"))?;
    let text =
        String::from_utf8(bytes).map_err(|_| SourceError::new(SOURCE, "the secret is not text"))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(SourceError::new(SOURCE, "the secret is empty"));
    }
    Ok(SecretString::from(text))
}
