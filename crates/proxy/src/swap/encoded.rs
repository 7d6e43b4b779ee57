//! Placeholders in disguise. A placeholder is swapped only where it stands as itself, but
//! one that is percent-encoded, JSON-escaped or base64-encoded still names a credential:
//! found in any of those forms it is checked like any other occurrence (unknown, wrong
//! sandbox, wrong host) and, since egret never decodes to inject, refused as misplaced.
//! An agent cannot smuggle a placeholder past the host check by encoding it.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use super::placeholder_ranges;

/// `egp_` in base64 at each of the three byte alignments (the same in both alphabets):
/// base64 text without one of these cannot hold a placeholder.
static BASE64_PREFIXES: LazyLock<Option<AhoCorasick>> =
    LazyLock::new(|| AhoCorasick::new(["ZWdwX", "VncF", "lZ3Bf"]).ok());

/// No placeholder, encoded or not, fits in fewer bytes (`egp_` and 32 characters).
const PLACEHOLDER_MIN: usize = 36;

/// The shortest base64 text that can hold a whole placeholder (36 bytes).
const BASE64_MIN: usize = 48;

/// Rounds of percent-decoding tried (`%255F` is `_` after two).
const PERCENT_ROUNDS: usize = 3;

fn lenient(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    GeneralPurpose::new(alphabet, config)
}

static STANDARD: LazyLock<GeneralPurpose> = LazyLock::new(|| lenient(&alphabet::STANDARD));
static URL_SAFE: LazyLock<GeneralPurpose> = LazyLock::new(|| lenient(&alphabet::URL_SAFE));

/// Placeholders that stand in `bytes` only in an encoded form (not literally). `base64`
/// off where base64 is the field's own encoding (a Basic credential is decoded by the
/// swap itself).
pub(super) fn hidden(bytes: &[u8], base64: bool) -> Vec<Zeroizing<Vec<u8>>> {
    // The hot path: most header values are short or plain, and leave here.
    if bytes.len() < PLACEHOLDER_MIN {
        return Vec::new();
    }
    let escaped = memchr::memchr2(b'%', b'\\', bytes).is_some();
    let base64 = base64
        && bytes.len() >= BASE64_MIN
        && BASE64_PREFIXES.as_ref().is_some_and(|f| f.is_match(bytes));
    if !escaped && !base64 {
        return Vec::new();
    }
    let mut decoded: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    if memchr::memchr(b'%', bytes).is_some() {
        let mut text = Zeroizing::new(bytes.to_vec());
        for _ in 0..PERCENT_ROUNDS {
            let next: Vec<u8> = percent_encoding::percent_decode(&text).collect();
            if next == *text {
                break;
            }
            text = Zeroizing::new(next);
            decoded.push(text.clone());
        }
    }
    if memchr::memchr(b'\\', bytes).is_some() {
        decoded.push(json_unescaped(bytes));
    }
    if base64 {
        decoded.extend(base64_runs(bytes));
    }
    let mut found: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    for text in &decoded {
        for r in placeholder_ranges(text) {
            let token = &text[r];
            let literal = memchr::memmem::find(bytes, token).is_some();
            if !literal && !found.iter().any(|t| t.as_slice() == token) {
                found.push(Zeroizing::new(token.to_vec()));
            }
        }
    }
    found
}

/// `\uXXXX` and the one-character escapes of JSON undone; anything else kept as it is.
fn json_unescaped(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let next = bytes[i + 1];
            if next == b'u'
                && let Some(c) = bytes
                    .get(i + 2..i + 6)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
            {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 6;
                continue;
            }
            if matches!(next, b'/' | b'\\' | b'"') {
                out.push(next);
                i += 2;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Each long run of base64 characters, decoded (standard or URL-safe alphabet).
fn base64_runs(bytes: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_b64(&bytes[i]) {
            i += 1;
            continue;
        }
        let len = bytes[i..].iter().take_while(|b| is_b64(b)).count();
        let run = &bytes[i..i + len];
        i += len;
        if len < BASE64_MIN {
            continue;
        }
        // A run of 4k+1 characters cannot be base64; its last one is not part of it.
        let usable = if len % 4 == 1 { &run[..len - 1] } else { run };
        let url_safe = run.iter().any(|b| matches!(b, b'-' | b'_'));
        let engine: &GeneralPurpose = if url_safe { &URL_SAFE } else { &STANDARD };
        if let Ok(decoded) = engine.decode(usable) {
            out.push(Zeroizing::new(decoded));
        }
    }
    out
}
