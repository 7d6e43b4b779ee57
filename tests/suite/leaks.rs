//! Nothing leaks back: an upstream that echoes the request gets the real credential, the
//! sandbox gets its placeholder back, in headers and streamed bodies, h1 and h2.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use egret_test_support::client::{self, Proto, refusal_code};
use http::StatusCode;

use super::harness::{Fixture, json};

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[tokio::test]
async fn an_echoed_bearer_token_comes_back_as_the_placeholder() {
    let f = Fixture::new().await;
    let secret = "sk-LEAKY/secret+42";
    let p = f.egret.key_and_placeholder("openai", "org", secret);
    for proto in [Proto::H1, Proto::H2] {
        let auth = format!("Bearer {p}");
        let headers = [
            ("authorization", auth.as_str()),
            ("accept-encoding", "gzip"),
        ];
        let resp = f.get("api.test.local", "/reflect", &headers, proto).await;
        assert_eq!(resp.status(), StatusCode::OK, "{proto:?}");
        // The upstream got the key, uncompressed answers asked for.
        let seen = f.last_seen();
        assert_eq!(seen["headers"]["authorization"], format!("Bearer {secret}"));
        assert_eq!(seen["headers"]["accept-encoding"], "identity");
        // The sandbox gets the placeholder back wherever the upstream echoed the key.
        assert_eq!(resp.headers()["x-reflect-authorization"], auth.as_str());
        let body = text(resp.body());
        assert!(!body.contains("sk-LEAKY"), "{proto:?}: {body}");
        assert_eq!(json(resp.body())["headers"]["authorization"], auth);
        assert!(resp.headers().get("content-length").is_none());
    }
    // Counted, once per answer (h1 and h2), rather than logged on every request.
    let m = super::metrics::scrape(f.egret.control_addr).await;
    assert_eq!(m.get("egret_echoed_headers_total"), Some(&2.0), "{m:?}");
}

#[tokio::test]
async fn a_key_echoed_in_a_mixture_of_forms_is_replaced() {
    let f = Fixture::new().await;
    let secret = "sk-MIXED/secret+42=x";
    let p = f.egret.key_and_placeholder("openai", "org", secret);
    let auth = format!("Bearer {p}");
    for proto in [Proto::H1, Proto::H2] {
        let resp = f
            .get(
                "api.test.local",
                "/mixed",
                &[("authorization", &auth)],
                proto,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{proto:?}");
        let body = text(resp.body());
        // Streamed one byte at a time, each character of the key in another form: the
        // sandbox gets the placeholder where each mixture stood, and none of the key.
        let answer = json(resp.body());
        assert_eq!(answer["rotating"], p.as_str(), "{proto:?}: {body}");
        assert_eq!(answer["plus_only"], p.as_str(), "{proto:?}: {body}");
        for leaked in [
            "MIXED".to_owned(),
            egret_test_support::upstream::mixed_forms(secret),
            secret.replace('+', "%2B"),
        ] {
            assert!(!body.contains(&leaked), "{proto:?}: {leaked} in {body}");
        }
    }
}

#[tokio::test]
async fn an_echoed_basic_credential_and_query_key_come_back_as_sent() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "pw-LEAKY");
    let basic = format!("Basic {}", STANDARD.encode(format!("bot:{p}")));
    let resp = f
        .get(
            "api.test.local",
            "/",
            &[("authorization", &basic)],
            Proto::H1,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let sent = STANDARD.encode("bot:pw-LEAKY");
    assert_eq!(
        f.last_seen()["headers"]["authorization"],
        format!("Basic {sent}")
    );
    assert!(!text(resp.body()).contains(&sent));
    assert_eq!(json(resp.body())["headers"]["authorization"], basic);
    // A small answer of known length is scanned whole and keeps an exact length.
    let length = resp.headers()["content-length"].to_str().expect("ascii");
    assert_eq!(length, resp.body().len().to_string());

    // A query key goes out percent-encoded; the echoed URL holds the placeholder again.
    let q = f.egret.key_and_placeholder("weather", "org", "wx/LEAKY+1");
    let resp = f
        .get(
            "weather.test.local",
            &format!("/reflect?appid={q}"),
            &[],
            Proto::H2,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(f.last_seen()["query"], "appid=wx%2FLEAKY%2B1");
    let body = text(resp.body());
    assert!(!body.contains("LEAKY"), "{body}");
    assert_eq!(json(resp.body())["query"], format!("appid={q}"));
}

#[tokio::test]
async fn a_compressed_answer_to_a_credentialed_request_is_withheld() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-gz");
    let auth = format!("Bearer {p}");
    let resp = f
        .get(
            "api.test.local",
            "/gzip",
            &[("authorization", &auth)],
            Proto::H1,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(refusal_code(&resp).as_deref(), Some("response_unscannable"));
    assert!(!text(resp.body()).contains("sk-gz"));
    // Without a credential the answer is still scanned for the connector's stored
    // credentials (`scan_answers`), so it cannot be compressed either.
    let resp = f.get("api.test.local", "/gzip", &[], Proto::H1).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(refusal_code(&resp).as_deref(), Some("response_unscannable"));
    // A connector that turns that off gets it as it is.
    f.egret.reload(&super::harness::policy_yaml().replace(
        "  - id: openai\n",
        "  - id: openai\n    scan_answers: false\n",
    ));
    let resp = f.get("api.test.local", "/gzip", &[], Proto::H1).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn head_answers_keep_their_length() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-head");
    let auth = format!("Bearer {p}");
    let resp = f
        .get(
            "api.test.local",
            "/bytes?n=1234",
            &[("authorization", &auth)],
            Proto::H1,
        )
        .await;
    assert_eq!(resp.body().len(), 1234);
    let headers = [("authorization", auth.as_str())];
    let (authority, body) = (f.at("api.test.local"), client::empty());
    let req = client::request(
        "HEAD",
        &authority,
        "/bytes?n=1234",
        &headers,
        body,
        Proto::H1,
    )
    .expect("request");
    let mut s = f.session("api.test.local", Proto::H1).await;
    let resp = s.send(req).await.expect("HEAD");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], "1234");
}

