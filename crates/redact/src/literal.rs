//! The forms of a credential that are not written character by character, each paired
//! with the same form of its replacement: hexadecimal (lower and upper case), and base64
//! and base64url at each of the three alignments it can have inside longer encoded text
//! (the characters that depend on the credential's bytes alone).
//!
//! Reversed, split, encrypted, hashed or compressed credentials cannot be caught in
//! general (see the README's security model).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use zeroize::Zeroizing;

/// Forms shorter than this are not looked for: a handful of base64 characters would
/// match ordinary text (only fragments of a very short credential are this short).
pub(crate) const MIN_FORM: usize = 8;

/// Every literal form of `sent`, each with the same form of `shown`.
pub(crate) fn of(sent: &[u8], shown: &[u8]) -> Vec<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let mut out: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)> = Vec::new();
    let mut add = |form: Zeroizing<Vec<u8>>, replacement: Vec<u8>| {
        if form.len() >= MIN_FORM && !out.iter().any(|(f, _)| *f == form) {
            out.push((form, replacement));
        }
    };
    for upper in [false, true] {
        add(hex(sent, upper), hex(shown, upper).to_vec());
    }
    for alignment in 0..3 {
        for engine in [&STANDARD, &URL_SAFE] {
            add(
                base64_fragment(engine, sent, alignment),
                base64_fragment(engine, shown, alignment).to_vec(),
            );
        }
    }
    out
}

fn hex(bytes: &[u8], upper: bool) -> Zeroizing<Vec<u8>> {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() * 2));
    for b in bytes {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0xf)]);
    }
    out
}

/// The base64 characters that depend only on `bytes` when they start `alignment` bytes
/// into a three-byte group of some longer text: whatever surrounds them, an encoder
/// writes these characters for them.
fn base64_fragment(
    engine: &base64::engine::GeneralPurpose,
    bytes: &[u8],
    alignment: usize,
) -> Zeroizing<Vec<u8>> {
    let mut padded = Zeroizing::new(vec![0u8; alignment]);
    padded.extend_from_slice(bytes);
    let encoded = Zeroizing::new(engine.encode(padded.as_slice()).into_bytes());
    // Character i holds bits [6i, 6i + 6); the credential holds [8a, 8(a + len)).
    let first = (8 * alignment).div_ceil(6);
    let end = (8 * (alignment + bytes.len())) / 6;
    Zeroizing::new(encoded.get(first..end).unwrap_or_default().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"sk-live/abc+123=xyz";

    fn found_in(text: &[u8]) -> bool {
        of(KEY, b"egp_placeholder")
            .iter()
            .any(|(f, _)| text.windows(f.len()).any(|w| w == f.as_slice()))
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
    fn hex_in_either_case_is_found_and_paired_with_the_same_case() {
        let lower: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
        assert!(found_in(lower.as_bytes()));
        assert!(found_in(lower.to_uppercase().as_bytes()));
        let forms = of(KEY, b"egp_x");
        let (_, shown) = forms
            .iter()
            .find(|(f, _)| f.as_slice() == lower.as_bytes())
            .expect("hex form");
        assert_eq!(shown, b"6567705f78");
    }
}
