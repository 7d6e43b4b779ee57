//! OAuth 2.0 for connections: talking to vendors' authorization servers and keeping
//! every OAuth connection's tokens fresh in the vault.
//!
//! `http` is egret's own client toward authorization servers (the `oauth2` crate's
//! transport); `endpoints` completes a connector's URLs by discovery; `protocol` holds
//! the exchanges (authorization URL with PKCE and state, code, client credentials,
//! refresh, revocation); `vendor` puts them behind the [`Vendor`] trait; `store` is the
//! [`TokenStore`] trait the vault implements; `broker` runs them for connections:
//! single-flight inline renewal, background renewal, failure states, connect and
//! disconnect; `error` says what went wrong and whose fault it was.
//!
//! It must not touch sandbox traffic, and it never logs or returns a token, code or
//! secret.

mod broker;
mod endpoints;
mod error;
mod http;
pub mod id_token;
mod protocol;
pub mod sign_in;
mod store;
mod vendor;

pub use broker::{Begun, Broker, Health, Need, SignInStart, sanitized};
pub use endpoints::Endpoints;
pub use error::TokenError;
pub use http::{HttpClient, HttpError};
pub use protocol::Authorization;
pub use store::{Claim, TokenStore};
pub use vendor::{HttpVendor, Vendor, VendorCall};

/// How often background renewal looks for tokens to renew.
pub const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a started authorization waits for its callback.
pub const PENDING_TTL_SECS: i64 = 600;

/// Why a callback did not connect anything. Shown to the user on the callback page.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error(
        "this sign-in link is unknown, was used already, or is older than 10 minutes; start connecting again"
    )]
    UnknownState,
    #[error("the sign-in to `{connector}` was not completed ({error}); nothing was changed")]
    Denied { connector: String, error: String },
    #[error("connector `{0}` no longer exists; ask your administrator")]
    ConnectorGone(String),
    #[error("connector `{0}` is disabled and accepts no new connections; ask your administrator")]
    Disabled(String),
    #[error("`{connector}` did not accept the sign-in: {error}")]
    Exchange {
        connector: String,
        error: TokenError,
    },
    #[error(
        "`{owner}` is connected to `{connector}` already (as `{existing}`), and the connector allows one connection per owner; nothing was changed. Remove that connection first, or ask your administrator to set `multiple_connections: true`"
    )]
    SecondConnection {
        connector: String,
        owner: String,
        existing: String,
    },
    #[error(
        "this sign-in link was followed already, is unknown, or is older than 10 minutes; ask for a new one (egret connection connect)"
    )]
    StartUsed,
    #[error(
        "this sign-in to `{0}` was finished in a different browser from the one that opened egret's sign-in link, so nothing was connected; open the link you were given and sign in from there"
    )]
    OtherBrowser(String),
    #[error(
        "you signed in to `{connector}` as {signed_in_as}, but this sign-in link is for {owner}, and `{connector}` requires the two to match ({claim}); sign in with that account, or ask your administrator"
    )]
    IdentityMismatch {
        connector: String,
        owner: String,
        signed_in_as: String,
        claim: &'static str,
    },
    #[error("egret could not store the connection: {0}")]
    Vault(String),
}
