//! A connector's own egress host gone bad, answering a request that carried only a
//! placeholder: no answer it can write gets the real credential back to the sandbox.

use bytes::Bytes;
use egret_test_support::client::{Proto, Session, empty, request};
use egret_test_support::hostile::{Hostile, Script, gzip};
use http::StatusCode;

use super::harness::{Fixture, NAMES};

const KEY: &str = "sk-hostile-0123456789abcdef";

/// Sends one credentialed GET to a hostile upstream scripted by `answer` and returns
/// egret's answer to the sandbox.
async fn through(
    answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
) -> http::Response<Bytes> {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", KEY);
    let hostile = Hostile::start(&f.ca, NAMES, answer).await;
    let authority = format!("api.test.local:{}", hostile.addr.port());
    let mut s = Session::open(
        f.egret.proxy_addr,
        &authority,
        "api.test.local",
        &f.egret.ca_pem,
        Proto::H1,
    )
    .await
    .expect("session");
    let auth = format!("Bearer {p}");
    let req = request(
        "GET",
        &authority,
        "/",
        &[("authorization", &auth)],
        empty(),
        Proto::H1,
    )
    .expect("request");
    s.fetch(req).await.expect("an answer")
}

/// An answer head (status line and headers, `{KEY}` replaced by the credential) and body.
fn answer(
    head: &'static str,
    body: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
) -> impl Fn(&str) -> Vec<u8> + Send + Sync + 'static {
    move |key| {
        let body = body(key);
        let mut out = head
            .replace("{KEY}", key)
            .replace("{LEN}", &body.len().to_string())
            .into_bytes();
        out.extend_from_slice(&body);
        out
    }
}

fn gzipped_key(key: &str) -> Vec<u8> {
    gzip(format!("{{\"echo\":\"{key}\"}}").as_bytes())
}

/// Every way an upstream can say its body is compressed, including the ones that hid
/// it from the first `Content-Encoding` line or had it stripped as hop-by-hop.
#[tokio::test]
async fn a_compressed_answer_is_withheld_however_the_encoding_is_announced() {
    let chunked = |key: &str| {
        let body = gzipped_key(key);
        let mut out = format!("{:x}\r\n", body.len()).into_bytes();
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
        out
    };
    let cases: Vec<(&str, Box<Script>)> = vec![
        (
            "identity then gzip",
            Box::new(answer(
                "HTTP/1.1 200 OK\r\ncontent-encoding: identity\r\ncontent-encoding: gzip\r\ncontent-length: {LEN}\r\n\r\n",
                gzipped_key,
            )),
        ),
        (
            "identity then deflate",
            Box::new(answer(
                "HTTP/1.1 200 OK\r\ncontent-encoding: identity\r\ncontent-encoding: deflate\r\ncontent-length: {LEN}\r\n\r\n",
                gzipped_key,
            )),
        ),
        (
            "identity, gzip on one line",
            Box::new(answer(
                "HTTP/1.1 200 OK\r\ncontent-encoding: identity, gzip\r\ncontent-length: {LEN}\r\n\r\n",
                gzipped_key,
            )),
        ),
        (
            "named hop-by-hop",
            Box::new(answer(
                "HTTP/1.1 200 OK\r\nconnection: content-encoding\r\ncontent-encoding: gzip\r\ncontent-length: {LEN}\r\n\r\n",
                gzipped_key,
            )),
        ),
        (
            "transfer coding",
            Box::new(answer(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                chunked,
            )),
        ),
    ];
    for (what, script) in cases {
        let resp = through(script).await;
        assert_eq!(
            resp.status(),
            StatusCode::BAD_GATEWAY,
            "{what}: {:?}",
            resp.body()
        );
        assert_eq!(
            resp.headers()["x-egret-error"],
            "response_unscannable",
            "{what}"
        );
        assert!(
            !resp.body().windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "{what}"
        );
    }
}

