//! The request target: placeholders in the path are always misplaced; in the query only
//! the connector's `inject.query` parameters may hold one, and the secret is
//! percent-encoded into it.

use http::Uri;
use percent_encoding::utf8_percent_encode;

use super::{
    Destination, Field, Halt, Lookup, QUERY_VALUE, SwapReport, contains_prefix, swap_in_text,
    verbatim,
};
use crate::refusal::Refusal;

pub(super) fn swap_uri(
    uri: &Uri,
    dest: Destination<'_>,
    lookup: &Lookup<'_>,
    report: &mut SwapReport,
) -> Result<Option<Uri>, Halt> {
    let path = uri.path();
    if contains_prefix(path.as_bytes()) {
        swap_in_text(
            path.as_bytes(),
            Field::Elsewhere("the URL path"),
            dest,
            lookup,
            report,
            verbatim,
        )?;
    }
    let Some(query) = uri.query().filter(|q| contains_prefix(q.as_bytes())) else {
        return Ok(None);
    };
    let mut new_query = String::with_capacity(query.len() + 64);
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            new_query.push('&');
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if contains_prefix(name.as_bytes()) {
            swap_in_text(
                name.as_bytes(),
                Field::Elsewhere("a query parameter name"),
                dest,
                lookup,
                report,
                verbatim,
            )?;
        }
        let field = Field::Query(name);
        let escape = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string().into_bytes();
        match swap_in_text(value.as_bytes(), field, dest, lookup, report, escape)? {
            Some(bytes) => {
                new_query.push_str(name);
                new_query.push('=');
                new_query.push_str(&String::from_utf8_lossy(&bytes));
            }
            None => new_query.push_str(pair),
        }
    }
    let path_and_query = format!("{path}?{new_query}");
    let mut builder = Uri::builder().path_and_query(path_and_query);
    if let Some(scheme) = uri.scheme() {
        builder = builder.scheme(scheme.clone());
    }
    if let Some(authority) = uri.authority() {
        builder = builder.authority(authority.clone());
    }
    builder.build().map(Some).map_err(|_| {
        Refusal::bad_request("the request target is not a valid URI after the swap").into()
    })
}
