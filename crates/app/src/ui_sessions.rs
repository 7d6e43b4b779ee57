//! Web UI sessions as start-up and `egret ui sessions end` see them: an administrator's
//! session must not outlive the admin token it was opened with.

use egret_policy::Policy;
use egret_vault::Vault;
use secrecy::{ExposeSecret, SecretString};
use tracing::info;

use crate::error::AppError;

/// Where the vault keeps the admin token's fingerprint (its SHA-256, sealed).
const TOKEN_CHECK: &str = "admin_token_check";

/// Ends every administrator's web UI session when the admin token is not the one the
/// vault last started with (it was rotated); returns how many ended.
pub(crate) fn end_on_token_change(vault: &Vault, token: &SecretString) -> Result<usize, AppError> {
    let fingerprint = egret_vault::sha256_hex(token.expose_secret());
    let before = vault.replace_shared(TOKEN_CHECK, fingerprint.as_bytes())?;
    if before.is_none_or(|b| b.as_slice() == fingerprint.as_bytes()) {
        return Ok(0);
    }
    let ended = vault.end_ui_sessions_where(egret_ui::is_admin_session)?;
    info!(
        ended,
        "the admin token changed: every administrator's web UI session ended"
    );
    Ok(ended)
}

/// `egret ui sessions end`: ends every administrator's web UI session now, on every
/// replica (with a redb vault, egret must be stopped: it holds the file).
pub fn end_admin_sessions(policy: &Policy) -> Result<usize, AppError> {
    let vault = crate::open::open_existing(policy)?;
    Ok(vault.end_ui_sessions_where(egret_ui::is_admin_session)?)
}
