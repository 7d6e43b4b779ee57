//! One matcher for a set of credentials. Two parts:
//!
//! - **Where to look.** A multi-pattern search (Aho-Corasick, SIMD-prefiltered) over the
//!   few ways each credential can *begin*: its first character raw (either case) followed
//!   by how the second can begin, or the first character's escapes, or the first bytes
//!   of a literal form. Text that begins no credential is passed over at memory speed.
//! - **Whether it is one.** From such a position, the text is read one character at a
//!   time — each raw (either case) or escaped in any of the ways `escape` knows,
//!   independently of its neighbours — down a trie of the credentials; and byte by byte
//!   down a trie of their literal forms (hex, base64). The longest match wins.
//!
//! Reading stops at the end of the text given; unless it is the last, a match still in
//! progress there is reported as `More`, so a streaming caller holds back exactly the
//! bytes from which a credential could still grow.

use aho_corasick::{AhoCorasick, Input, MatchKind};
use zeroize::Zeroizing;

use crate::escape::{self, Escape, OPENERS, Unit};
use crate::trie::{ROOT, Trie};

/// Bytes of a literal form used to find where it may begin.
const LITERAL_OPENING: usize = 4;

pub(crate) struct Automaton {
    finder: AhoCorasick,
    /// Which bytes begin some opening: the tail check rules most bytes out by this alone.
    starts: [bool; 256],
    /// The longest opening: a tail shorter than this may hold a cut one.
    opening_max: usize,
    /// Credentials as sent, upper- and lower-cased (`Case::id`).
    mixed: Trie,
    /// Literal forms, exactly, by index.
    literals: Trie,
    /// The shortest text that can be a whole match.
    pub(crate) shortest: usize,
}

/// What matched.
pub(crate) enum Found {
    /// The credential and case `id` (`Case::id`; more than one only for credentials
    /// equal in that case), read as `decoded`, each character written as `units` says.
    Mixed {
        ids: Vec<u32>,
        decoded: Zeroizing<Vec<u8>>,
        units: Vec<Unit>,
    },
    /// Literal form `index`.
    Literal(u32),
}

pub(crate) enum Outcome {
    Match {
        end: usize,
        found: Found,
    },
    /// The text ends while a credential may still be matching.
    More,
    None,
}

