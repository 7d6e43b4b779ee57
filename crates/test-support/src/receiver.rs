//! A webhook receiver on 127.0.0.1:0 that keeps every delivery attempt it is sent
//! (headers and body) and answers 204 while up, 503 while a test says it is down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One attempt as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub headers: http::HeaderMap,
    pub body: String,
    /// Whether the receiver took it (answered 204).
    pub accepted: bool,
}

pub struct Receiver {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Attempt>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts up (answering 204) unless `up` is false.
    pub async fn start(up: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(up));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (up2, seen2) = (up.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (up, seen) = (up2.clone(), seen2.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (up, seen) = (up.clone(), seen.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let accepted = up.load(Ordering::SeqCst);
                            seen.lock().expect("lock").push(Attempt {
                                headers: parts.headers,
                                body: String::from_utf8_lossy(&body).into_owned(),
                                accepted,
                            });
                            let status = if accepted { 204 } else { 503 };
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            up,
            seen,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/egret", self.addr)
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    /// Every attempt so far, oldest first.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
