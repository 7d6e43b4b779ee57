//! Inside intercepted TLS: the swap, host binding, and the upstream side (h2 where
//! offered, pooled, verified).

use base64::Engine;
use egret_proxy::Limits;
use egret_test_support::client::{self, Proto, connect, get, request};
use egret_test_support::upstream::{Offer, TestCa, Upstream};
use http::StatusCode;

use super::harness::{Fixture, json};

fn bearer(p: &str) -> String {
    format!("Bearer {p}")
}

#[tokio::test]
async fn the_placeholder_reaches_the_upstream_as_the_real_key_over_h1_and_h2() {
    let f = Fixture::new().await;
    let p = f
        .egret
        .key_and_placeholder("openai", "user:alice", "sk-REAL-alice");
    for proto in [Proto::H1, Proto::H2] {
        let resp = get(
            f.egret.proxy_addr,
            &f.egret.ca_pem,
            &f.at("api.test.local"),
            "/echo?x=1",
            &[("authorization", &bearer(&p))],
            proto,
        )
        .await
        .expect("request");
        assert_eq!(resp.status(), StatusCode::OK, "{proto:?}");
        let seen = f.last_seen();
        assert_eq!(
            seen["headers"]["authorization"], "Bearer sk-REAL-alice",
            "{proto:?}"
        );
        assert_eq!(
            (seen["path"].as_str(), seen["query"].as_str()),
            (Some("/echo"), Some("x=1"))
        );
        // The upstream offers both: egret speaks the sandbox's version to it (with few
        // connections open; see `many_connections_share_one_http2_upstream_connection`).
        let version = match proto {
            Proto::H1 => "HTTP/1.1",
            Proto::H2 => "HTTP/2.0",
        };
        assert_eq!(seen["version"], version, "{proto:?}");
        assert!(seen["headers"].get("proxy-connection").is_none());
    }
}

#[tokio::test]
async fn many_connections_share_one_http2_upstream_connection() {
    // With few sandbox connections on a worker, each HTTP/1.1 request has an HTTP/1.1
    // upstream connection of its own; from `MULTIPLEX_FROM` on a worker, they share the
    // worker's HTTP/2 connection (where the upstream offers it).
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-many");
    let auth = bearer(&p);
    let host = f.at("api.test.local");
    let open = || {
        client::Session::open(
            f.egret.proxy_addr,
            &host,
            "api.test.local",
            &f.egret.ca_pem,
            Proto::H1,
        )
    };
    let mut first = open().await.expect("session");
    let resp = first
        .get(&host, "/echo", &[("authorization", &auth)])
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(f.last_seen()["version"], "HTTP/1.1", "one connection");
    // Two workers share the connections out evenly: this many puts each over the mark.
    let mut sessions = vec![first];
    for _ in 0..2 * egret_proxy::upstream::MULTIPLEX_FROM {
        sessions.push(open().await.expect("session"));
    }
    for session in &mut sessions {
        let resp = session
            .get(&host, "/echo", &[("authorization", &auth)])
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        let seen = f.last_seen();
        assert_eq!(seen["version"], "HTTP/2.0", "many connections");
        assert_eq!(seen["headers"]["authorization"], "Bearer sk-many");
    }
    drop(sessions);
}

#[tokio::test]
async fn an_http1_only_upstream_gets_http1() {
    let f = Fixture::with(Offer::Http1Only, Limits::default()).await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-h1");
    let resp = get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &f.at("api.test.local"),
        "/echo",
        &[("authorization", &bearer(&p))],
        Proto::H2,
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = f.last_seen();
    assert_eq!(seen["version"], "HTTP/1.1");
    assert_eq!(seen["headers"]["host"], f.at("api.test.local"));
    assert_eq!(seen["headers"]["authorization"], "Bearer sk-h1");
}

#[tokio::test]
async fn requests_without_placeholders_pass_unchanged() {
    let f = Fixture::new().await;
    let resp = get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &f.at("api.test.local"),
        "/echo",
        &[("authorization", "Bearer other-token")],
        Proto::H1,
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        f.last_seen()["headers"]["authorization"],
        "Bearer other-token"
    );
}

#[tokio::test]
async fn configured_header_query_and_basic_fields_are_swapped() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("weather", "org", "w-REAL");
    let path = format!("/data?q=paris&appid={p}");
    let resp = get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &f.at("weather.test.local"),
        &path,
        &[("x-api-key", &p)],
        Proto::H1,
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = f.last_seen();
    assert_eq!(seen["headers"]["x-api-key"], "w-REAL");
    assert_eq!(seen["query"], "q=paris&appid=w-REAL");

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("api:{p}"));
    let resp = get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &f.at("weather.test.local"),
        "/b",
        &[("authorization", &format!("Basic {basic}"))],
        Proto::H2,
    )
    .await
    .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let expected = base64::engine::general_purpose::STANDARD.encode("api:w-REAL");
    assert_eq!(
        f.last_seen()["headers"]["authorization"],
        format!("Basic {expected}")
    );
}

