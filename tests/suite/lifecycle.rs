//! Process-level guarantees of the in-process proxy: graceful drain, and a vault file that
//! never holds a key in the clear.

use std::time::Duration;

use egret_test_support::client::{self, Proto, request};
use http::StatusCode;

use super::harness::Fixture;
use super::harness::wait::until;

#[tokio::test]
async fn shutdown_drains_in_flight_requests_and_stops_accepting() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-drain");
    let auth = format!("Bearer {p}");
    let proxy = f.egret.proxy_addr;
    let mut s = f.session("api.test.local", Proto::H1).await;
    let req = request(
        "GET",
        &f.at("api.test.local"),
        "/slow?ms=700",
        &[("authorization", &auth)],
        client::empty(),
        Proto::H1,
    )
    .expect("req");
    let in_flight = tokio::spawn(async move { s.fetch(req).await.map(|r| r.status()) });
    until(
        "the request at the upstream",
        Duration::from_secs(10),
        || async { f.upstream.seen().iter().any(|r| r["path"] == "/slow") },
    )
    .await;
    let (task, _dir) = f.egret.begin_shutdown();
    let status = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("bounded")
        .expect("join")
        .expect("answered");
    assert_eq!(status, StatusCode::OK, "the in-flight request finished");
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("drain is bounded")
        .expect("join");
    assert!(
        tokio::net::TcpStream::connect(proxy).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_intercepted_connections() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-idle");
    let auth = format!("Bearer {p}");
    let mut s = f.session("api.test.local", Proto::H1).await;
    let at = f.at("api.test.local");
    let get = || {
        request(
            "GET",
            &at,
            "/",
            &[("authorization", &auth)],
            client::empty(),
            Proto::H1,
        )
        .expect("req")
    };
    let first = s.fetch(get()).await.expect("first request");
    assert_eq!(first.status(), StatusCode::OK);
    // The session stays open and idle while the proxy shuts down: it is told to close
    // rather than waited for until the drain timeout.
    let (task, _dir) = f.egret.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("drain is bounded")
        .expect("join");
    let again = tokio::time::timeout(Duration::from_secs(10), s.fetch(get()))
        .await
        .expect("bounded");
    assert!(
        again.is_err(),
        "the idle connection was closed by the drain"
    );
}

#[tokio::test]
async fn the_vault_file_never_holds_a_key_or_placeholder_in_the_clear() {
    let f = Fixture::new().await;
    let secret = "sk-GREP-ME-0123456789abcdef";
    let p = f.egret.key_and_placeholder("openai", "user:grep", secret);
    let resp = client::get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &f.at("api.test.local"),
        "/",
        &[("authorization", &format!("Bearer {p}"))],
        Proto::H1,
    )
    .await
    .expect("req");
    assert_eq!(resp.status(), StatusCode::OK);
    let raw = std::fs::read(f.egret.dir.path().join("egret.redb")).expect("vault file");
    let find = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        find("user:grep"),
        "the file holds the connection (sanity check of the grep)"
    );
    assert!(!find(secret), "the key is in the vault file in the clear");
    assert!(
        !find(&p),
        "the placeholder is in the vault file in the clear"
    );
}

/// A placeholder's TTL ends it on time, on egret's clock: paused here and moved on
/// without waiting.
#[tokio::test(start_paused = true)]
async fn a_placeholder_stops_when_its_ttl_ends() {
    let f = Fixture::inline().await;
    f.egret
        .vault
        .put_api_key(
            &egret_vault::ConnectionId::default_of(
                "openai",
                &egret_vault::Owner::parse("org").expect("owner"),
            ),
            &secrecy::SecretString::from("sk-ttl"),
        )
        .expect("key");
    let (status, minted) = super::harness::api::admin(
        &f.egret,
        http::Method::POST,
        "/v1/placeholders",
        Some(serde_json::json!({ "connector": "openai", "owner": "org", "ttl": "2m" })),
    )
    .await;
    assert_eq!(status, http::StatusCode::CREATED, "{minted}");
    let p = minted["placeholder"]
        .as_str()
        .expect("placeholder")
        .to_owned();
    let auth = format!("Bearer {p}");
    let headers = [("authorization", auth.as_str())];
    let call = || f.get("api.test.local", "/", &headers, Proto::H1);
    let resp = call().await;
    assert_eq!(resp.status(), http::StatusCode::OK);
    tokio::time::advance(Duration::from_secs(119)).await;
    assert_eq!(
        call().await.status(),
        http::StatusCode::OK,
        "a second before its end"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let resp = call().await;
    assert_eq!(resp.status(), http::StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["x-egret-error"], "placeholder_unknown");
}
