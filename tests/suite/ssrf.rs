//! No SSRF: names that resolve to private, loopback or metadata addresses are refused
//! (checked on the addresses the connector dials), IP literals need an explicit address
//! rule, and an operator's CIDR rule is the one way to open an internal range.

use egret_test_support::client::{self, connect};
use egret_test_support::proxy::TestProxy;
use egret_test_support::upstream::{Offer, TestCa, Upstream};
use http::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::harness::json;

fn policy(allow: &str) -> String {
    format!(
        r#"
version: 1
upstream:
  extra_ca: [upstream-ca.pem]
network:
  allow: {allow}
  deny_private_ranges: true
connectors:
  - id: internal
    auth: api_key
    egress: [localhost]
"#
    )
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_in_every_spelling() {
    let ca = TestCa::new();
    let egret = TestProxy::start(&policy("[localhost.example]"), &ca.pem).await;
    for target in [
        "127.0.0.1:443",
        "[::1]:443",
        "169.254.169.254:80",
        "[::ffff:169.254.169.254]:80",
        "[::ffff:7f00:1]:443",
        "10.0.0.1:443",
        "100.64.0.1:443",
        "[fd00::1]:443",
        "[fe80::1]:443",
        "0.0.0.0:443",
        "2130706433:443",
        "0x7f.0.0.1:443",
    ] {
        let c = connect(egret.proxy_addr, target).await.expect("connect");
        assert_eq!(c.status, StatusCode::FORBIDDEN, "{target}");
        assert_eq!(c.headers["x-egret-error"], "egress_denied", "{target}");
    }
}

#[tokio::test]
async fn a_connector_host_that_resolves_to_loopback_is_refused_at_the_dial() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, &["localhost"], Offer::Http2AndHttp1).await;
    let egret = TestProxy::start(&policy("[]"), &ca.pem).await;
    let p = egret.key_and_placeholder("internal", "org", "sk-internal");
    // The connector's host is intercepted, but its DNS answer is loopback: the request
    // is refused before any byte (let alone the key) leaves.
    let auth = format!("Bearer {p}");
    let authority = format!("localhost:{}", upstream.addr.port());
    let resp = client::get(
        egret.proxy_addr,
        &egret.ca_pem,
        &authority,
        "/",
        &[("authorization", &auth)],
        client::Proto::H1,
    )
    .await
    .expect("answer");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let message = json(resp.body())["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("private"), "{message}");
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn an_address_rule_opens_exactly_its_block() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca, &["localhost"], Offer::Http1Only).await;
    let port = upstream.addr.port();
    let egret = TestProxy::start(&policy("[localhost, 127.0.0.1/32]"), &ca.pem).await;
    // The literal inside the block is tunneled; its neighbour is not.
    let c = connect(egret.proxy_addr, &format!("127.0.0.1:{port}"))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::OK);
    let tls = client::tls(c.stream, "localhost", &ca.pem, &[b"http/1.1"])
        .await
        .expect("tls");
    let mut s = client::h1_over(tls).await.expect("h1");
    let resp = s
        .get(&format!("localhost:{port}"), "/", &[])
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::OK);
    let c = connect(egret.proxy_addr, &format!("127.0.0.2:{port}"))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::FORBIDDEN);
    // A name that resolves into the block is let through as well.
    let c = connect(egret.proxy_addr, &format!("localhost:{port}"))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::OK);
    // Plain http to an address in the block is forwarded too.
    let plain = Upstream::plain().await;
    let plain_port = plain.addr.port();
    let mut tcp = TcpStream::connect(egret.proxy_addr).await.expect("tcp");
    let req = format!(
        "GET http://127.0.0.1:{plain_port}/x HTTP/1.1\r\nHost: 127.0.0.1:{plain_port}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let (status, _, _) = client::read_response(&mut tcp).await.expect("answer");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plain.seen().len(), 1);
}

/// egret's own listeners are never a destination, whatever `network.allow` and
/// `upstream.resolve` say: a tunnel, plain http and an intercepted request to its control
/// plane (or to its proxy) are refused with `egress_denied`, saying why. Without this,
/// `network.allow: [127.0.0.0/8]` would let a sandbox drive the control plane.
#[tokio::test]
async fn egrets_own_control_plane_and_proxy_are_never_reached_through_it() {
    let ca = TestCa::new();
    let egret = TestProxy::start(&policy("[localhost, 127.0.0.0/8]"), &ca.pem).await;
    let (control, proxy) = (egret.control_addr.port(), egret.proxy_addr.port());
    let refused = |status: StatusCode, headers: &http::HeaderMap, body: &[u8], what: &str| {
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
        assert_eq!(headers["x-egret-error"], "egress_denied", "{what}");
        let text = String::from_utf8_lossy(body);
        assert!(text.contains("egret's own"), "{what}: {text}");
    };
    for target in [
        format!("127.0.0.1:{control}"),
        format!("[::ffff:127.0.0.1]:{control}"),
        format!("127.0.0.1:{proxy}"),
    ] {
        let c = connect(egret.proxy_addr, &target).await.expect("connect");
        refused(c.status, &c.headers, &c.body, &target);
    }
    // Plain http to the control plane.
    let mut tcp = TcpStream::connect(egret.proxy_addr).await.expect("tcp");
    let req = format!(
        "GET http://127.0.0.1:{control}/readyz HTTP/1.1\r\nHost: 127.0.0.1:{control}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let (status, headers, body) = client::read_response(&mut tcp).await.expect("answer");
    refused(status, &headers, &body, "plain http");
    // Intercepted: a connector whose host the operator resolved to egret itself.
    let yaml = policy("[localhost, 127.0.0.0/8]").replace(
        "  extra_ca: [upstream-ca.pem]\n",
        "  extra_ca: [upstream-ca.pem]\n  resolve: { egret-self.test.local: 127.0.0.1 }\n",
    ) + &format!(
        "  - id: selfie\n    auth: api_key\n    egress: [\"egret-self.test.local:{control}\"]\n"
    );
    egret.reload(&yaml);
    let host = format!("egret-self.test.local:{control}");
    let c = connect(egret.proxy_addr, &host).await.expect("connect");
    assert_eq!(c.status, StatusCode::OK, "intercepted");
    let tls = client::tls(
        c.stream,
        "egret-self.test.local",
        &egret.ca_pem,
        &[b"http/1.1"],
    )
    .await
    .expect("tls");
    let mut s = client::h1_over(tls).await.expect("h1");
    let resp = s.get(&host, "/readyz", &[]).await.expect("answered");
    refused(resp.status(), resp.headers(), resp.body(), "intercepted");
}
