//! The AEAD envelope: XChaCha20-Poly1305 under the master key, with the record's table and
//! key as associated data, so a sealed value opens only where it was written.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::key::MasterKey;

const NONCE_LEN: usize = 24;

pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    pub(crate) fn new(key: &MasterKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.bytes().into()),
        }
    }

    /// `nonce || ciphertext+tag`. A random 192-bit nonce never repeats in practice.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let nonce_arr = XNonce::from(nonce);
        // Encryption with a valid key and in-memory buffers cannot fail.
        let ct = self
            .cipher
            .encrypt(
                &nonce_arr,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// `None` when the key is wrong, the bytes were altered, or the AAD differs.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).ok()?;
        self.cipher
            .decrypt(&nonce, Payload { msg: ct, aad })
            .ok()
            .map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_with_same_key_and_aad() {
        let key = MasterKey::generate();
        let s = Sealer::new(&key);
        let sealed = s.seal(b"connections\0a", b"secret");
        assert_eq!(
            s.open(b"connections\0a", &sealed)
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"secret"[..])
        );
        assert!(
            s.open(b"connections\0b", &sealed).is_none(),
            "moved to another record"
        );
        assert!(
            Sealer::new(&MasterKey::generate())
                .open(b"connections\0a", &sealed)
                .is_none()
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(s.open(b"connections\0a", &tampered).is_none());
        assert!(s.open(b"x", b"short").is_none());
    }
}
