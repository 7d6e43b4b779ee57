//! The master key: 32 random bytes, kept as base64 text in a 0600 file or an env variable.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::VaultError;

pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// Decodes the base64 text form (surrounding whitespace ignored).
    pub fn decode(text: &str) -> Result<Self, VaultError> {
        let raw = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
            VaultError::BadKey("expected 32 bytes in base64 (as `egret serve` writes it)")
        })?);
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::BadKey("expected exactly 32 bytes in base64"))?;
        Ok(Self(Zeroizing::new(bytes)))
    }

    pub fn encode(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.0.as_ref()))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}
