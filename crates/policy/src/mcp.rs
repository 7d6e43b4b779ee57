//! A connector that is an MCP server (JSON-RPC 2.0 over streamable HTTP): which tools an
//! agent may call through it (`mcp: {tools: {allow, deny, approve}}`), by name with `*`
//! globs. `deny` is read first, then `approve`, then `allow`; with an `allow` list, a tool
//! on none of the lists is denied. The proxy decides `tools/call` by these and filters
//! `tools/list` answers to the tools a call could pass.

use serde::Deserialize;

use crate::access::{Action, Verdict, glob_in_segment};
use crate::raw::S;

/// `mcp.tools`: tool name patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpTools {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub approve: Vec<String>,
}

impl McpTools {
    /// What a `tools/call` of `tool` gets: `Ok` to go, or why not (deny or approve).
    pub fn decide(&self, tool: &str) -> Result<(), Verdict> {
        let matching = |list: &[String]| list.iter().find(|p| glob_in_segment(p, tool)).cloned();
        if let Some(p) = matching(&self.deny) {
            return Err(Verdict {
                action: Action::Deny,
                rule: "mcp.tools.deny".to_owned(),
                reason: format!("the tool `{tool}` is denied (`{p}`)"),
            });
        }
        if let Some(p) = matching(&self.approve) {
            return Err(Verdict {
                action: Action::Approve,
                rule: "mcp.tools.approve".to_owned(),
                reason: format!("a person approves each call of `{tool}` (`{p}`)"),
            });
        }
        if self.allow.is_empty() || matching(&self.allow).is_some() {
            return Ok(());
        }
        Err(Verdict {
            action: Action::Deny,
            rule: "mcp.tools.allow".to_owned(),
            reason: format!("the tool `{tool}` is not on the connector's list of allowed tools"),
        })
    }

    /// Whether a `tools/list` answer shows `tool`: a call of it could pass (perhaps
    /// after approval).
    pub fn shows(&self, tool: &str) -> bool {
        match self.decide(tool) {
            Ok(()) => true,
            Err(v) => v.action == Action::Approve,
        }
    }

    /// A request body to the MCP server, judged: every `tools/call` (alone or in a
    /// batch) by its tool's name. A body that is not JSON-RPC 2.0 is refused (`rule`
    /// `mcp`), as is a `tools/call` without a tool name. Deny wins over approve.
    pub fn judge(&self, body: Option<&serde_json::Value>) -> Result<(), Verdict> {
        let malformed = |why: &str| Verdict {
            action: Action::Deny,
            rule: "mcp".to_owned(),
            reason: format!(
                "the connector is an MCP server, which takes JSON-RPC 2.0 messages (a JSON object with `\"jsonrpc\": \"2.0\"`, or a batch of them); {why}"
            ),
        };
        let messages: Vec<&serde_json::Value> = match body {
            None => return Err(malformed("this body is not JSON")),
            Some(serde_json::Value::Array(batch)) if batch.is_empty() => {
                return Err(malformed("this batch is empty"));
            }
            Some(serde_json::Value::Array(batch)) => batch.iter().collect(),
            Some(one) => vec![one],
        };
        let mut held = None;
        for (i, m) in messages.iter().enumerate() {
            if m.get("jsonrpc").and_then(serde_json::Value::as_str) != Some("2.0") {
                return Err(malformed(&format!(
                    "message {i} has no `\"jsonrpc\": \"2.0\"`"
                )));
            }
            if m.get("method").and_then(serde_json::Value::as_str) != Some("tools/call") {
                continue;
            }
            let Some(tool) = m
                .get("params")
                .and_then(|p| p.get("name"))
                .and_then(serde_json::Value::as_str)
            else {
                return Err(malformed(&format!(
                    "message {i} calls a tool without `params.name`"
                )));
            };
            match self.decide(tool) {
                Ok(()) => {}
                Err(v) if v.action == Action::Approve => {
                    held.get_or_insert(v);
                }
                Err(v) => return Err(v),
            }
        }
        held.map_or(Ok(()), Err)
    }

    /// Whether a request body asks for the list of tools (its answer is then filtered).
    pub fn lists_tools(body: Option<&serde_json::Value>) -> bool {
        let asks = |m: &serde_json::Value| {
            m.get("method").and_then(serde_json::Value::as_str) == Some("tools/list")
        };
        match body {
            Some(serde_json::Value::Array(batch)) => batch.iter().any(asks),
            Some(m) => asks(m),
            None => false,
        }
    }

