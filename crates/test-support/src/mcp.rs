//! A small MCP server over streamable HTTP (JSON-RPC 2.0), served by the test upstream
//! at `/mcp` (answers as JSON) and `/mcp-sse` (answers as server-sent events): enough of
//! the protocol (revision 2025-06-18) for an agent's client to initialize, list tools and
//! call them. Its tools: `search_code`, `get_me`, `create_issue`, `delete_repo`,
//! `merge_pr`. A call's answer names the tool, so a test sees what reached the server.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::upstream::UpBody;

/// The tools it offers.
pub const TOOLS: [&str; 5] = [
    "search_code",
    "get_me",
    "create_issue",
    "delete_repo",
    "merge_pr",
];

/// The answer to one POST: `body` a JSON-RPC message or batch.
pub fn answer(body: &[u8], sse: bool) -> Response<UpBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        let err = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}});
        return respond(StatusCode::BAD_REQUEST, &err, false);
    };
    let answers: Vec<Value> = match &request {
        Value::Array(batch) => batch.iter().filter_map(one).collect(),
        m => one(m).into_iter().collect(),
    };
    if answers.is_empty() {
        // Notifications and responses only: accepted, nothing to say.
        let mut r = Response::new(
            Full::new(Bytes::new())
                .map_err(|n| match n {})
                .boxed_unsync(),
        );
        *r.status_mut() = StatusCode::ACCEPTED;
        return r;
    }
    let out = match request {
        Value::Array(_) => Value::Array(answers),
        _ => answers.into_iter().next().unwrap_or(Value::Null),
    };
    let mut r = respond(StatusCode::OK, &out, sse);
    r.headers_mut()
        .insert("mcp-session-id", "test-session-1".parse().expect("static"));
    r
}

/// The answer to one message; `None` for a notification.
fn one(m: &Value) -> Option<Value> {
    let id = m.get("id")?.clone();
    let method = m.get("method").and_then(Value::as_str).unwrap_or("");
    let result = match method {
        "initialize" => json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "egret-test-mcp", "version": "1.0.0"},
        }),
        "tools/list" => json!({
            "tools": TOOLS.iter().map(|t| json!({
                "name": t,
                "description": format!("the test tool {t}"),
                "inputSchema": {"type": "object"},
            })).collect::<Vec<_>>()
        }),
        "tools/call" => {
            let name = m["params"]["name"].as_str().unwrap_or("");
            if !TOOLS.contains(&name) {
                return Some(
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": format!("Unknown tool: {name}")}}),
                );
            }
            json!({"content": [{"type": "text", "text": format!("called {name}")}], "isError": false})
        }
        "ping" => json!({}),
        other => {
            return Some(
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("Method not found: {other}")}}),
            );
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn respond(status: StatusCode, v: &Value, sse: bool) -> Response<UpBody> {
    let (text, kind) = if sse {
        (
            format!("event: message\ndata: {v}\n\n"),
            "text/event-stream",
        )
    } else {
        (v.to_string(), "application/json")
    };
    let mut r = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|n| match n {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", kind.parse().expect("static"));
    r
}