/// `HTTP/1.1 401 bad key <KEY>`: the reason phrase is scanned like the rest of the head.
#[tokio::test]
async fn the_credential_never_comes_back_in_a_reason_phrase() {
    let resp = through(answer(
        "HTTP/1.1 401 bad key {KEY}\r\ncontent-length: 0\r\n\r\n",
        |_| Vec::new(),
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_default();
    assert!(!reason.contains(KEY), "reason phrase: {reason}");
}

/// `x-<KEY>: 1`: header names are scanned as well as values.
#[tokio::test]
async fn the_credential_never_comes_back_in_a_header_name() {
    let resp = through(answer(
        "HTTP/1.1 200 OK\r\nx-{KEY}: 1\r\ncontent-length: 2\r\n\r\n",
        |_| b"ok".to_vec(),
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    for name in resp.headers().keys() {
        assert!(!name.as_str().contains(KEY), "header name {name}");
    }
    assert!(
        resp.headers()
            .keys()
            .any(|n| n.as_str().starts_with("x-egp_")),
        "{:?}",
        resp.headers()
    );
}

/// `Content-Length: 10` and `Transfer-Encoding: chunked` with 64 MiB behind them: a
/// conflicting length is an upstream error, refused before anything is buffered.
#[tokio::test]
async fn a_conflicting_length_is_refused_not_buffered() {
    let resp = through(|_| {
        let mut out =
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..64 {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(&chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    })
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(resp.headers()["x-egret-error"], "upstream_unreachable");
    let body = String::from_utf8_lossy(resp.body());
    assert!(
        body.contains("Content-Length") && body.contains("Transfer-Encoding"),
        "{body}"
    );
}

/// The encodings an upstream can trivially apply to the key it was sent: none reaches
/// the sandbox (base64 at any alignment, hex, case, percent- and JSON-escapes, HTML
/// entities), over HTTP/1.1 in a streamed body.
#[tokio::test]
async fn every_trivial_encoding_of_the_key_is_caught() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let encodings = |key: &str| -> Vec<String> {
        let mut out = vec![
            key.to_uppercase(),
            key.bytes().map(|b| format!("{b:02x}")).collect(),
            key.bytes().map(|b| format!("{b:02X}")).collect(),
            key.bytes().map(|b| format!("%{b:02x}")).collect(),
            key.bytes().map(|b| format!("%{b:02X}")).collect(),
            key.bytes()
                .map(|b| format!("\\u{:04x}", u32::from(b)))
                .collect(),
            key.bytes().map(|b| format!("&#{b};")).collect(),
            key.bytes().map(|b| format!("&#x{b:x};")).collect(),
        ];
        for prefix in ["", "x", "xy", "Bearer "] {
            let text = format!("{prefix}{key} trailing text");
            out.push(STANDARD.encode(&text));
            out.push(URL_SAFE.encode(&text));
        }
        out
    };
    let resp = through(move |key| {
        let body = encodings(key).join("\n");
        format!(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
        .into_bytes()
    })
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = String::from_utf8_lossy(resp.body()).into_owned();
    for (line, encoded) in body.lines().zip(encodings(KEY)) {
        assert!(!line.contains(&encoded), "came back: {encoded}");
    }
    // The base64 lines decode to text in which the key is nowhere.
    for line in body.lines().skip(8) {
        for engine in [&STANDARD, &URL_SAFE] {
            if let Ok(decoded) = engine.decode(line) {
                assert!(!String::from_utf8_lossy(&decoded).contains(KEY), "{line}");
            }
        }
    }
}

/// Request 1 carries the key and the upstream keeps it; request 2 carries none and the
/// upstream hands it back. Every answer from a connector's hosts is scanned for its live
/// credentials (`scan_answers`, on unless the connector turns it off).
#[tokio::test]
async fn a_key_stored_by_the_upstream_does_not_come_back_on_a_later_request() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", KEY);
    let kept = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let keeper = kept.clone();
    let hostile = Hostile::start(&f.ca, NAMES, move |key| {
        let mut kept = keeper.lock().expect("lock");
        if !key.is_empty() {
            *kept = key.to_owned();
        }
        let body = format!(
            "{{\"stored\":\"{kept}\",\"hex\":\"{}\"}}",
            kept.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        );
        format!(
            "HTTP/1.1 200 OK\r\nx-stored: {kept}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
    .await;
    let authority = format!("api.test.local:{}", hostile.addr.port());
    let get = |auth: Option<String>| {
        let (proxy, ca, authority) = (
            f.egret.proxy_addr,
            f.egret.ca_pem.clone(),
            authority.clone(),
        );
        async move {
            let mut s = Session::open(proxy, &authority, "api.test.local", &ca, Proto::H1)
                .await
                .expect("session");
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| ("authorization", a))
                .into_iter()
                .collect();
            let req =
                request("GET", &authority, "/", &headers, empty(), Proto::H1).expect("request");
            s.fetch(req).await.expect("an answer")
        }
    };
    let first = get(Some(format!("Bearer {p}"))).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        *kept.lock().expect("lock"),
        KEY,
        "the upstream kept the real key"
    );
    let second = get(None).await;
    assert_eq!(second.status(), StatusCode::OK);
    let body = String::from_utf8_lossy(second.body());
    let hex: String = KEY.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!body.contains(KEY) && !body.contains(&hex), "{body}");
    assert!(body.contains("egret-credential-withheld"), "{body}");
    assert!(
        !second.headers()["x-stored"]
            .to_str()
            .unwrap_or_default()
            .contains(KEY)
    );

    // A connector that turns the scan off for throughput gets answers untouched.
    f.egret.reload(&super::harness::policy_yaml().replace(
        "  - id: openai\n",
        "  - id: openai\n    scan_answers: false\n",
    ));
    let third = get(None).await;
    assert!(
        String::from_utf8_lossy(third.body()).contains(KEY),
        "scan_answers: false"
    );
}
