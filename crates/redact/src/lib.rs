//! Finding a credential in text however it was written, and putting something else in its
//! place. An upstream that echoes a request (debug endpoints, error pages, httpbin-style
//! APIs), a token endpoint's error text or a vendor's userinfo answer must not hand the
//! sandbox, a log line or a page a credential egret holds.
//!
//! - `escape`: how one character can stand in text — raw (in either case), `%XX` (either
//!   hex case), `\uXXXX` or `\/`, an HTML character reference (decimal, hexadecimal or
//!   named) — and writing a character back the same way.
//! - `literal`: the forms that are not made character by character — hexadecimal and
//!   base64 of the credential's bytes.
//! - `automaton`: one matcher per credential set. A credential matches where each of its
//!   characters stands in any of those ways, mixed freely (`sk-live%2Fabc+123&#61;x`); a
//!   multi-pattern search over the few ways each credential can *begin* finds where to
//!   look, so text without a credential is passed over at memory speed.
//! - `redactor`: replacing every match with the same form of what the sandbox sent instead
//!   (or a fixed word), in bytes, header values and text; `body`: the same over a
//!   streaming HTTP body or byte stream, holding back only a tail that could still grow
//!   into a credential.
//! - `text`: a vendor's text (token endpoint errors, userinfo, test answers) made safe to
//!   keep and show: control characters out, then every form of every secret.
//!
//! This crate knows nothing of vaults, connectors or requests: callers hand it pairs of
//! (credential, replacement). It must never log, print or keep a credential beyond the
//! matcher it builds (credential bytes are zeroized on drop).

mod automaton;
mod body;
mod escape;
mod literal;
mod redactor;
mod text;
mod trie;

pub use body::{Redacted, Scanner};
pub use redactor::Redactor;
pub use text::{REDACTED, VENDOR_TEXT_MAX, vendor_text};

use zeroize::Zeroizing;

/// One credential that may come back, and what goes back in its place. Never printed.
pub struct Echo {
    pub sent: Zeroizing<Vec<u8>>,
    pub shown: Vec<u8>,
    /// `shown` goes back as it is, whatever form the credential had: a fixed word for
    /// people to read. Otherwise `shown` is written in the match's form (the text the
    /// sandbox sent instead, which its decoder must find).
    pub verbatim: bool,
}

impl Echo {
    /// `sent` came back: put back `shown`, the sandbox's text, in the same form.
    pub fn new(sent: &[u8], shown: &[u8]) -> Self {
        Self {
            sent: Zeroizing::new(sent.to_vec()),
            shown: shown.to_vec(),
            verbatim: false,
        }
    }

    /// `sent` came back: put `word` in its place as it is.
    pub fn fixed(sent: &[u8], word: &[u8]) -> Self {
        Self {
            verbatim: true,
            ..Self::new(sent, word)
        }
    }
}

#[cfg(test)]
mod tests;
