//! Who is looking at a page: administrators sign in with the admin token, users arrive
//! by a single-use connect link; either is exchanged for a session cookie (HttpOnly,
//! `SameSite=Strict`, `Secure` behind https) that expires. Sessions live in the vault
//! (sealed, under the SHA-256 of the cookie): a restart keeps them, and every replica
//! sharing the vault's database knows them, so a load balancer need not be sticky. Every
//! form carries the session's CSRF token, and every form post must come from egret's own
//! origin.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The session cookie's name; scoped to `/ui`.
pub const COOKIE: &str = "egret_ui";
/// How long an administrator's session lasts.
pub const ADMIN_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// How long a session opened by a connect link lasts.
pub const USER_LIFETIME: Duration = Duration::from_secs(3600);

/// A signed-in browser.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// Put in every form and checked on every post.
    pub csrf: String,
    pub who: Who,
}

/// Who a session is.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    Admin,
    /// A user, for one owner (and maybe one connector and name), from a connect link.
    User(egret_vault::ConnectLink),
}

/// The sessions, by the random id their cookie carries (256 bits: unguessable), kept
/// in the vault.
pub struct Sessions(pub(crate) Arc<egret_vault::Vault>);

impl Sessions {
    /// Starts a session; returns the cookie value and the session, or why it could not
    /// be stored.
    pub fn start(&self, who: Who) -> Result<(SecretString, Session), egret_vault::VaultError> {
        let id = SecretString::from(random_token());
        let lifetime = match who {
            Who::Admin => ADMIN_LIFETIME,
            Who::User(_) => USER_LIFETIME,
        };
        let session = Session {
            csrf: random_token(),
            who,
        };
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(&session)
                .map_err(|e| egret_vault::VaultError::Invalid(e.to_string()))?,
        );
        off_the_workers(|| self.0.put_ui_session(&id, &json, lifetime))?;
        Ok((id, session))
    }

    /// The live session the request's cookie names. A vault that does not answer signs
    /// nobody in (and says so in the log).
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = egret_control::cookie(headers, COOKIE)?;
        match off_the_workers(|| self.0.ui_session(&id)) {
            Ok(found) => found.and_then(|json| serde_json::from_slice(&json).ok()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a web UI session");
                None
            }
        }
    }

    /// Ends the session the request's cookie names, on every replica.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = egret_control::cookie(headers, COOKIE)
            && let Err(e) = off_the_workers(|| self.0.end_ui_session(&id))
        {
            tracing::warn!(error = %e, "cannot end a web UI session; it ends when it expires");
        }
    }
}

/// Runs a vault call that may wait on a database (a shared vault that is slow or away)
/// without stalling the control plane: on a multi-threaded runtime the worker's other
/// tasks move elsewhere meanwhile (`/readyz` and `/metrics` keep answering).
fn off_the_workers<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// `Set-Cookie` for a new session of `who` (or, with `None`, one that clears it).
pub fn set_cookie(value: Option<(&SecretString, &Who)>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = match value {
        Some((v, who)) => format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={}{secure}",
            v.expose_secret(),
            match who {
                Who::Admin => ADMIN_LIFETIME.as_secs(),
                Who::User(_) => USER_LIFETIME.as_secs(),
            }
        ),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0{secure}"),
    };
    // Built from base64url text and fixed words: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether `given` is the session's CSRF token (compared in constant time).
pub fn csrf_ok(session: &Session, given: &str) -> bool {
    session.csrf.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Whether a form post comes from egret's own pages: its `Origin` (or, without one, its
/// `Referer`) is `public_url`'s origin, or names the host the browser asked for (its
/// `Host`: egret reached at another name than `public_url`, or behind a TLS proxy). A
/// post that names neither is refused.
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let Some(given) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .map(origin_of)
        .filter(|g| !g.is_empty())
    else {
        return false;
    };
    if given == origin_of(public_url) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let authority = given.split_once("://").map(|(_, a)| a);
    host.is_some_and(|h| authority == Some(h.as_str()))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

/// 256 random bits, base64url.
fn random_token() -> String {
    egret_vault::random_token().expose_secret().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_must_come_from_egrets_origin() {
        let mut h = HeaderMap::new();
        assert!(
            !same_origin(&h, "http://127.0.0.1:3129"),
            "no origin at all"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3129"),
        );
        assert!(same_origin(&h, "http://127.0.0.1:3129/"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h, "http://127.0.0.1:3129"));
        // Reached at another name: the browser's own Host is egret.
        h.insert(header::HOST, HeaderValue::from_static("localhost:3129"));
        assert!(
            !same_origin(&h, "http://127.0.0.1:3129"),
            "evil is not localhost"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://localhost:3129"),
        );
        assert!(same_origin(&h, "http://127.0.0.1:3129"));
        let mut h = HeaderMap::new();
        h.insert(
            header::REFERER,
            HeaderValue::from_static("http://127.0.0.1:3129/ui/login"),
        );
        assert!(same_origin(&h, "http://127.0.0.1:3129"));
    }

    #[test]
    fn sessions_are_found_by_their_cookie_and_ended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = egret_vault::Vault::open(
            &dir.path().join("v.redb"),
            &egret_vault::MasterKey::generate(),
        )
        .expect("vault");
        let sessions = Sessions(Arc::new(vault));
        let (id, session) = sessions.start(Who::Admin).expect("start");
        let mut h = HeaderMap::new();
        let cookie = format!("other=1; {COOKIE}={}", id.expose_secret());
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&cookie).expect("cookie"),
        );
        let found = sessions.find(&h).expect("found");
        assert!(csrf_ok(&found, &session.csrf));
        assert!(!csrf_ok(&found, "forged"));
        sessions.end(&h);
        assert!(sessions.find(&h).is_none());
    }
}
