//! Trust for egret's own TLS connections to upstreams: the web PKI plus operator PEMs.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::TlsError;
use crate::provider;

/// A client configuration trusting webpki roots and every certificate in `extra_ca`.
/// ALPN is left to the HTTP client, which knows which protocols it speaks.
pub fn upstream_client_config(extra_ca: &[impl AsRef<Path>]) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for path in extra_ca {
        let path = path.as_ref();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsError::BadCa {
                path: path.to_owned(),
                reason: e.to_string(),
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadCa {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificates {
                path: path.to_owned(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::BadCa {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Parses PEM text into certificates (used for the CA bundle a client must trust).
pub fn certs_from_pem(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

pub(crate) fn _assert_send_sync() {
    fn f<T: Send + Sync>() {}
    f::<Arc<ClientConfig>>();
}
