//! Who is looking at a page: administrators sign in with the admin token, users arrive
//! by a single-use connect link; either is exchanged for a session cookie (HttpOnly,
//! `SameSite=Strict`, `Secure` behind https) that expires. Sessions live in the vault
//! (sealed, under the SHA-256 of the cookie): a restart keeps them, and every replica
//! sharing the vault's database knows them, so a load balancer need not be sticky. Every
//! form carries the session's CSRF token, and every form post must come from egret's own
//! origin.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use egret_control::cookies::Cookie;
use egret_service::{ConnectLink, Principal, Service, ServiceError, UserScope};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The session cookie: `egret_ui` scoped to `/ui` over plain http, `__Host-egret_ui`
/// over https.
pub const COOKIE: Cookie = Cookie {
    name: "egret_ui",
    path: "/ui",
    same_site: "Strict",
};
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
    User(ConnectLink),
    /// Signed in with the organisation's identity provider: their own connections
    /// (`link`, for the whole owner) and the role the provider's claims give.
    Person {
        link: ConnectLink,
        role: String,
    },
}

impl Who {
    /// Whether this session may change anything (an auditor only reads: the pages hide
    /// what it may not press, and the service layer refuses it anyway).
    pub fn may_change(&self) -> bool {
        !matches!(self, Who::Person { role, .. } if role == "auditor")
    }

    /// Whether the administrator's pages are theirs to see (an auditor sees them too and
    /// changes nothing: the service layer refuses).
    pub fn sees_admin_pages(&self) -> bool {
        match self {
            Who::Admin => true,
            Who::User(_) => false,
            Who::Person { role, .. } => role == "admin" || role == "auditor",
        }
    }
}

/// Where sessions are kept: the service (the vault, so every replica knows them).
pub(crate) trait SessionStore: Send + Sync {
    fn put(
        &self,
        id: SecretString,
        session: Zeroizing<Vec<u8>>,
        lifetime: Duration,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send;
    fn get(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<Zeroizing<Vec<u8>>>, ServiceError>> + Send;
    fn end(&self, id: String) -> impl Future<Output = Result<(), ServiceError>> + Send;
}

impl SessionStore for Arc<Service> {
    fn put(
        &self,
        id: SecretString,
        session: Zeroizing<Vec<u8>>,
        lifetime: Duration,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send {
        self.put_ui_session(id, session, lifetime)
    }
    fn get(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<Zeroizing<Vec<u8>>>, ServiceError>> + Send {
        self.ui_session(id)
    }
    fn end(&self, id: String) -> impl Future<Output = Result<(), ServiceError>> + Send {
        self.end_ui_session(id)
    }
}

/// The sessions, by the random id their cookie carries (256 bits: unguessable).
pub struct Sessions<S = Arc<Service>>(pub(crate) S);

impl<S: SessionStore> Sessions<S> {
    /// Starts a session; returns the cookie value and the session, or why it could not
    /// be stored.
    pub async fn start(&self, who: Who) -> Result<(SecretString, Session), ServiceError> {
        let id = SecretString::from(random_token());
        let lifetime = match who {
            Who::Admin | Who::Person { .. } => ADMIN_LIFETIME,
            Who::User(_) => USER_LIFETIME,
        };
        let session = Session {
            csrf: random_token(),
            who,
        };
        let json =
            Zeroizing::new(serde_json::to_vec(&session).map_err(|e| {
                ServiceError::Store(format!("cannot write the web UI session: {e}"))
            })?);
        self.0.put(id.clone(), json, lifetime).await?;
        Ok((id, session))
    }

    /// The live session the request's cookie names. A vault that does not answer signs
    /// nobody in (and says so in the log).
    pub async fn find(&self, headers: &HeaderMap, secure: bool) -> Option<Session> {
        let id = COOKIE.read(headers, secure)?;
        match self.0.get(id).await {
            Ok(found) => found.and_then(|json| serde_json::from_slice(&json).ok()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a web UI session");
                None
            }
        }
    }

    /// Ends the session the request's cookie names, on every replica.
    pub async fn end(&self, headers: &HeaderMap, secure: bool) {
        if let Some(id) = COOKIE.read(headers, secure)
            && let Err(e) = self.0.end(id).await
        {
            tracing::warn!(error = %e, "cannot end a web UI session; it ends when it expires");
        }
    }
}

/// Whether a stored session (as [`Sessions::start`] wrote it) is an administrator's:
/// those end when the admin token changes.
pub fn is_admin_session(stored: &[u8]) -> bool {
    serde_json::from_slice::<Session>(stored).is_ok_and(|s| matches!(s.who, Who::Admin))
}

impl Session {
    /// Who acts when this session posts a form.
    pub fn principal(&self) -> Principal {
        match &self.who {
            Who::Admin => Principal::Admin,
            Who::User(link) => Principal::User(UserScope::from(link)),
            Who::Person { link, role } => Principal::Person {
                scope: UserScope::from(link),
                role: egret_service::Role::parse(role).unwrap_or(egret_service::Role::User),
            },
        }
    }
}

/// `Set-Cookie` for a new session of `who` (or, with `None`, one that clears it).
pub fn set_cookie(value: Option<(&SecretString, &Who)>, secure: bool) -> HeaderValue {
    let lifetime = match value.map(|(_, who)| who) {
        Some(Who::Admin | Who::Person { .. }) => ADMIN_LIFETIME,
        _ => USER_LIFETIME,
    };
    COOKIE.set(
        value.map(|(v, _)| v.expose_secret()),
        lifetime.as_secs(),
        secure,
    )
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
    egret_service::random_token().expose_secret().to_owned()
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

    /// Sessions in memory, as the vault keeps them (it is tested on its own).
    #[derive(Default)]
    struct Kept(std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

    impl SessionStore for Kept {
        fn put(
            &self,
            id: SecretString,
            session: Zeroizing<Vec<u8>>,
            _: Duration,
        ) -> impl Future<Output = Result<(), ServiceError>> + Send {
            let mut kept = self.0.lock().expect("lock");
            kept.insert(id.expose_secret().to_owned(), session.to_vec());
            std::future::ready(Ok(()))
        }
        fn get(
            &self,
            id: String,
        ) -> impl Future<Output = Result<Option<Zeroizing<Vec<u8>>>, ServiceError>> + Send {
            let found = self.0.lock().expect("lock").get(&id).cloned();
            std::future::ready(Ok(found.map(Zeroizing::new)))
        }
        fn end(&self, id: String) -> impl Future<Output = Result<(), ServiceError>> + Send {
            self.0.lock().expect("lock").remove(&id);
            std::future::ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn sessions_are_found_by_their_cookie_and_ended() {
        let sessions = Sessions(Kept::default());
        let (id, session) = sessions.start(Who::Admin).await.expect("start");
        let mut h = HeaderMap::new();
        let cookie = format!("other=1; egret_ui={}", id.expose_secret());
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&cookie).expect("cookie"),
        );
        let found = sessions.find(&h, false).await.expect("found");
        assert!(csrf_ok(&found, &session.csrf));
        assert!(!csrf_ok(&found, "forged"));
        sessions.end(&h, false).await;
        assert!(sessions.find(&h, false).await.is_none());
    }
}
