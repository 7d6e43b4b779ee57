//! Load, bounded: 200 sandbox connections at once (half HTTP/1.1, half HTTP/2), each
//! sending 10 requests with a placeholder — 2,000 swaps — after a warm-up round. Every
//! request must succeed, and memory after the second round must be flat against the
//! first (no per-request leak), measured in the `egret` process itself (the real
//! binary). A 60 s cap ends the test whatever happens.

use std::net::SocketAddr;
use std::time::Duration;

use egret_test_support::client::Proto;
use http::StatusCode;

use super::harness::binary::{Egret, setup};

const CONNECTIONS: usize = 200;
const REQUESTS_EACH: usize = 10;

/// Runs one round; returns how many requests answered 200.
async fn round(
    proxy: SocketAddr,
    ca: &str,
    authority: &str,
    auth: &str,
    requests_each: usize,
) -> usize {
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
            let (ca, authority) = (ca.to_owned(), authority.to_owned());
            let auth = auth.to_owned();
            tokio::spawn(async move {
                let mut s = egret_test_support::client::Session::open(
                    proxy,
                    &authority,
                    "api.test.local",
                    &ca,
                    proto,
                )
                .await
                .expect("session");
                let mut ok = 0;
                for _ in 0..requests_each {
                    let resp = s
                        .get(&authority, "/", &[("authorization", &auth)])
                        .await
                        .expect("answer");
                    ok += usize::from(resp.status() == StatusCode::OK);
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.expect("task");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_requests_over_two_hundred_connections_without_error_or_growth() {
    let bounded = tokio::time::timeout(Duration::from_secs(60), async {
        let (dir, _ca, upstream) = setup().await;
        let egret = Egret::start(dir.path(), "load.log").await;
        let ca = egret.export_ca().await;
        let p = egret.key_and_placeholder("openai", "org", "sk-load").await;
        let auth = format!("Bearer {p}");
        let authority = format!("api.test.local:{}", upstream.addr.port());
        let round = |n| round(egret.proxy, &ca, &authority, &auth, n);
        assert_eq!(round(2).await, CONNECTIONS * 2, "warm-up");
        let warm = egret.rss_kib();
        assert_eq!(round(REQUESTS_EACH).await, CONNECTIONS * REQUESTS_EACH);
        let after = egret.rss_kib();
        eprintln!("load: {warm} KiB after warm-up, {after} KiB after 2,000 requests");
        // Flat: what a leak of a few KiB per request would show (2,000 requests).
        assert!(
            after < warm + 48 * 1024,
            "memory grew from {warm} KiB to {after} KiB over 2,000 requests"
        );
        let seen = upstream.seen();
        assert!(
            seen.iter()
                .rev()
                .take(100)
                .all(|s| s["headers"]["authorization"] == "Bearer sk-load")
        );
    });
    bounded.await.expect("the load test finished within 60 s");
}
