//! The hot path, measured: the placeholder swap on a realistic request, the leaf
//! certificate cache (hit and miss), the vault lookup, one intercepted request end to
//! end on loopback, and queueing a request's audit event. Targets (issue 2): swap < 2 µs, cache hit < 1 µs, miss < 1 ms.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use egret_proxy::swap::{Destination, Lookup, swap_request};
use egret_test_support::client::{Proto, Session, empty, request};
use egret_test_support::proxy::TestProxy;
use egret_test_support::upstream::{Offer, TestCa, Upstream};
use egret_tls::{CertificateAuthority, LeafCache};
use egret_vault::{ConnectionId, MasterKey, Owner, Placeholder, Vault, unix_now};
use secrecy::SecretString;

/// The allocator the `egret` binary ships with, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POLICY: &str =
    "version: 1\nconnectors:\n  - { id: openai, auth: api_key, egress: [api.openai.com] }\n";

/// The same connector with five request rules, the last one the request's (issue 26).
const FIVE_RULES: &str = r#"version: 1
connectors:
  - id: openai
    auth: api_key
    egress: [api.openai.com]
    rules:
      - { methods: [DELETE], path: "/v1/files/**", action: deny }
      - { methods: [POST], path: "/v1/fine_tuning/**", action: deny }
      - { methods: [GET], path: "/v1/models/*", action: allow }
      - { methods: [POST], path: "/v1/assistants", query: { beta: "true" }, action: deny }
      - { methods: [POST], path: "/v1/chat/completions", action: allow }
    default: deny
"#;

