//! Request signing: what egret computes for credentials that are not sent as they are.
//!
//! - [`sigv4`]: AWS Signature Version 4 — reading the signature a sandbox's SDK made with
//!   placeholder keys, checking it, and signing the same request again with the real
//!   keys (header, presigned query, and `aws-chunked` bodies chunk by chunk).
//! - [`hmac`]: a declarative HMAC signer (which parts form the string to sign, the
//!   algorithm, the encoding, where the signature and timestamp go).
//!
//! Pure functions over request heads and bytes: no I/O, no clock (the caller passes the
//! time), no policy. Keys are borrowed as [`secrecy::SecretString`] and never printed.

pub mod hmac;
pub mod sigv4;

mod encode;

pub use encode::{hex, sha256_hex};

/// Why a request could not be checked or signed. Never holds a key or a signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// The request's own signature is malformed (a missing part, a bad date).
    #[error("the request's AWS signature is malformed: {0}")]
    Malformed(&'static str),
    /// The request was signed, but not with the placeholder pair egret gave.
    #[error(
        "the request's AWS signature does not match the placeholder keys; sign with the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY egret gave (sandbox-env)"
    )]
    Mismatch,
    /// A payload mode egret does not re-sign.
    #[error(
        "x-amz-content-sha256 `{0}` is a payload mode egret does not re-sign; use UNSIGNED-PAYLOAD, a body hash, or STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    )]
    UnsupportedPayload(String),
    /// An `aws-chunked` body that does not follow the format.
    #[error("the aws-chunked body is malformed: {0}")]
    BadChunk(&'static str),
    /// A chunk larger than egret holds to re-sign it.
    #[error("an aws-chunked chunk is larger than {0} bytes; use smaller chunks")]
    ChunkTooLarge(usize),
    /// A key that cannot be used (an HMAC key that is not valid base64, say).
    #[error("the signing key cannot be used: {0}")]
    BadKey(&'static str),
}
