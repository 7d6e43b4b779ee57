//! How one character can stand in text besides itself: the escapes an upstream applies
//! to some or all characters of what it echoes. Reading one at a position (`at`), and
//! writing a character the same way (`write`).

/// How one character of a match was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Raw,
    /// `%XX` for each UTF-8 byte; `upper` for the hex letters' case.
    Percent {
        upper: bool,
    },
    /// `\uXXXX` for each UTF-16 unit (JSON).
    JsonUnicode {
        upper: bool,
    },
    /// `\/`, `\"` or `\\` (JSON).
    JsonShort,
    /// `&#NN;`
    HtmlDecimal,
    /// `&#xHH;`
    HtmlHex {
        upper: bool,
    },
    /// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`
    HtmlNamed,
}

/// One escape read: the UTF-8 bytes of the character it stands for, and its length.
pub(crate) struct Step {
    pub bytes: [u8; 4],
    pub len: usize,
    pub consumed: usize,
    pub unit: Unit,
}

pub(crate) enum Escape {
    Step(Step),
    /// The text ends inside what may be an escape: more bytes decide.
    Partial,
    None,
}

/// The bytes an escape can begin with.
pub(crate) const OPENERS: [u8; 3] = [b'%', b'\\', b'&'];

/// Digits of a character reference beyond this are not read (leading zeros included).
const MAX_DIGITS: usize = 8;

const NAMED: [(&[u8], u8); 5] = [
    (b"amp;", b'&'),
    (b"lt;", b'<'),
    (b"gt;", b'>'),
    (b"quot;", b'"'),
    (b"apos;", b'\''),
];

/// The escape that starts at `buf[i]`, if one does.
pub(crate) fn at(buf: &[u8], i: usize) -> Escape {
    let rest = &buf[i..];
    match rest.first() {
        Some(b'%') => percent(rest),
        Some(b'\\') => json(rest),
        Some(b'&') => html(rest),
        _ => Escape::None,
    }
}

fn percent(rest: &[u8]) -> Escape {
    let digits = &rest[1..rest.len().min(3)];
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return Escape::None;
    }
    if digits.len() < 2 {
        return Escape::Partial;
    }
    let Some(byte) = hex_value(digits).and_then(|v| u8::try_from(v).ok()) else {
        return Escape::None;
    };
    Escape::Step(Step {
        bytes: [byte, 0, 0, 0],
        len: 1,
        consumed: 3,
        unit: Unit::Percent {
            upper: !digits.iter().any(u8::is_ascii_lowercase),
        },
    })
}

fn json(rest: &[u8]) -> Escape {
    match rest.get(1) {
        None => Escape::Partial,
        Some(&b @ (b'/' | b'"' | b'\\')) => Escape::Step(Step {
            bytes: [b, 0, 0, 0],
            len: 1,
            consumed: 2,
            unit: Unit::JsonShort,
        }),
        Some(b'u') => json_unicode(rest),
        Some(_) => Escape::None,
    }
}

/// `\uXXXX`, or a surrogate pair `\uD8XX\uDCXX` for a character beyond the BMP.
fn json_unicode(rest: &[u8]) -> Escape {
    let unit = match utf16_unit(rest) {
        Ok(unit) => unit,
        Err(partial) => return partial,
    };
    let upper = !rest[2..6].iter().any(u8::is_ascii_lowercase);
    let (code, consumed) = if (0xD800..0xDC00).contains(&unit) {
        let low = match utf16_unit(&rest[6..]) {
            Ok(low) if (0xDC00..0xE000).contains(&low) => low,
            Ok(_) => return Escape::None,
            Err(partial) => return partial,
        };
        (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), 12)
    } else {
        (unit, 6)
    };
    step(code, consumed, Unit::JsonUnicode { upper })
}

/// One `\uXXXX` at the start of `rest`; `Err` says whether more bytes could make one.
fn utf16_unit(rest: &[u8]) -> Result<u32, Escape> {
    let head = &rest[..rest.len().min(6)];
    let prefix_ok = head.iter().enumerate().all(|(k, b)| match k {
        0 => *b == b'\\',
        1 => *b == b'u',
        _ => b.is_ascii_hexdigit(),
    });
    if !prefix_ok {
        return Err(Escape::None);
    }
    if head.len() < 6 {
        return Err(Escape::Partial);
    }
    hex_value(&head[2..6]).ok_or(Escape::None)
}

