//! An in-process egret beside a real authorization server (`oidc-provider`, started per
//! fixture), with the `vendor` (authorization code) and `ci` (client credentials)
//! connectors pointing at it.

use std::time::Duration;

use egret_test_support::browser::{Browser, Choice};
use egret_test_support::client::{Proto, get};
use egret_test_support::oauth_server::OAuthServer;
use egret_test_support::proxy::TestProxy;
use egret_test_support::upstream::TestCa;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::admin;

pub struct OAuthFixture {
    pub ca: TestCa,
    pub server: OAuthServer,
    pub egret: TestProxy,
}

pub struct Options {
    pub access_ttl: u64,
    pub skew: &'static str,
    pub timeout: &'static str,
    /// The `vendor` connector's `identity_match`, if any.
    pub identity_match: Option<&'static str>,
    /// The `vendor` connector's scopes.
    pub scopes: &'static str,
    /// Whether `vendor` allows several named connections per owner.
    pub multiple_connections: bool,
    /// A webhook receiving every event, signed with the secret `egret-secret`.
    pub webhook: Option<String>,
    /// Lines added to the `vendor` connector (request rules), indented by four spaces.
    pub vendor_extra: &'static str,
    /// The `ci` connector's `client_secret` (a `${file:ci-secret}` reference unless given).
    pub ci_client_secret: String,
    /// Top-level lines added to the policy (`secret_sources:`), and names resolved to
    /// 127.0.0.1 besides the test's own.
    pub top: String,
    pub resolve: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            access_ttl: 300,
            skew: "60s",
            timeout: "2s",
            identity_match: None,
            scopes: "openid, offline_access, read",
            multiple_connections: false,
            webhook: None,
            vendor_extra: "",
            ci_client_secret: "${file:ci-secret}".to_owned(),
            top: String::new(),
            resolve: String::new(),
        }
    }
}

