//! An OpenID Connect identity provider for the web UI's sign-in tests, over plain HTTP on
//! 127.0.0.1: discovery, JWKS (one ES256 key), an authorization endpoint that signs in the
//! person a test names at once (no login page), and a token endpoint that checks the code,
//! the redirect URI, PKCE (S256) and the client secret, and answers an ID token. A test can
//! make it misbehave as a hostile or broken provider would: sign with a key it does not
//! publish, issue an expired token, name another audience or nonce, or leave the email
//! unverified.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "egret-ui";
pub const CLIENT_SECRET: &str = "idp-client-secret";

/// How the next ID tokens go wrong (none: right).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Misbehave {
    #[default]
    Nothing,
    /// Signed with a key the JWKS does not hold.
    Forged,
    Expired,
    WrongAudience,
    WrongNonce,
    UnverifiedEmail,
}

struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

struct State {
    issuer: String,
    key: EcdsaKeyPair,
    stranger: EcdsaKeyPair,
    /// The claims of whoever signs in next (email, groups, …).
    person: Value,
    misbehave: Misbehave,
    codes: HashMap<String, Grant>,
}

pub struct TestIdp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
    .unwrap_or(0)
}

impl TestIdp {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let key = || EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
        let state = Arc::new(Mutex::new(State {
            issuer: format!("http://{addr}"),
            key: key(),
            stranger: key(),
            person: json!({"sub": "1", "email": "alice@example.com", "email_verified": true}),
            misbehave: Misbehave::Nothing,
            codes: HashMap::new(),
        }));
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, s.clone()));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Who signs in next: these claims (with `sub`), e.g. `{"email": …, "groups": […]}`.
    pub fn sign_in_as(&self, claims: Value) {
        let mut s = self.state.lock().expect("lock");
        let mut person = json!({"sub": "1", "email_verified": true});
        for (k, v) in claims.as_object().into_iter().flatten() {
            person[k] = v.clone();
        }
        s.person = person;
        s.misbehave = Misbehave::Nothing;
    }

    pub fn misbehave(&self, how: Misbehave) {
        self.state.lock().expect("lock").misbehave = how;
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    r
}

fn query(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect()
}

fn decode(v: &str) -> String {
    let v = v.replace('+', " ");
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sign(key: &EcdsaKeyPair, claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}).to_string());
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{h}.{p}");
    let sig = key
        .sign(&SystemRandom::new(), input.as_bytes())
        .expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let q = query(req.uri().query().unwrap_or_default());
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().expect("lock");
    let issuer = s.issuer.clone();
    let resp = match path.as_str() {
        "/.well-known/openid-configuration" => reply(
            StatusCode::OK,
            json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "end_session_endpoint": format!("{issuer}/logout"),
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["ES256"],
            }),
        ),
        "/jwks" => {
            let public = s.key.public_key().as_ref().to_vec();
            reply(
                StatusCode::OK,
                json!({"keys": [{
                    "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
                    "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
                }]}),
            )
        }
        "/authorize" => {
            let ok = q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && q.get("response_type").map(String::as_str) == Some("code")
                && q.get("code_challenge_method").map(String::as_str) == Some("S256");
            if !ok {
                reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}))
            } else {
                let code = URL_SAFE_NO_PAD.encode(rand_bytes());
                let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
                s.codes.insert(
                    code.clone(),
                    Grant {
                        nonce: q.get("nonce").cloned().unwrap_or_default(),
                        challenge: q.get("code_challenge").cloned().unwrap_or_default(),
                        redirect_uri: redirect.clone(),
                    },
                );
                let state_param = q.get("state").cloned().unwrap_or_default();
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::FOUND;
                let to = format!("{redirect}?code={code}&state={state_param}");
                r.headers_mut()
                    .insert("location", to.parse().expect("location"));
                r
            }
        }
        "/token" => {
            let form = query(&String::from_utf8_lossy(&body));
            let expected = format!(
                "Basic {}",
                STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
            );
            let grant = form.get("code").and_then(|c| s.codes.remove(c));
            match grant {
                _ if auth.as_deref() != Some(expected.as_str()) => {
                    reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}))
                }
                None => reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"})),
                Some(g) => {
                    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
                        &aws_lc_rs::digest::SHA256,
                        verifier.as_bytes(),
                    ));
                    if challenge != g.challenge || form.get("redirect_uri") != Some(&g.redirect_uri)
                    {
                        reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}))
                    } else {
                        let mut claims = s.person.clone();
                        let t = now();
                        claims["iss"] = json!(issuer);
                        claims["aud"] = json!(CLIENT_ID);
                        claims["iat"] = json!(t);
                        claims["exp"] = json!(t + 300);
                        claims["nonce"] = json!(g.nonce);
                        match s.misbehave {
                            Misbehave::Expired => {
                                claims["iat"] = json!(t - 4000);
                                claims["exp"] = json!(t - 3600);
                            }
                            Misbehave::WrongAudience => claims["aud"] = json!("another-app"),
                            Misbehave::WrongNonce => claims["nonce"] = json!("not-yours"),
                            Misbehave::UnverifiedEmail => claims["email_verified"] = json!(false),
                            Misbehave::Forged | Misbehave::Nothing => {}
                        }
                        let key = if s.misbehave == Misbehave::Forged {
                            &s.stranger
                        } else {
                            &s.key
                        };
                        let jwt = sign(key, &claims);
                        reply(
                            StatusCode::OK,
                            json!({"access_token": "idp-access", "token_type": "Bearer", "expires_in": 300, "id_token": jwt}),
                        )
                    }
                }
            }
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "not_found"})),
    };
    Ok(resp)
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("random");
    b
}
