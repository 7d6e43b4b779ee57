//! The placeholder swap: find every placeholder on a request's head, check it may be
//! used here, and put the real credential in its place.
//!
//! Rules (README, "What the proxy does"): a placeholder is swapped only in its connector's
//! injection fields — `Authorization` (any scheme, or inside a Basic credential), plus
//! the connector's `inject.headers` and `inject.query` — and only toward that
//! connector's egress hosts. Each occurrence is checked in this order: unknown
//! (`placeholder_unknown`), minted for another sandbox (`placeholder_wrong_sandbox`),
//! bound elsewhere (`placeholder_wrong_host`), outside an injection field
//! (`placeholder_misplaced`). Anything refused is never forwarded.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use egret_policy::AuthKind;
use egret_policy::{Connector, Input, InputField, Policy, RequestFacts};
use egret_vault::{
    Credential, PLACEHOLDER_MIN_BODY, PLACEHOLDER_PREFIX, PlaceholderEntry, PlaceholderHash,
    Resolved, Vault,
};
use http::HeaderValue;
use http::header::AUTHORIZATION;
use http::request::Parts;
use memchr::memmem;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::refusal::Refusal;

/// Where a request goes: the host the tunnel is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    pub host: &'a str,
    pub port: u16,
}

/// What the swap did, for logs and audit: connector ids and field names, never values.
#[derive(Default)]
pub struct SwapReport {
    pub swapped: Vec<Swapped>,
    /// Each credential as it went out and what the sandbox had in its place: the
    /// response is scanned for these (see `redact`).
    pub echoes: Vec<Echo>,
    /// A swapped placeholder's connector computes its credential (AWS SigV4, HMAC): the
    /// request is signed after the swap (`forward::signed`).
    pub signing: bool,
}

/// One credential on the wire and the text the sandbox sent instead. Never printed.
pub use egret_redact::Echo;

impl SwapReport {
    fn echo(&mut self, sent: &[u8], shown: &[u8]) {
        self.echoes.push(Echo::new(sent, shown));
    }
}

/// Characters left bare in a query value: the unreserved set of RFC 3986.
pub(crate) const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub struct Swapped {
    /// Names the connector and owner; never the placeholder itself.
    pub placeholder: Arc<PlaceholderEntry>,
    /// The very credential version put on the wire (an upstream 401 names this one).
    pub credential: Arc<Credential>,
    pub field: Cow<'static, str>,
}

impl Swapped {
    pub fn connector(&self) -> &str {
        &self.placeholder.info.connector
    }

    pub fn owner(&self) -> &str {
        self.placeholder.info.owner.as_str()
    }
}

/// Everything the swap reads: the live policy and the vault's in-memory index.
pub struct Lookup<'a> {
    pub policy: &'a Policy,
    pub vault: &'a Vault,
    pub now_unix: i64,
    /// Credentials the token broker has just handed out: used as they are, even inside
    /// the renewal skew (the broker decided they are the best there is).
    pub renewed: &'a [(Arc<PlaceholderEntry>, Arc<Credential>)],
    /// The sandbox the request came from (proxy authentication), if known.
    pub sandbox: Option<&'a str>,
    /// What the request asks, for the connectors' request rules; `None` where they were
    /// decided already (a replay after a 401) or do not apply.
    pub asked: Option<&'a Asked<'a>>,
    /// Connections a person approved this request for (its rule said `approve`).
    pub approved: &'a [egret_vault::ConnectionId],
}

