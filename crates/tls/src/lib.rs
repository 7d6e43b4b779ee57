//! TLS for egret: the local CA (`ca`), leaf certificates for intercepted hosts with a
//! bounded single-flight cache (`leaf`), the trust egret uses toward upstreams
//! (`upstream`), and what can go wrong with them (`error`).
//!
//! The only crate that names the crypto provider (aws-lc-rs): everything else asks
//! [`provider`]. It must not do I/O beyond the CA files, and never logs key material.

mod ca;
mod error;
mod leaf;
mod upstream;

use std::sync::Arc;

pub use ca::{CA_CERT_FILE, CA_KEY_FILE, CaOrigin, CertificateAuthority, loose_mode, write_new};
pub use error::TlsError;
pub use leaf::LeafCache;
pub use upstream::{certs_from_pem, upstream_client_config};

/// When the certificate in `pem` (the first one) stops being valid, in unix seconds;
/// `None` when it cannot be parsed. `egret status` warns before the CA runs out.
pub fn certificate_not_after(pem: &str) -> Option<i64> {
    let der = certs_from_pem(pem).into_iter().next()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The process's one crypto provider, passed explicitly so a second provider in the
/// dependency graph can never make rustls pick at random (or panic).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl CertificateAuthority {
    pub(crate) fn issuer_der(&self) -> Result<Vec<u8>, TlsError> {
        certs_from_pem(self.cert_pem())
            .into_iter()
            .next()
            .map(|c| c.to_vec())
            .ok_or_else(|| TlsError::Issue {
                host: "CA".into(),
                reason: "CA certificate PEM is empty".into(),
            })
    }
}

#[cfg(test)]
mod tests;
