//! What a person deciding an approval is shown of the request's body and query: enough to
//! decide, never a credential. Placeholders (`egp_…`) become `egp_[placeholder]`; the
//! values of JSON keys and query or form parameters whose names say they hold a secret
//! (`password`, `token`, `secret`, `api_key`, `authorization`, …) become `[redacted]`;
//! then the text is cut to [`PREVIEW_MAX`] bytes.

use egret_vault::PLACEHOLDER_PREFIX;
use serde_json::Value;

/// The most of a body shown with an approval.
pub const PREVIEW_MAX: usize = 4096;

/// Words in a key that say its value is a secret.
const SECRET_WORDS: [&str; 10] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "credential",
    "private_key",
    "access_key",
];

fn secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// `body` as a person is shown it: JSON re-written with secret-named values redacted,
/// form or other text with secret-named parameters redacted; placeholders hidden
/// everywhere; at most [`PREVIEW_MAX`] bytes (cut at a character, marked `…`).
pub fn preview(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut json) => {
            redact_json(&mut json);
            serde_json::to_string_pretty(&json).unwrap_or_default()
        }
        Err(_) => {
            let lossy = String::from_utf8_lossy(body);
            if lossy.contains('=') && !lossy.contains('\n') {
                redact_pairs(&lossy)
            } else {
                lossy.into_owned()
            }
        }
    };
    cut(&hide_placeholders(&text))
}

/// A query string with secret-named parameters and placeholders hidden.
pub fn redact_query(query: &str) -> String {
    hide_placeholders(&redact_pairs(query))
}

fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if secret_name(k) && !val.is_null() {
                    *val = Value::String("[redacted]".to_owned());
                } else {
                    redact_json(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

fn redact_pairs(text: &str) -> String {
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret_name(k) => format!("{k}=[redacted]"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Every `egp_` followed by letters and digits, whatever surrounds it.
fn hide_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(PLACEHOLDER_PREFIX) {
        out.push_str(&rest[..at]);
        let after = &rest[at + PLACEHOLDER_PREFIX.len()..];
        let run = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        out.push_str(PLACEHOLDER_PREFIX);
        if run > 0 {
            out.push_str("[placeholder]");
        }
        rest = &after[run..];
    }
    out.push_str(rest);
    out
}

fn cut(text: &str) -> String {
    if text.len() <= PREVIEW_MAX {
        return text.to_owned();
    }
    let mut end = PREVIEW_MAX - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_secret_named_values_are_hidden() {
        let body = br#"{"title": "fix egp_AbCdEfGh1234", "auth": {"api_key": "sk-live-1", "Password": "p"}, "n": 1}"#;
        let shown = preview(body);
        assert!(
            !shown.contains("AbCdEfGh1234") && !shown.contains("sk-live-1"),
            "{shown}"
        );
        assert!(
            shown.contains("egp_[placeholder]") && shown.contains("[redacted]"),
            "{shown}"
        );
        assert!(shown.contains("\"n\": 1"), "{shown}");
        let form = preview(b"user=ann&client_secret=s3cr3t&token=egp_x1");
        assert_eq!(form, "user=ann&client_secret=[redacted]&token=[redacted]");
        assert_eq!(
            redact_query("q=egp_Zz9&access_token=t"),
            "q=egp_[placeholder]&access_token=[redacted]"
        );
    }

    #[test]
    fn a_long_body_is_cut_at_a_character() {
        let body = "é".repeat(5000);
        let shown = preview(body.as_bytes());
        assert!(
            shown.len() <= PREVIEW_MAX && shown.ends_with('…'),
            "{}",
            shown.len()
        );
    }
}