async fn refused(
    f: &Fixture,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    proto: Proto,
) -> (String, serde_json::Value) {
    let before = f.upstream.seen().len();
    let resp = get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &f.at(host),
        path,
        headers,
        proto,
    )
    .await
    .expect("request");
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
    assert_eq!(
        f.upstream.seen().len(),
        before,
        "a refused request reached the upstream"
    );
    let code = resp.headers()["x-egret-error"]
        .to_str()
        .expect("code")
        .to_owned();
    let body = json(resp.body());
    assert_eq!(body["error"], code.as_str());
    assert!(body["message"].as_str().is_some_and(|m| m.len() > 20));
    (code, body)
}

#[tokio::test]
async fn each_placeholder_misuse_has_its_refusal() {
    let f = Fixture::new().await;
    let openai = f.egret.key_and_placeholder("openai", "org", "sk-REAL-org");
    let weather = f.egret.key_and_placeholder("weather", "org", "w-REAL");
    let b = bearer(&openai);
    for proto in [Proto::H1, Proto::H2] {
        let (code, body) = refused(
            &f,
            "weather.test.local",
            "/",
            &[("authorization", &b)],
            proto,
        )
        .await;
        assert_eq!(code, "placeholder_wrong_host");
        assert_eq!(body["connector"], "openai");
        let (code, _) = refused(&f, "api.test.local", "/", &[("x-api-key", &weather)], proto).await;
        assert_eq!(code, "placeholder_wrong_host");
        let (code, _) = refused(
            &f,
            "api.test.local",
            &format!("/v1?token={openai}"),
            &[],
            proto,
        )
        .await;
        assert_eq!(code, "placeholder_misplaced");
        let (code, _) = refused(
            &f,
            "api.test.local",
            "/",
            &[("cookie", &format!("s={openai}"))],
            proto,
        )
        .await;
        assert_eq!(code, "placeholder_misplaced");
        let unknown = bearer(&format!("egp_{}", "x".repeat(40)));
        let (code, _) = refused(
            &f,
            "api.test.local",
            "/",
            &[("authorization", &unknown)],
            proto,
        )
        .await;
        assert_eq!(code, "placeholder_unknown");
    }
    // Revoked: refused at once.
    let revoked = egret_vault::Placeholder::parse(&openai).expect("placeholder");
    f.egret.vault.revoke_placeholder(&revoked).expect("revoke");
    let (code, _) = refused(
        &f,
        "api.test.local",
        "/",
        &[("authorization", &b)],
        Proto::H1,
    )
    .await;
    assert_eq!(code, "placeholder_unknown");
}

#[tokio::test]
async fn host_header_and_authority_must_match_the_tunnel() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-REAL");
    let b = bearer(&p);
    for proto in [Proto::H1, Proto::H2] {
        let mut s = f.session("api.test.local", proto).await;
        // Fronting: tunnel and SNI say api, the request says weather (where the key would be refused anyway) or other.
        let req = request(
            "GET",
            &f.at("other.test.local"),
            "/",
            &[("authorization", &b)],
            client::empty(),
            proto,
        )
        .expect("req");
        let resp = s.fetch(req).await.expect("answer");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{proto:?}");
        assert_eq!(resp.headers()["x-egret-error"], "host_mismatch");
    }
    assert!(f.upstream.seen().is_empty());
}

#[tokio::test]
async fn an_sni_that_differs_from_the_connect_is_refused() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-REAL");
    let c = connect(f.egret.proxy_addr, &f.at("api.test.local"))
        .await
        .expect("connect");
    let tls = client::tls_unverified(c.stream, "other.test.local", &[b"http/1.1"])
        .await
        .expect("tls");
    let mut s = client::h1_over(tls).await.expect("h1");
    let req = request(
        "GET",
        &f.at("api.test.local"),
        "/",
        &[("authorization", &bearer(&p))],
        client::empty(),
        Proto::H1,
    )
    .expect("req");
    let resp = s.fetch(req).await.expect("answer");
    assert_eq!(resp.headers()["x-egret-error"], "host_mismatch");
    assert!(f.upstream.seen().is_empty());
}