    /// Takes out of a JSON-RPC answer (one message or a batch) every listed tool a call
    /// could not pass; whether anything was taken out.
    pub fn filter_answer(&self, answer: &mut serde_json::Value) -> bool {
        match answer {
            serde_json::Value::Array(batch) => {
                let mut changed = false;
                for m in batch {
                    changed |= self.filter_answer(m);
                }
                changed
            }
            m => {
                let Some(tools) = m
                    .get_mut("result")
                    .and_then(|r| r.get_mut("tools"))
                    .and_then(serde_json::Value::as_array_mut)
                else {
                    return false;
                };
                let before = tools.len();
                tools.retain(|t| {
                    t.get("name")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|n| self.shows(n))
                });
                tools.len() != before
            }
        }
    }

    /// The lists in one line each, for listings and agents.
    pub fn summaries(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (word, list) in [
            ("allow", &self.allow),
            ("approve", &self.approve),
            ("deny", &self.deny),
        ] {
            if !list.is_empty() {
                out.push(format!("MCP tools {word}: {}", list.join(", ")));
            }
        }
        out
    }

    /// What may be called, in one sentence.
    pub fn allowed_sentence(&self) -> String {
        if self.allow.is_empty() {
            let mut s = "MCP tools may be called".to_owned();
            if !self.deny.is_empty() {
                s.push_str(&format!(" except {}", self.deny.join(", ")));
            }
            s.push('.');
            return s;
        }
        format!("MCP tools allowed: {}.", self.allow.join(", "))
    }
}

/// `mcp:` as the policy file writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcp {
    pub tools: Option<S<RawMcpTools>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcpTools {
    #[serde(default)]
    pub allow: Vec<S<String>>,
    #[serde(default)]
    pub deny: Vec<S<String>>,
    #[serde(default)]
    pub approve: Vec<S<String>>,
}

impl crate::validate::Validator<'_> {
    pub(crate) fn mcp(&self, raw: &S<RawMcp>) -> Result<McpTools, crate::Located> {
        let Some(tools) = &raw.value.tools else {
            return Ok(McpTools::default());
        };
        let list = |l: &[S<String>]| -> Result<Vec<String>, crate::Located> {
            l.iter()
                .map(|p| {
                    let ok = !p.value.is_empty()
                        && p.value.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || b"_-./:*".contains(&b)
                        });
                    if ok {
                        Ok(p.value.clone())
                    } else {
                        Err(self.at(
                            p,
                            &format!(
                                "`{}` is not a tool name pattern; expected letters, digits, `_ - . / :` and `*`, e.g. `get_*`",
                                p.value
                            ),
                        ))
                    }
                })
                .collect()
        };
        Ok(McpTools {
            allow: list(&tools.value.allow)?,
            deny: list(&tools.value.deny)?,
            approve: list(&tools.value.approve)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> McpTools {
        McpTools {
            allow: vec!["search_*".into(), "get_*".into()],
            deny: vec!["delete_*".into()],
            approve: vec!["create_issue".into()],
        }
    }

    #[test]
    fn deny_then_approve_then_allow() {
        let t = tools();
        assert!(t.decide("search_code").is_ok());
        assert!(t.decide("get_me").is_ok());
        let d = t.decide("delete_repo").expect_err("denied");
        assert_eq!(
            (d.action, d.rule.as_str()),
            (Action::Deny, "mcp.tools.deny")
        );
        let a = t.decide("create_issue").expect_err("held");
        assert_eq!(a.action, Action::Approve);
        let n = t.decide("merge_pr").expect_err("not allowed");
        assert_eq!(n.rule, "mcp.tools.allow");
        assert!(t.shows("create_issue") && t.shows("get_x"));
        assert!(!t.shows("delete_x") && !t.shows("merge_pr"));
    }

    #[test]
    fn bodies_are_judged_per_message_and_answers_filtered() {
        use serde_json::json;
        let t = tools();
        let call = |name: &str| json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}});
        assert!(t.judge(Some(&call("get_me"))).is_ok());
        assert_eq!(
            t.judge(Some(&call("delete_repo"))).expect_err("no").rule,
            "mcp.tools.deny"
        );
        let batch = json!([call("get_me"), call("create_issue")]);
        assert_eq!(
            t.judge(Some(&batch)).expect_err("held").action,
            Action::Approve
        );
        let worse = json!([call("create_issue"), call("delete_x")]);
        assert_eq!(
            t.judge(Some(&worse)).expect_err("denied").action,
            Action::Deny
        );
        assert_eq!(t.judge(None).expect_err("not JSON").rule, "mcp");
        assert!(t.judge(Some(&json!({"method": "tools/call"}))).is_err());
        assert!(t.judge(Some(&json!([]))).is_err());
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}});
        assert!(t.judge(Some(&init)).is_ok());
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
        assert!(McpTools::lists_tools(Some(&list)) && !McpTools::lists_tools(Some(&init)));
        let mut answer = json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [
            {"name": "get_me"}, {"name": "delete_repo"}, {"name": "create_issue"}, {"name": "merge_pr"}
        ]}});
        assert!(t.filter_answer(&mut answer));
        let names: Vec<&str> = answer["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names, ["get_me", "create_issue"]);
    }

    #[test]
    fn without_an_allow_list_only_deny_and_approve_restrict() {
        let t = McpTools {
            deny: vec!["drop*".into()],
            ..McpTools::default()
        };
        assert!(t.decide("anything").is_ok());
        assert!(t.decide("drop_table").is_err());
    }
}
