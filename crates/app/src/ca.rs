//! The interception CA as the commands see it: `egret ca init`, where its certificate
//! is, when it ends, and its pair as the vault database keeps it (sealed, for replicas).

use std::path::{Path, PathBuf};

use egret_policy::{Policy, VaultBackend};

use crate::error::{AppError, refuse};

/// The certificate's file name in `ca.dir`.
pub use egret_tls::CA_CERT_FILE as CERT_FILE;

/// Where sandboxes find the certificate to trust.
pub fn cert_path(policy: &Policy) -> PathBuf {
    policy.ca.dir.join(egret_tls::CA_CERT_FILE)
}

/// When the CA certificate in `ca.dir` ends (unix seconds); `None` when there is none
/// (or it does not parse).
pub fn not_after(policy: &Policy) -> Option<i64> {
    std::fs::read_to_string(cert_path(policy))
        .ok()
        .and_then(|pem| egret_tls::certificate_not_after(&pem))
}

/// `egret ca init`: a new CA in `dir` (the policy's `ca.dir` when `None`); refused when
/// one is there already, or when the CA lives in the vault database. Returns the
/// certificate's and the key's paths.
pub fn init(policy: &Policy, dir: Option<PathBuf>) -> Result<(PathBuf, PathBuf), AppError> {
    if matches!(policy.vault.backend, VaultBackend::Postgres { .. }) {
        refuse!(
            "with `vault.backend: postgres` the CA is kept in the vault database, sealed, and the first replica to start creates it; a CA made here would not be used (to bring an existing one, `egret vault migrate` moves it from ca.dir)"
        );
    }
    let dir = dir.unwrap_or_else(|| policy.ca.dir.clone());
    let (cert, key) = (
        dir.join(egret_tls::CA_CERT_FILE),
        dir.join(egret_tls::CA_KEY_FILE),
    );
    if cert.exists() || key.exists() {
        refuse!(
            "a CA already exists in {}; remove it first if you really want a new one (sandboxes trusting the old one will stop working)",
            dir.display()
        );
    }
    egret_tls::CertificateAuthority::create_for(&dir, &ca_limits(policy)?)?;
    Ok((cert, key))
}

/// The domains a new CA is limited to (`ca.name_constraints`); empty for no limit.
pub(crate) fn ca_limits(policy: &Policy) -> Result<Vec<String>, AppError> {
    if !policy.ca.name_constraints {
        return Ok(Vec::new());
    }
    let domains = policy.intercepted_domains();
    if domains.is_empty() {
        refuse!(
            "ca.name_constraints is on but no connector names an egress host; add the connectors first, then create the CA"
        );
    }
    Ok(domains)
}

/// The CA's pair as the vault keeps it (`meta/ca`, sealed by the vault).
pub(crate) fn seal_pair(cert_pem: &str, key_pem: &str) -> zeroize::Zeroizing<Vec<u8>> {
    let json = serde_json::json!({ "cert": cert_pem, "key": key_pem });
    zeroize::Zeroizing::new(json.to_string().into_bytes())
}

/// The pair [`seal_pair`] made; `None` when it is unreadable or incomplete.
pub(crate) fn unseal_pair(bundle: &[u8]) -> Option<(String, zeroize::Zeroizing<String>)> {
    let parsed: serde_json::Value = serde_json::from_slice(bundle).ok()?;
    let cert = parsed["cert"].as_str()?.to_owned();
    let key = zeroize::Zeroizing::new(parsed["key"].as_str()?.to_owned());
    Some((cert, key))
}

/// The pair in `ca.dir`, checked to load; `None` when there is none.
pub(crate) fn read_pair(
    dir: &Path,
) -> Result<Option<(String, zeroize::Zeroizing<String>)>, AppError> {
    use crate::error::Context as _;
    let (cert, key) = (
        dir.join(egret_tls::CA_CERT_FILE),
        dir.join(egret_tls::CA_KEY_FILE),
    );
    if !cert.exists() || !key.exists() {
        return Ok(None);
    }
    let cert_pem = std::fs::read_to_string(&cert)
        .with_context(|| format!("cannot read {}", cert.display()))?;
    let key_pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(&key).with_context(|| format!("cannot read {}", key.display()))?,
    );
    // Refuses a pair that does not load, before it is stored.
    egret_tls::CertificateAuthority::from_pem(&cert_pem, &key_pem, &cert)?;
    Ok(Some((cert_pem, key_pem)))
}

/// Writes the CA certificate to `dir` as `ca.pem` atomically: a temporary file beside it,
/// renamed into place, so replicas starting together never see a half-written file or
/// trip over each other's (the last rename wins, and they all write the same bytes).
pub(crate) fn publish_cert(dir: &Path, cert_pem: &str) -> Result<(), AppError> {
    use crate::error::Context as _;
    use std::io::Write as _;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let target = dir.join(egret_tls::CA_CERT_FILE);
    let mut temp = tempfile::Builder::new()
        .prefix(".ca.pem.")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write a file in {}", dir.display()))?;
    temp.write_all(cert_pem.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", target.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot set mode 0644 on {}", target.display()))?;
    }
    temp.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", target.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replicas starting together on one `ca.dir` each write the certificate: none fails,
    /// and the file is whole.
    #[test]
    fn writers_at_once_never_trip_over_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".repeat(20);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| publish_cert(dir.path(), &pem)))
                .collect();
            for h in handles {
                h.join().expect("thread").expect("published");
            }
        });
        let written = std::fs::read_to_string(dir.path().join(CERT_FILE)).expect("read");
        assert_eq!(written, pem);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != CERT_FILE)
            .collect();
        assert!(left.is_empty(), "no temporary file is left: {left:?}");
    }
}