fn html(rest: &[u8]) -> Escape {
    match rest.get(1) {
        None => Escape::Partial,
        Some(b'#') => html_numeric(rest),
        Some(_) => html_named(&rest[1..]),
    }
}

fn html_numeric(rest: &[u8]) -> Escape {
    let (hex, from) = match rest.get(2) {
        None => return Escape::Partial,
        Some(b'x') => (true, 3),
        Some(_) => (false, 2),
    };
    let is_digit = |b: &u8| {
        if hex {
            b.is_ascii_hexdigit()
        } else {
            b.is_ascii_digit()
        }
    };
    let digits = rest[from..]
        .iter()
        .take(MAX_DIGITS + 1)
        .take_while(|b| is_digit(b))
        .count();
    if digits > MAX_DIGITS {
        return Escape::None;
    }
    let end = from + digits;
    match rest.get(end) {
        None => return Escape::Partial,
        Some(b';') if digits > 0 => {}
        Some(_) => return Escape::None,
    }
    let text = &rest[from..end];
    let code = if hex {
        hex_value(text)
    } else {
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
    };
    let Some(code) = code else {
        return Escape::None;
    };
    let unit = if hex {
        Unit::HtmlHex {
            upper: !text.iter().any(u8::is_ascii_lowercase),
        }
    } else {
        Unit::HtmlDecimal
    };
    step(code, end + 1, unit)
}

fn html_named(name: &[u8]) -> Escape {
    for (entity, byte) in NAMED {
        if name.starts_with(entity) {
            return Escape::Step(Step {
                bytes: [byte, 0, 0, 0],
                len: 1,
                consumed: 1 + entity.len(),
                unit: Unit::HtmlNamed,
            });
        }
    }
    if NAMED.iter().any(|(entity, _)| entity.starts_with(name)) {
        Escape::Partial
    } else {
        Escape::None
    }
}

fn step(code: u32, consumed: usize, unit: Unit) -> Escape {
    let Some(c) = char::from_u32(code) else {
        return Escape::None;
    };
    let mut bytes = [0u8; 4];
    let len = c.encode_utf8(&mut bytes).len();
    Escape::Step(Step {
        bytes,
        len,
        consumed,
        unit,
    })
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, b| {
        let d = char::from(*b).to_digit(16)?;
        acc.checked_mul(16)?.checked_add(d)
    })
}

/// Whether a URL-encoder leaves `c` as it is (RFC 3986 unreserved): the characters a
/// partly escaped match shows raw in its replacement.
pub(crate) fn unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// Writes `c` as `unit` writes it (raw where `unit` has no way to write `c`).
pub(crate) fn write(unit: Unit, c: char, out: &mut Vec<u8>) {
    let mut utf8 = [0u8; 4];
    let bytes = c.encode_utf8(&mut utf8).as_bytes();
    let digits = |upper: bool, value: u32, width: usize| {
        if upper {
            format!("{value:0width$X}")
        } else {
            format!("{value:0width$x}")
        }
    };
    match unit {
        Unit::Raw => out.extend_from_slice(bytes),
        Unit::Percent { upper } => {
            for b in bytes {
                out.push(b'%');
                out.extend_from_slice(digits(upper, u32::from(*b), 2).as_bytes());
            }
        }
        Unit::JsonUnicode { upper } => {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.extend_from_slice(b"\\u");
                out.extend_from_slice(digits(upper, u32::from(*u), 4).as_bytes());
            }
        }
        Unit::JsonShort if matches!(c, '/' | '"' | '\\') => {
            out.push(b'\\');
            out.extend_from_slice(bytes);
        }
        Unit::HtmlDecimal => out.extend_from_slice(format!("&#{};", u32::from(c)).as_bytes()),
        Unit::HtmlHex { upper } => {
            out.extend_from_slice(format!("&#x{};", digits(upper, u32::from(c), 1)).as_bytes());
        }
        Unit::HtmlNamed => match NAMED.iter().find(|(_, b)| u32::from(*b) == u32::from(c)) {
            Some((entity, _)) => {
                out.push(b'&');
                out.extend_from_slice(entity);
            }
            None => out.extend_from_slice(bytes),
        },
        Unit::JsonShort => out.extend_from_slice(bytes),
    }
}

