//! Proxy authentication (`proxy.auth: basic`): which sandbox sent a CONNECT or a plain
//! request. Checked once per CONNECT — the identity then holds for the whole tunnel —
//! and on every absolute-form request.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use egret_policy::ProxyAuth;
use http::Request;
use http::header::PROXY_AUTHORIZATION;
use zeroize::Zeroizing;

use crate::Proxy;
use crate::refusal::Refusal;

/// `Ok(None)` when proxy authentication is off; the sandbox id when it is on and the
/// credentials are valid; a 407 otherwise.
pub(crate) fn identify<B>(proxy: &Proxy, req: &Request<B>) -> Result<Option<Arc<str>>, Refusal> {
    if proxy.policy.load().proxy.auth == ProxyAuth::None {
        return Ok(None);
    }
    let value = req
        .headers()
        .get(PROXY_AUTHORIZATION)
        .ok_or_else(|| Refusal::proxy_auth_required("egret requires sandbox credentials"))?;
    let bad = || {
        Refusal::proxy_auth_required(
            "the sandbox credentials are malformed, unknown, expired or revoked",
        )
    };
    let bytes = value.as_bytes();
    let encoded = bytes
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case(b"basic "))
        .and_then(|_| bytes.get(6..))
        .ok_or_else(bad)?;
    let decoded = Zeroizing::new(STANDARD.decode(encoded.trim_ascii()).map_err(|_| bad())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    if proxy
        .vault
        .authenticate_sandbox(id, secret, proxy.clock.unix())
    {
        Ok(Some(Arc::from(id)))
    } else {
        Err(bad())
    }
}
