//! How commands print: aligned tables with readable times for people, the API's JSON
//! for scripts (`--output json`). A table never shows a raw epoch or `null`.

use serde_json::Value;

use crate::args::Output;

/// Columns of text, aligned when printed.
pub struct Table {
    head: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(head: &[&'static str]) -> Self {
        Self {
            head: head.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table, or `empty` (what to do about it) when it has no rows.
    pub fn print(&self, empty: &str) {
        if self.rows.is_empty() {
            eprintln!("{empty}");
            return;
        }
        let mut widths: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let last = cells.len().saturating_sub(1);
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i == last {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<w$}  ", w = *w));
                }
            }
            out.trim_end().to_owned()
        };
        say!("{}", line(self.head.clone()));
        for row in &self.rows {
            say!("{}", line(row.iter().map(String::as_str).collect()));
        }
    }
}

/// Prints `value` as pretty JSON (for `--output json`).
pub fn json(value: &Value) {
    say!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// True when the listing should be JSON.
pub fn wants_json(output: Output) -> bool {
    output == Output::Json
}

/// A field as table text: strings bare, absent or null as `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// A unix time as `2026-11-26 14:07 UTC (in 23h)`; `-` when absent.
pub fn when(v: &Value) -> String {
    let Some(unix) = v.as_i64() else {
        return "-".to_owned();
    };
    let now = unix_now();
    let at = u64::try_from(unix)
        .ok()
        .and_then(|s| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(s)));
    let Some(at) = at else {
        return unix.to_string();
    };
    // `2026-11-26T14:07:00Z` → `2026-11-26 14:07 UTC`
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    let stamp = format!(
        "{} UTC",
        stamp.get(..16).unwrap_or(&stamp).replace('T', " ")
    );
    format!("{stamp} ({})", relative(unix - now))
}

/// `in 23h`, `3d ago`, `now`: the largest unit, rounded down; hours up to two days.
pub fn relative(delta: i64) -> String {
    let n = delta.unsigned_abs();
    let amount = match n {
        0..60 => return "now".to_owned(),
        60..3600 => format!("{}m", n / 60),
        3600..172_800 => format!("{}h", n / 3600),
        _ => format!("{}d", n / 86_400),
    };
    if delta > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// `1 connector`, `2 connectors`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    // English plurals of the nouns egret counts: sandboxes, deliveries, keys, rows.
    let consonant_y = noun
        .strip_suffix('y')
        .filter(|stem| stem.chars().last().is_some_and(|c| !"aeiou".contains(c)));
    if let Some(stem) = consonant_y {
        format!("{n} {stem}ies")
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|end| noun.ends_with(end))
    {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

/// Seconds since 1970, as the server's times are given.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_counts_read_as_words() {
        assert_eq!(relative(30), "now");
        assert_eq!(relative(2 * 3600 + 5), "in 2h");
        assert_eq!(relative(-3 * 86_400), "3d ago");
        assert_eq!(count(1, "connector"), "1 connector");
        assert_eq!(count(0, "connection"), "0 connections");
        assert_eq!(text(&Value::Null), "-");
        assert!(when(&serde_json::json!(0)).starts_with("1970-01-01 00:00 UTC ("));
        assert_eq!(when(&Value::Null), "-");
    }

    #[test]
    fn counts_say_english_plurals() {
        assert_eq!(count(1, "sandbox"), "1 sandbox");
        assert_eq!(count(0, "sandbox"), "0 sandboxes");
        assert_eq!(count(2, "webhook delivery"), "2 webhook deliveries");
        assert_eq!(count(3, "key"), "3 keys");
        assert_eq!(count(4, "audit event"), "4 audit events");
        assert_eq!(count(5, "row"), "5 rows");
    }
}
