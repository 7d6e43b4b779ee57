//! External secret stores on one HTTPS port (127.0.0.1:0, the test CA), each speaking
//! the HTTP API egret calls, as the vendors document it:
//!
//! - HashiCorp Vault KV version 2 (`GET /v1/<mount>/data/<path>`, `X-Vault-Token`),
//!   and AppRole login (`POST /v1/auth/approle/login`), matched to Vault 1.15's API;
//! - AWS Secrets Manager `GetSecretValue` (`POST /`, `X-Amz-Target`, JSON 1.1), the
//!   SigV4 signature recomputed with the expected keys;
//! - Google Secret Manager `versions/*:access` (`payload.data`, base64);
//! - 1Password Connect 1.7 (`/v1/vaults?filter=`, `/v1/vaults/{id}/items?filter=`,
//!   `/v1/vaults/{id}/items/{id}`).
//!
//! Tests set values (a rotation), make the stores fail (503) and count reads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::upstream::TestCa;

/// The host name the stores answer as (resolved to 127.0.0.1 by the test policy).
pub const HOST: &str = "secrets.test.local";
pub const VAULT_TOKEN: &str = "hvs.test-vault-token-0123456789";
pub const APPROLE_ROLE: &str = "role-egret";
pub const APPROLE_SECRET: &str = "secret-id-0123456789";
pub const GCP_TOKEN: &str = "ya29.test-gcp-token";
pub const OP_TOKEN: &str = "op-connect-test-token";
/// The AWS keys Secrets Manager expects requests to be signed with.
pub const SM_KEY_ID: &str = "AKIASECRETSMANAGER01";
pub const SM_SECRET: &str = "secrets-manager-secret-key-000000000000";

#[derive(Default)]
struct State {
    /// "mount/path" -> field -> value (Vault); "name" -> secret string (AWS); "projects/…"
    /// -> value (GCP); "vault/item" -> field -> value (1Password).
    vault: HashMap<String, HashMap<String, String>>,
    aws: HashMap<String, String>,
    gcp: HashMap<String, String>,
    op: HashMap<String, HashMap<String, String>>,
    /// Tokens AppRole login gave.
    approle_tokens: Vec<String>,
}

pub struct SecretStores {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    failing: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SecretStores {
    pub async fn start(ca: &TestCa) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = TlsAcceptor::from(ca.server_config(&[HOST], &[b"http/1.1"]));
        let state = Arc::new(Mutex::new(State::default()));
        let failing = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let (s2, f2, r2) = (state.clone(), failing.clone(), reads.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, s, f, r) = (acceptor.clone(), s2.clone(), f2.clone(), r2.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (s, f, r) = (s.clone(), f.clone(), r.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let (status, answer) = if f.load(Ordering::SeqCst) {
                                (503, json!({ "errors": ["the store is down (test)"] }))
                            } else {
                                r.fetch_add(1, Ordering::SeqCst);
                                answer(&s, &parts, &body)
                            };
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(answer.to_string())))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            failing,
            reads,
            task,
        }
    }

    /// `https://secrets.test.local:<port>`.
    pub fn url(&self) -> String {
        format!("https://{HOST}:{}", self.addr.port())
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Writes a Vault KV v2 secret's field (a new version, as `vault kv patch`).
    pub fn set_vault(&self, path: &str, field: &str, value: &str) {
        self.with(|s| {
            s.vault
                .entry(path.to_owned())
                .or_default()
                .insert(field.to_owned(), value.to_owned());
        });
    }

    pub fn set_aws(&self, name: &str, secret_string: &str) {
        self.with(|s| s.aws.insert(name.to_owned(), secret_string.to_owned()));
    }

    pub fn set_gcp(&self, version: &str, value: &str) {
        self.with(|s| s.gcp.insert(version.to_owned(), value.to_owned()));
    }

    pub fn set_op(&self, vault_item: &str, field: &str, value: &str) {
        self.with(|s| {
            s.op.entry(vault_item.to_owned())
                .or_default()
                .insert(field.to_owned(), value.to_owned());
        });
    }

    /// While set, every store answers 503.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Requests answered (not failed) so far.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Drop for SecretStores {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(state: &Mutex<State>, parts: &http::request::Parts, body: &[u8]) -> (u16, Value) {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let path = parts.uri.path();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    // AppRole login.
    if parts.method == http::Method::POST && path == "/v1/auth/approle/login" {
        let login: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if login["role_id"] != APPROLE_ROLE || login["secret_id"] != APPROLE_SECRET {
            return (400, json!({ "errors": ["invalid role or secret ID"] }));
        }
        let token = format!("hvs.approle-{}", s.approle_tokens.len());
        s.approle_tokens.push(token.clone());
        return (
            200,
            json!({ "auth": { "client_token": token, "lease_duration": 3600, "renewable": true } }),
        );
    }
    // Vault KV v2.
    if let Some(rest) = path.strip_prefix("/v1/")
        && let Some((mount, secret)) = rest.split_once("/data/")
    {
        let token = header("x-vault-token");
        if token != VAULT_TOKEN && !s.approle_tokens.contains(&token) {
            return (403, json!({ "errors": ["permission denied"] }));
        }
        return match s.vault.get(&format!("{mount}/{secret}")) {
            Some(data) => (
                200,
                json!({ "data": { "data": data, "metadata": { "version": 1 } } }),
            ),
            None => (404, json!({ "errors": [] })),
        };
    }
    // AWS Secrets Manager.
    if parts.method == http::Method::POST
        && path == "/"
        && header("x-amz-target") == "secretsmanager.GetSecretValue"
    {
        if !aws_signed(parts, body) {
            return (
                400,
                json!({ "__type": "InvalidSignatureException", "message": "The request signature we calculated does not match" }),
            );
        }
        let ask: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let id = ask["SecretId"].as_str().unwrap_or_default();
        return match s.aws.get(id) {
            Some(v) => (
                200,
                json!({ "ARN": format!("arn:aws:secretsmanager:us-east-1:1:secret:{id}"), "Name": id, "SecretString": v }),
            ),
            None => (
                400,
                json!({ "__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret." }),
            ),
        };
    }
    // Google Secret Manager.
    if let Some(version) = path
        .strip_prefix("/v1/")
        .and_then(|p| p.strip_suffix(":access"))
    {
        if header("authorization") != format!("Bearer {GCP_TOKEN}") {
            return (
                401,
                json!({ "error": { "code": 401, "status": "UNAUTHENTICATED" } }),
            );
        }
        return match s.gcp.get(version) {
            Some(v) => (
                200,
                json!({ "name": version, "payload": { "data": base64::engine::general_purpose::STANDARD.encode(v) } }),
            ),
            None => (
                404,
                json!({ "error": { "code": 404, "status": "NOT_FOUND" } }),
            ),
        };
    }
    // 1Password Connect.
    if path.starts_with("/v1/vaults") {
        if header("authorization") != format!("Bearer {OP_TOKEN}") {
            return (401, json!({ "status": 401, "message": "Invalid token" }));
        }
        return one_password(&s, parts);
    }
    (
        404,
        json!({ "errors": ["no such route (test secret stores)"] }),
    )
}