#[tokio::test]
async fn a_disguised_placeholder_bound_elsewhere_is_refused_and_audited() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-disguised");
    let disguises = [
        ("x-token", p.replacen('_', "%5F", 1)),
        ("x-token", p.replacen('_', "\\u005f", 1)),
        (
            "cookie",
            format!("s={}", STANDARD.encode(format!("me:{p}"))),
        ),
    ];
    for (header, value) in &disguises {
        let before = f.upstream.seen().len();
        for proto in [Proto::H1, Proto::H2] {
            let resp = f
                .get("weather.test.local", "/", &[(header, value)], proto)
                .await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{value}");
            assert_eq!(
                refusal_code(&resp).as_deref(),
                Some("placeholder_wrong_host")
            );
        }
        assert_eq!(f.upstream.seen().len(), before, "never forwarded");
    }
    f.egret.audit.flush(std::time::Duration::from_secs(5));
    let events = f
        .egret
        .vault
        .audit_since(0, 100, None, None)
        .expect("audit");
    let refused = events
        .iter()
        .filter(|e| e.event == "request.refused")
        .filter(|e| {
            e.data
                .as_ref()
                .is_some_and(|d| d["code"] == "placeholder_wrong_host")
        })
        .count();
    assert_eq!(refused, disguises.len() * 2);
}

#[tokio::test]
async fn a_placeholder_split_by_header_folding_is_rejected_unsent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-folded");
    let (head, tail) = p.split_at(12);
    let authority = f.at("weather.test.local");
    let connected = client::connect(f.egret.proxy_addr, &authority)
        .await
        .expect("connect");
    let mut tls = client::tls(
        connected.stream,
        "weather.test.local",
        &f.egret.ca_pem,
        &[b"http/1.1"],
    )
    .await
    .expect("tls");
    // Obsolete line folding (RFC 9112 §5.2): a proxy must reject it or unfold it.
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {authority}\r\nX-Token: {head}\r\n {tail}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut answer),
    );
    let _ = read.await.expect("answer in time");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(f.upstream.seen().is_empty(), "never forwarded");
}
