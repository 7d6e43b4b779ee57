//! The forms a credential can come back in, each paired with the same form of what the
//! sandbox sent (so a decoder on the sandbox's side finds the placeholder where the
//! credential was):
//!
//! - as sent, upper-cased and lower-cased;
//! - percent-encoded: the reserved characters only (as a query value is written), every
//!   byte, or only `+`, `/` and `=` (how base64 keys are usually escaped), each with
//!   upper- and lower-case hex digits;
//! - JSON-escaped (with `/` as it is or as `\/`), and every character as `\u00XX`;
//! - HTML numeric character references, decimal and hexadecimal;
//! - hexadecimal, lower and upper case;
//! - base64 and base64url at each of the three alignments it can have inside longer
//!   encoded text: the characters that depend on the credential's bytes alone.
//!
//! Reversed, split, encrypted, hashed or compressed credentials cannot be caught in
//! general (see the README's security model).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

use crate::swap::QUERY_VALUE;

/// Encoded forms shorter than this are not looked for: a handful of characters would
/// match ordinary text (only base64 fragments of a very short credential are this short).
const MIN_FORM: usize = 8;

/// Only the characters base64 adds to an alphabet, escaped.
const BASE64_SPECIALS: &AsciiSet = &CONTROLS.add(b'+').add(b'/').add(b'=');

/// Every form of `sent`, each with the same form of `shown`.
pub(super) fn of(sent: &[u8], shown: &[u8]) -> Vec<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let mut out: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)> = Vec::new();
    let mut add = |form: Vec<u8>, replacement: Vec<u8>| {
        let form = Zeroizing::new(form);
        if form.len() >= MIN_FORM.min(sent.len()) && !out.iter().any(|(f, _)| *f == form) {
            out.push((form, replacement));
        }
    };
    add(sent.to_vec(), shown.to_vec());
    for transform in TRANSFORMS {
        if let (Some(form), Some(replacement)) = (transform(sent), transform(shown)) {
            add(form, replacement);
        }
    }
    for alignment in 0..3 {
        for engine in [&STANDARD, &URL_SAFE] {
            let form = base64_fragment(engine, sent, alignment);
            let replacement = base64_fragment(engine, shown, alignment);
            if form.len() >= MIN_FORM {
                add(form, replacement);
            }
        }
    }
    out
}

/// A form as a function of the bytes; `None` where it does not apply (not text).
type Transform = fn(&[u8]) -> Option<Vec<u8>>;

const TRANSFORMS: &[Transform] = &[
    |b| Some(b.to_ascii_uppercase()),
    |b| Some(b.to_ascii_lowercase()),
    |b| Some(percent(text(b)?, QUERY_VALUE).into_bytes()),
    |b| Some(percent(text(b)?, QUERY_VALUE).to_ascii_lowercase_hex()),
    |b| Some(percent(text(b)?, NON_ALPHANUMERIC).into_bytes()),
    |b| Some(percent(text(b)?, NON_ALPHANUMERIC).to_ascii_lowercase_hex()),
    |b| Some(every_byte_percent(b, false)),
    |b| Some(every_byte_percent(b, true)),
    |b| Some(percent(text(b)?, BASE64_SPECIALS).into_bytes()),
    |b| Some(percent(text(b)?, BASE64_SPECIALS).to_ascii_lowercase_hex()),
    |b| Some(json_string(text(b)?).into_bytes()),
    |b| Some(json_string(text(b)?).replace('/', "\\/").into_bytes()),
    |b| Some(json_unicode(text(b)?, false).into_bytes()),
    |b| Some(json_unicode(text(b)?, true).into_bytes()),
    |b| {
        Some(
            text(b)?
                .chars()
                .map(|c| format!("&#{};", u32::from(c)))
                .collect::<String>()
                .into_bytes(),
        )
    },
    |b| {
        Some(
            text(b)?
                .chars()
                .map(|c| format!("&#x{:x};", u32::from(c)))
                .collect::<String>()
                .into_bytes(),
        )
    },
    |b| Some(hex(b, false)),
    |b| Some(hex(b, true)),
];

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

fn percent(text: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(text, set).to_string()
}

/// Lower-case hex digits in `%XX` escapes (the rest unchanged).
trait LowercaseHex {
    fn to_ascii_lowercase_hex(&self) -> Vec<u8>;
}

impl LowercaseHex for String {
    fn to_ascii_lowercase_hex(&self) -> Vec<u8> {
        let mut out = self.clone().into_bytes();
        let mut i = 0;
        while i < out.len() {
            if out[i] == b'%' && i + 2 < out.len() {
                out[i + 1] = out[i + 1].to_ascii_lowercase();
                out[i + 2] = out[i + 2].to_ascii_lowercase();
                i += 3;
            } else {
                i += 1;
            }
        }
        out
    }
}

