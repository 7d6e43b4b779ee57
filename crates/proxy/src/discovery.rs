//! `http://egret.internal/connections`, asked through the proxy: egret answers it itself
//! and never forwards it. An agent learns what its placeholders stand for — connector,
//! description, who it is connected as, where the placeholder may be sent and in which
//! field, the variable `sandbox-env` puts it in, and whether it works — and never a
//! credential. With proxy authentication the sandbox's own placeholders are listed; in
//! any case each placeholder given in `Authorization` (Bearer, a comma-separated list
//! allowed). A placeholder bound to another sandbox is answered as unknown: a sandbox
//! learns nothing about another's.

use bytes::Bytes;
use egret_policy::{AuthKind, EnvValue, Policy};
use egret_vault::{Placeholder, PlaceholderInfo};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::Proxy;
use crate::body::ProxyBody;

/// The name a sandbox asks egret itself at; it never resolves anywhere.
pub const HOST: &str = "egret.internal";

/// Where refusals that concern a connection point an agent.
pub const ADDRESS: &str = crate::refusal::DISCOVERY;

/// True when a plain-HTTP proxy request is for egret itself.
pub(crate) fn is_for_egret<B>(req: &Request<B>) -> bool {
    req.uri()
        .host()
        .is_some_and(|h| h.eq_ignore_ascii_case(HOST))
}

/// Answers a request to `egret.internal` from `sandbox` (its id, with proxy
/// authentication).
pub(crate) async fn answer<B>(
    proxy: &Proxy,
    req: &Request<B>,
    sandbox: Option<&str>,
) -> Response<ProxyBody> {
    if req.uri().path() != "/connections" {
        return reply(
            StatusCode::NOT_FOUND,
            &json!({ "error": "not_found", "message": format!("egret answers {ADDRESS} only") }),
        );
    }
    if req.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": "method_not_allowed", "message": format!("use GET {ADDRESS}") }),
        );
    }
    let now = proxy.clock.unix();
    let mut seen: Vec<PlaceholderInfo> = Vec::new();
    if let Some(id) = sandbox {
        seen.extend(proxy.vault.placeholders(None, None, Some(id), now));
    }
    let mut unknown = 0usize;
    for text in bearer_list(req.headers().get(header::AUTHORIZATION)) {
        let found = Placeholder::parse(text)
            .and_then(|p| proxy.vault.resolve(&p.hash(), now))
            .map(|r| r.placeholder.info.clone())
            // Bound to another sandbox (or to one, asked without proxy authentication):
            // the same answer as a placeholder that does not exist.
            .filter(|info| info.sandbox.is_none() || info.sandbox.as_deref() == sandbox);
        match found {
            Some(info)
                if !seen
                    .iter()
                    .any(|s| s.hint == info.hint && s.created_at == info.created_at) =>
            {
                seen.push(info);
            }
            Some(_) => {}
            None => unknown += 1,
        }
    }
    // The calling sandbox's requests waiting for a person (read from the store, off the
    // worker: with replicas, an approval asked through another is there too).
    let approvals = proxy.approvals.clone();
    let pending = tokio::task::spawn_blocking(move || approvals.list())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| {
            a.status == egret_approvals::ApprovalStatus::Pending && a.sandbox.as_deref() == sandbox
        })
        .collect::<Vec<_>>();
    let policy = proxy.policy.load();
    let connections: Vec<Value> = seen
        .iter()
        .map(|p| {
            let mut v = describe(proxy, &policy, p);
            let mine: Vec<Value> = pending
                .iter()
                .filter(|a| a.connection() == p.connection())
                .map(|a| {
                    json!({
                        "approval_id": a.id,
                        "method": a.method,
                        "host": a.host,
                        "path": a.path,
                        "reason": a.reason,
                        "expires_at": a.expires_at,
                        "approval_url": proxy.approvals.page_url(&a.id),
                    })
                })
                .collect();
            v["pending_approvals"] = json!(mine);
            v
        })
        .collect();
    let mut body = json!({ "connections": connections, "unknown_placeholders": unknown });
    if sandbox.is_none() && seen.is_empty() && unknown == 0 {
        body["message"] = json!(
            "give your placeholders as `Authorization: Bearer egp_…` (several separated by commas) to learn what they stand for"
        );
    }
    reply(StatusCode::OK, &body)
}

