//! What can stop egret from starting, or a start-up command (`vault rotate-key`,
//! `vault migrate`, `ca init`) from finishing: each says what happened and what to do.

use egret_tls::TlsError;
use egret_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Refused before anything was changed; the sentence says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// A step failed; `what` names the step (and what to do), `source` why.
    #[error("{what}")]
    Failed {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listener could not be bound.
    #[error(
        "cannot listen on {addr}: {why}; choose another address with `{setting}` in the policy file, --{flag}, or EGRET_{var}",
        why = bind_reason(source),
        flag = setting.replace('.', "-"),
        var = setting.replace('.', "_").to_uppercase()
    )]
    Bind {
        addr: std::net::SocketAddr,
        setting: &'static str,
        source: std::io::Error,
    },
}

fn bind_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the port is in use (another egret, or another program)".to_owned()
        }
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges)".to_owned()
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "no interface of this machine has that address".to_owned()
        }
        _ => e.to_string(),
    }
}

/// `return Err(AppError::Refused(format!(…)))`.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err($crate::error::AppError::Refused(format!($($arg)*)))
    };
}
pub(crate) use refuse;

/// Names the step a failure happened in, keeping the failure as the source.
pub(crate) trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T, AppError>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, AppError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T, AppError> {
        self.map_err(|e| AppError::Failed {
            what: what.into(),
            source: Box::new(e),
        })
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, AppError> {
        self.map_err(|e| AppError::Failed {
            what: what(),
            source: Box::new(e),
        })
    }
}