/// 1Password Connect: vault and item ids are their names, prefixed.
fn one_password(s: &State, parts: &http::request::Parts) -> (u16, Value) {
    let path = parts.uri.path();
    let filter = parts
        .uri
        .query()
        .and_then(|q| q.strip_prefix("filter="))
        .map(|f| {
            percent_encoding::percent_decode_str(f)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let quoted = |f: &str| f.split('"').nth(1).unwrap_or_default().to_owned();
    let segments: Vec<&str> = path
        .trim_start_matches("/v1/vaults")
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    match segments.as_slice() {
        [] => {
            let name = quoted(&filter);
            let known =
                s.op.keys()
                    .any(|k| k.split('/').next() == Some(name.as_str()));
            let list = if known {
                vec![json!({ "id": format!("v-{name}"), "name": name })]
            } else {
                vec![]
            };
            (200, Value::from(list))
        }
        [vault, "items"] => {
            let title = quoted(&filter);
            let vault = vault.trim_start_matches("v-");
            let known = s.op.contains_key(&format!("{vault}/{title}"));
            let list = if known {
                vec![json!({ "id": format!("i-{title}"), "title": title })]
            } else {
                vec![]
            };
            (200, Value::from(list))
        }
        [vault, "items", item] => {
            let key = format!(
                "{}/{}",
                vault.trim_start_matches("v-"),
                item.trim_start_matches("i-")
            );
            match s.op.get(&key) {
                Some(fields) => {
                    let fields: Vec<Value> = fields
                        .iter()
                        .map(|(label, value)| json!({ "id": label, "label": label, "value": value, "type": "CONCEALED" }))
                        .collect();
                    (200, json!({ "id": item, "fields": fields }))
                }
                None => (404, json!({ "status": 404, "message": "item not found" })),
            }
        }
        _ => (404, json!({ "status": 404 })),
    }
}

/// Whether a Secrets Manager request carries a SigV4 signature made with the expected
/// keys (recomputed over the request as received).
fn aws_signed(parts: &http::request::Parts, body: &[u8]) -> bool {
    use egret_signing::sigv4;
    let Ok(Some(signed)) = sigv4::read(parts) else {
        return false;
    };
    if signed.access_key_id != SM_KEY_ID || signed.service != "secretsmanager" {
        return false;
    }
    let hash = egret_signing::sha256_hex(body);
    let Ok(canonical) = sigv4::canonical_request(parts, &signed, &hash) else {
        return false;
    };
    let key = sigv4::signing_key(&SecretString::from(SM_SECRET), &signed);
    sigv4::signature(&key, &signed.amz_date, &signed.scope(), &canonical) == signed.signature
}
