//! Replacing every match of a credential set in bytes, header values and text. What goes
//! in a credential's place is its replacement written the way the match was: in the
//! same case (as sent, upper or lower), and escaped as the match was — every character, where the match escaped
//! every character; the characters a URL-encoder would escape, where it escaped some;
//! none, where it escaped none — so a decoder on the sandbox's side finds the
//! placeholder where the credential was.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use crate::Echo;
use crate::automaton::{Automaton, Case, Found, Outcome};
use crate::escape::{self, Unit};
use crate::literal;

/// The credentials of one request (or one connector) and what goes back in their place.
pub struct Redactor {
    automaton: Automaton,
    /// By credential index: the credential and its replacement.
    credentials: Vec<Echo>,
    /// By literal-form index: the replacement.
    literals: Vec<Bytes>,
}

impl Redactor {
    /// `None` when there is no credential to look for.
    pub fn new(echoes: &[Echo]) -> Option<Arc<Self>> {
        // The same key in two fields adds nothing; the first replacement wins. Sets,
        // not scans: a connector's redactor holds every live credential of it.
        let mut seen = std::collections::HashSet::new();
        let credentials: Vec<Echo> = echoes
            .iter()
            .filter(|e| !e.sent.is_empty() && seen.insert(e.sent.as_slice()))
            .map(|e| Echo {
                verbatim: e.verbatim,
                ..Echo::new(&e.sent, &e.shown)
            })
            .collect();
        let all: Vec<_> = credentials
            .iter()
            .flat_map(|echo| {
                literal::of(&echo.sent, &echo.shown)
                    .into_iter()
                    .map(move |(form, replacement)| {
                        let replacement = if echo.verbatim {
                            echo.shown.clone()
                        } else {
                            replacement
                        };
                        (form, Bytes::from(replacement))
                    })
            })
            .collect();
        let fresh: Vec<bool> = {
            let mut seen = std::collections::HashSet::new();
            all.iter()
                .map(|(form, _)| seen.insert(form.as_slice()))
                .collect()
        };
        let (forms, literals): (Vec<_>, Vec<_>) = all
            .into_iter()
            .zip(fresh)
            .filter_map(|(pair, fresh)| fresh.then_some(pair))
            .unzip();
        let sent: Vec<&[u8]> = credentials.iter().map(|c| c.sent.as_slice()).collect();
        let form_bytes: Vec<&[u8]> = forms.iter().map(|f| f.as_slice()).collect();
        let automaton = Automaton::build(&sent, &form_bytes)?;
        Some(Arc::new(Self {
            automaton,
            credentials,
            literals,
        }))
    }

    /// Replaces matches in `buf`. Unless `last`, a match may still be growing at the end,
    /// so the tail from which `buf` could still grow into a credential is left for the
    /// next call: returns the output and how many bytes of `buf` it covers. Nothing found:
    /// the bytes pass on without a copy.
    pub fn replace(&self, buf: &Bytes, last: bool) -> (Bytes, usize) {
        match self.scan(buf, last) {
            (None, covered) => (buf.slice(..covered), covered),
            (Some(out), covered) => (Bytes::from(out), covered),
        }
    }

