//! A signed `aws-chunked` body, re-signed chunk by chunk as it passes: each chunk's
//! signature checked against the placeholder chain and replaced with the real chain's.
//!
//! ```text
//! <hex size>;chunk-signature=<64 hex>\r\n<data>\r\n   … and last:
//! 0;chunk-signature=<64 hex>\r\n\r\n                  (or trailing headers, then
//! x-amz-trailer-signature:<64 hex>\r\n\r\n)
//! ```
//! A chunk's signature covers its data, so one chunk is held (up to a bound) before its
//! head can be written; the body as a whole is never held. Every length is kept, so the
//! request's `Content-Length` stays true.

use bytes::{Buf, Bytes, BytesMut};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Resigned, mac};
use crate::SignError;
use crate::encode::{hex, sha256_hex};

/// The SHA-256 of nothing, which every chunk's string to sign holds.
const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The longest chunk head (`size;chunk-signature=…`) or trailer line read.
const MAX_LINE: usize = 1024;
/// The most trailing-header bytes read.
const MAX_TRAILER: usize = 8 * 1024;

enum State {
    /// Reading `size;chunk-signature=…\r\n`.
    Head,
    /// Holding a chunk's data and its `\r\n`.
    Data {
        size_text: String,
        size: usize,
        signature: String,
    },
    /// After the last chunk of a `-TRAILER` body: trailing headers, then the signature.
    Trailer {
        lines: Vec<String>,
    },
    /// After the trailer's signature: the body's final empty line.
    End,
    Done,
}

/// Re-signs one `aws-chunked` body. Feed it the body's bytes as they come.
pub struct ChunkResigner {
    amz_date: String,
    scope: String,
    placeholder_key: Zeroizing<Vec<u8>>,
    real_key: Zeroizing<Vec<u8>>,
    previous_placeholder: String,
    previous_real: String,
    trailer: bool,
    max_chunk: usize,
    pending: BytesMut,
    state: State,
}

impl ChunkResigner {
    /// For a body whose head was re-signed as `resigned`; `trailer` for the `-TRAILER`
    /// mode; chunks larger than `max_chunk` bytes are refused.
    pub fn new(resigned: &Resigned, trailer: bool, max_chunk: usize) -> Self {
        Self {
            amz_date: resigned.amz_date.clone(),
            scope: resigned.scope.clone(),
            placeholder_key: resigned.placeholder_key.clone(),
            real_key: resigned.real_key.clone(),
            previous_placeholder: resigned.placeholder_seed.clone(),
            previous_real: resigned.real_seed.clone(),
            trailer,
            max_chunk,
            pending: BytesMut::new(),
            state: State::Head,
        }
    }

    /// Takes the next bytes of the body; returns what may be sent on now (possibly
    /// nothing, while a chunk is incomplete).
    pub fn push(&mut self, input: &[u8]) -> Result<Bytes, SignError> {
        self.pending.extend_from_slice(input);
        let mut out = BytesMut::new();
        while self.step(&mut out)? {}
        Ok(out.freeze())
    }

    /// Bytes held now (a chunk not yet complete): never more than one chunk and its head.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// The body ended: fine only after its last chunk.
    pub fn finish(&self) -> Result<(), SignError> {
        match self.state {
            State::Done if self.pending.is_empty() => Ok(()),
            State::Done => Err(SignError::BadChunk("bytes follow the last chunk")),
            _ => Err(SignError::BadChunk("the body ended before its last chunk")),
        }
    }