impl Automaton {
    /// `None` when there is nothing to look for.
    pub(crate) fn build(credentials: &[&[u8]], literals: &[&[u8]]) -> Option<Self> {
        let mut openings: Vec<Vec<u8>> = Vec::new();
        let mut mixed = Trie::new();
        for (index, sent) in credentials.iter().enumerate() {
            if sent.is_empty() {
                continue;
            }
            let mut seen: Vec<Vec<u8>> = Vec::new();
            for case in Case::ALL {
                let variant = case.of(sent);
                if seen.contains(&variant) {
                    continue;
                }
                mixed.insert(variant.iter().copied(), case.id(index));
                openings.extend(credential_openings(&variant, case == Case::AsSent));
                seen.push(variant);
            }
            for s in &mut seen {
                zeroize::Zeroize::zeroize(s);
            }
        }
        let mut literal_trie = Trie::new();
        for (index, form) in literals.iter().enumerate() {
            if form.is_empty() {
                continue;
            }
            literal_trie.insert(form.iter().copied(), index_of(index));
            openings.push(form[..form.len().min(LITERAL_OPENING)].to_vec());
        }
        openings.sort_unstable();
        openings.dedup();
        if openings.is_empty() {
            return None;
        }
        let mut starts = [false; 256];
        for o in &openings {
            starts[usize::from(o[0])] = true;
        }
        let opening_max = openings.iter().map(Vec::len).max().unwrap_or(1);
        let shortest = credentials
            .iter()
            .chain(literals)
            .map(|c| c.len())
            .filter(|n| *n > 0)
            .min()
            .unwrap_or(1);
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&openings)
            .ok()?;
        for o in &mut openings {
            zeroize::Zeroize::zeroize(o);
        }
        Some(Self {
            finder,
            starts,
            opening_max,
            mixed,
            literals: literal_trie,
            shortest,
        })
    }

    /// The first position at or after `from` where a match may begin.
    pub(crate) fn candidate(&self, buf: &[u8], from: usize, last: bool) -> Option<usize> {
        // From here on an opening may be cut by the end of `buf`: the search cannot see
        // it, so each such position is looked at on its own.
        let tail = if last {
            buf.len()
        } else {
            buf.len().saturating_sub(self.opening_max - 1)
        };
        if from < tail {
            let found = self.finder.find(Input::new(buf).span(from..buf.len()));
            match found {
                Some(m) if m.start() < tail => return Some(m.start()),
                Some(_) => {}
                None if last => return None,
                None => {}
            }
        }
        (from.max(tail)..buf.len()).find(|&i| self.starts[usize::from(buf[i])])
    }

    /// Whether a credential, in any form, begins at `buf[i]`.
    pub(crate) fn at(&self, buf: &[u8], i: usize, last: bool) -> Outcome {
        // Nearly every position looked at is no credential: read without keeping what
        // was read, and read again, keeping it, only for a match.
        let mut walk = Walk::default();
        self.walk_mixed(buf, i, ROOT, &mut walk);
        let (literal, literal_more) = self.walk_literal(buf, i);
        if !last && (walk.more || literal_more) {
            return Outcome::More;
        }
        let mixed_end = walk.best.as_ref().map_or(0, |b| b.end);
        match literal {
            Some((end, index)) if end > mixed_end => Outcome::Match {
                end,
                found: Found::Literal(index),
            },
            _ => match walk.best.is_some().then(|| self.tracked(buf, i)).flatten() {
                Some(best) => Outcome::Match {
                    end: best.end,
                    found: Found::Mixed {
                        ids: self.mixed.ends(best.node).to_vec(),
                        decoded: best.decoded,
                        units: best.units,
                    },
                },
                None => Outcome::None,
            },
        }
    }

    /// The best match at `buf[i]` with what was read on its way.
    fn tracked(&self, buf: &[u8], i: usize) -> Option<Best> {
        let mut walk = Walk {
            track: true,
            ..Walk::default()
        };
        self.walk_mixed(buf, i, ROOT, &mut walk);
        walk.best
    }

    /// Reads characters from `buf[i]` down the credential trie from `node`, each raw or
    /// escaped (escapes in either hex case; the credential's own case is one of the
    /// three in the trie). Only where a
    /// character can be read two ways (a raw `%` in the credential, or its escape) does
    /// it branch.
    fn walk_mixed(&self, buf: &[u8], mut i: usize, mut node: u32, walk: &mut Walk) {
        loop {
            if !self.mixed.ends(node).is_empty() && walk.best.as_ref().is_none_or(|b| i > b.end) {
                walk.best = Some(Best {
                    end: i,
                    node,
                    decoded: walk.decoded.clone(),
                    units: walk.units.clone(),
                });
            }
            if !self.mixed.leads_on(node) {
                return;
            }
            let Some(&byte) = buf.get(i) else {
                walk.more = true;
                return;
            };
            let raw = self.mixed.child(node, byte);
            let escaped = if OPENERS.contains(&byte) {
                match escape::at(buf, i) {
                    Escape::Step(step) => self
                        .follow(node, &step.bytes[..step.len])
                        .map(|next| (next, step)),
                    Escape::Partial => {
                        walk.more = true;
                        None
                    }
                    Escape::None => None,
                }
            } else {
                None
            };
            match (raw, escaped) {
                (None, None) => return,
                (Some(next), None) => {
                    walk.push(&[byte], Unit::Raw);
                    node = next;
                    i += 1;
                }
                (None, Some((next, step))) => {
                    walk.push(&step.bytes[..step.len], step.unit);
                    node = next;
                    i += step.consumed;
                }
                (Some(raw_next), Some((next, step))) => {
                    let (d, u) = (walk.decoded.len(), walk.units.len());
                    walk.push(&step.bytes[..step.len], step.unit);
                    self.walk_mixed(buf, i + step.consumed, next, walk);
                    walk.decoded.truncate(d);
                    walk.units.truncate(u);
                    walk.push(&[byte], Unit::Raw);
                    node = raw_next;
                    i += 1;
                }
            }
        }
    }

    fn follow(&self, mut node: u32, bytes: &[u8]) -> Option<u32> {
        for b in bytes {
            node = self.mixed.child(node, *b)?;
        }
        Some(node)
    }

    /// The longest literal form at `buf[start]`, and whether the text ends inside one.
    fn walk_literal(&self, buf: &[u8], start: usize) -> (Option<(usize, u32)>, bool) {
        let mut node = ROOT;
        let mut best = None;
        let mut i = start;
        loop {
            if let Some(index) = self.literals.ends(node).first() {
                best = Some((i, *index));
            }
            if !self.literals.leads_on(node) {
                return (best, false);
            }
            let Some(&byte) = buf.get(i) else {
                return (best, true);
            };
            match self.literals.child(node, byte) {
                Some(next) => node = next,
                None => return (best, false),
            }
            i += 1;
        }
    }
}

