//! What can go wrong while obtaining or renewing tokens. Messages name the connector's
//! authorization server and what to do; none carries a token, code or secret.

use crate::http::HttpError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the token endpoint did not answer in time ({0})")]
    Timeout(String),
    #[error("the token endpoint failed: {0}")]
    Unreachable(String),
    #[error("discovery at issuer {issuer} failed: {reason}")]
    Discovery { issuer: String, reason: String },
    #[error(
        "the authorization server no longer accepts this grant ({0}); the user must connect again"
    )]
    InvalidGrant(String),
    #[error("the authorization server refused the request: {0}")]
    Rejected(String),
    #[error("the token endpoint's answer is not a valid token response: {0}")]
    Malformed(String),
    #[error("the connection needs to be authorized again")]
    NeedsReauth,
    #[error("there is no connection to renew")]
    NotConnected,
    #[error("{0}")]
    Config(String),
    /// The vendor answered, but egret could not keep what it gave (vault write failed):
    /// egret's own failure, never reported as the vendor's.
    #[error("egret could not store the tokens: {0}")]
    Store(String),
}

impl TokenError {
    /// Worth trying again later: the server was down, slow or unreachable.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_) | Self::Unreachable(_) | Self::Discovery { .. } | Self::Malformed(_)
        )
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// The same error with `clean` applied to every text that came from the vendor
    /// (its error codes and descriptions, a discovery failure, a malformed answer).
    pub fn with_vendor_text(self, clean: impl Fn(&str) -> String) -> Self {
        match self {
            Self::Unreachable(t) => Self::Unreachable(clean(&t)),
            Self::Discovery { issuer, reason } => Self::Discovery {
                issuer,
                reason: clean(&reason),
            },
            Self::InvalidGrant(t) => Self::InvalidGrant(clean(&t)),
            Self::Rejected(t) => Self::Rejected(clean(&t)),
            Self::Malformed(t) => Self::Malformed(clean(&t)),
            other @ (Self::Timeout(_)
            | Self::NeedsReauth
            | Self::NotConnected
            | Self::Config(_)
            | Self::Store(_)) => other,
        }
    }
}

impl From<HttpError> for TokenError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Timeout(d) => {
                Self::Timeout(format!("waited {}", humantime::format_duration(d)))
            }
            other => Self::Unreachable(other.to_string()),
        }
    }
}

type Oauth2Error = oauth2::RequestTokenError<HttpError, oauth2::basic::BasicErrorResponse>;

impl From<Oauth2Error> for TokenError {
    fn from(e: Oauth2Error) -> Self {
        use oauth2::basic::BasicErrorResponseType as T;
        match e {
            oauth2::RequestTokenError::Request(h) => h.into(),
            oauth2::RequestTokenError::ServerResponse(r) => {
                let mut text = r.error().as_ref().to_owned();
                if let Some(d) = r.error_description() {
                    text.push_str(": ");
                    text.push_str(d);
                }
                // Permanent: the grant, or the app it was issued to, is refused; asking
                // again cannot succeed, so the connection needs the user (see README).
                match r.error() {
                    T::InvalidGrant | T::InvalidClient | T::UnauthorizedClient => {
                        Self::InvalidGrant(text)
                    }
                    _ => Self::Rejected(text),
                }
            }
            oauth2::RequestTokenError::Parse(e, _) => Self::Malformed(e.to_string()),
            oauth2::RequestTokenError::Other(text) => Self::Malformed(text),
        }
    }
}
