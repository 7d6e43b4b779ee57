//! Proxy authentication and sandbox-bound placeholders (`proxy.auth: basic`).

use egret_test_support::client::{Proto, Session, connect_as};
use egret_test_support::proxy::TestProxy;
use egret_test_support::upstream::{Offer, TestCa, Upstream};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::harness::api::admin;
use super::harness::{NAMES, policy_yaml};

struct Setup {
    upstream: Upstream,
    egret: TestProxy,
}

async fn setup() -> Setup {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    let egret = TestProxy::start(&basic_auth_policy(), &ca.pem).await;
    Setup { upstream, egret }
}

/// As [`setup`], with the proxy on the test's own runtime, whose clock the test may pause.
async fn setup_inline() -> Setup {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
    let egret = TestProxy::start_inline(&basic_auth_policy(), &ca.pem).await;
    Setup { upstream, egret }
}

fn basic_auth_policy() -> String {
    policy_yaml().replace("version: 1\n", "version: 1\nproxy: { auth: basic }\n")
}

impl Setup {
    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        admin(&self.egret, method, path, body).await
    }

    async fn sandbox(&self, id: &str, ttl: Option<&str>) -> String {
        let (status, body) = self
            .admin(
                Method::POST,
                "/v1/sandboxes",
                Some(json!({ "id": id, "ttl": ttl })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["secret"].as_str().expect("secret").to_owned()
    }

    fn at(&self, host: &str) -> String {
        format!("{host}:{}", self.upstream.addr.port())
    }

    /// A GET through egret as sandbox `id`; the status and the refusal code.
    async fn get_as(&self, id: &str, secret: &str, auth: &str) -> (StatusCode, Option<String>) {
        let authority = self.at("api.test.local");
        let mut s = Session::open_as(
            self.egret.proxy_addr,
            &authority,
            "api.test.local",
            &self.egret.ca_pem,
            Proto::H1,
            Some((id, secret)),
        )
        .await
        .expect("session");
        let resp = s
            .get(&authority, "/", &[("authorization", auth)])
            .await
            .expect("fetch");
        let code = egret_test_support::client::refusal_code(&resp);
        (resp.status(), code)
    }
}

#[tokio::test(start_paused = true)]
async fn without_valid_sandbox_credentials_the_proxy_answers_407() {
    let s = setup_inline().await;
    let authority = s.at("api.test.local");
    for creds in [None, Some(("ghost", "egs_nope")), Some(("sb-a", "wrong"))] {
        let c = connect_as(s.egret.proxy_addr, &authority, creds)
            .await
            .expect("connect");
        assert_eq!(
            c.status,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "{creds:?}"
        );
        assert_eq!(c.headers["proxy-authenticate"], "Basic realm=\"egret\"");
        assert_eq!(c.headers["x-egret-error"], "proxy_auth_required");
    }
    let secret = s.sandbox("sb-a", None).await;
    let c = connect_as(s.egret.proxy_addr, &authority, Some(("sb-a", &secret)))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::OK);

    // Revoked: refused again. Expired: refused too.
    let (status, _) = s.admin(Method::DELETE, "/v1/sandboxes/sb-a", None).await;
    assert_eq!(status, StatusCode::OK);
    let c = connect_as(s.egret.proxy_addr, &authority, Some(("sb-a", &secret)))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    let short = s.sandbox("sb-short", Some("1s")).await;
    // Paused time: egret's clock moves on at once, nobody waits.
    tokio::time::advance(std::time::Duration::from_millis(2100)).await;
    let c = connect_as(s.egret.proxy_addr, &authority, Some(("sb-short", &short)))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    let (_, listed) = s.admin(Method::GET, "/v1/sandboxes", None).await;
    assert!(
        !listed.to_string().contains(&short),
        "secrets are never listed: {listed}"
    );
}

#[tokio::test]
async fn a_sandbox_bound_placeholder_works_only_from_its_sandbox() {
    let s = setup().await;
    let (a, b) = (s.sandbox("sb-a", None).await, s.sandbox("sb-b", None).await);
    let (status, _) = s
        .admin(
            Method::PUT,
            "/v1/connections/openai/user:ann/key",
            Some(json!({"key": "sk-ann-REAL"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, minted) = s
        .admin(
            Method::POST,
            "/v1/placeholders",
            Some(json!({"connector": "openai", "owner": "user:ann", "sandbox": "sb-a"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    assert_eq!(minted["sandbox"], "sb-a");
    let auth = format!("Bearer {}", minted["placeholder"].as_str().expect("p"));

    assert_eq!(s.get_as("sb-a", &a, &auth).await, (StatusCode::OK, None));
    assert_eq!(
        s.upstream.seen().last().expect("seen")["headers"]["authorization"],
        "Bearer sk-ann-REAL"
    );
    assert_eq!(
        s.get_as("sb-b", &b, &auth).await,
        (
            StatusCode::FORBIDDEN,
            Some("placeholder_wrong_sandbox".to_owned())
        )
    );
    // Minting for a sandbox that does not exist is refused.
    let (status, _) = s
        .admin(
            Method::POST,
            "/v1/placeholders",
            Some(json!({"connector": "openai", "owner": "user:ann", "sandbox": "nope"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Revoking the sandbox takes its placeholders with it.
    s.admin(Method::DELETE, "/v1/sandboxes/sb-a", None).await;
    let a2 = s.sandbox("sb-a", None).await;
    assert_eq!(
        s.get_as("sb-a", &a2, &auth).await,
        (
            StatusCode::FORBIDDEN,
            Some("placeholder_unknown".to_owned())
        )
    );
}

/// Revoking a sandbox (or issuing it new credentials) reaches the tunnels it already
/// has open: the next request inside is refused, not only the next CONNECT.
#[tokio::test]
async fn revoking_a_sandbox_stops_the_tunnels_it_has_open() {
    let s = setup().await;
    let p = s
        .egret
        .key_and_placeholder("openai", "user:ann", "sk-ann-REAL");
    let auth = format!("Bearer {p}");
    let authority = s.at("api.test.local");
    let open = |id: &'static str, secret: String| {
        let (proxy, ca, authority) = (
            s.egret.proxy_addr,
            s.egret.ca_pem.clone(),
            authority.clone(),
        );
        async move {
            Session::open_as(
                proxy,
                &authority,
                "api.test.local",
                &ca,
                Proto::H1,
                Some((id, &secret)),
            )
            .await
            .expect("session")
        }
    };
    for (what, replace) in [("revoked", false), ("issued anew", true)] {
        let secret = s.sandbox("sb-open", None).await;
        let mut tunnel = open("sb-open", secret).await;
        let headers = [("authorization", auth.as_str())];
        let resp = tunnel.get(&authority, "/", &headers).await.expect("answer");
        assert_eq!(resp.status(), StatusCode::OK, "{what}: before");
        if replace {
            s.sandbox("sb-open", None).await;
        } else {
            let (status, _) = s.admin(Method::DELETE, "/v1/sandboxes/sb-open", None).await;
            assert_eq!(status, StatusCode::OK);
        }
        let resp = tunnel.get(&authority, "/", &headers).await.expect("answer");
        assert_eq!(
            resp.status(),
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "{what}: after"
        );
        assert_eq!(
            egret_test_support::client::refusal_code(&resp).as_deref(),
            Some("proxy_auth_required"),
            "{what}"
        );
    }
}
