use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}; check that the directory exists and is writable by egret", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a usable CA ({reason}); restore the original file or run `egret ca init` in an empty directory", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("{}: the CA key file has mode {mode:o} and others may read it; run `chmod 600 {}` (and rotate the CA if it may have leaked)", path.display(), path.display())]
    KeyReadable { path: PathBuf, mode: u32 },
    #[error("{}: no certificate found in this PEM file; give a file of `-----BEGIN CERTIFICATE-----` blocks", path.display())]
    NoCertificates { path: PathBuf },
    #[error("cannot issue a certificate for `{host}`: {reason}")]
    Issue { host: String, reason: String },
    #[error("TLS configuration failed: {0}")]
    Config(#[from] rustls::Error),
}
