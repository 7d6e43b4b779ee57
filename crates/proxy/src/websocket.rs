//! WebSocket frames from an upstream, scanned before the sandbox sees them, after a
//! handshake that carried a credential (or to a connector host that scans all its
//! answers). The sandbox's frames go up untouched.
//!
//! Each data message's payload streams through the scan (`redact::Scanner`), held back
//! across the frames of a fragmented message as a body is across chunks; what comes out
//! is written as fragments of the same message (RFC 6455 §5.4 lets an intermediary
//! change the fragmentation of a message that uses no extension). Control frames are
//! scanned whole. Compression (`permessage-deflate`) is refused at the handshake; a
//! frame that still cannot be scanned (reserved bits set) ends the connection with a
//! close frame that says why.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::redact::{Redactor, Scanner};

/// Payload read from the upstream at a time: a frame of any size streams through.
const PIECE: u64 = 64 * 1024;
/// Control frames carry at most this much payload (RFC 6455 §5.5).
const CONTROL_MAX: usize = 125;
/// The close code egret sends when it cannot scan what the upstream sent.
const CANNOT_SCAN: u16 = 1011;

/// Relays both ways until either side ends or nothing moves for `idle`; frames from
/// `upstream` to `client` are scanned by `redactors`.
pub(crate) async fn relay_scanned<C, U>(
    client: C,
    upstream: U,
    idle: Duration,
    redactors: Vec<Arc<Redactor>>,
) -> io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (client_read, client_write) = tokio::io::split(client);
    let (upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let activity = crate::tunnel::Activity::clock();
    let mut client_read = activity.watch(client_read);
    let upstream_read = activity.watch(upstream_read);
    let up = async {
        tokio::io::copy(&mut client_read, &mut upstream_write).await?;
        upstream_write.shutdown().await
    };
    let down = scan_frames(upstream_read, client_write, redactors);
    let both = async { tokio::try_join!(up, down).map(drop) };
    tokio::select! {
        done = both => done,
        () = activity.idle_for(idle) => {
            Err(io::Error::new(io::ErrorKind::TimedOut, "WebSocket idle timeout"))
        }
    }
}

/// One frame's head.
struct Head {
    fin: bool,
    /// RSV1-3: set only by extensions (compression), which egret does not let through.
    reserved: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
}

/// Reads frames from `from` and writes them, scanned, to `to`.
async fn scan_frames<R, W>(mut from: R, mut to: W, redactors: Vec<Arc<Redactor>>) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The data message being relayed: its opcode, whether a fragment of it went out,
    // and its scan state.
    let mut message: Option<(u8, bool, Scanner)> = None;
    while let Some(head) = read_head(&mut from).await? {
        if head.reserved != 0 {
            let why = "egret cannot scan compressed or extended WebSocket frames";
            to.write_all(&frame(true, 0x8, &close_payload(CANNOT_SCAN, why)))
                .await?;
            to.shutdown().await?;
            return Err(io::Error::new(io::ErrorKind::InvalidData, why));
        }
        if head.opcode >= 0x8 {
            let len = usize::try_from(head.len).unwrap_or(usize::MAX);
            if len > CONTROL_MAX {
                let why = "the upstream sent a control frame over 125 bytes";
                to.write_all(&frame(true, 0x8, &close_payload(1002, why)))
                    .await?;
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            let payload = read_payload(&mut from, &head, 0, len).await?;
            let out = control_payload(&redactors, head.opcode, payload);
            to.write_all(&frame(true, head.opcode, &out)).await?;
            continue;
        }
        if head.opcode != 0 || message.is_none() {
            message = Some((head.opcode, false, Scanner::new(&redactors)));
        }
        let Some((opcode, sent_one, scanner)) = message.as_mut() else {
            continue;
        };
        let mut at = 0u64;
        while at < head.len {
            let n = usize::try_from((head.len - at).min(PIECE)).unwrap_or(0);
            let piece = read_payload(&mut from, &head, at, n).await?;
            at += n as u64;
            let out = scanner.push(piece);
            if !out.is_empty() {
                let code = if *sent_one { 0 } else { *opcode };
                to.write_all(&frame(false, code, &out)).await?;
                *sent_one = true;
            }
        }
        if head.fin {
            let out = scanner.finish();
            let code = if *sent_one { 0 } else { *opcode };
            to.write_all(&frame(true, code, &out)).await?;
            message = None;
        }
        to.flush().await?;
    }
    to.shutdown().await
}

/// A control frame's payload, scanned whole and kept within 125 bytes (a close frame
/// keeps its code and a shortened reason).
fn control_payload(redactors: &[Arc<Redactor>], opcode: u8, payload: Bytes) -> Vec<u8> {
    let (code, text) = if opcode == 0x8 && payload.len() >= 2 {
        (Some(payload.slice(..2)), payload.slice(2..))
    } else {
        (None, payload)
    };
    let mut scanner = Scanner::new(redactors);
    let mut text = scanner.push(text).to_vec();
    text.extend_from_slice(&scanner.finish());
    let mut out = code.map(|c| c.to_vec()).unwrap_or_default();
    let room = CONTROL_MAX - out.len();
    if text.len() > room {
        // Cut at a character boundary: a close reason must stay UTF-8.
        let mut end = room;
        while end > 0 && std::str::from_utf8(&text[..end]).is_err() {
            end -= 1;
        }
        text.truncate(end);
    }
    out.extend_from_slice(&text);
    out
}