/// The state of one reading from a position.
#[derive(Default)]
struct Walk {
    /// Whether `decoded` and `units` are kept (else they stay empty).
    track: bool,
    decoded: Zeroizing<Vec<u8>>,
    units: Vec<Unit>,
    best: Option<Best>,
    more: bool,
}

impl Walk {
    fn push(&mut self, bytes: &[u8], unit: Unit) {
        if self.track {
            self.decoded.extend_from_slice(bytes);
            self.units.push(unit);
        }
    }
}

struct Best {
    end: usize,
    node: u32,
    decoded: Zeroizing<Vec<u8>>,
    units: Vec<Unit>,
}

fn index_of(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Every way `variant` can begin, three bytes or more where it is that long (a search
/// keyed on fewer stops too often in ordinary text): its first character's escapes, its
/// first character raw followed by the first bytes of the second's escape, and its first
/// two raw followed by how the third can begin.
///
/// An upper- or lower-cased credential is looked for only where its first two
/// characters stand raw: escaping and case-changing the start of a key together is not
/// something encoders do, and each opening looked for slows the search of every answer.
fn credential_openings(variant: &[u8], escaped_start: bool) -> Vec<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(variant) else {
        // Not text: its raw bytes and their percent escapes only.
        return vec![
            variant[..variant.len().min(3)].to_vec(),
            format!("%{:02x}", variant[0]).into_bytes(),
            format!("%{:02X}", variant[0]).into_bytes(),
        ];
    };
    let chars: Vec<char> = text.chars().take(3).collect();
    let mut out = Vec::new();
    if escaped_start {
        out.extend(escape::openings(chars[0]));
    }
    let first = utf8(chars[0]);
    let Some(&second) = chars.get(1) else {
        out.push(first);
        return out;
    };
    if escaped_start {
        out.extend(
            escape::openings(second)
                .into_iter()
                .map(|o| [first.as_slice(), &o[..o.len().min(3)]].concat()),
        );
    }
    let head = [first.as_slice(), &utf8(second)].concat();
    match chars.get(2) {
        None => out.push(head),
        Some(&third) => {
            for b in OPENERS.into_iter().chain([utf8(third)[0]]) {
                out.push([head.as_slice(), &[b]].concat());
            }
        }
    }
    out
}

/// The three cases a credential is looked for in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    AsSent,
    Upper,
    Lower,
}

impl Case {
    const ALL: [Case; 3] = [Case::AsSent, Case::Upper, Case::Lower];

    fn of(self, sent: &[u8]) -> Vec<u8> {
        match self {
            Case::AsSent => sent.to_vec(),
            Case::Upper => sent.to_ascii_uppercase(),
            Case::Lower => sent.to_ascii_lowercase(),
        }
    }

    /// `shown` in this case.
    pub(crate) fn apply(self, shown: &[u8]) -> Vec<u8> {
        self.of(shown)
    }

    fn id(self, index: usize) -> u32 {
        let case = match self {
            Case::AsSent => 0,
            Case::Upper => 1,
            Case::Lower => 2,
        };
        index_of(index).saturating_mul(3).saturating_add(case)
    }

    /// The credential index and case of a trie id.
    pub(crate) fn split(id: u32) -> (usize, Case) {
        let case = match id % 3 {
            1 => Case::Upper,
            2 => Case::Lower,
            _ => Case::AsSent,
        };
        ((id / 3) as usize, case)
    }
}

fn utf8(c: char) -> Vec<u8> {
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf).as_bytes().to_vec()
}
