//! WebSocket upgrades pass through interception, with the placeholder swapped in the
//! handshake and frames relayed both ways.

use egret_test_support::client::{self, connect};
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::harness::Fixture;

/// A WebSocket to the upstream's `/ws` through egret, the placeholder `p` in its
/// handshake with `extra` headers; the socket and the handshake's answer.
async fn open(
    f: &Fixture,
    p: &str,
    extra: &[(&'static str, &str)],
) -> (
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let c = connect(f.egret.proxy_addr, &f.at("api.test.local"))
        .await
        .expect("connect");
    assert_eq!(c.status, StatusCode::OK);
    let tls = client::tls(c.stream, "api.test.local", &f.egret.ca_pem, &[b"http/1.1"])
        .await
        .expect("tls");
    let mut req = format!("wss://{}/ws", f.at("api.test.local"))
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {p}").parse().expect("header"),
    );
    for (name, value) in extra {
        req.headers_mut()
            .insert(*name, value.parse().expect("header"));
    }
    tokio_tungstenite::client_async(req, tls)
        .await
        .expect("handshake")
}

#[tokio::test]
async fn websocket_handshake_is_swapped_and_frames_flow() {
    let f = Fixture::new().await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-WS");
    let (mut ws, resp) = open(&f, &p, &[]).await;
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(f.last_seen()["headers"]["authorization"], "Bearer sk-WS");
    for text in ["hello", "world"] {
        ws.send(Message::text(text)).await.expect("send");
        let echoed = ws.next().await.expect("frame").expect("ok");
        assert_eq!(echoed.into_text().expect("text").as_str(), text);
    }
    ws.close(None).await.expect("close");
}

/// After a credentialed upgrade the upstream's frames are scanned: the key it was sent
/// comes back neither in a message nor split across two fragments of one.
#[tokio::test]
async fn frames_from_the_upstream_never_carry_the_key_back() {
    let f = Fixture::new().await;
    let p = f
        .egret
        .key_and_placeholder("openai", "org", "sk-WS-0123456789abcdef");
    // The sandbox offers compression; egret takes it out of the offer.
    let offer = [("sec-websocket-extensions", "permessage-deflate")];
    let (mut ws, resp) = open(&f, &p, &offer).await;
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(
        f.last_seen()["headers"]
            .get("sec-websocket-extensions")
            .is_none()
    );
    for ask in ["whoami", "whoami-split"] {
        ws.send(Message::text(ask)).await.expect("send");
        let answer = ws.next().await.expect("frame").expect("ok");
        let text = answer.into_text().expect("text").to_string();
        assert!(!text.contains("sk-WS"), "{ask}: {text}");
        assert!(
            text.contains(&p),
            "{ask}: the placeholder in its place: {text}"
        );
    }
    ws.close(None).await.expect("close");
}
