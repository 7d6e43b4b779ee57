//! What an agent may do with a connector's credential: `access: read_only`, request
//! `rules` (first match wins) and the `default` action. Decided on the request as the
//! sandbox sent it, before any placeholder is swapped or token renewed.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::raw::S;

/// What a rule (or the default) does with a request it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    /// A person must approve it first.
    Approve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Approve => "approve",
        }
    }
}

/// A path pattern: `/` separated segments, `*` for one segment (or part of one), `**`
/// for any number of segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    text: String,
    segments: Vec<String>,
}

impl PathGlob {
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!(
                "`{text}` is not a path pattern; expected one that starts with `/`, e.g. `/repos/**`"
            ));
        }
        let segments: Vec<String> = text[1..].split('/').map(str::to_owned).collect();
        if segments
            .iter()
            .any(|s| s.contains("**") && s.as_str() != "**")
        {
            return Err(format!(
                "`{text}`: `**` stands for whole segments only, e.g. `/repos/**`"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// Whether `path` (already decoded and free of `.`/`..` segments) matches.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = segments_of(path).collect();
        self.matches_segments(&parts)
    }

    /// As [`PathGlob::matches`], on the path's segments (split once for every rule).
    pub fn matches_segments(&self, parts: &[&str]) -> bool {
        glob_segments(&self.segments, parts)
    }
}

impl fmt::Display for PathGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A path's `/`-separated segments, as patterns are split.
fn segments_of(path: &str) -> std::str::Split<'_, char> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

fn glob_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((any, rest)) if any == "**" => {
            // Trailing `**` also matches the parent itself (`/repos/**` matches `/repos`).
            (0..=path.len()).any(|skip| glob_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((segment, tail)) => glob_in_segment(first, segment) && glob_segments(rest, tail),
            None => false,
        },
    }
}

/// `*` within one segment: any run of characters (none included).
pub(crate) fn glob_in_segment(pattern: &str, text: &str) -> bool {
    let Some((head, tail)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(after) = text.strip_prefix(head) else {
        return false;
    };
    if tail.is_empty() {
        return true;
    }
    (0..=after.len())
        .filter(|i| after.is_char_boundary(*i))
        .any(|i| glob_in_segment(tail, &after[i..]))
}

/// One request rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRule {
    /// Its name, or `None` (refusals then name it by position, from 1).
    pub name: Option<String>,
    /// Upper-case methods; empty: any method.
    pub methods: Vec<String>,
    pub path: PathGlob,
    /// Query parameters that must have these values.
    pub query: BTreeMap<String, String>,
    /// JSON pointers into a JSON body and the values they must hold.
    pub body: Vec<(String, serde_json::Value)>,
    pub action: Action,
    pub reason: Option<String>,
}

impl RequestRule {
    /// `DELETE /repos/**` (with its query and body conditions): the rule in one line.
    pub fn summary(&self) -> String {
        let methods = if self.methods.is_empty() {
            "any method".to_owned()
        } else {
            self.methods.join(",")
        };
        let mut out = format!("{} {methods} {}", self.action.as_str(), self.path);
        for (k, v) in &self.query {
            out.push_str(&format!(" ?{k}={v}"));
        }
        for (pointer, value) in &self.body {
            out.push_str(&format!(" body {pointer}={value}"));
        }
        out
    }
}

/// A connector's request policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// `access: read_only`: GET, HEAD and OPTIONS only (GraphQL: queries only), whatever
    /// the rules say.
    pub read_only: bool,
    pub rules: Vec<RequestRule>,
    pub default: Action,
    /// The connector is an MCP server: its tools, by name (`mcp.tools`).
    pub mcp: Option<crate::McpTools>,
}

impl Default for Access {
    fn default() -> Self {
        Self {
            read_only: false,
            rules: Vec::new(),
            default: Action::Allow,
            mcp: None,
        }
    }
}

/// The request as the sandbox sent it, as far as the rules look at it.
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// The path, percent-decoded, without `.` or `..` segments (see [`normalized_path`]).
    pub path: &'a str,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The body as JSON, when it was read and is JSON.
    pub body: Option<&'a serde_json::Value>,
}

/// Why a request may not go as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The rule that decided it: its name, or `#N` (from 1), `read_only`, or `default`.
    pub rule: String,
    pub reason: String,
}

impl Access {
    /// Whether anything is restricted (an unrestricted connector costs nothing per request).
    pub fn is_open(&self) -> bool {
        !self.read_only
            && self.rules.is_empty()
            && self.default == Action::Allow
            && self.mcp.is_none()
    }

    /// Whether deciding needs the request body (a rule matches on it, or read-only must
    /// tell a GraphQL query from a mutation).
    pub fn needs_body(&self) -> bool {
        self.read_only || self.mcp.is_some() || self.rules.iter().any(|r| !r.body.is_empty())
    }