/// What one placeholder stands for, as an agent needs it.
fn describe(proxy: &Proxy, policy: &Policy, p: &PlaceholderInfo) -> Value {
    let id = p.connection();
    let connection = proxy.vault.connection(&id);
    let connector = policy.connector(&p.connector);
    let health = proxy.broker.health(&id);
    let status = match &connection {
        Some(c) => health.status(c, connector.is_none()),
        None if connector.is_none() => "connector_removed",
        None => "not_connected",
    };
    let mut v = json!({
        "placeholder": p.hint,
        "connector": p.connector,
        "name": p.name,
        "owner": p.owner,
        "status": status,
        "expires_at": p.expires_at,
        "description": connection.as_ref().and_then(|c| c.description.clone()),
        "identity_label": connection.as_ref().and_then(|c| c.identity_label.clone()),
    });
    if let Some(c) = connector {
        v["egress"] = json!(c.egress.iter().map(ToString::to_string).collect::<Vec<_>>());
        let input = p
            .input
            .as_deref()
            .and_then(|name| c.input(name))
            .or_else(|| c.first_input());
        v["send_in"] = json!(match input {
            None => {
                let mut fields =
                    vec![json!({ "header": "authorization", "form": "Bearer <placeholder>" })];
                fields.extend(c.inject.headers.iter().map(|h| json!({ "header": h })));
                fields.extend(c.inject.query.iter().map(|q| json!({ "query": q })));
                fields
            }
            Some(i) => vec![send_in(c, &i.inject)],
        });
        if let Some(i) = input {
            v["input"] = json!(i.name);
        }
        v["env"] = json!(
            c.env
                .iter()
                .filter(|(_, what)| match what {
                    EnvValue::Placeholder => input.is_none(),
                    EnvValue::Input(name) => input.is_some_and(|i| &i.name == name),
                    _ => false,
                })
                .map(|(var, _)| p.name.env_var(var))
                .collect::<Vec<_>>()
        );
        v["auth"] = json!(c.auth.name());
        // What the agent may do with it, so it can plan instead of being refused.
        v["access"] = json!({
            "read_only": c.access.read_only,
            "rules": c.access.summaries(),
            "default": c.access.default.as_str(),
            "allowed": c.access.allowed_sentence(),
            "mcp_tools": c.access.mcp.as_ref().map(|m| json!({"allow": m.allow, "deny": m.deny, "approve": m.approve})),
        });
        if let Some(budget) = c.budget {
            let usage = proxy.budgets.usage(&id, &budget, proxy.clock.unix());
            v["budget"] = json!({
                "requests": usage.map(|u| u.budget),
                "per": budget.requests.map(|(_, per)| humantime::format_duration(per).to_string()),
                "used": usage.map(|u| u.used),
                "left": usage.map(|u| u.budget.saturating_sub(u.used)),
                "renews_at": usage.map(|u| u.window_ends_at),
                "concurrent": budget.concurrent,
            });
        }
    }
    let action = match status {
        "needs_reauth" => Some(format!(
            "the user must connect {} again (the Connections page, or `egret connection connect {} --owner {}{}`); until then requests with this placeholder are refused",
            p.connector,
            p.connector,
            p.owner,
            p.name.flag()
        )),
        "refresh_failing" => Some(
            "the vendor's token endpoint is failing; egret keeps retrying: retry in a little while"
                .to_owned(),
        ),
        "connector_removed" => {
            Some("the connector is no longer in egret's policy; ask the operator".to_owned())
        }
        "not_connected" => Some("the connection was removed; ask for a new placeholder".to_owned()),
        _ => None,
    };
    if let Some(a) = action {
        v["action"] = json!(a);
    }
    v
}

/// The placeholders in `Authorization: Bearer a, b` (or `Bearer a, Bearer b`).
fn bearer_list(value: Option<&HeaderValue>) -> Vec<&str> {
    let Some(text) = value.and_then(|v| v.to_str().ok()) else {
        return Vec::new();
    };
    text.split(',')
        .map(|part| {
            let part = part.trim();
            part.strip_prefix("Bearer ")
                .or_else(|| part.strip_prefix("bearer "))
                .unwrap_or(part)
                .trim()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

fn reply(status: StatusCode, body: &Value) -> Response<ProxyBody> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut resp = Response::new(
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Where a sandbox puts an input's placeholder, for an agent to read.
fn send_in(c: &egret_policy::Connector, field: &egret_policy::InputField) -> serde_json::Value {
    use egret_policy::InputField;
    match field {
        InputField::Header(h) if h == "authorization" => {
            json!({ "header": "authorization", "form": "Bearer <placeholder>" })
        }
        InputField::Header(h) => json!({ "header": h }),
        InputField::Query(q) => json!({ "query": q }),
        InputField::BasicUser => {
            json!({ "header": "authorization", "form": "Basic base64(<placeholder>:<password>)" })
        }
        InputField::BasicPassword => {
            json!({ "header": "authorization", "form": "Basic base64(<user>:<placeholder>)" })
        }
        InputField::Sign => match &c.auth {
            AuthKind::AwsSigV4(_) => {
                json!({ "sign": "aws_sigv4", "form": "sign with the AWS SDK using the placeholder key pair; egret signs again" })
            }
            _ => {
                json!({ "sign": "hmac", "form": "send no signature (or the placeholder where the signature goes); egret signs" })
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_lists_split_on_commas_with_or_without_the_scheme() {
        let v = HeaderValue::from_static("Bearer egp_a, egp_b,Bearer egp_c");
        assert_eq!(bearer_list(Some(&v)), ["egp_a", "egp_b", "egp_c"]);
        assert!(bearer_list(None).is_empty());
    }
}
