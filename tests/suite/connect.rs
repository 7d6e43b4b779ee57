//! What happens at CONNECT and on the proxy port itself: refusals before any tunnel,
//! blind tunnels for allowed hosts, and bad input that must not hurt the process.

use std::time::Duration;

use egret_proxy::Limits;
use egret_test_support::client::{self, Proto, connect};
use egret_test_support::upstream::Offer;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::harness::{Fixture, json};

#[tokio::test]
async fn a_host_outside_the_policy_is_refused_before_any_tunnel() {
    let f = Fixture::new().await;
    let c = connect(f.egret.proxy_addr, &f.at("evil.test.local"))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::FORBIDDEN);
    assert_eq!(c.headers["x-egret-error"], "egress_denied");
    let body = json(&c.body);
    assert_eq!(body["error"], "egress_denied");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("evil.test.local"), "{message}");
    // The sandbox learns what to do, not the list of every allowed host.
    assert!(
        !message.contains("api.test.local") && message.contains("network.allow"),
        "says where hosts are allowed, lists none: {message}"
    );
    assert!(f.upstream.seen().is_empty());
}

#[tokio::test]
async fn connect_to_an_ip_literal_never_matches_a_name() {
    let f = Fixture::new().await;
    for target in [
        format!("127.0.0.1:{}", f.upstream.addr.port()),
        format!("[::1]:{}", f.upstream.addr.port()),
    ] {
        let c = connect(f.egret.proxy_addr, &target).await.expect("connect");
        assert_eq!(c.status, StatusCode::FORBIDDEN, "{target}");
        assert_eq!(c.headers["x-egret-error"], "egress_denied");
    }
}

#[tokio::test]
async fn allowed_hosts_are_tunneled_byte_for_byte() {
    let f = Fixture::new().await;
    let c = connect(f.egret.proxy_addr, &f.at("allowed.test.local"))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::OK);
    // Trusting only the upstream's CA proves egret did not intercept.
    let tls = client::tls(c.stream, "allowed.test.local", &f.ca.pem, &[b"http/1.1"])
        .await
        .expect("upstream's own TLS");
    let mut s = client::h1_over(tls).await.expect("h1");
    let resp = s
        .fetch(
            client::request(
                "GET",
                &f.at("allowed.test.local"),
                "/echo",
                &[("authorization", "Bearer untouched")],
                client::empty(),
                Proto::H1,
            )
            .expect("req"),
        )
        .await
        .expect("fetch");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        f.last_seen()["headers"]["authorization"],
        "Bearer untouched"
    );
}

#[tokio::test]
async fn an_allowed_name_that_resolves_to_a_private_address_is_refused() {
    let f = Fixture::new().await;
    // `localhost` is allowed by name but not mapped in upstream.resolve: DNS gives loopback.
    let c = connect(
        f.egret.proxy_addr,
        &format!("localhost:{}", f.upstream.addr.port()),
    )
    .await
    .expect("connect");
    assert_eq!(c.status, StatusCode::FORBIDDEN);
    assert!(
        json(&c.body)["message"]
            .as_str()
            .expect("message")
            .contains("private")
    );
}

#[tokio::test]
async fn garbage_gets_400_and_the_proxy_carries_on() {
    let f = Fixture::new().await;
    let mut s = TcpStream::connect(f.egret.proxy_addr).await.expect("tcp");
    s.write_all(b"\x16\x03\x01 this is not http\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&buf)
    );

    // Origin-form requests name no host.
    let mut s = TcpStream::connect(f.egret.proxy_addr).await.expect("tcp");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let (status, headers, _) = client::read_response(&mut s).await.expect("answer");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-egret-error"], "bad_request");

    let p = f
        .egret
        .key_and_placeholder("openai", "org", "sk-after-garbage");
    let resp = client::get(
        f.egret.proxy_addr,
        &f.egret.ca_pem,
        &f.at("api.test.local"),
        "/echo",
        &[("authorization", &format!("Bearer {p}"))],
        Proto::H1,
    )
    .await
    .expect("still serving");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_heads_are_refused() {
    let f = Fixture::new().await;
    let mut s = TcpStream::connect(f.egret.proxy_addr).await.expect("tcp");
    let big = "a".repeat(100 * 1024);
    let _ = s
        .write_all(
            format!("CONNECT api.test.local:443 HTTP/1.1\r\nx-big: {big}\r\n\r\n").as_bytes(),
        )
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.starts_with("HTTP/1.1 431") || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
}

#[tokio::test]
async fn slow_heads_and_stalled_handshakes_are_cut_by_their_timeouts() {
    let limits = Limits {
        request_head_timeout: Duration::from_millis(300),
        tls_handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let f = Fixture::with(Offer::Http2AndHttp1, limits).await;
    // Slowloris: half a request head, then nothing.
    let mut s = TcpStream::connect(f.egret.proxy_addr).await.expect("tcp");
    s.write_all(b"CONNECT api.test.local:443 HTTP/1.1\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the slow head was not cut");

    // Slowloris that keeps trickling: bytes do not buy more time.
    let s = TcpStream::connect(f.egret.proxy_addr).await.expect("tcp");
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        let _ = wr
            .write_all(b"CONNECT api.test.local:443 HTTP/1.1\r\n")
            .await;
        for _ in 0..100 {
            // A real wait: the attack is bytes trickled slowly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if wr.write_all(b"x").await.is_err() {
                return;
            }
        }
    });
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(4), rd.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "a trickling head was not cut");
    trickle.abort();

    // A tunnel opened to a connector host, then no TLS ClientHello.
    let mut c = connect(f.egret.proxy_addr, &f.at("api.test.local"))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::OK);
    let mut buf = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(10), c.stream.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the stalled handshake was not cut");
}