    /// `Ok` when the request may go; the verdict (deny or approve) otherwise.
    pub fn decide(&self, req: &RequestFacts<'_>) -> Result<(), Verdict> {
        // Per request, before the rules: the method as rules name it, the path split once
        // and the query parsed only when a rule looks at it (no copies per rule).
        let method: std::borrow::Cow<'_, str> =
            if req.method.bytes().any(|b| b.is_ascii_lowercase()) {
                req.method.to_ascii_uppercase().into()
            } else {
                req.method.into()
            };
        let method = method.as_ref();
        if self.read_only && !matches!(method, "GET" | "HEAD" | "OPTIONS") {
            let query_only = method == "POST" && graphql_query_only(req.body);
            if !query_only {
                return Err(Verdict {
                    action: Action::Deny,
                    rule: "read_only".to_owned(),
                    reason: format!(
                        "the connector is read-only: {method} is not allowed (GET, HEAD and OPTIONS are, and GraphQL queries)"
                    ),
                });
            }
        }
        if let Some(mcp) = &self.mcp
            && method == "POST"
        {
            mcp.judge(req.body)?;
        }
        let query = if self.rules.iter().any(|r| !r.query.is_empty()) {
            parse_query(req.query)
        } else {
            Vec::new()
        };
        let path: Vec<&str> = segments_of(req.path).collect();
        for (i, rule) in self.rules.iter().enumerate() {
            if !Self::matches(rule, method, req, &path, &query) {
                continue;
            }
            let name = rule.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            return match rule.action {
                Action::Allow => Ok(()),
                action => Err(Verdict {
                    action,
                    reason: rule
                        .reason
                        .clone()
                        .unwrap_or_else(|| format!("rule {name} ({})", rule.summary())),
                    rule: name,
                }),
            };
        }
        match self.default {
            Action::Allow => Ok(()),
            action => Err(Verdict {
                action,
                rule: "default".to_owned(),
                reason: format!(
                    "no rule allows {method} {}; the connector's default is {}",
                    req.path,
                    action.as_str()
                ),
            }),
        }
    }

    fn matches(
        rule: &RequestRule,
        method: &str,
        req: &RequestFacts<'_>,
        path: &[&str],
        query: &[(String, String)],
    ) -> bool {
        (rule.methods.is_empty() || rule.methods.iter().any(|m| m == method))
            && rule.path.matches_segments(path)
            && rule
                .query
                .iter()
                .all(|(k, v)| query.iter().any(|(qk, qv)| qk == k && qv == v))
            && rule
                .body
                .iter()
                .all(|(pointer, value)| req.body.and_then(|b| b.pointer(pointer)) == Some(value))
    }

    /// What is allowed, in one sentence, for a refusal an agent can correct itself from.
    pub fn allowed_sentence(&self) -> String {
        let allows: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.action == Action::Allow)
            .map(RequestRule::summary)
            .map(|s| s.trim_start_matches("allow ").to_owned())
            .collect();
        let mut sentence = String::new();
        if self.read_only {
            sentence.push_str("Only GET, HEAD and OPTIONS (and GraphQL queries) are allowed");
        } else if self.default == Action::Allow {
            sentence.push_str("Requests no rule stops are allowed");
        } else if allows.is_empty() {
            sentence.push_str("No request is allowed without a rule that allows it");
        } else {
            sentence.push_str("Allowed");
        }
        if !allows.is_empty() {
            sentence.push_str(if sentence == "Allowed" {
                ": "
            } else {
                "; rules allow: "
            });
            sentence.push_str(&allows.join("; "));
        }
        sentence.push('.');
        if let Some(mcp) = &self.mcp {
            sentence.push(' ');
            sentence.push_str(&mcp.allowed_sentence());
        }
        sentence
    }

    /// One line per restriction, for listings and agents.
    pub fn summaries(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.read_only {
            out.push("read only: GET, HEAD, OPTIONS (GraphQL: queries)".to_owned());
        }
        out.extend(self.rules.iter().map(|r| match &r.reason {
            Some(why) => format!("{} ({why})", r.summary()),
            None => r.summary(),
        }));
        if self.default != Action::Allow {
            out.push(format!("otherwise {}", self.default.as_str()));
        }
        if let Some(mcp) = &self.mcp {
            out.extend(mcp.summaries());
        }
        out
    }
}

/// Whether a JSON body is a GraphQL request whose every operation is a query.
fn graphql_query_only(body: Option<&serde_json::Value>) -> bool {
    let one = |v: &serde_json::Value| {
        v.get("query")
            .and_then(serde_json::Value::as_str)
            .is_some_and(graphql_document_is_query)
    };
    match body {
        Some(serde_json::Value::Array(batch)) => !batch.is_empty() && batch.iter().all(one),
        Some(v) => one(v),
        None => false,
    }
}

