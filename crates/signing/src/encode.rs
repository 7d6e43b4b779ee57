//! Hex and SHA-256, as signatures write them.

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// `parts` with its path and query replaced by `text` (`/path?query`).
pub(crate) fn set_path_and_query(
    parts: &mut http::request::Parts,
    text: String,
) -> Result<(), crate::SignError> {
    let invalid = || crate::SignError::Malformed("the signed URL is not valid");
    let pq = http::uri::PathAndQuery::try_from(text).map_err(|_| invalid())?;
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.path_and_query = Some(pq);
    parts.uri = http::Uri::from_parts(uri).map_err(|_| invalid())?;
    Ok(())
}