/// The request as the rules see it.
pub enum Asked<'a> {
    Facts(RequestFacts<'a>),
    /// The rules cannot judge it (a path with `.`/`..` segments or an encoded `/`): a
    /// connector with rules refuses it, one without lets it through.
    Unjudgeable(&'static str),
}

/// Why a swap stopped without a request to send.
pub enum Halt {
    Refuse(Refusal),
    /// This placeholder's OAuth token must be renewed first; nothing was changed.
    Renew(Arc<PlaceholderEntry>),
    /// A rule wants a person to approve this request first; nothing was changed.
    Approve(Arc<PlaceholderEntry>, egret_policy::Verdict),
    /// This placeholder's connection keeps a value in an external secret store: fetch
    /// it first; nothing was changed.
    Fetch(Arc<PlaceholderEntry>),
}

impl From<Refusal> for Halt {
    fn from(r: Refusal) -> Self {
        Self::Refuse(r)
    }
}

/// Where in the request an occurrence sits.
#[derive(Clone, Copy)]
enum Field<'a> {
    Authorization,
    /// A part of an `Authorization: Basic` credential.
    Basic {
        password: bool,
    },
    Header(&'a str),
    Query(&'a str),
    /// The access key id of an AWS SigV4 signature.
    SigV4,
    Elsewhere(&'a str),
}

impl Field<'_> {
    /// Whether a placeholder of connector `c` (standing for `input`, where it has
    /// inputs) may stand here.
    fn allowed_for(&self, c: &Connector, input: Option<&Input>) -> bool {
        let Some(input) = input else {
            return match self {
                Field::Authorization | Field::Basic { .. } => true,
                Field::Header(name) => c.inject.headers.iter().any(|h| h == name),
                Field::Query(name) => c.inject.query.iter().any(|q| q == name),
                Field::SigV4 | Field::Elsewhere(_) => false,
            };
        };
        match (&input.inject, self) {
            (InputField::Header(h), Field::Header(name)) => h == name,
            (InputField::Header(h), Field::Authorization) => h == "authorization",
            (InputField::Query(q), Field::Query(name)) => q == name,
            (InputField::BasicUser, Field::Basic { password: false }) => true,
            (InputField::BasicPassword, Field::Basic { password: true }) => true,
            // A signing secret never goes on the wire; its placeholder may stand where the
            // signature goes (HMAC), or sign as the AWS key id.
            (InputField::Sign, Field::SigV4) => matches!(c.auth, AuthKind::AwsSigV4(_)),
            (InputField::Sign, Field::Header(name)) => matches!(&c.auth,
                AuthKind::Hmac(r) if matches!(&r.signature, egret_signing::hmac::Place::Header { name: h, .. } if h == name)),
            (InputField::Sign, Field::Query(name)) => matches!(&c.auth,
                AuthKind::Hmac(r) if matches!(&r.signature, egret_signing::hmac::Place::Query { name: q } if q == name)),
            _ => false,
        }
    }

    fn describe(&self) -> Cow<'static, str> {
        match self {
            Field::Authorization => Cow::Borrowed("the Authorization header"),
            Field::Basic { password: false } => Cow::Borrowed("the user of a Basic credential"),
            Field::Basic { password: true } => Cow::Borrowed("the password of a Basic credential"),
            Field::SigV4 => Cow::Borrowed("an AWS signature"),
            Field::Header(name) => Cow::Owned(format!("header {name}")),
            Field::Query(name) => Cow::Owned(format!("query parameter {name}")),
            Field::Elsewhere(what) => Cow::Owned((*what).to_owned()),
        }
    }
}

/// Swaps every placeholder in `parts`, or stops: then `parts` is unchanged.
pub fn swap_request(
    parts: &mut Parts,
    dest: Destination<'_>,
    lookup: &Lookup<'_>,
) -> Result<SwapReport, Halt> {
    let mut report = SwapReport::default();
    // An AWS signature names its key id in the Authorization header or the query:
    // egret's placeholder there is checked like any other; the re-signing comes later,
    // with the body (`forward::signed`).
    aws::signature(parts, dest, lookup, &mut report)?;
    // Computed first, applied after: a halt midway must leave the request untouched.
    let mut replaced: Vec<(usize, HeaderValue)> = Vec::new();
    for (i, (name, value)) in parts.headers.iter().enumerate() {
        let bytes = value.as_bytes();
        // Base64 is a Basic credential's own encoding, decoded by `swap_authorization`.
        let basic = name == AUTHORIZATION && basic_credentials(bytes).is_some();
        refuse_hidden(bytes, !basic, || format!("header {name}"), dest, lookup)?;
        let new = if name == AUTHORIZATION {
            swap_authorization(value.as_bytes(), dest, lookup, &mut report)?
        } else if contains_prefix(value.as_bytes()) {
            swap_in_text(
                value.as_bytes(),
                Field::Header(name.as_str()),
                dest,
                lookup,
                &mut report,
                verbatim,
            )?
        } else {
            None
        };
        if let Some(bytes) = new {
            let mut v =
                HeaderValue::from_bytes(&bytes).map_err(|_| unusable_credential(&report))?;
            v.set_sensitive(true);
            replaced.push((i, v));
        }
    }
    if let Some(pq) = parts.uri.path_and_query() {
        refuse_hidden(
            pq.as_str().as_bytes(),
            true,
            || "the URL".to_owned(),
            dest,
            lookup,
        )?;
    }
    let uri = uri::swap_uri(&parts.uri, dest, lookup, &mut report)?;
    if !replaced.is_empty() {
        let mut next = replaced.into_iter().peekable();
        for (i, (_, value)) in parts.headers.iter_mut().enumerate() {
            if next.peek().is_some_and(|(j, _)| *j == i)
                && let Some((_, v)) = next.next()
            {
                *value = v;
            }
        }
    }
    if let Some(uri) = uri {
        parts.uri = uri;
    }
    Ok(report)
}

/// True when `bytes` may hold a placeholder: the fast path for the common request.
pub fn contains_prefix(bytes: &[u8]) -> bool {
    PREFIX_FINDER.find(bytes).is_some()
}

/// Built once: a per-call finder would redo its setup for every header value.
static PREFIX_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(PLACEHOLDER_PREFIX.as_bytes()));

