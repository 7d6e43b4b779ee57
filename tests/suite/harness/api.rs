//! The control plane over HTTP, as an operator's script would call it.

use std::net::SocketAddr;

use bytes::Bytes;
use egret_test_support::proxy::ADMIN_TOKEN;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub async fn api(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let bytes = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    let resp = client
        .request(req.body(Full::new(bytes)).expect("request"))
        .await
        .expect("control plane answers");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `GET /metrics` as text (no token: scrapers hold none).
pub async fn metrics(addr: SocketAddr) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let resp = client
        .get(format!("http://{addr}/metrics").parse().expect("uri"))
        .await
        .expect("control plane answers");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// A control-plane call with the test admin token.
pub async fn admin(
    egret: &egret_test_support::proxy::TestProxy,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    api(egret.control_addr, method, path, Some(ADMIN_TOKEN), body).await
}

/// The names of the audit events recorded for `connector`, oldest first.
pub async fn audit_events(
    egret: &egret_test_support::proxy::TestProxy,
    connector: &str,
) -> Vec<String> {
    let (_, audit) = admin(
        egret,
        Method::GET,
        &format!("/v1/audit?connector={connector}"),
        None,
    )
    .await;
    audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect()
}

/// The `name` of each connection in a `GET /v1/connections` answer, in order.
pub fn connection_names(list: &Value) -> Vec<&str> {
    list["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect()
}

/// `GET http://egret.internal/connections` through `egret`, with these extra headers.
pub async fn discover(
    egret: &egret_test_support::proxy::TestProxy,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut s = TcpStream::connect(egret.proxy_addr).await.expect("tcp");
    let mut req =
        "GET http://egret.internal/connections HTTP/1.1\r\nHost: egret.internal\r\n".to_owned();
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let (status, _, body) = egret_test_support::client::read_response(&mut s)
        .await
        .expect("answer");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}
