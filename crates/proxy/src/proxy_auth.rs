//! Proxy authentication (`proxy.auth: basic`): which sandbox sent a CONNECT or a plain
//! request. Checked once per CONNECT — the identity then holds for the whole tunnel —
//! and on every absolute-form request.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use egret_policy::ProxyAuth;
use egret_vault::SandboxIssue;
use http::Request;
use http::header::PROXY_AUTHORIZATION;
use zeroize::Zeroizing;

use crate::Proxy;
use crate::refusal::Refusal;

/// A sandbox that proved who it is on a CONNECT or a plain request.
#[derive(Debug, Clone)]
pub(crate) struct Sandbox {
    pub(crate) id: Arc<str>,
    /// The issue of its credentials that passed: a tunnel stays the sandbox's only
    /// while that issue is in force (not revoked, expired or replaced).
    issue: SandboxIssue,
}

impl Sandbox {
    /// Refuses a request inside a tunnel whose sandbox lost its credentials since the
    /// CONNECT: revocation reaches open tunnels.
    pub(crate) fn still_valid(&self, proxy: &Proxy) -> Result<(), Refusal> {
        if proxy
            .vault
            .sandbox_still_valid(&self.id, &self.issue, proxy.clock.unix())
        {
            Ok(())
        } else {
            Err(Refusal::proxy_auth_required(
                "the credentials this tunnel was opened with were revoked, expired or replaced",
            ))
        }
    }
}

/// `Ok(None)` when proxy authentication is off; the sandbox when it is on and the
/// credentials are valid; a 407 otherwise.
pub(crate) fn identify<B>(proxy: &Proxy, req: &Request<B>) -> Result<Option<Sandbox>, Refusal> {
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
    let issue = proxy
        .vault
        .authenticate_sandbox(id, secret, proxy.clock.unix())
        .ok_or_else(bad)?;
    Ok(Some(Sandbox {
        id: Arc::from(id),
        issue,
    }))
}
