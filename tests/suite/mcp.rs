//! An MCP server behind a connector (issue 26, part 1): `mcp.tools` decides each
//! `tools/call` by the tool's name (a batch per element), `tools/list` answers show only
//! the tools a call could pass (as JSON and as server-sent events), and a body that is not
//! JSON-RPC is refused. Against the test support's MCP server over streamable HTTP.

use egret_test_support::client::{Proto, refusal_code};
use http::StatusCode;
use serde_json::{Value, json};

use super::harness::json;
use super::rules::{fixture, send};

const TOOLS: &str = "    mcp: { tools: { allow: [search_*, get_*, create_issue], deny: [delete_*], approve: [create_issue] } }\n    approvals: { hold: 1s }\n";

fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

fn names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn tools_are_decided_by_name_and_lists_show_only_what_may_be_called() {
    let f = fixture(TOOLS).await;
    let p = f.egret.key_and_placeholder("openai", "org", "sk-mcp");
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = send(&f, &p, "POST", "/mcp", &init.to_string(), Proto::H2).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        json(r.body())["result"]["serverInfo"]["name"],
        "egret-test-mcp"
    );

    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    let r = send(&f, &p, "POST", "/mcp", &list, Proto::H1).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        names(&json(r.body())),
        ["search_code", "get_me", "create_issue"]
    );
    // As server-sent events too.
    let r = send(&f, &p, "POST", "/mcp-sse", &list, Proto::H2).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = String::from_utf8_lossy(r.body()).into_owned();
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("an event");
    let answer: Value = serde_json::from_str(data).expect("json");
    assert_eq!(
        names(&answer),
        ["search_code", "get_me", "create_issue"],
        "{text}"
    );

    let r = send(
        &f,
        &p,
        "POST",
        "/mcp",
        &call(2, "get_me").to_string(),
        Proto::H1,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        json(r.body())["result"]["content"][0]["text"],
        "called get_me"
    );
    let sent = f.upstream.seen().len();

    for (tool, rule) in [
        ("delete_repo", "mcp.tools.deny"),
        ("merge_pr", "mcp.tools.allow"),
    ] {
        let r = send(
            &f,
            &p,
            "POST",
            "/mcp",
            &call(3, tool).to_string(),
            Proto::H2,
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{tool}");
        assert_eq!(refusal_code(&r).as_deref(), Some("request_denied"));
        let b = json(r.body());
        assert_eq!(b["rule"], rule, "{b}");
        assert!(
            b["reason"].as_str().is_some_and(|m| m.contains(tool)),
            "{b}"
        );
        assert!(
            b["allowed"]
                .as_str()
                .is_some_and(|a| a.contains("search_*")),
            "{b}"
        );
    }
    // A batch is decided per element: one denied call refuses it.
    let batch = json!([call(4, "get_me"), call(5, "delete_repo")]).to_string();
    let r = send(&f, &p, "POST", "/mcp", &batch, Proto::H1).await;
    assert_eq!(json(r.body())["rule"], "mcp.tools.deny");
    // A tool held for approval.
    let r = send(
        &f,
        &p,
        "POST",
        "/mcp",
        &call(6, "create_issue").to_string(),
        Proto::H1,
    )
    .await;
    assert_eq!(refusal_code(&r).as_deref(), Some("approval_pending"));
    // Not JSON-RPC.
    for bad in ["not json", r#"{"method": "tools/call"}"#, "[]", ""] {
        let r = send(&f, &p, "POST", "/mcp", bad, Proto::H2).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{bad:?}");
        let b = json(r.body());
        assert_eq!(b["rule"], "mcp", "{bad:?}: {b}");
        assert!(
            b["reason"]
                .as_str()
                .is_some_and(|m| m.contains("JSON-RPC 2.0")),
            "{b}"
        );
    }
    assert_eq!(
        f.upstream.seen().len(),
        sent,
        "nothing refused reached the server"
    );
}