#[tokio::test]
async fn plain_http_goes_to_allowed_hosts_only_and_never_carries_a_placeholder() {
    let f = Fixture::new().await;
    let plain = egret_test_support::upstream::Upstream::plain().await;
    let port = plain.addr.port();
    let proxy = f.egret.proxy_addr;
    let ask = |req: String| async move {
        let mut s = TcpStream::connect(proxy).await.expect("tcp");
        s.write_all(req.as_bytes()).await.expect("write");
        client::read_response(&mut s).await.expect("answer")
    };
    let (status, _, _) = ask(format!("GET http://allowed.test.local:{port}/echo HTTP/1.1\r\nHost: allowed.test.local:{port}\r\n\r\n")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plain.seen().len(), 1);

    let p = f
        .egret
        .key_and_placeholder("openai", "org", "sk-never-plain");
    let (status, headers, _) = ask(format!(
        "GET http://allowed.test.local:{port}/echo HTTP/1.1\r\nHost: allowed.test.local:{port}\r\nAuthorization: Bearer {p}\r\n\r\n"
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["x-egret-error"], "placeholder_plain_http");

    let (status, headers, _) = ask(format!(
        "GET http://api.test.local:{port}/echo HTTP/1.1\r\nHost: api.test.local:{port}\r\n\r\n"
    ))
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "connector hosts are https only"
    );
    assert_eq!(headers["x-egret-error"], "egress_denied");

    let (status, _, _) = ask(format!(
        "GET http://evil.test.local:{port}/ HTTP/1.1\r\nHost: evil.test.local:{port}\r\n\r\n"
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        plain.seen().len(),
        1,
        "refused requests never reached the upstream"
    );
}

#[tokio::test]
async fn idle_connections_close_but_slow_requests_and_open_tunnels_do_not() {
    let limits = Limits {
        request_head_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let f = Fixture::with(Offer::Http2AndHttp1, limits).await;
    // A connection that never says anything is closed.
    let mut silent = TcpStream::connect(f.egret.proxy_addr).await.expect("tcp");
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "a silent connection was kept open");

    // A request slower than the idle timeout is in flight, not idle.
    let p = f.egret.key_and_placeholder("openai", "org", "sk-idle");
    let auth = format!("Bearer {p}");
    for proto in [Proto::H1, Proto::H2] {
        let resp = client::get(
            f.egret.proxy_addr,
            &f.egret.ca_pem,
            &f.at("api.test.local"),
            "/slow?ms=900",
            &[("authorization", &auth)],
            proto,
        )
        .await
        .expect("slow request answered");
        assert_eq!(resp.status(), StatusCode::OK, "{proto:?}");
    }

    // An intercepted keep-alive session idle between requests is closed...
    let mut s = f.session("api.test.local", Proto::H1).await;
    // A real wait: egret's own idle timer (300 ms here) must run out on a real socket.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let req = client::request(
        "GET",
        &f.at("api.test.local"),
        "/",
        &[],
        client::empty(),
        Proto::H1,
    )
    .expect("req");
    assert!(
        s.send(req).await.is_err(),
        "an idle intercepted connection stayed open"
    );

    // ...while a blind tunnel is governed by its own, longer idle timeout.
    let c = connect(f.egret.proxy_addr, &f.at("allowed.test.local"))
        .await
        .expect("connect");
    // A real wait: longer than the intercepted idle timeout, shorter than the tunnel's.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let tls = client::tls(c.stream, "allowed.test.local", &f.ca.pem, &[b"http/1.1"])
        .await
        .expect("tunnel still open");
    let mut s = client::h1_over(tls).await.expect("h1");
    let req = client::request(
        "GET",
        &f.at("allowed.test.local"),
        "/",
        &[],
        client::empty(),
        Proto::H1,
    )
    .expect("req");
    assert_eq!(
        s.fetch(req).await.expect("through the tunnel").status(),
        StatusCode::OK
    );
}
