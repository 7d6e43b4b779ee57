//! Step 9, for MCP servers (`mcp.tools`): an answer to `tools/list` shows only the tools
//! a call could pass (allowed, or held for approval), so an agent never sees a tool it
//! may not use. The answer is JSON (read whole, up to [`MAX`]) or server-sent events
//! (each event's `data` filtered as it streams); anything else is withheld.

use bytes::{Bytes, BytesMut};
use egret_policy::McpTools;
use futures_util::StreamExt;
use http::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

use crate::Proxy;
use crate::binding::Bound;
use crate::body::{BoxError, ProxyBody};
use crate::refusal::Refusal;
use crate::swap::SwapReport;

/// The biggest JSON tools list read whole.
const MAX: usize = 4 * 1024 * 1024;

/// The tools to filter an answer to, when the request listed an MCP server's tools
/// with its credential.
pub(super) fn to_filter(proxy: &Proxy, report: &SwapReport, lists: bool) -> Option<McpTools> {
    if !lists {
        return None;
    }
    let policy = proxy.policy.load();
    report
        .swapped
        .iter()
        .find_map(|s| policy.connector(s.connector())?.access.mcp.clone())
}

pub(super) async fn filter(
    bound: &Bound,
    resp: Response<ProxyBody>,
    tools: Option<McpTools>,
) -> Result<Response<ProxyBody>, Refusal> {
    let Some(tools) = tools else {
        return Ok(resp);
    };
    if !resp.status().is_success() {
        return Ok(resp);
    }
    let kind = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (mut parts, body) = resp.into_parts();
    if kind.starts_with("text/event-stream") {
        parts.headers.remove(CONTENT_LENGTH);
        return Ok(Response::from_parts(parts, events(body, tools)));
    }
    if !kind.starts_with("application/json") {
        return Err(Refusal::tools_list_unfilterable(
            &bound.host,
            &format!("a `{kind}` body"),
        ));
    }
    let bytes = read_whole(body).await.ok_or_else(|| {
        Refusal::tools_list_unfilterable(&bound.host, "a body over 4 MiB, or one that broke off")
    })?;
    let mut answer: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| Refusal::tools_list_unfilterable(&bound.host, "a body that is not JSON"))?;
    tools.filter_answer(&mut answer);
    let out = Bytes::from(serde_json::to_vec(&answer).unwrap_or_default());
    parts.headers.insert(CONTENT_LENGTH, out.len().into());
    Ok(Response::from_parts(
        parts,
        Full::new(out)
            .map_err(|never| match never {})
            .boxed_unsync(),
    ))
}

/// The body, whole, up to [`MAX`]; `None` when it is bigger or breaks off.
async fn read_whole(mut body: ProxyBody) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > MAX {
                return None;
            }
        }
    }
    Some(buf.freeze())
}

/// Server-sent events with each event's JSON `data` filtered; events are passed on
/// whole as they complete (an event is at most [`MAX`] bytes).
fn events(body: ProxyBody, tools: McpTools) -> ProxyBody {
    let state = (body, BytesMut::new(), tools, false);
    let stream =
        futures_util::stream::unfold(state, |(mut body, mut buf, tools, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(end) = event_end(&buf) {
                    let event = buf.split_to(end);
                    let out = filtered_event(&event, &tools);
                    return Some((Ok(Frame::data(out)), (body, buf, tools, false)));
                }
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            buf.extend_from_slice(&data);
                            if buf.len() > MAX {
                                let e: BoxError = "an MCP event over 4 MiB".into();
                                return Some((Err(e), (body, buf, tools, true)));
                            }
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (body, buf, tools, true))),
                    None => {
                        // A last event without its blank line.
                        let rest = buf.split().freeze();
                        if rest.is_empty() {
                            return None;
                        }
                        let out = filtered_event(&rest, &tools);
                        return Some((Ok(Frame::data(out)), (body, buf, tools, true)));
                    }
                }
            }
        });
    StreamBody::new(stream.boxed()).boxed_unsync()
}

/// Where the first complete event in `buf` ends (after its blank line).
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One event with its `data` lines, when they are a JSON-RPC answer, filtered.
fn filtered_event(event: &[u8], tools: &McpTools) -> Bytes {
    let text = String::from_utf8_lossy(event);
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return Bytes::copy_from_slice(event);
    }
    let Ok(mut answer) = serde_json::from_str::<serde_json::Value>(&data.join("\n")) else {
        return Bytes::copy_from_slice(event);
    };
    if !tools.filter_answer(&mut answer) {
        return Bytes::copy_from_slice(event);
    }
    let mut out = String::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with("data:") && !l.is_empty())
    {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&answer.to_string());
    out.push_str("\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_keeps_its_id_and_loses_the_tools_it_may_not_show() {
        let tools = McpTools {
            deny: vec!["delete_*".into()],
            ..McpTools::default()
        };
        let event = b"event: message\nid: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"get\"},{\"name\":\"delete_all\"}]}}\n\n";
        let out = String::from_utf8(filtered_event(event, &tools).to_vec()).expect("utf8");
        assert!(out.starts_with("event: message\nid: 7\ndata: "), "{out}");
        assert!(
            out.contains("\"get\"") && !out.contains("delete_all"),
            "{out}"
        );
        assert!(out.ends_with("\n\n"));
        assert_eq!(event_end(b"data: x\r\n\r\nmore"), Some(11));
        let other = b"data: not json\n\n";
        assert_eq!(&filtered_event(other, &tools)[..], &other[..]);
    }
}
