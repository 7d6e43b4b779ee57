//! Texts a vendor writes — a token endpoint's error, a userinfo answer, an identity, a
//! connection test's answer — made safe to keep, log, audit, send in a webhook and show
//! on a page.

use crate::{Echo, Redactor};

/// What stands where a secret was in a vendor's text.
pub const REDACTED: &str = "[redacted]";

/// At most this many characters of a vendor's text are kept.
pub const VENDOR_TEXT_MAX: usize = 300;

/// Secrets shorter than this are not looked for: they would match ordinary words.
const MIN_SECRET: usize = 4;

/// `text` with its control characters removed first (so none can split a secret the scan
/// would otherwise see, or forge a log line), then every secret in `secrets` replaced in
/// any form the redactor knows, then cut to [`VENDOR_TEXT_MAX`] characters.
pub fn vendor_text(text: &str, secrets: &[&[u8]]) -> String {
    let plain: String = text.chars().filter(|c| !c.is_control()).collect();
    let echoes: Vec<Echo> = secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET)
        .map(|s| Echo::fixed(s, REDACTED.as_bytes()))
        .collect();
    let mut out = match Redactor::new(&echoes) {
        Some(redactor) => redactor.text(&plain).into_owned(),
        None => plain,
    };
    if out.chars().count() > VENDOR_TEXT_MAX {
        out = out.chars().take(VENDOR_TEXT_MAX - 1).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vendor_text_loses_every_form_of_every_secret_and_its_control_characters() {
        let secrets: [&[u8]; 2] = [b"sk-REAL/1+x=", b"client-secret-0123"];
        let cases = [
            (
                "bad token sk-REAL/1+x=\r\nX-Evil: 1",
                "bad token [redacted]X-Evil: 1",
            ),
            (
                "token sk-RE\u{7}AL/1+x= refused",
                "token [redacted] refused",
            ),
            (
                "token sk-REAL%2F1%2Bx%3D refused",
                "token [redacted] refused",
            ),
            (
                "client_secret=client%2Dsecret&#45;0123",
                "client_secret=[redacted]",
            ),
            (
                "{\"echo\":\"sk-REAL\\/1+x\\u003d\"}",
                "{\"echo\":\"[redacted]\"}",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(vendor_text(text, &secrets), expected, "{text:?}");
        }
        assert_eq!(vendor_text(&"x".repeat(400), &[]).chars().count(), 300);
        assert_eq!(vendor_text("abc", &[b"ab"]), "abc", "too short to look for");
    }
}