/// A GraphQL document holding only queries (or fragments): every top-level definition
/// begins with `query`, `fragment` or `{` (the shorthand query). Comments and strings are
/// skipped, so a `mutation` word inside them does not count, and one outside them always
/// does; a document that does not close is not a query.
fn graphql_document_is_query(doc: &str) -> bool {
    let mut depth = 0usize;
    let mut definitions = 0usize;
    // The first word of the top-level definition being read, and the word being read.
    let mut first: Option<String> = None;
    let mut word = String::new();
    let flush = |word: &mut String, first: &mut Option<String>| {
        if !word.is_empty() {
            if first.is_none() {
                *first = Some(std::mem::take(word));
            } else {
                word.clear();
            }
        }
    };
    let mut chars = doc.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for n in chars.by_ref() {
                    match (escaped, n) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => {}
                    }
                }
            }
            '{' => {
                if depth == 0 {
                    flush(&mut word, &mut first);
                    match first.take().as_deref() {
                        None | Some("query" | "fragment") => definitions += 1,
                        Some(_) => return false,
                    }
                }
                depth += 1;
            }
            '}' => depth = depth.saturating_sub(1),
            c if depth == 0 && (c.is_alphanumeric() || c == '_') => word.push(c),
            _ if depth == 0 => flush(&mut word, &mut first),
            _ => {}
        }
    }
    definitions > 0 && depth == 0 && first.is_none() && word.is_empty()
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url_pairs(q)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn url_pairs(
    query: &str,
) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_component(k), decode_component(v))
    })
}

fn decode_component(text: &str) -> std::borrow::Cow<'_, str> {
    let plus = text.replace('+', " ");
    match percent_encoding::percent_decode_str(&plus).decode_utf8() {
        Ok(decoded) => std::borrow::Cow::Owned(decoded.into_owned()),
        Err(_) => std::borrow::Cow::Borrowed(text),
    }
}

/// The path rules match against: percent-decoded, `//` collapsed; `None` for a path
/// that rules cannot judge safely (`.` or `..` segments, an encoded `/`, a NUL, or bytes
/// that are not UTF-8), which is then refused rather than guessed at.
pub fn normalized_path(raw: &str) -> Option<String> {
    if raw.contains("%2f") || raw.contains("%2F") || raw.contains("%5c") || raw.contains("%5C") {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return None;
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return None;
        }
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// `rules: [...]` entries as the policy file writes them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Option<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    pub path: Option<S<String>>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub body: BTreeMap<String, serde_json::Value>,
    pub action: S<String>,
    pub reason: Option<String>,
}

/// The methods a rule may name.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

impl crate::validate::Validator<'_> {
    pub(crate) fn action(&self, raw: &S<String>) -> Result<Action, crate::Located> {
        match raw.value.as_str() {
            "allow" => Ok(Action::Allow),
            "deny" => Ok(Action::Deny),
            "approve" => Ok(Action::Approve),
            other => {
                let near = crate::closest(other, ["allow", "deny", "approve"])
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                Err(self.at(
                    raw,
                    &format!(
                        "unknown action `{other}`; expected `allow`, `deny` or `approve`{near}"
                    ),
                ))
            }
        }
    }

    pub(crate) fn access(
        &self,
        access: Option<&S<String>>,
        rules: &[S<RawRule>],
        default: Option<&S<String>>,
        mcp: Option<&S<crate::mcp::RawMcp>>,
    ) -> Result<Access, crate::Located> {
        let read_only = match access {
            None => false,
            Some(a) if a.value == "read_only" => true,
            Some(a) if a.value == "full" => false,
            Some(a) => {
                return Err(self.at(
                    a,
                    &format!(
                        "unknown access `{}`; expected `read_only` or `full`",
                        a.value
                    ),
                ));
            }
        };
        let mut out = Vec::with_capacity(rules.len());
        for raw in rules {
            let r = &raw.value;
            let mut methods = Vec::with_capacity(r.methods.len());
            for m in &r.methods {
                let upper = m.to_ascii_uppercase();
                if !METHODS.contains(&upper.as_str()) {
                    return Err(self.at(
                        raw,
                        &format!("`{m}` is not an HTTP method; expected e.g. GET, POST, DELETE"),
                    ));
                }
                methods.push(upper);
            }
            let path = match &r.path {
                Some(p) => PathGlob::parse(&p.value).map_err(|m| self.at(p, &m))?,
                None => PathGlob::parse("/**").map_err(|m| self.at(raw, &m))?,
            };
            let mut body = Vec::with_capacity(r.body.len());
            for (pointer, value) in &r.body {
                if !pointer.starts_with('/') {
                    return Err(self.at(
                        raw,
                        &format!(
                            "`{pointer}` is not a JSON pointer; expected one that starts with `/`, e.g. `/operationName`"
                        ),
                    ));
                }
                body.push((pointer.clone(), value.clone()));
            }
            let action = self.action(&r.action)?;
            out.push(RequestRule {
                name: r.name.clone(),
                methods,
                path,
                query: r.query.clone(),
                body,
                action,
                reason: r.reason.clone(),
            });
        }
        let default = match default {
            Some(d) => self.action(d)?,
            None => Action::Allow,
        };
        Ok(Access {
            read_only,
            rules: out,
            default,
            mcp: mcp.map(|m| self.mcp(m)).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests;