/// Reads a frame head; `None` at a clean end of stream between frames.
async fn read_head(from: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<Head>> {
    let mut two = [0u8; 2];
    match from.read(&mut two[..1]).await? {
        0 => return Ok(None),
        _ => from.read_exact(&mut two[1..]).await?,
    };
    let len = match two[1] & 0x7f {
        126 => u64::from(from.read_u16().await?),
        127 => from.read_u64().await?,
        n => u64::from(n),
    };
    let mask = if two[1] & 0x80 != 0 {
        let mut key = [0u8; 4];
        from.read_exact(&mut key).await?;
        Some(key)
    } else {
        None
    };
    Ok(Some(Head {
        fin: two[0] & 0x80 != 0,
        reserved: two[0] & 0x70,
        opcode: two[0] & 0x0f,
        mask,
        len,
    }))
}

/// Reads `n` payload bytes that start `at` bytes into the frame, unmasked (a server
/// should not mask, but one that does is read correctly).
async fn read_payload(
    from: &mut (impl AsyncRead + Unpin),
    head: &Head,
    at: u64,
    n: usize,
) -> io::Result<Bytes> {
    let mut buf = vec![0u8; n];
    from.read_exact(&mut buf).await?;
    if let Some(mask) = head.mask {
        for (i, b) in buf.iter_mut().enumerate() {
            let offset = usize::try_from((at + i as u64) % 4).unwrap_or(0);
            *b ^= mask[offset];
        }
    }
    Ok(Bytes::from(buf))
}

/// An unmasked frame (server to client).
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(&reason.as_bytes()[..reason.len().min(CONTROL_MAX - 2)]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swap::Echo;

    const KEY: &[u8] = b"sk-ws-0123456789abcdef";
    const SHOWN: &[u8] = b"egp_placeholder0123456789abcdefghijklmnop";

    fn redactors() -> Vec<Arc<Redactor>> {
        let echo = Echo::new(KEY, SHOWN);
        vec![Redactor::new(&[echo]).expect("redactor")]
    }

    /// Parses frames back into (fin, opcode, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
        let mut out = Vec::new();
        while bytes.len() >= 2 {
            let (fin, opcode) = (bytes[0] & 0x80 != 0, bytes[0] & 0x0f);
            let (len, skip) = match bytes[1] & 0x7f {
                126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                127 => (
                    usize::try_from(u64::from_be_bytes(bytes[2..10].try_into().expect("8")))
                        .expect("len"),
                    10,
                ),
                n => (usize::from(n), 2),
            };
            out.push((fin, opcode, bytes[skip..skip + len].to_vec()));
            bytes = &bytes[skip + len..];
        }
        out
    }

    async fn through(input: Vec<u8>) -> (Vec<(bool, u8, Vec<u8>)>, io::Result<()>) {
        let mut out = Vec::new();
        let result = scan_frames(&input[..], &mut out, redactors()).await;
        (frames(&out), result)
    }

    /// The message, its fragments joined.
    fn messages(frames: &[(bool, u8, Vec<u8>)]) -> Vec<(u8, Vec<u8>)> {
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut open = false;
        for (fin, opcode, payload) in frames {
            if *opcode >= 8 {
                out.push((*opcode, payload.clone()));
                continue;
            }
            if open {
                out.last_mut().expect("open").1.extend_from_slice(payload);
            } else {
                out.push((*opcode, payload.clone()));
            }
            open = !fin;
        }
        out
    }

    #[tokio::test]
    async fn a_key_in_a_text_frame_is_replaced() {
        let text = [b"token=".as_slice(), KEY, b";"].concat();
        let (frames, result) = through(frame(true, 0x1, &text)).await;
        result.expect("relayed");
        let got = messages(&frames);
        assert_eq!(got, [(0x1, [b"token=".as_slice(), SHOWN, b";"].concat())]);
    }

    #[tokio::test]
    async fn a_key_split_across_fragments_and_a_masked_frame_is_caught() {
        let mut input = frame(false, 0x1, &KEY[..5]);
        input.extend(frame(true, 0x9, b"ping")); // a control frame between fragments
        // The rest, masked (as a misbehaving server might).
        let mask = [1u8, 2, 3, 4];
        let rest: Vec<u8> = KEY[5..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        let mut masked = vec![0x80, 0x80 | rest.len() as u8];
        masked.extend_from_slice(&mask);
        masked.extend_from_slice(&rest);
        input.extend(masked);
        let (frames, result) = through(input).await;
        result.expect("relayed");
        let got = messages(&frames);
        assert_eq!(got, [(0x9, b"ping".to_vec()), (0x1, SHOWN.to_vec())]);
    }

    #[tokio::test]
    async fn a_key_in_a_close_reason_is_replaced_and_kept_short() {
        let mut reason = 1000u16.to_be_bytes().to_vec();
        reason.extend_from_slice(KEY);
        let (frames, _) = through(frame(true, 0x8, &reason)).await;
        let (_, opcode, payload) = &frames[0];
        assert_eq!(*opcode, 0x8);
        assert_eq!(&payload[..2], &1000u16.to_be_bytes());
        assert!(!payload.windows(KEY.len()).any(|w| w == KEY));
        assert!(payload.len() <= CONTROL_MAX);
    }

    #[tokio::test]
    async fn a_compressed_frame_ends_the_connection_with_a_reason() {
        let mut input = frame(true, 0x1, b"compressed");
        input[0] |= 0x40; // RSV1: permessage-deflate
        let (frames, result) = through(input).await;
        assert!(result.is_err());
        let (_, opcode, payload) = &frames[0];
        assert_eq!(*opcode, 0x8);
        assert_eq!(&payload[..2], &CANNOT_SCAN.to_be_bytes());
        assert!(String::from_utf8_lossy(&payload[2..]).contains("cannot scan"));
    }
}