    /// One step of parsing; `false` when more input is needed.
    fn step(&mut self, out: &mut BytesMut) -> Result<bool, SignError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Head => {
                let Some(line) = self.line()? else {
                    self.state = State::Head;
                    return Ok(false);
                };
                let (size_text, signature) = line
                    .split_once(";chunk-signature=")
                    .ok_or(SignError::BadChunk("a chunk has no chunk-signature"))?;
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| SignError::BadChunk("a chunk size is not hex"))?;
                if size > self.max_chunk {
                    return Err(SignError::ChunkTooLarge(self.max_chunk));
                }
                if signature.len() != 64 {
                    return Err(SignError::BadChunk(
                        "a chunk signature is not 64 hex digits",
                    ));
                }
                self.state = State::Data {
                    size_text: size_text.to_owned(),
                    size,
                    signature: signature.to_ascii_lowercase(),
                };
                Ok(true)
            }
            State::Data {
                size_text,
                size,
                signature,
            } => {
                // The last chunk of a `-TRAILER` body has no CRLF of its own: trailers follow.
                let last_with_trailer = size == 0 && self.trailer;
                let needed = if last_with_trailer { 0 } else { size + 2 };
                if self.pending.len() < needed {
                    self.state = State::Data {
                        size_text,
                        size,
                        signature,
                    };
                    return Ok(false);
                }
                let data = self.pending.split_to(size);
                if !last_with_trailer {
                    if &self.pending[..2] != b"\r\n" {
                        return Err(SignError::BadChunk(
                            "a chunk's data is not followed by CRLF",
                        ));
                    }
                    self.pending.advance(2);
                }
                let hash = sha256_hex(&data);
                let expected = self.chunk_signature(false, &hash);
                if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
                    return Err(SignError::Mismatch);
                }
                let real = self.chunk_signature(true, &hash);
                out.extend_from_slice(size_text.as_bytes());
                out.extend_from_slice(b";chunk-signature=");
                out.extend_from_slice(real.as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&data);
                if !last_with_trailer {
                    out.extend_from_slice(b"\r\n");
                }
                self.previous_placeholder = signature;
                self.previous_real = real;
                self.state = match size {
                    0 if self.trailer => State::Trailer { lines: Vec::new() },
                    0 => State::Done,
                    _ => State::Head,
                };
                Ok(true)
            }
            State::Trailer { mut lines } => {
                let Some(line) = self.line()? else {
                    self.state = State::Trailer { lines };
                    return Ok(false);
                };
                if let Some(signature) = line.strip_prefix("x-amz-trailer-signature:") {
                    self.trailer_signed(&lines, signature.trim(), out)?;
                    self.state = State::End;
                    return Ok(true);
                }
                if lines.iter().map(String::len).sum::<usize>() + line.len() > MAX_TRAILER {
                    return Err(SignError::BadChunk("the trailing headers are too long"));
                }
                if !line.contains(':') {
                    return Err(SignError::BadChunk("a trailing header has no `:`"));
                }
                lines.push(line);
                self.state = State::Trailer { lines };
                Ok(true)
            }
            State::End => {
                let Some(line) = self.line()? else {
                    self.state = State::End;
                    return Ok(false);
                };
                if !line.is_empty() {
                    return Err(SignError::BadChunk("bytes follow the trailer signature"));
                }
                out.extend_from_slice(b"\r\n");
                Ok(true)
            }
            State::Done => Ok(false),
        }
    }

    /// The next CRLF-ended line, without its CRLF; `None` until it has come.
    fn line(&mut self) -> Result<Option<String>, SignError> {
        let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") else {
            if self.pending.len() > MAX_LINE {
                return Err(SignError::BadChunk(
                    "a chunk head or trailer line is too long",
                ));
            }
            return Ok(None);
        };
        let line = self.pending.split_to(end);
        self.pending.advance(2);
        String::from_utf8(line.to_vec())
            .map(Some)
            .map_err(|_| SignError::BadChunk("a chunk head is not text"))
    }

    fn chunk_signature(&self, real: bool, data_hash: &str) -> String {
        let (key, previous) = if real {
            (&self.real_key, &self.previous_real)
        } else {
            (&self.placeholder_key, &self.previous_placeholder)
        };
        let to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{EMPTY_HASH}\n{data_hash}",
            self.amz_date, self.scope
        );
        hex(&mac(key, to_sign.as_bytes()))
    }

    /// Checks the trailer's signature, then writes the trailing headers and the real one.
    fn trailer_signed(
        &mut self,
        lines: &[String],
        signature: &str,
        out: &mut BytesMut,
    ) -> Result<(), SignError> {
        let mut canonical = String::new();
        for line in lines {
            canonical.push_str(line.trim());
            canonical.push('\n');
        }
        let hash = sha256_hex(canonical.as_bytes());
        let sign = |key: &[u8], previous: &str| {
            let to_sign = format!(
                "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{previous}\n{hash}",
                self.amz_date, self.scope
            );
            hex(&mac(key, to_sign.as_bytes()))
        };
        let expected = sign(&self.placeholder_key, &self.previous_placeholder);
        if !bool::from(
            expected
                .as_bytes()
                .ct_eq(signature.to_ascii_lowercase().as_bytes()),
        ) {
            return Err(SignError::Mismatch);
        }
        let real = sign(&self.real_key, &self.previous_real);
        for line in lines {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"x-amz-trailer-signature:");
        out.extend_from_slice(real.as_bytes());
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}