/// Twenty headers as a Python SDK sends them, one of them the placeholder.
fn realistic(placeholder: &str) -> http::request::Parts {
    let mut b = http::Request::builder()
        .method("POST")
        .uri("/v1/chat/completions?stream=false")
        .header("host", "api.openai.com");
    let headers = [
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate"),
        ("connection", "keep-alive"),
        ("content-type", "application/json"),
        ("content-length", "1234"),
        ("user-agent", "OpenAI/Python 1.51.0"),
        ("x-stainless-lang", "python"),
        ("x-stainless-package-version", "1.51.0"),
        ("x-stainless-os", "Linux"),
        ("x-stainless-arch", "x64"),
        ("x-stainless-runtime", "CPython"),
        ("x-stainless-runtime-version", "3.11.7"),
        ("x-stainless-async", "false"),
        ("x-stainless-retry-count", "0"),
        ("openai-organization", "org-abcdefghijklmnop"),
        ("openai-project", "proj_abcdefghijklmnop"),
        ("x-request-id", "5f0e7f3c-6a1b-4b8e-9d0a-2f1e3c4d5e6f"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ];
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b = b.header("authorization", format!("Bearer {placeholder}"));
    b.body(()).expect("request").into_parts().0
}

fn swap(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = egret_policy::parse(POLICY, Path::new("b.yaml"), dir.path()).expect("policy");
    let ruled = egret_policy::parse(FIVE_RULES, Path::new("b.yaml"), dir.path()).expect("policy");
    let facts = egret_policy::RequestFacts {
        method: "POST",
        path: "/v1/chat/completions",
        query: Some("stream=false"),
        body: None,
    };
    let asked = egret_proxy::swap::Asked::Facts(facts);
    let vault = Vault::open(&dir.path().join("v.redb"), &MasterKey::generate()).expect("vault");
    let org = ConnectionId::default_of("openai", &Owner::parse("org").expect("owner"));
    vault
        .put_api_key(
            &org,
            &SecretString::from("sk-proj-0123456789abcdefghijklmnopqrstuvwxyz"),
        )
        .expect("put");
    let (p, _) = vault.mint_placeholder(&org, None).expect("mint");
    let dest = Destination {
        host: "api.openai.com",
        port: 443,
    };
    let mut g = c.benchmark_group("swap");
    for (name, auth, policy, asked) in [
        ("20_headers_with_placeholder", p.expose(), &policy, None),
        (
            "20_headers_no_placeholder",
            "sk-not-a-placeholder",
            &policy,
            None,
        ),
        (
            "20_headers_with_placeholder_and_five_rules",
            p.expose(),
            &ruled,
            Some(&asked),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || realistic(auth),
                |mut parts| {
                    let lookup = Lookup {
                        policy,
                        vault: &vault,
                        now_unix: unix_now(),
                        renewed: &[],
                        sandbox: None,
                        asked,
                        approved: &[],
                    };
                    let swapped = swap_request(&mut parts, dest, &lookup);
                    black_box(swapped.is_ok());
                    parts
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let hash = p.hash();
    c.bench_function("vault/resolve_placeholder", |b| {
        b.iter(|| black_box(vault.resolve(black_box(&hash), unix_now()).is_some()))
    });
    let unknown = Placeholder::mint().hash();
    c.bench_function("vault/resolve_unknown", |b| {
        b.iter(|| black_box(vault.resolve(black_box(&unknown), unix_now()).is_none()))
    });
}

/// The response scan (issue 5): building the matcher for one request's credential, and
/// streaming a 1 MiB answer through it in 16 KiB chunks.
fn redaction(c: &mut Criterion) {
    use bytes::Bytes;
    use egret_proxy::redact::Redactor;
    use egret_proxy::swap::Echo;
    use futures_util::FutureExt;
    use http_body_util::BodyExt;

    let echoes = [Echo::new(
        b"sk-proj-0123456789abcdefghijklmnopqrstuvwxyz",
        b"egp_0123456789abcdefghijklmnopqrstuvwxyzABCD",
    )];
    c.bench_function("redact/build_for_one_credential", |b| {
        b.iter(|| black_box(Redactor::new(black_box(&echoes)).is_some()))
    });
    let cache = egret_proxy::redact::Redactors::new(16);
    c.bench_function("redact/cached_for_one_credential", |b| {
        b.iter(|| black_box(cache.for_echoes(black_box(&echoes)).is_some()))
    });
    let redactor = Redactor::new(&echoes).expect("patterns");
    // 1 MiB through the scan as a streamed body, in 64 chunks of `chunk`.
    let scan_mib = |chunk: &Bytes| {
        let frames = (0..64)
            .map(|_| Ok::<_, std::convert::Infallible>(http_body::Frame::data(chunk.clone())));
        let body =
            redactor
                .clone()
                .body(http_body_util::StreamBody::new(futures_util::stream::iter(
                    frames,
                )));
        let out = body
            .collect()
            .now_or_never()
            .expect("ready")
            .expect("infallible");
        out.to_bytes().len()
    };
    let mut g = c.benchmark_group("redact");
    g.throughput(criterion::Throughput::Bytes(1024 * 1024));
    let plain = Bytes::from(vec![b'a'; 16 * 1024]);
    g.bench_function("scan_1MiB_in_16KiB_chunks", |b| {
        b.iter(|| black_box(scan_mib(&plain)))
    });
    // An answer as APIs write them: JSON with escaped slashes and unicode, percent-encoded
    // URLs, HTML entities — every byte that could begin an encoded credential is frequent.
    let line = br#"{"id":"evt_01","url":"https:\/\/api.example.com\/v1?q=a%20b%2Fc&x=1","html":"&lt;b&gt;caf&#233; &#x2F;s&#47;\u00e9","n":12345,"ok":true}
"#;
    let json = Bytes::from(line.repeat(16 * 1024 / line.len() + 1)[..16 * 1024].to_vec());
    g.bench_function("scan_1MiB_json_in_16KiB_chunks", |b| {
        b.iter(|| black_box(scan_mib(&json)))
    });
    g.finish();
}

fn certificates(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::create(dir.path()).expect("ca");
    let leaves = LeafCache::new(ca, 1024).expect("cache");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(leaves.server_config("api.openai.com"))
        .expect("issue");
    c.bench_function("leaf_cache/hit", |b| {
        b.iter(|| black_box(leaves.cached(black_box("api.openai.com")).is_some()))
    });
    c.bench_function("leaf_cache/miss_issue", |b| {
        b.iter(|| {
            black_box(
                leaves
                    .issue_uncached(black_box("api.openai.com"))
                    .expect("issue"),
            )
        })
    });
}

fn end_to_end(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ca = TestCa::new();
    let (upstream, egret) = rt.block_on(async {
        let upstream = Upstream::https(&ca, &["api.test.local"], Offer::Http2AndHttp1).await;
        let yaml = "version: 1\nupstream: { extra_ca: [upstream-ca.pem], resolve: { api.test.local: 127.0.0.1 } }\nconnectors:\n  - { id: bench, auth: api_key, egress: [api.test.local] }\n";
        (upstream, TestProxy::start(yaml, &ca.pem).await)
    });
    let p = egret.key_and_placeholder("bench", "org", "real-secret-abc");
    // What each request that carried a credential adds for the connection's listing.
    let conn = ConnectionId::default_of("bench", &Owner::parse("org").expect("owner"));
    c.bench_function("broker/record_use", |b| {
        b.iter(|| egret.broker.record_use(black_box(&conn), 200));
    });
    let authority = format!("api.test.local:{}", upstream.addr.port());
    let auth = format!("Bearer {p}");
    for proto in [Proto::H1, Proto::H2] {
        let session = rt
            .block_on(Session::open(
                egret.proxy_addr,
                &authority,
                "api.test.local",
                &egret.ca_pem,
                proto,
            ))
            .expect("session");
        let session = tokio::sync::Mutex::new(session);
        c.bench_function(&format!("intercepted_request/{proto:?}_keepalive"), |b| {
            b.to_async(&rt).iter(|| async {
                let req = request(
                    "GET",
                    &authority,
                    "/echo",
                    &[("authorization", &auth)],
                    empty(),
                    proto,
                )
                .expect("req");
                let resp = session.lock().await.fetch(req).await.expect("response");
                assert_eq!(resp.status(), 200);
            })
        });
    }
}

/// Queueing one request's audit event on the proxy thread (the writer stores batches
/// on its own thread; it is flushed between measured runs, so none is dropped).
fn audit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = std::sync::Arc::new(
        Vault::open(&dir.path().join("bench.redb"), &MasterKey::generate()).expect("vault"),
    );
    let writer = egret_vault::AuditWriter::start(vault, Default::default());
    let data = serde_json::json!({
        "sandbox": "sbx-7", "host": "api.openai.com", "method": "POST",
        "path": "/v1/chat/completions", "status": 200, "latency_ms": 412,
        "fields": ["authorization"],
    });
    let conn = ConnectionId::default_of("openai", &Owner::parse("org").expect("owner"));
    c.bench_function("audit/record_request_event", |b| {
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            for chunk in (0..iters).collect::<Vec<_>>().chunks(1000) {
                let started = std::time::Instant::now();
                for _ in chunk {
                    black_box(writer.record("request.swap", Some(&conn), &data));
                }
                spent += started.elapsed();
                writer.flush(std::time::Duration::from_secs(10));
            }
            spent
        })
    });
}

criterion_group!(benches, swap, redaction, certificates, end_to_end, audit);
criterion_main!(benches);
