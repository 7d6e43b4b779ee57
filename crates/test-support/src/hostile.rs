//! A hostile upstream: one of a connector's own egress hosts gone bad (an echo service,
//! a compromised or buggy vendor). It speaks HTTPS with HTTP/1.1 only, reads each
//! request head, and answers with raw bytes a test scripts from the credential egret
//! put on the request — answers a well-behaved HTTP library would never write.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::upstream::TestCa;

/// What the upstream answers, given the credential of the request's `Authorization`
/// (after its scheme; empty when there is none).
pub type Script = dyn Fn(&str) -> Vec<u8> + Send + Sync;

/// A running hostile upstream; it stops when dropped.
pub struct Hostile {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hostile {
    /// Serves `names` with a certificate from `ca`; every request is answered with
    /// `answer(credential)`, written as it is, and the connection closed.
    pub async fn start(
        ca: &TestCa,
        names: &[&str],
        answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        let acceptor = TlsAcceptor::from(ca.server_config(names, &[b"http/1.1"]));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind hostile upstream");
        let addr = listener.local_addr().expect("addr");
        let answer: Arc<Script> = Arc::new(answer);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, answer) = (acceptor.clone(), answer.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Some(head) = read_head(&mut tls).await else {
                        return;
                    };
                    let bytes = answer(&credential(&head));
                    let _ = tls.write_all(&bytes).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self { addr, task }
    }
}

/// The request head, up to its blank line (at most 64 KiB).
async fn read_head(io: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = io.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The value of `Authorization` after its scheme.
fn credential(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("authorization").then(|| {
                value
                    .trim()
                    .split_once(' ')
                    .map_or("", |(_, c)| c)
                    .to_owned()
            })
        })
        .unwrap_or_default()
}

/// `bytes` gzip-compressed (stored blocks: no compression library needed, and any
/// gunzip reads it).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[]]
    } else {
        bytes.chunks(65535).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let last = u8::from(i + 1 == chunks.len());
        let len = u16::try_from(chunk.len()).expect("chunk of at most 65535");
        out.push(last);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(bytes).to_le_bytes());
    let size = u32::try_from(bytes.len() % (1 << 32)).expect("32 bits");
    out.extend_from_slice(&size.to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn gzip_output_is_read_by_gunzip() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("k.gz");
        std::fs::write(&path, super::gzip(b"sk-hostile-KEY-123")).expect("write");
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output()
            .expect("gzip runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"sk-hostile-KEY-123");
    }
}
