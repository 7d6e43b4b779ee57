//! OpenID Connect ID tokens, checked as a relying party must before believing who signed
//! in (OpenID Connect Core 1.0, §3.1.3.7): the JWS signature against the issuer's JWKS
//! (RS256/384/512 and ES256/384; `none` and HMAC are refused), `iss` equal to the
//! issuer, `aud` containing the client id (and `azp` the client id when there are several),
//! `exp` in the future and `iat` not far in it (a minute of clock skew), and `nonce` equal
//! to the one this sign-in sent. Nothing here fetches: the caller brings the keys.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY: i64 = 60;

/// Why an ID token is not believed. Each says what is wrong in words a sign-in page shows.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdTokenError {
    #[error("the identity provider's answer held no well-formed ID token")]
    Malformed,
    #[error(
        "the ID token is signed with `{0}`, which egret does not accept (RS256, RS384, RS512, ES256, ES384)"
    )]
    Algorithm(String),
    #[error(
        "the ID token is signed with a key the identity provider does not publish; it may be forged"
    )]
    UnknownKey,
    #[error("the ID token's signature does not verify; it may be forged")]
    Signature,
    #[error("the ID token was issued by `{0}`, not by the configured identity provider")]
    Issuer(String),
    #[error(
        "the ID token was issued for another application (audience), not for egret's client id"
    )]
    Audience,
    #[error("the ID token has expired; sign in again")]
    Expired,
    #[error("the ID token does not belong to this sign-in (its nonce differs); start again")]
    Nonce,
}

/// The issuer's published keys (`jwks_uri`).
#[derive(Debug, Clone, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public key, as RFC 7517 writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The claims of `jwt` once every check passed.
pub fn verify(
    jwt: &str,
    jwks: &Jwks,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<Value, IdTokenError> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| IdTokenError::Malformed)
    };
    let header: Header =
        serde_json::from_slice(&decode(h)?).map_err(|_| IdTokenError::Malformed)?;
    let claims: Value = serde_json::from_slice(&decode(p)?).map_err(|_| IdTokenError::Malformed)?;
    let sig = decode(s)?;
    let signed = &jwt.as_bytes()[..h.len() + 1 + p.len()];
    let (kty, crv): (&str, Option<&str>) = match header.alg.as_str() {
        "RS256" | "RS384" | "RS512" => ("RSA", None),
        "ES256" => ("EC", Some("P-256")),
        "ES384" => ("EC", Some("P-384")),
        other => return Err(IdTokenError::Algorithm(other.to_owned())),
    };
    let candidates = jwks.keys.iter().filter(|k| {
        k.kty == kty
            && (crv.is_none() || k.crv.as_deref() == crv)
            && (header.kid.is_none() || k.kid == header.kid)
    });
    let mut any = false;
    let mut verified = false;
    for key in candidates {
        any = true;
        if verify_with(key, &header.alg, signed, &sig) {
            verified = true;
            break;
        }
    }
    if !any {
        return Err(IdTokenError::UnknownKey);
    }
    if !verified {
        return Err(IdTokenError::Signature);
    }
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(IdTokenError::Issuer(iss.to_owned()));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(IdTokenError::Audience);
    }
    if audiences.len() > 1 && claims.get("azp").and_then(Value::as_str) != Some(client_id) {
        return Err(IdTokenError::Audience);
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(IdTokenError::Malformed)?;
    if exp + LEEWAY <= now {
        return Err(IdTokenError::Expired);
    }
    if claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat > now + LEEWAY)
    {
        return Err(IdTokenError::Expired);
    }
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err(IdTokenError::Nonce);
    }
    Ok(claims)
}

fn verify_with(key: &Jwk, alg: &str, signed: &[u8], sig: &[u8]) -> bool {
    let b = |v: &Option<String>| v.as_deref().and_then(|t| URL_SAFE_NO_PAD.decode(t).ok());
    match key.kty.as_str() {
        "RSA" => {
            let (Some(n), Some(e)) = (b(&key.n), b(&key.e)) else {
                return false;
            };
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(params, signed, sig)
                .is_ok()
        }
        "EC" => {
            let (Some(x), Some(y)) = (b(&key.x), b(&key.y)) else {
                return false;
            };
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let params = match alg {
                "ES256" => &signature::ECDSA_P256_SHA256_FIXED,
                _ => &signature::ECDSA_P384_SHA384_FIXED,
            };
            UnparsedPublicKey::new(params, &point)
                .verify(signed, sig)
                .is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn key() -> (EcdsaKeyPair, Jwks) {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
        let public = pair.public_key().as_ref().to_vec();
        let jwk = Jwk {
            kty: "EC".into(),
            kid: Some("k1".into()),
            crv: Some("P-256".into()),
            x: Some(URL_SAFE_NO_PAD.encode(&public[1..33])),
            y: Some(URL_SAFE_NO_PAD.encode(&public[33..65])),
            n: None,
            e: None,
        };
        (pair, Jwks { keys: vec![jwk] })
    }

    fn sign(pair: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{h}.{p}");
        let sig = pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    #[test]
    fn every_check_refuses_what_it_must() {
        let (pair, jwks) = key();
        let (other, _) = key();
        let header = json!({"alg": "ES256", "kid": "k1"});
        let good = json!({"iss": "https://idp.test", "aud": "egret", "exp": 2000, "iat": 1000, "nonce": "n1", "email": "a@x.com"});
        let ok = sign(&pair, &header, &good);
        assert_eq!(
            verify(&ok, &jwks, "https://idp.test/", "egret", "n1", 1500).expect("good")["email"],
            "a@x.com"
        );
        let check = |jwt: &str| {
            verify(jwt, &jwks, "https://idp.test", "egret", "n1", 1500).expect_err("refused")
        };
        assert_eq!(
            check(&sign(&other, &header, &good)),
            IdTokenError::Signature
        );
        let mut c = good.clone();
        c["aud"] = json!("someone-else");
        assert_eq!(check(&sign(&pair, &header, &c)), IdTokenError::Audience);
        let mut c = good.clone();
        c["exp"] = json!(1000);
        assert_eq!(check(&sign(&pair, &header, &c)), IdTokenError::Expired);
        let mut c = good.clone();
        c["nonce"] = json!("n2");
        assert_eq!(check(&sign(&pair, &header, &c)), IdTokenError::Nonce);
        let mut c = good.clone();
        c["iss"] = json!("https://evil.test");
        assert!(matches!(
            check(&sign(&pair, &header, &c)),
            IdTokenError::Issuer(_)
        ));
        assert_eq!(
            check(&sign(&pair, &json!({"alg": "ES256", "kid": "k9"}), &good)),
            IdTokenError::UnknownKey
        );
        assert!(matches!(
            check(&sign(&pair, &json!({"alg": "none"}), &good)),
            IdTokenError::Algorithm(_)
        ));
        let hs = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(good.to_string())
        );
        assert!(matches!(check(&hs), IdTokenError::Algorithm(_)));
        assert_eq!(check("not.a-token"), IdTokenError::Malformed);
        // Tampered claims after signing.
        let mut parts: Vec<String> = ok.split('.').map(str::to_owned).collect();
        let mut c = good.clone();
        c["email"] = json!("admin@x.com");
        parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
        assert_eq!(check(&parts.join(".")), IdTokenError::Signature);
    }
}