#[tokio::test]
async fn disabled_connectors_are_still_intercepted_and_keep_working() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("off", "org", "sk-OFF");
    let resp = get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &f.at("off.test.local"),
        "/",
        &[("authorization", &bearer(&p))],
        Proto::H1,
    )
    .await
    .expect("req");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(f.last_seen()["headers"]["authorization"], "Bearer sk-OFF");
}

#[tokio::test]
async fn a_dead_upstream_is_a_502_that_names_the_host() {
    let f = Fixture::new().await;
    // dead.test.local maps to 127.0.0.1; port 1 has nothing listening.
    let resp = get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        "dead.test.local:1",
        "/",
        &[],
        Proto::H1,
    )
    .await
    .expect("answer");
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(resp.headers()["x-egret-error"], "upstream_unreachable");
    assert!(
        json(resp.body())["message"]
            .as_str()
            .expect("msg")
            .contains("dead.test.local")
    );
}

#[tokio::test]
async fn an_upstream_certificate_egret_does_not_trust_is_a_502_with_the_fix() {
    let f = Fixture::new().await;
    let stranger = TestCa::new();
    let other = Upstream::https(&stranger, &["api.test.local"], Offer::Http2AndHttp1).await;
    let authority = format!("api.test.local:{}", other.addr.port());
    let resp = get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &authority,
        "/",
        &[],
        Proto::H1,
    )
    .await
    .expect("answer");
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let message = json(resp.body())["message"]
        .as_str()
        .expect("msg")
        .to_owned();
    assert!(message.contains("extra_ca"), "{message}");
    assert!(other.seen().is_empty());
}

#[tokio::test]
async fn a_policy_change_applies_to_open_tunnels() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-REAL");
    let mut s = f.session("api.test.local", Proto::H2).await;
    let req = || f.bearer_get("api.test.local", "/", &p, Proto::H2);
    assert_eq!(
        s.fetch(req()).await.expect("first").status(),
        StatusCode::OK
    );
    // The operator removes the connector: the next request on the same tunnel is refused.
    f.egret.reload("version: 1\nnetwork: { allow: [] }\n");
    let resp = s.fetch(req()).await.expect("second");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["x-egret-error"], "egress_denied");
    assert_eq!(f.upstream.seen().len(), 1);
}

/// Two sandbox connections open at once are served by different worker threads, each
/// with its own upstream pool: the second request cannot reuse the first's upstream
/// connection. (Left to the kernel, the worker that wakes first takes both.)
#[tokio::test]
async fn open_connections_spread_over_the_workers() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-REAL");
    let req = || f.bearer_get("api.test.local", "/echo", &p, Proto::H1);
    let mut first = f.session("api.test.local", Proto::H1).await;
    assert_eq!(
        first.fetch(req()).await.expect("first").status(),
        StatusCode::OK
    );
    let mut second = f.session("api.test.local", Proto::H1).await;
    assert_eq!(
        second.fetch(req()).await.expect("second").status(),
        StatusCode::OK
    );
    assert_eq!(f.upstream.connections(), 2);
    // Each worker reuses its own pooled connection.
    assert_eq!(
        first.fetch(req()).await.expect("again").status(),
        StatusCode::OK
    );
    assert_eq!(
        second.fetch(req()).await.expect("again").status(),
        StatusCode::OK
    );
    assert_eq!(f.upstream.connections(), 2);
}

#[tokio::test]
async fn many_requests_share_pooled_upstream_connections() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-REAL");
    let b = bearer(&p);
    for proto in [Proto::H1, Proto::H2, Proto::H1, Proto::H2] {
        let resp = get(
            f.egret.proxy_addr,
            &f.egret.ca_pem,
            &f.at("api.test.local"),
            "/echo",
            &[("authorization", &b)],
            proto,
        )
        .await
        .expect("req");
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // Sequential requests from four sandbox connections rode the pooled upstream
    // connections: one per proxy worker thread at most (the test proxy runs two).
    let pooled = f.upstream.connections();
    assert!((1..=2).contains(&pooled), "{pooled} upstream connections");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (proxy, ca, auth, at) = (
            f.egret.proxy_addr,
            f.egret.ca_pem.clone(),
            b.clone(),
            f.at("api.test.local"),
        );
        let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
        tasks.push(tokio::spawn(async move {
            get(proxy, &ca, &at, "/echo", &[("authorization", &auth)], proto)
                .await
                .expect("req")
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join"), StatusCode::OK);
    }
    assert!(
        f.upstream
            .seen()
            .iter()
            .all(|s| s["headers"]["authorization"] == "Bearer sk-REAL")
    );
}
