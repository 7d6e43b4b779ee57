//! The text log's writer: stderr, with every control character inside an event escaped.
//!
//! Log fields carry values an attacker chooses — a callback's `error` parameter, a
//! vendor's error text — and a newline in one would forge whole log lines. The fmt layer
//! formats each event whole and writes it in one call, so here every control character
//! but the event's final newline is written escaped (`\n`, `\r`, `\t`, `\u{1b}`, …),
//! and so are the Unicode line breaks a log viewer would honour. With colours on (a
//! terminal) the escape character of colour codes stays.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Makes a [`Escaping`] writer over stderr for each event.
pub struct EscapingStderr {
    pub ansi: bool,
}

impl<'a> MakeWriter<'a> for EscapingStderr {
    type Writer = Escaping<io::StderrLock<'static>>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping {
            inner: io::stderr().lock(),
            ansi: self.ansi,
        }
    }
}

/// Writes what it is given with control characters escaped (see the module doc).
pub struct Escaping<W> {
    inner: W,
    ansi: bool,
}

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let mut out = String::with_capacity(body.len() + 16);
        for c in body.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{1b}' if self.ansi => out.push(c),
                c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                    out.push_str(&c.escape_unicode().to_string());
                }
                c => out.push(c),
            }
        }
        out.push_str(end);
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str, ansi: bool) -> String {
        let mut w = Escaping {
            inner: Vec::new(),
            ansi,
        };
        w.write_all(text.as_bytes()).expect("write");
        String::from_utf8(w.inner).expect("utf-8")
    }

    #[test]
    fn a_forged_line_stays_inside_its_event() {
        let event =
            "INFO refused error=access_denied\n2026-01-01T00:00:00Z  INFO connection authorized\n";
        assert_eq!(
            escaped(event, false),
            "INFO refused error=access_denied\\n2026-01-01T00:00:00Z  INFO connection authorized\n"
        );
        assert_eq!(
            escaped("a\rb\u{2028}c\u{85}d\u{1b}[2J\n", false),
            "a\\rb\\u{2028}c\\u{85}d\\u{1b}[2J\n"
        );
        assert_eq!(
            escaped("\u{1b}[32mINFO\u{1b}[0m x\n", true),
            "\u{1b}[32mINFO\u{1b}[0m x\n"
        );
    }
}
