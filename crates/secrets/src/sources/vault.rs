//! HashiCorp Vault / OpenBao, KV version 2: `vault://MOUNT/PATH#FIELD` is
//! `GET /v1/MOUNT/data/PATH` and the answer's `data.data.FIELD`. Authenticated with a
//! token, or with AppRole (`POST /v1/auth/approle/login`), whose token is kept until
//! shortly before its lease ends and taken again once when Vault refuses it.

use std::sync::Mutex;
use std::time::Duration;

use egret_oauth::HttpClient;
use egret_policy::{VaultAuth, VaultSource};
use http::Method;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{field, json, request, token, transport};
use crate::SourceError;

const SOURCE: &str = "vault";

/// The AppRole login's token and until when it is used.
#[derive(Default)]
pub(crate) struct Login(Mutex<Option<(SecretString, Instant)>>);

impl Login {
    fn get(&self) -> Option<SecretString> {
        let held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }

    fn set(&self, value: Option<(SecretString, Instant)>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

pub(crate) async fn fetch(
    login: &Login,
    client: &HttpClient,
    source: &VaultSource,
    path: &str,
) -> Result<SecretString, SourceError> {
    let (location, name) = path
        .split_once('#')
        .ok_or_else(|| SourceError::new(SOURCE, "the reference has no #field"))?;
    let (mount, secret) = location
        .split_once('/')
        .ok_or_else(|| SourceError::new(SOURCE, "the reference has no MOUNT/PATH"))?;
    let url = format!(
        "{}/v1/{}/data/{}",
        source.address,
        encode(mount),
        secret.split('/').map(encode).collect::<Vec<_>>().join("/")
    );
    let what = format!("secret {mount}/{secret}");
    for attempt in 0..2 {
        let token = match &source.auth {
            VaultAuth::Token(t) => token(SOURCE, t)?,
            VaultAuth::AppRole { .. } => match login.get() {
                Some(t) => t,
                None => approle_login(login, client, source).await?,
            },
        };
        let mut headers = vec![("x-vault-token", token.expose_secret())];
        if let Some(ns) = &source.namespace {
            headers.push(("x-vault-namespace", ns.as_str()));
        }
        let req = request(Method::GET, &url, &headers, Vec::new(), SOURCE)?;
        let answer = client.send(req).await.map_err(|e| transport(SOURCE, e))?;
        // An AppRole token Vault no longer takes (revoked, expired early): log in again once.
        if attempt == 0
            && answer.status() == http::StatusCode::FORBIDDEN
            && matches!(source.auth, VaultAuth::AppRole { .. })
        {
            login.set(None);
            continue;
        }
        let body = json(SOURCE, &what, answer)?;
        let data = body.pointer("/data/data").ok_or_else(|| {
            SourceError::new(
                SOURCE,
                format!("{what}: the answer has no data.data (is {mount} a KV version 2 mount?)"),
            )
        })?;
        return field(SOURCE, data, name, &what);
    }
    Err(SourceError::new(
        SOURCE,
        format!("{what}: access denied after logging in again"),
    ))
}

async fn approle_login(
    login: &Login,
    client: &HttpClient,
    source: &VaultSource,
) -> Result<SecretString, SourceError> {
    let VaultAuth::AppRole {
        role_id,
        secret_id,
        mount,
    } = &source.auth
    else {
        return Err(SourceError::new(SOURCE, "not configured for AppRole"));
    };
    let secret_id = token(SOURCE, secret_id)?;
    let body = serde_json::json!({ "role_id": role_id, "secret_id": secret_id.expose_secret() });
    let url = format!("{}/v1/auth/{}/login", source.address, encode(mount));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(ns) = &source.namespace {
        headers.push(("x-vault-namespace", ns.as_str()));
    }
    let req = request(
        Method::POST,
        &url,
        &headers,
        body.to_string().into_bytes(),
        SOURCE,
    )?;
    let answer = client.send(req).await.map_err(|e| transport(SOURCE, e))?;
    let body = json(SOURCE, "AppRole login", answer)?;
    let auth = body
        .get("auth")
        .ok_or_else(|| SourceError::new(SOURCE, "AppRole login: the answer has no auth"))?;
    let token = field(SOURCE, auth, "client_token", "AppRole login")?;
    let lease = auth
        .get("lease_duration")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(300);
    // Used until 80% of its lease: renewed well before Vault would refuse it.
    let until = Instant::now() + Duration::from_secs(lease.saturating_mul(4) / 5);
    login.set(Some((token.clone(), until)));
    Ok(token)
}

fn encode(segment: &str) -> String {
    super::encode(segment)
}
