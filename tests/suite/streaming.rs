//! Bodies stream both ways with backpressure: big transfers pass with flat memory.
//! Memory is that of the `egret` process itself (the real binary), not of this test
//! process, whose clients and upstream hold buffers of their own.

use egret_test_support::client::{Proto, ReqBody, Session, request};
use egret_test_support::upstream::{Upstream, Zeros};
use http::StatusCode;
use http_body_util::BodyExt;

use super::harness::binary::{Egret, setup};
use super::harness::json;

/// A running egret binary beside an HTTPS upstream, and what a client needs to reach it.
struct Binary {
    egret: Egret,
    upstream: Upstream,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

impl Binary {
    async fn start() -> Self {
        let (dir, _ca, upstream) = setup().await;
        let egret = Egret::start(dir.path(), "streaming.log").await;
        let ca_pem = egret.export_ca().await;
        Self {
            egret,
            upstream,
            ca_pem,
            _dir: dir,
        }
    }

    fn at(&self, host: &str) -> String {
        format!("{host}:{}", self.upstream.addr.port())
    }

    async fn session(&self, host: &str, proto: Proto) -> Session {
        Session::open(self.egret.proxy, &self.at(host), host, &self.ca_pem, proto)
            .await
            .expect("session through egret")
    }
}

const MIB: u64 = 1024 * 1024;

/// Memory may grow by buffers and pools, never by a body's size.
const FLAT_KIB: u64 = 96 * 1024;

async fn download(f: &Binary, proto: Proto, bytes: u64) {
    let p = f
        .egret
        .key_and_placeholder("openai", "org", "sk-stream")
        .await;
    let mut s = f.session("api.test.local", proto).await;
    let auth = format!("Bearer {p}");
    let req = request(
        "GET",
        &f.at("api.test.local"),
        &format!("/bytes?n={bytes}"),
        &[("authorization", &auth)],
        egret_test_support::client::empty(),
        proto,
    )
    .expect("req");
    let before = f.egret.rss_kib();
    let resp = s.send(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut got = 0u64;
    let mut peak = before;
    while let Some(frame) = body.frame().await {
        got += frame
            .expect("frame")
            .data_ref()
            .map_or(0, |d| d.len() as u64);
        if got % (64 * MIB) < 16 * 1024 {
            peak = peak.max(f.egret.rss_kib());
        }
    }
    assert_eq!(got, bytes);
    assert!(
        peak.saturating_sub(before) < FLAT_KIB,
        "memory grew by {} KiB for a {} MiB body",
        peak - before,
        bytes / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_download_streams_over_http1_with_flat_memory() {
    let f = Binary::start().await;
    download(&f, Proto::H1, 1024 * MIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_download_streams_over_http2() {
    let f = Binary::start().await;
    download(&f, Proto::H2, 256 * MIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_upload_streams_with_flat_memory() {
    let f = Binary::start().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-up").await;
    let auth = format!("Bearer {p}");
    for proto in [Proto::H1, Proto::H2] {
        let size = 256 * MIB;
        let body: ReqBody = Zeros::new(size).boxed_unsync();
        let len = size.to_string();
        let mut headers = vec![("authorization", auth.as_str())];
        if proto == Proto::H1 {
            headers.push(("content-length", len.as_str()));
        }
        let req = request(
            "POST",
            &f.at("api.test.local"),
            "/upload",
            &headers,
            body,
            proto,
        )
        .expect("req");
        let mut s = f.session("api.test.local", proto).await;
        let before = f.egret.rss_kib();
        let resp = s.fetch(req).await.expect("response");
        let grew = f.egret.rss_kib().saturating_sub(before);
        assert_eq!(resp.status(), StatusCode::OK, "{proto:?}");
        assert_eq!(json(resp.body())["received"], size, "{proto:?}");
        assert!(
            grew < FLAT_KIB,
            "{proto:?}: memory grew by {grew} KiB for a 256 MiB upload"
        );
    }
}