fn every_byte_percent(bytes: &[u8], lower: bool) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| {
            if lower {
                format!("%{b:02x}")
            } else {
                format!("%{b:02X}")
            }
            .into_bytes()
        })
        .collect()
}

/// The JSON string's inside (no quotes).
fn json_string(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or_default()
        .to_owned()
}

/// Every character as a JSON `\uXXXX` escape (surrogate pairs beyond the BMP).
fn json_unicode(text: &str, upper: bool) -> String {
    let mut units = [0u16; 2];
    text.chars()
        .flat_map(|c| c.encode_utf16(&mut units).to_vec())
        .map(|u| {
            if upper {
                format!("\\u{u:04X}")
            } else {
                format!("\\u{u:04x}")
            }
        })
        .collect()
}

fn hex(bytes: &[u8], upper: bool) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
            .into_bytes()
        })
        .collect()
}

/// The base64 characters that depend only on `bytes` when they start `alignment` bytes
/// into a three-byte group of some longer text: whatever surrounds them, an encoder
/// writes these characters for them.
fn base64_fragment(
    engine: &base64::engine::GeneralPurpose,
    bytes: &[u8],
    alignment: usize,
) -> Vec<u8> {
    let mut padded = vec![0u8; alignment];
    padded.extend_from_slice(bytes);
    let encoded = Zeroizing::new(engine.encode(&padded).into_bytes());
    // Character i holds bits [6i, 6i + 6); the credential holds [8a, 8(a + len)).
    let first = (8 * alignment).div_ceil(6);
    let end = (8 * (alignment + bytes.len())) / 6;
    encoded.get(first..end).unwrap_or_default().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"sk-live/abc+123=xyz";

    fn forms() -> Vec<Vec<u8>> {
        of(KEY, b"egp_placeholder0000000000000000000000000000")
            .into_iter()
            .map(|(f, _)| f.to_vec())
            .collect()
    }

    fn found_in(text: &[u8]) -> bool {
        forms()
            .iter()
            .any(|f| text.windows(f.len()).any(|w| w == f.as_slice()))
    }

    #[test]
    fn base64_of_the_key_is_found_at_every_alignment_inside_longer_text() {
        for prefix in ["", "a", "ab", "abc", "{\"token\":\"", "Bearer "] {
            let text = [prefix.as_bytes(), KEY, b"\",\"more\":1}"].concat();
            for engine in [&STANDARD, &URL_SAFE] {
                let encoded = engine.encode(&text);
                assert!(found_in(encoded.as_bytes()), "prefix {prefix:?}: {encoded}");
            }
        }
    }

    #[test]
    fn each_trivial_encoding_is_found() {
        let key = std::str::from_utf8(KEY).expect("ascii");
        let encodings = [
            key.to_uppercase(),
            key.to_lowercase(),
            "sk-live%2fabc%2b123%3dxyz".to_owned(),
            "sk%2Dlive%2Fabc%2B123%3Dxyz".to_owned(),
            "sk-live%2Fabc%2B123%3Dxyz".to_owned(),
            KEY.iter().map(|b| format!("%{b:02X}")).collect(),
            KEY.iter().map(|b| format!("%{b:02x}")).collect(),
            KEY.iter()
                .map(|b| format!("\\u{:04x}", u32::from(*b)))
                .collect(),
            KEY.iter()
                .map(|b| format!("\\u{:04X}", u32::from(*b)))
                .collect(),
            KEY.iter().map(|b| format!("&#{b};")).collect(),
            KEY.iter().map(|b| format!("&#x{b:x};")).collect(),
            KEY.iter().map(|b| format!("{b:02x}")).collect(),
            KEY.iter().map(|b| format!("{b:02X}")).collect(),
        ];
        for encoded in encodings {
            assert!(found_in(encoded.as_bytes()), "{encoded}");
        }
    }

    #[test]
    fn each_form_is_paired_with_the_same_form_of_the_placeholder() {
        let shown = b"egp_Placeholder0000000000000000000000000000";
        for (form, replacement) in of(KEY, shown) {
            assert!(
                !replacement.windows(KEY.len()).any(|w| w == KEY),
                "{:?}",
                String::from_utf8_lossy(&form)
            );
        }
        let hex_form = of(KEY, shown)
            .into_iter()
            .find(|(f, _)| f.as_slice() == hex(KEY, false).as_slice())
            .expect("hex form");
        assert_eq!(hex_form.1, hex(shown, false));
    }
}
