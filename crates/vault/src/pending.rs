//! How a pending authorization's row is laid out: a short header in the clear — when it
//! expires and whose it is — then the sealed record, which holds both again. Keeping
//! the table in bounds reads headers only (no row is unsealed to insert another), and
//! the sealed copy makes a header changed in the store count for nothing: a row whose
//! header and record disagree does not open.

/// Marks a row with a header (rows written before it have none).
const MAGIC: &[u8; 2] = b"P1";

/// The clear header of a row, and the sealed part after it.
pub(crate) struct Row<'a> {
    pub expires_at: i64,
    pub owner: &'a str,
    pub sealed: &'a [u8],
}

/// `header + sealed` for a row that expires at `expires_at`, of `owner`.
pub(crate) fn join(expires_at: i64, owner: &str, sealed: &[u8]) -> Vec<u8> {
    let owner = owner.as_bytes();
    let len = u16::try_from(owner.len()).unwrap_or(u16::MAX);
    let mut row = Vec::with_capacity(2 + 8 + 2 + owner.len() + sealed.len());
    row.extend_from_slice(MAGIC);
    row.extend_from_slice(&expires_at.to_be_bytes());
    row.extend_from_slice(&len.to_be_bytes());
    row.extend_from_slice(&owner[..usize::from(len)]);
    row.extend_from_slice(sealed);
    row
}

/// The header and the sealed part; `None` for a row without a header.
pub(crate) fn split(row: &[u8]) -> Option<Row<'_>> {
    let rest = row.strip_prefix(MAGIC)?;
    let expires_at = i64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let len = usize::from(u16::from_be_bytes(rest.get(8..10)?.try_into().ok()?));
    let owner = std::str::from_utf8(rest.get(10..10 + len)?).ok()?;
    Some(Row {
        expires_at,
        owner,
        sealed: rest.get(10 + len..)?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_row_keeps_its_header_and_its_sealed_part_apart() {
        let row = super::join(1_767_225_600, "user:ann@example.com", b"sealed bytes");
        let r = super::split(&row).expect("header");
        assert_eq!(
            (r.expires_at, r.owner, r.sealed),
            (
                1_767_225_600,
                "user:ann@example.com",
                b"sealed bytes".as_slice()
            )
        );
        assert!(super::split(b"no header").is_none());
        assert!(super::split(b"P1short").is_none());
    }
}
