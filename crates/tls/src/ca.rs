//! The local CA: created once (ECDSA P-256, key file 0600), then loaded on every start.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, GeneralSubtree, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, NameConstraints, PKCS_ECDSA_P256_SHA256,
};

use zeroize::Zeroizing;

use crate::error::TlsError;

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// The CA's certificate (for sandboxes to trust) and its signing half (for leaves).
pub struct CertificateAuthority {
    pub(crate) issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertificateAuthority(key redacted)")
    }
}

/// Whether `load_or_create` found the CA or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaOrigin {
    Loaded,
    Created,
}

impl CertificateAuthority {
    /// Loads `dir/ca.pem` + `dir/ca-key.pem`, creating both when neither exists.
    /// One without the other is refused: never overwrite half a CA.
    pub fn load_or_create(dir: &Path) -> Result<(Self, CaOrigin), TlsError> {
        Self::load_or_create_for(dir, &[])
    }

    /// As [`Self::load_or_create`]; a CA created here is limited to `permitted` domains
    /// (and their subdomains) when that list is not empty.
    pub fn load_or_create_for(
        dir: &Path,
        permitted: &[String],
    ) -> Result<(Self, CaOrigin), TlsError> {
        let (cert_path, key_path) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Ok((Self::load(&cert_path, &key_path)?, CaOrigin::Loaded)),
            (false, false) => Ok((Self::create_for(dir, permitted)?, CaOrigin::Created)),
            (has_cert, _) => {
                let (present, missing) = if has_cert {
                    (cert_path, key_path)
                } else {
                    (key_path, cert_path)
                };
                Err(TlsError::BadCa {
                    path: missing,
                    reason: format!("missing while {} exists", present.display()),
                })
            }
        }
    }

    /// Refuses a key file that others may read: whoever holds the CA key can impersonate
    /// any site to every sandbox that trusts it.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        check_private(key_path)?;
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::BadCa {
            path: key_path.to_owned(),
            reason: e.to_string(),
        })?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| TlsError::BadCa {
            path: cert_path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self { issuer, cert_pem })
    }

    /// Creates a new CA in `dir` (which is created if needed). Refuses to overwrite.
    pub fn create(dir: &Path) -> Result<Self, TlsError> {
        Self::create_for(dir, &[])
    }

    /// Creates a CA that, when `permitted` is not empty, carries an X.509 name
    /// constraint: clients then accept its certificates only for those domains and their
    /// subdomains, so a leaked CA key cannot impersonate any other site.
    pub fn create_for(dir: &Path, permitted: &[String]) -> Result<Self, TlsError> {
        fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let (cert_pem, key_pem) = Self::generate(permitted)?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        write_new(&key_path, key_pem.as_bytes(), 0o600)?;
        write_new(&cert_path, cert_pem.as_bytes(), 0o644)?;
        Self::load(&cert_path, &key_path)
    }

    /// A new CA as PEM (certificate, private key), written nowhere: what a store shared
    /// by replicas keeps sealed. `permitted` as for [`Self::create_for`].
    pub fn generate(permitted: &[String]) -> Result<(String, Zeroizing<String>), TlsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| TlsError::Issue {
            host: "CA".into(),
            reason: e.to_string(),
        })?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "egret local interception CA");
        dn.push(DnType::OrganizationName, "egret");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        if !permitted.is_empty() {
            params.name_constraints = Some(NameConstraints {
                permitted_subtrees: permitted
                    .iter()
                    .map(|d| GeneralSubtree::DnsName(d.clone()))
                    .collect(),
                excluded_subtrees: Vec::new(),
            });
        }
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key).map_err(|e| TlsError::Issue {
            host: "CA".into(),
            reason: e.to_string(),
        })?;
        Ok((cert.pem(), Zeroizing::new(key.serialize_pem())))
    }

    /// The CA from its PEM certificate and key (as [`Self::generate`] made them);
    /// `origin` names where they came from in an error.
    pub fn from_pem(cert_pem: &str, key_pem: &str, origin: &Path) -> Result<Self, TlsError> {
        let bad = |e: rcgen::Error| TlsError::BadCa {
            path: origin.to_owned(),
            reason: e.to_string(),
        };
        let key = KeyPair::from_pem(key_pem).map_err(bad)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(bad)?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_owned(),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
}

fn check_private(path: &Path) -> Result<(), TlsError> {
    let mode = loose_mode(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    match mode {
        Some(mode) => Err(TlsError::KeyReadable {
            path: path.to_owned(),
            mode,
        }),
        None => Ok(()),
    }
}

/// The permission bits of a secret file when its group or others may use it (the key
/// files egret refuses); `None` when only its owner may.
#[cfg(unix)]
pub fn loose_mode(path: &Path) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

#[cfg(not(unix))]
pub fn loose_mode(_: &Path) -> std::io::Result<Option<u32>> {
    Ok(None)
}

fn read(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Creates `path` with `mode` from the start (no window with wider permissions) and
/// refuses to replace an existing file.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let err = |source| TlsError::Io {
        path: PathBuf::from(path),
        source,
    };
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}
