//! Web UI sessions, kept in the vault (sealed, under the hash of the cookie) so every
//! replica knows them. What a session holds is the UI's business: bytes, here.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::{Service, ServiceError};

impl Service {
    /// Keeps a session under its cookie value `id` for `lifetime` from now.
    pub async fn put_ui_session(
        self: &Arc<Self>,
        id: SecretString,
        session: Zeroizing<Vec<u8>>,
        lifetime: Duration,
    ) -> Result<(), ServiceError> {
        self.blocking(move |s| Ok(s.vault.put_ui_session(&id, &session, lifetime)?))
            .await
    }

    /// The live session whose cookie value is `id`.
    pub async fn ui_session(
        self: &Arc<Self>,
        id: String,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, ServiceError> {
        self.blocking(move |s| Ok(s.vault.ui_session(&id)?)).await
    }

    /// Ends the session whose cookie value is `id`, on every replica at once.
    pub async fn end_ui_session(self: &Arc<Self>, id: String) -> Result<(), ServiceError> {
        self.blocking(move |s| Ok(s.vault.end_ui_session(&id)?))
            .await
    }
}