impl OAuthFixture {
    pub async fn new(o: Options) -> Self {
        let ca = TestCa::new();
        // egret first: the redirect URI the vendor registers names its control port.
        let egret = TestProxy::start("version: 1\n", &ca.pem).await;
        let redirect = format!(
            "http://127.0.0.1:{}/oauth/callback",
            egret.control_addr.port()
        );
        let clients = json!([
            {
                "client_id": "egret",
                "client_secret": "egret-secret",
                "grant_types": ["authorization_code", "refresh_token"],
                "redirect_uris": [redirect],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            {
                "client_id": "egret-ci",
                "client_secret": "ci-secret",
                "grant_types": ["client_credentials"],
                "redirect_uris": [],
                "response_types": [],
                "token_endpoint_auth_method": "client_secret_post",
            },
        ]);
        let server = OAuthServer::start(&ca, &clients, o.access_ttl).await;
        std::fs::write(egret.dir.path().join("egret-secret"), "egret-secret\n").expect("secret");
        std::fs::write(egret.dir.path().join("ci-secret"), "ci-secret").expect("secret");
        let port = server.port;
        let control = egret.control_addr.port();
        let (skew, timeout, scopes) = (o.skew, o.timeout, o.scopes);
        let multiple = o.multiple_connections;
        let extra = o.vendor_extra;
        let (ci_secret, top, resolve) = (o.ci_client_secret, o.top, o.resolve);
        let webhooks = o
            .webhook
            .map(|url| {
                format!("webhooks:\n  - {{ url: \"{url}\", secret: \"${{file:egret-secret}}\" }}\n")
            })
            .unwrap_or_default();
        let identity = o
            .identity_match
            .map(|c| format!("\n      identity_match: {c}"))
            .unwrap_or_default();
        let yaml = format!(
            r#"
version: 1
control:
  public_url: http://127.0.0.1:{control}
upstream:
  extra_ca: [upstream-ca.pem]
  resolve: {{ auth.test.local: 127.0.0.1, api.test.local: 127.0.0.1{resolve} }}
{top}connectors:
  - id: vendor
    auth: oauth2
    oauth:
      issuer: https://auth.test.local:{port}
      client_id: egret
      client_secret: ${{file:egret-secret}}
      scopes: [{scopes}]
      extra_params: {{ prompt: consent }}
      refresh_skew: {skew}{identity}
      timeout: {timeout}
    egress: ["api.test.local:{port}"]
    test: {{ path: /resource }}
    multiple_connections: {multiple}
{extra}  - id: ci
    auth: oauth2
    grant: client_credentials
    oauth:
      token_url: https://auth.test.local:{port}/token
      client_id: egret-ci
      client_secret: "{ci_secret}"
      client_auth: post
      scopes: [read]
      refresh_skew: {skew}
      timeout: {timeout}
    egress: ["api.test.local:{port}"]
    test: {{ path: /resource, identity: client_id }}
{webhooks}"#
        );
        egret.reload(&yaml);
        Self { ca, server, egret }
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        admin(&self.egret, method, path, body).await
    }

    /// Starts an authorization and returns the vendor URL.
    pub async fn authorization_url(&self, connector: &str, owner: &str) -> String {
        self.authorization_url_named(connector, owner, None).await
    }

    /// Starts an authorization of the connection `name` (`?name=`), when one is given.
    pub async fn authorization_url_named(
        &self,
        connector: &str,
        owner: &str,
        name: Option<&str>,
    ) -> String {
        let query = name.map(|n| format!("?name={n}")).unwrap_or_default();
        let (status, body) = self
            .admin(
                Method::POST,
                &format!("/v1/connections/{connector}/{owner}/authorize{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "redirect");
        body["authorization_url"].as_str().expect("url").to_owned()
    }

    /// The whole authorization-code flow, as a browser: returns the callback page.
    pub async fn sign_in(&self, owner: &str, choice: Choice) -> egret_test_support::browser::Page {
        let url = self.authorization_url("vendor", owner).await;
        Browser::new(&self.ca.pem)
            .authorize(&url, choice)
            .await
            .expect("browser flow")
    }

    pub async fn mint(&self, connector: &str, owner: &str) -> String {
        let (status, body) = self
            .admin(
                Method::POST,
                "/v1/placeholders",
                Some(json!({ "connector": connector, "owner": owner })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["placeholder"]
            .as_str()
            .expect("placeholder")
            .to_owned()
    }

    /// GET /resource on the vendor's API through egret with `placeholder`.
    pub async fn call(
        &self,
        placeholder: &str,
        proto: Proto,
    ) -> (StatusCode, Option<String>, Value) {
        self.call_path(placeholder, "/resource", proto).await
    }

    /// As [`Self::call`], to another path of the server's API.
    pub async fn call_path(
        &self,
        placeholder: &str,
        path: &str,
        proto: Proto,
    ) -> (StatusCode, Option<String>, Value) {
        let auth = format!("Bearer {placeholder}");
        let resp = get(
            self.egret.proxy_addr,
            &self.egret.ca_pem,
            &self.server.api_authority(),
            path,
            &[("authorization", &auth)],
            proto,
        )
        .await
        .expect("request through egret");
        let code = egret_test_support::client::refusal_code(&resp);
        (
            resp.status(),
            code,
            serde_json::from_slice(resp.body()).unwrap_or(Value::Null),
        )
    }

    pub async fn connection(&self, connector: &str, owner: &str) -> Value {
        let (_, body) = self
            .admin(
                Method::GET,
                &format!("/v1/connections?connector={connector}&owner={owner}"),
                None,
            )
            .await;
        body["connections"][0].clone()
    }

    /// Moves egret's clock to when the `vendor` connection's token is within
    /// `skew_secs` of expiring (a negative skew: past its expiry).
    pub async fn wait_until_due(&self, owner: &str, skew_secs: i64) {
        self.wait_until_due_of("vendor", owner, skew_secs).await;
    }

    /// As [`Self::wait_until_due`] for any connection. Nobody waits: egret's test clock
    /// skips ahead. (It cannot be tokio's paused clock: the authorization server is
    /// another process on real sockets, and paused time would fire egret's timeouts
    /// while it answers.) The vendor's own view of time is unchanged, so a token egret
    /// now counts as expired is still one the vendor accepts.
    pub async fn wait_until_due_of(&self, connector: &str, owner: &str, skew_secs: i64) {
        let expires = self.connection(connector, owner).await["expires_at"]
            .as_i64()
            .expect("expires_at");
        let due = expires - skew_secs + 1;
        let wait = due - self.egret.clock.unix();
        if wait > 0 {
            self.egret
                .clock
                .skip(Duration::from_secs(u64::try_from(wait).unwrap_or(0)));
        }
    }

    /// Retries a request until it succeeds (renewal backoff), bounded.
    pub async fn until_ok(&self, placeholder: &str) -> Value {
        super::wait::until_some("egret to recover", Duration::from_secs(20), || async {
            let (status, _, body) = self.call(placeholder, Proto::H1).await;
            (status == StatusCode::OK).then_some(body)
        })
        .await
    }
}

/// The OAuth app the real binary signs in with: a native client (RFC 8252) whose
/// loopback redirect URI matches egret's control port, whatever the system picked.
pub fn loopback_client(secret: &str) -> Value {
    json!([{
        "client_id": "egret",
        "client_secret": secret,
        "application_type": "native",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["http://127.0.0.1/oauth/callback"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }])
}
