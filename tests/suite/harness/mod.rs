//! What the tests stand on: `Fixture` (an in-process egret beside an HTTPS upstream,
//! with clients that trust egret's CA), and in submodules the real binary (`binary`),
//! the control plane over HTTP (`api`) and a real authorization server (`oauth`).
//! Test modules import from here, never from each other.

pub mod api;
pub mod binary;
pub mod oauth;
pub mod postgres;
pub mod wait;

use egret_proxy::Limits;
use egret_test_support::client::{Proto, Session};
use egret_test_support::proxy::TestProxy;
use egret_test_support::upstream::{Offer, TestCa, Upstream};
use serde_json::Value;

pub const NAMES: &[&str] = &[
    "api.test.local",
    "weather.test.local",
    "allowed.test.local",
    "other.test.local",
    "off.test.local",
];

pub fn policy_yaml() -> String {
    r#"
version: 1
upstream:
  extra_ca: [upstream-ca.pem]
  resolve:
    api.test.local: 127.0.0.1
    weather.test.local: 127.0.0.1
    allowed.test.local: 127.0.0.1
    other.test.local: 127.0.0.1
    off.test.local: 127.0.0.1
    dead.test.local: 127.0.0.1
network:
  allow: [allowed.test.local, localhost]
  deny_private_ranges: true
connectors:
  - id: openai
    auth: api_key
    egress: [api.test.local]
  - id: weather
    auth: api_key
    egress: [weather.test.local]
    inject: { headers: [x-api-key], query: [appid] }
  - id: off
    auth: api_key
    egress: [off.test.local]
    enabled: false
  - id: dead
    auth: api_key
    egress: [dead.test.local]
"#
    .to_owned()
}

pub struct Fixture {
    pub ca: TestCa,
    pub upstream: Upstream,
    pub egret: TestProxy,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with(Offer::Http2AndHttp1, Limits::default()).await
    }

    pub async fn with(offer: Offer, limits: Limits) -> Self {
        let ca = TestCa::new();
        let upstream = Upstream::https(&ca, NAMES, offer).await;
        let egret = TestProxy::start_with(&policy_yaml(), &ca.pem, limits).await;
        Self {
            ca,
            upstream,
            egret,
        }
    }

    /// As [`Fixture::new`], with the policy `yaml` in place of the test policy.
    pub async fn with_policy(yaml: &str) -> Self {
        let ca = TestCa::new();
        let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
        let egret = TestProxy::start(yaml, &ca.pem).await;
        Self {
            ca,
            upstream,
            egret,
        }
    }

    /// As [`Fixture::new`], with the proxy on the test's own runtime: a test that pauses
    /// tokio's clock pauses egret's (placeholders, sandboxes, backoff) with it.
    pub async fn inline() -> Self {
        let ca = TestCa::new();
        let upstream = Upstream::https(&ca, NAMES, Offer::Http2AndHttp1).await;
        let egret = TestProxy::start_inline(&policy_yaml(), &ca.pem).await;
        Self {
            ca,
            upstream,
            egret,
        }
    }

    /// `host:port` of the upstream under a test name.
    pub fn at(&self, host: &str) -> String {
        format!("{host}:{}", self.upstream.addr.port())
    }

    /// CONNECT to `host` (at the upstream's port), TLS trusting egret's CA, then `proto`.
    pub async fn session(&self, host: &str, proto: Proto) -> Session {
        Session::open(
            self.egret.proxy_addr,
            &self.at(host),
            host,
            &self.egret.ca_pem,
            proto,
        )
        .await
        .expect("session through egret")
    }

    /// A GET through egret to `host` (at the upstream's port), the answer collected.
    pub async fn get(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        proto: Proto,
    ) -> http::Response<bytes::Bytes> {
        egret_test_support::client::get(
            self.egret.proxy_addr,
            &self.egret.ca_pem,
            &self.at(host),
            path,
            headers,
            proto,
        )
        .await
        .expect("request through egret")
    }

    /// A GET of `path` at `host` for a [`Session`], with `placeholder` as its Bearer token.
    pub fn bearer_get(
        &self,
        host: &str,
        path: &str,
        placeholder: &str,
        proto: Proto,
    ) -> http::Request<egret_test_support::client::ReqBody> {
        let auth = format!("Bearer {placeholder}");
        egret_test_support::client::request(
            "GET",
            &self.at(host),
            path,
            &[("authorization", &auth)],
            egret_test_support::client::empty(),
            proto,
        )
        .expect("request")
    }

    /// The last request head the upstream saw.
    pub fn last_seen(&self) -> Value {
        self.upstream.seen().last().cloned().unwrap_or(Value::Null)
    }
}

pub fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}