    /// `text` with every credential replaced; borrowed when there was none.
    pub fn text<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        match self.scan(text.as_bytes(), true).0 {
            None => std::borrow::Cow::Borrowed(text),
            Some(out) => std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned()),
        }
    }

    /// Replaces credentials in every header name and value; true when one was found.
    pub fn headers(&self, headers: &mut HeaderMap) -> bool {
        let mut found = self.header_names(headers);
        for value in headers.values_mut() {
            if value.len() < self.automaton.shortest {
                continue;
            }
            let Some(out) = self.scan(value.as_bytes(), true).0 else {
                continue;
            };
            *value = HeaderValue::from_bytes(&out)
                .unwrap_or_else(|_| HeaderValue::from_static("egp_redacted"));
            value.set_sensitive(true);
            found = true;
        }
        found
    }

    /// Renames headers whose name carries a credential (`x-<key>: 1`: keys of lowercase
    /// letters, digits and dashes are valid header names). Rare, so the map is rebuilt
    /// only when a name matches.
    fn header_names(&self, headers: &mut HeaderMap) -> bool {
        let renamed = |name: &http::HeaderName| {
            let name = name.as_str().as_bytes();
            if name.len() < self.automaton.shortest {
                return None;
            }
            self.scan(name, true).0
        };
        if !headers.keys().any(|k| renamed(k).is_some()) {
            return false;
        }
        let old = std::mem::take(headers);
        let mut name = None;
        for (key, value) in old {
            // `HeaderMap`'s iterator names only the first value of each header.
            let key = match key {
                Some(key) => match renamed(&key) {
                    Some(out) => http::HeaderName::from_bytes(&out)
                        .unwrap_or(http::HeaderName::from_static("x-egret-redacted")),
                    None => key,
                },
                None => match &name {
                    Some(previous) => http::HeaderName::clone(previous),
                    None => continue,
                },
            };
            headers.append(key.clone(), value);
            name = Some(key);
        }
        true
    }

    /// The scan itself: the output when something was replaced, and how much of `buf` it
    /// covers (all of it when `last`).
    fn scan(&self, buf: &[u8], last: bool) -> (Option<Vec<u8>>, usize) {
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut from = 0;
        while let Some(at) = self.automaton.candidate(buf, from, last) {
            match self.automaton.at(buf, at, last) {
                Outcome::None => from = at + 1,
                Outcome::More => {
                    let out = out.map(|mut out| {
                        out.extend_from_slice(&buf[copied..at]);
                        out
                    });
                    return (out, at);
                }
                Outcome::Match { end, found } => {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(buf.len()));
                    out.extend_from_slice(&buf[copied..at]);
                    self.write_replacement(found, out);
                    copied = end;
                    from = end;
                }
            }
        }
        let out = out.map(|mut out| {
            out.extend_from_slice(&buf[copied..]);
            out
        });
        (out, buf.len())
    }

    fn write_replacement(&self, found: Found, out: &mut Vec<u8>) {
        match found {
            Found::Literal(index) => {
                if let Some(r) = self.literals.get(index as usize) {
                    out.extend_from_slice(r);
                }
            }
            Found::Mixed {
                ids,
                decoded,
                units,
            } => {
                let Some((echo, case)) = ids.first().and_then(|id| {
                    let (index, case) = Case::split(*id);
                    Some((self.credentials.get(index)?, case))
                }) else {
                    return;
                };
                if echo.verbatim {
                    out.extend_from_slice(&echo.shown);
                } else {
                    written_like(&case.apply(&echo.shown), &decoded, &units, out);
                }
            }
        }
    }

    /// Wraps a response body so it is scanned as it streams.
    pub fn body<B>(self: Arc<Self>, inner: B) -> crate::Redacted<B> {
        crate::Redacted::new(inner, self)
    }
}

/// Writes `shown` escaped the way the match's characters were (see the module doc): where
/// only some were, a character a URL encoder escapes is written as the match wrote the
/// same character, else as the match's first escape; the others raw.
fn written_like(shown: &[u8], decoded: &[u8], units: &[Unit], out: &mut Vec<u8>) {
    let Ok(text) = std::str::from_utf8(shown) else {
        out.extend_from_slice(shown);
        return;
    };
    let can_write_all = |u: &&Unit| !matches!(u, Unit::Raw | Unit::JsonShort | Unit::HtmlNamed);
    let every = !units.is_empty() && units.iter().all(|u| *u != Unit::Raw);
    if every && let Some(unit) = units.iter().find(can_write_all) {
        for c in text.chars() {
            escape::write(*unit, c, out);
        }
        return;
    }
    let Some(first) = units.iter().find(|u| **u != Unit::Raw) else {
        out.extend_from_slice(shown);
        return;
    };
    let seen = units_by_character(decoded, units);
    for c in text.chars() {
        let unit = if escape::unreserved(c) {
            Unit::Raw
        } else {
            u8::try_from(c)
                .ok()
                .and_then(|b| seen[usize::from(b)])
                .unwrap_or(*first)
        };
        escape::write(unit, c, out);
    }
}

/// For each ASCII character of the match, how it was first written there.
fn units_by_character(decoded: &[u8], units: &[Unit]) -> [Option<Unit>; 128] {
    let mut seen = [None; 128];
    let mut at = 0;
    for unit in units {
        let Some(&lead) = decoded.get(at) else { break };
        // A `%XX` or a raw byte stands for one byte; the other escapes for a character.
        let len = match unit {
            Unit::Raw | Unit::Percent { .. } => 1,
            _ => utf8_len(lead),
        };
        if lead.is_ascii() && seen[usize::from(lead)].is_none() {
            seen[usize::from(lead)] = Some(*unit);
        }
        at += len;
    }
    seen
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}