/// True when a well-formed placeholder stands anywhere on the request head: the URL,
/// any header value, or inside a Basic credential. For requests that must carry none.
pub fn carries_placeholder(parts: &Parts) -> bool {
    let found = |bytes: &[u8]| {
        !placeholder_ranges(bytes).is_empty() || !encoded::hidden(bytes, true).is_empty()
    };
    found(parts.uri.to_string().as_bytes())
        || parts.headers.values().any(|v| {
            let bytes = v.as_bytes();
            let decoded = basic_credentials(bytes).and_then(decode_basic);
            found(bytes) || decoded.is_some_and(|d| found(&d))
        })
}

/// `text` with every placeholder replaced by `egp_…`, for logs.
pub fn redacted(text: &str) -> Cow<'_, str> {
    let ranges = placeholder_ranges(text.as_bytes());
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in ranges {
        out.push_str(&text[last..r.start]);
        out.push_str("egp_…");
        last = r.end;
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// Byte ranges of `egp_[A-Za-z0-9]{32,}` occurrences.
pub fn placeholder_ranges(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let prefix = PLACEHOLDER_PREFIX.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = PREFIX_FINDER.find(&bytes[from..]) {
        let start = from + pos;
        let body = &bytes[start + prefix.len()..];
        let len = body
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let end = start + prefix.len() + len;
        if len >= PLACEHOLDER_MIN_BODY {
            out.push(start..end);
        }
        from = end.max(start + 1);
    }
    out
}

fn swap_authorization(
    value: &[u8],
    dest: Destination<'_>,
    lookup: &Lookup<'_>,
    report: &mut SwapReport,
) -> Result<Option<Vec<u8>>, Halt> {
    let (scheme, credentials) = match value.iter().position(|b| *b == b' ') {
        Some(i) => (&value[..i], value[i + 1..].trim_ascii()),
        None => (&b""[..], value.trim_ascii()),
    };
    if scheme.eq_ignore_ascii_case(b"basic")
        && let Some(decoded) = decode_basic(credentials)
    {
        return swap_basic(&decoded, credentials, dest, lookup, report);
    }
    if !contains_prefix(value) {
        return Ok(None);
    }
    // Any other scheme (Bearer, token, Bot, ...) or a bare value: the credential must be
    // exactly one placeholder; a placeholder mixed with other text is misplaced.
    let ranges = placeholder_ranges(credentials);
    if ranges.len() == 1 && ranges[0] == (0..credentials.len()) {
        let found = check(credentials, Field::Authorization, dest, lookup)?;
        let secret = found.wire()?;
        let mut out = Vec::with_capacity(scheme.len() + 1 + secret.len());
        if !scheme.is_empty() {
            out.extend_from_slice(scheme);
            out.push(b' ');
        }
        out.extend_from_slice(secret.as_bytes());
        report.echo(secret.as_bytes(), credentials);
        record(report, &found, Cow::Borrowed("authorization"));
        return Ok(Some(out));
    }
    swap_in_text(
        value,
        Field::Elsewhere("the Authorization header, mixed with other text"),
        dest,
        lookup,
        report,
        verbatim,
    )
}

fn swap_basic(
    decoded: &[u8],
    original: &[u8],
    dest: Destination<'_>,
    lookup: &Lookup<'_>,
    report: &mut SwapReport,
) -> Result<Option<Vec<u8>>, Halt> {
    if !contains_prefix(decoded) {
        return Ok(None);
    }
    let split = decoded
        .iter()
        .position(|b| *b == b':')
        .unwrap_or(decoded.len());
    let (user, pass) = (
        &decoded[..split],
        decoded.get(split + 1..).unwrap_or_default(),
    );
    let mut out = Zeroizing::new(Vec::with_capacity(decoded.len() + 64));
    for (i, part) in [user, pass].into_iter().enumerate() {
        if i == 1 && split < decoded.len() {
            out.push(b':');
        }
        let ranges = placeholder_ranges(part);
        if ranges.is_empty() {
            out.extend_from_slice(part);
        } else if ranges.len() == 1 && ranges[0] == (0..part.len()) {
            let field = Field::Basic { password: i == 1 };
            let found = check(part, field, dest, lookup)?;
            let secret = found.wire()?.as_bytes();
            out.extend_from_slice(secret);
            report.echo(secret, part);
            record(report, &found, Cow::Borrowed("authorization (basic)"));
        } else {
            let field = Field::Elsewhere("a Basic credential, mixed with other text");
            swap_in_text(part, field, dest, lookup, report, verbatim)?;
        }
    }
    let sent = Zeroizing::new(STANDARD.encode(out.as_slice()));
    report.echo(sent.as_bytes(), original);
    let mut encoded = b"Basic ".to_vec();
    encoded.extend_from_slice(sent.as_bytes());
    Ok(Some(encoded))
}

/// Replaces each placeholder in `text` that `field` allows; `escape` encodes the secret
/// for the field (identity for headers, percent-encoding for query values).
fn swap_in_text(
    text: &[u8],
    field: Field<'_>,
    dest: Destination<'_>,
    lookup: &Lookup<'_>,
    report: &mut SwapReport,
    escape: impl Fn(&str) -> Vec<u8>,
) -> Result<Option<Vec<u8>>, Halt> {
    let ranges = placeholder_ranges(text);
    if ranges.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut last = 0;
    for r in ranges {
        let found = check(&text[r.clone()], field, dest, lookup)?;
        out.extend_from_slice(&text[last..r.start]);
        let secret = found.wire()?;
        let escaped = Zeroizing::new(escape(secret));
        out.extend_from_slice(&escaped);
        report.echo(secret.as_bytes(), &text[r.clone()]);
        if escaped.as_slice() != secret.as_bytes() {
            report.echo(&escaped, &text[r.clone()]);
        }
        record(report, &found, field.describe());
        last = r.end;
    }
    out.extend_from_slice(&text[last..]);
    Ok(Some(out))
}

/// A placeholder checked and resolved, and whether it stands for a signing input.
struct Found {
    resolved: Resolved,
    /// Which input it stands for (`None`: the connection's one value).
    input: Option<String>,
    /// A signing secret: what goes on the wire in its place is nothing (the signature
    /// is put there later).
    signs: bool,
    /// Its connector computes what goes on the wire (AWS SigV4, HMAC).
    computed: bool,
}

impl Found {
    /// What goes on the wire in the placeholder's place.
    fn wire(&self) -> Result<&str, Halt> {
        if self.signs {
            return Ok("");
        }
        match self.resolved.credential.value(self.input.as_deref()) {
            Some(v) if !v.expose_secret().is_empty() => Ok(v.expose_secret()),
            _ => Err(Refusal::input_missing(
                &self.resolved.placeholder.info.connector,
                self.input.as_deref().unwrap_or("key"),
            )
            .into()),
        }
    }
}

/// The three checks, in order: known, bound to this host, in an allowed field; then
/// the request rules, and whether the credential is at hand (an OAuth token fresh
/// enough, a value kept elsewhere fetched).
fn check(
    token: &[u8],
    field: Field<'_>,
    dest: Destination<'_>,
    lookup: &Lookup<'_>,
) -> Result<Found, Halt> {
    let mut resolved = lookup
        .vault
        .resolve(&PlaceholderHash::of(token), lookup.now_unix)
        .ok_or_else(Refusal::placeholder_unknown)?;
    if let Some(owner_sandbox) = &resolved.placeholder.info.sandbox
        && lookup.sandbox != Some(owner_sandbox.as_str())
    {
        return Err(
            Refusal::placeholder_wrong_sandbox(&resolved.placeholder.info.connector).into(),
        );
    }
    // A connector gone from the policy is refused at once; its connections are kept
    // for its return (the vault notes it), so say that rather than "unknown".
    let id = &resolved.placeholder.info.connector;
    let connector = lookup.policy.connector(id).ok_or_else(|| {
        if lookup.vault.connector_removed_at(id).is_some() {
            Refusal::connector_removed(id)
        } else {
            Refusal::placeholder_unknown()
        }
    })?;
    if !connector.serves(dest.host, dest.port) {
        return Err(Refusal::placeholder_wrong_host(connector.id.as_str(), dest.host).into());
    }
    // A placeholder minted before its connector had inputs stands for the first one.
    let input_name = resolved
        .placeholder
        .info
        .input
        .clone()
        .or_else(|| connector.first_input().map(|i| i.name.clone()));
    let input = match &input_name {
        None => None,
        Some(name) => Some(
            connector
                .input(name)
                .ok_or_else(|| Refusal::input_missing(connector.id.as_str(), name))?,
        ),
    };
    if !field.allowed_for(connector, input) {
        return Err(
            Refusal::placeholder_misplaced(connector.id.as_str(), &field.describe()).into(),
        );
    }
    let signs = input.is_some_and(|i| i.inject == InputField::Sign);
    // What the agent asks must be allowed before its token is renewed or swapped in.
    if let Some(asked) = lookup.asked {
        let mut held = None;
        if !connector.access.is_open() {
            held = decide(connector, asked)?.err();
        }
        // The owner's narrowing of their connection, on top of the connector's rules.
        if held.is_none()
            && let Some(narrowing) = narrowing::of(&resolved.credential)
        {
            held = narrowing::decide(connector, &narrowing, asked)?.err();
        }
        if let Some(verdict) = held
            && !lookup.approved.contains(&resolved.placeholder.connection)
        {
            return Err(Halt::Approve(resolved.placeholder, verdict));
        }
    }
    if let AuthKind::OAuth2(settings) = &connector.auth {
        let same = |(p, _): &&(Arc<PlaceholderEntry>, Arc<Credential>)| {
            p.info.connector == resolved.placeholder.info.connector
                && p.info.owner == resolved.placeholder.info.owner
        };
        if let Some((_, credential)) = lookup.renewed.iter().find(same) {
            resolved.credential = credential.clone();
        } else {
            let skew = i64::try_from(settings.refresh_skew.as_secs()).unwrap_or(i64::MAX);
            if resolved.credential.needs_renewal(lookup.now_unix, skew) {
                return Err(Halt::Renew(resolved.placeholder));
            }
        }
    } else if !resolved.credential.refs.is_empty() {
        // Values kept in an external store: the fetched credential, once fetched.
        let same = |(p, _): &&(Arc<PlaceholderEntry>, Arc<Credential>)| {
            p.connection == resolved.placeholder.connection
        };
        match lookup.renewed.iter().find(same) {
            Some((_, credential)) => resolved.credential = credential.clone(),
            None => return Err(Halt::Fetch(resolved.placeholder)),
        }
    }
    Ok(Found {
        resolved,
        input: input_name,
        signs,
        computed: matches!(connector.auth, AuthKind::AwsSigV4(_) | AuthKind::Hmac(_)),
    })
}

/// The connector's request rules on this request: `Ok(Ok(()))` to go, `Ok(Err(verdict))`
/// when a person must approve it, the refusal when a rule denies it.
fn decide(
    connector: &Connector,
    asked: &Asked<'_>,
) -> Result<Result<(), egret_policy::Verdict>, Refusal> {
    let id = connector.id.as_str();
    let allowed = || connector.access.allowed_sentence();
    match asked {
        Asked::Unjudgeable(why) => Err(Refusal::request_denied(id, "path", why, &allowed())),
        Asked::Facts(facts) => match connector.access.decide(facts) {
            Ok(()) => Ok(Ok(())),
            Err(v) if v.action == egret_policy::Action::Approve => Ok(Err(v)),
            Err(v) => Err(Refusal::request_denied(id, &v.rule, &v.reason, &allowed())),
        },
    }
}

/// Refuses placeholders that stand in `bytes` only encoded (see `encoded`).
fn refuse_hidden(
    bytes: &[u8],
    base64: bool,
    place: impl Fn() -> String,
    dest: Destination<'_>,
    lookup: &Lookup<'_>,
) -> Result<(), Halt> {
    if let Some(token) = encoded::hidden(bytes, base64).first() {
        let what = format!("{}, encoded (percent, JSON or base64)", place());
        // `Elsewhere` is never an injection field: this always ends in a refusal.
        let found = check(token, Field::Elsewhere(&what), dest, lookup)?;
        let connector = &found.resolved.placeholder.info.connector;
        return Err(Refusal::placeholder_misplaced(connector, &what).into());
    }
    Ok(())
}

fn record(report: &mut SwapReport, found: &Found, field: Cow<'static, str>) {
    report.signing |= found.computed;
    report.swapped.push(Swapped {
        placeholder: found.resolved.placeholder.clone(),
        credential: found.resolved.credential.clone(),
        field,
    });
}

fn verbatim(secret: &str) -> Vec<u8> {
    secret.as_bytes().to_vec()
}

/// The credentials of a `Basic <base64>` value (any case of the scheme), trimmed.
fn basic_credentials(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..6)?;
    scheme
        .eq_ignore_ascii_case(b"basic ")
        .then(|| value[6..].trim_ascii())
}

fn decode_basic(credentials: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    STANDARD.decode(credentials).ok().map(Zeroizing::new)
}

fn unusable_credential(report: &SwapReport) -> Refusal {
    let connector = report.swapped.last().map_or("?", Swapped::connector);
    Refusal::upstream_unreachable(
        connector,
        "the stored credential contains characters a header cannot carry; store the key again",
    )
}

mod aws;
mod encoded;
pub(crate) mod narrowing;
#[cfg(test)]
mod tests;
mod uri;
