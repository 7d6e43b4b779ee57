//! Placeholder tokens: `egp_` + 40 random alphanumerics, stored only as their SHA-256.

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "egp_";
/// The shortest body a placeholder may have (README, "What the proxy does":
/// `egp_` + 40 letters and digits); minted ones have exactly 40.
pub const MIN_BODY: usize = 32;
const MINTED_BODY: usize = 40;
/// AWS access key ids egret mints start so, like long-term AWS keys.
pub const AWS_KEY_ID_PREFIX: &str = "AKIA";
const AWS_KEY_ID_BODY: usize = 16;

/// True for `AKIA` + 16 of `A-Z2-7`: the shape of the AWS key id placeholders egret mints.
pub fn is_aws_key_id(text: &str) -> bool {
    text.strip_prefix(AWS_KEY_ID_PREFIX).is_some_and(|b| {
        b.len() == AWS_KEY_ID_BODY
            && b.bytes()
                .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c))
    })
}

/// A placeholder in the clear. Not a credential, but a bearer toward egret: never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Placeholder(String);

impl Placeholder {
    pub fn mint() -> Self {
        // ThreadRng is a ChaCha-based CSPRNG seeded from the OS.
        let body: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(MINTED_BODY)
            .map(char::from)
            .collect();
        Self(format!("{PREFIX}{body}"))
    }

    /// An AWS access key id placeholder: `AKIA` + 16 of `A-Z2-7`, shaped as AWS's own so
    /// SDKs accept it. It is not enough alone: a request must also be signed with the
    /// secret placeholder derived from it ([`crate::Vault::aws_secret_placeholder`]).
    pub fn mint_aws_key_id() -> Self {
        const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut rng = rand::rng();
        let body: String = (0..AWS_KEY_ID_BODY)
            .map(|_| char::from(BASE32[rng.random_range(0..32)]))
            .collect();
        Self(format!("{AWS_KEY_ID_PREFIX}{body}"))
    }

    /// A value computed, not minted (an AWS secret placeholder).
    pub(crate) fn derived(text: String) -> Self {
        Self(text)
    }

    /// Accepts exactly `egp_[A-Za-z0-9]{32,}`, or an AWS key id placeholder.
    pub fn parse(text: &str) -> Option<Self> {
        if is_aws_key_id(text) {
            return Some(Self(text.to_owned()));
        }
        let body = text.strip_prefix(PREFIX)?;
        (body.len() >= MIN_BODY && body.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> PlaceholderHash {
        PlaceholderHash::of(self.0.as_bytes())
    }

    pub(crate) fn hint(&self) -> String {
        let shown = if is_aws_key_id(&self.0) {
            AWS_KEY_ID_PREFIX.len() + 4
        } else {
            PREFIX.len() + 4
        };
        format!("{}…", &self.0[..shown.min(self.0.len())])
    }
}

impl fmt::Debug for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Placeholder(redacted)")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlaceholderHash(pub [u8; 32]);

impl PlaceholderHash {
    pub fn of(placeholder: &[u8]) -> Self {
        Self(Sha256::digest(placeholder).into())
    }

    pub(crate) fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The hash from its lower-case hex (a store key, an id the UI shows).
    pub(crate) fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_placeholders_are_well_formed_and_distinct() {
        let a = Placeholder::mint();
        let b = Placeholder::mint();
        assert_ne!(a, b);
        assert!(Placeholder::parse(a.expose()).is_some());
        assert_eq!(a.expose().len(), PREFIX.len() + MINTED_BODY);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn parse_enforces_the_placeholder_syntax() {
        assert!(Placeholder::parse(&format!("egp_{}", "a".repeat(32))).is_some());
        assert!(Placeholder::parse(&format!("egp_{}", "a".repeat(31))).is_none());
        assert!(Placeholder::parse(&format!("egp_{}-", "a".repeat(32))).is_none());
        assert!(Placeholder::parse(&format!("egx_{}", "a".repeat(32))).is_none());
    }
}