/// Every escape of `c` in its canonical form (no leading zeros), in every case its hex
/// digits can have: where a search looks for a credential that begins escaped.
pub(crate) fn openings(c: char) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut utf8 = [0u8; 4];
    let first = c.encode_utf8(&mut utf8).as_bytes()[0];
    for digits in hex_cases(&format!("{first:02x}")) {
        out.push([b"%".as_slice(), &digits].concat());
    }
    let mut units = [0u16; 2];
    let unit = c.encode_utf16(&mut units)[0];
    for digits in hex_cases(&format!("{unit:04x}")) {
        out.push([b"\\u".as_slice(), &digits].concat());
    }
    if matches!(c, '/' | '"' | '\\') {
        out.push(vec![b'\\', first]);
    }
    out.push(format!("&#{};", u32::from(c)).into_bytes());
    for digits in hex_cases(&format!("{:x}", u32::from(c))) {
        out.push([b"&#x".as_slice(), &digits, b";"].concat());
    }
    if let Some((entity, _)) = NAMED.iter().find(|(_, b)| u32::from(*b) == u32::from(c)) {
        out.push([b"&".as_slice(), entity].concat());
    }
    out
}

/// `digits` with its hex letters in every combination of cases.
fn hex_cases(digits: &str) -> Vec<Vec<u8>> {
    let mut all = vec![Vec::new()];
    for b in digits.bytes() {
        let cases: &[u8] = if b.is_ascii_alphabetic() {
            &[b.to_ascii_lowercase(), b.to_ascii_uppercase()]
        } else {
            std::slice::from_ref(&b)
        };
        all = all
            .into_iter()
            .flat_map(|prefix| {
                cases.iter().map(move |c| {
                    let mut next = prefix.clone();
                    next.push(*c);
                    next
                })
            })
            .collect();
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<(String, usize, Unit)> {
        match at(text.as_bytes(), 0) {
            Escape::Step(s) => Some((
                String::from_utf8(s.bytes[..s.len].to_vec()).expect("utf8"),
                s.consumed,
                s.unit,
            )),
            Escape::Partial | Escape::None => None,
        }
    }

    #[test]
    fn each_escape_reads_as_its_character() {
        let cases = [
            ("%2Bx", "+", 3),
            ("%2bx", "+", 3),
            ("\\u002Fx", "/", 6),
            ("\\/x", "/", 2),
            ("&#43;x", "+", 5),
            ("&#00043;x", "+", 8),
            ("&#x2b;x", "+", 6),
            ("&amp;x", "&", 5),
            ("\\uD83D\\uDE00x", "😀", 12),
            ("&#233;", "é", 6),
        ];
        for (text, ch, consumed) in cases {
            let (got, n, _) = read(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!((got.as_str(), n), (ch, consumed), "{text}");
        }
    }

    #[test]
    fn a_cut_escape_asks_for_more_and_a_broken_one_is_text() {
        for cut in [
            "%",
            "%2",
            "\\",
            "\\u00",
            "&",
            "&#",
            "&#x2",
            "&#43",
            "&am",
            "\\uD83D\\u",
        ] {
            assert!(matches!(at(cut.as_bytes(), 0), Escape::Partial), "{cut}");
        }
        for broken in [
            "%G1",
            "\\q",
            "&#;",
            "&#x;",
            "&foo;",
            "\\uD83Dx",
            "&#123456789;",
        ] {
            assert!(matches!(at(broken.as_bytes(), 0), Escape::None), "{broken}");
        }
    }

    #[test]
    fn a_character_is_written_back_the_way_it_was_read() {
        for text in [
            "%2B", "%2b", "\\u002f", "&#43;", "&#x2b;", "&#x2B;", "&amp;", "\\/",
        ] {
            let (ch, _, unit) = read(text).expect("escape");
            let mut out = Vec::new();
            write(unit, ch.chars().next().expect("char"), &mut out);
            let again = read(std::str::from_utf8(&out).expect("utf8")).expect("escape");
            assert_eq!(again.0, ch, "{text}");
        }
    }
}
