//! Activity (administrators): **Blocked egress** — the hosts the proxy refused to let
//! out (`egress_denied`), by host whatever the port, how often, from which sandboxes,
//! first and last seen, so an operator sees what agents tried to reach — **Other
//! refusals** (unknown placeholders, rate limits, …) by code — and the audit log, newest
//! first, filtered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use egret_service::AuditEvent;
use maud::html;
use serde::Deserialize;

use super::{admin, filled, layout, when};
use crate::UiState;

/// Refusals looked at for the summary (the newest first).
const SCAN: usize = 20_000;
/// Audit events shown.
const SHOWN: usize = 200;

#[derive(Deserialize, Default)]
pub(crate) struct Filter {
    event: Option<String>,
    connector: Option<String>,
    owner: Option<String>,
}

/// One group of refusals (a host, or a refusal code), summarised.
#[derive(Default)]
struct Blocked {
    count: usize,
    hosts: BTreeSet<String>,
    ports: BTreeSet<String>,
    sandboxes: BTreeSet<String>,
    first: i64,
    last: i64,
}

pub(crate) async fn page(
    State(state): State<Arc<UiState>>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let (event, connector, owner) = (
        filled(filter.event.as_deref()),
        filled(filter.connector.as_deref()),
        filled(filter.owner.as_deref()),
    );
    let (service, who) = (&state.service, session.principal());
    let read = async {
        let refused = service
            .audit_latest(&who, SCAN, SCAN, |e| e.event == "request.refused")
            .await?;
        let log = service
            .audit_latest(&who, SHOWN, 100_000, move |e| {
                event.as_deref().is_none_or(|p| e.event.starts_with(p))
                    && connector
                        .as_deref()
                        .is_none_or(|c| e.connector.as_deref() == Some(c))
                    && owner
                        .as_deref()
                        .is_none_or(|o| e.owner.as_deref() == Some(o))
            })
            .await?;
        Ok::<_, egret_service::ServiceError>((refused, log))
    };
    let (refused, log) = match read.await {
        Ok(r) => r,
        Err(e) => {
            let (status, message) = super::failed(&e);
            return super::problem(status, Some(&session), "Activity", &message, html! {});
        }
    };
    let (egress, other): (Vec<AuditEvent>, Vec<AuditEvent>) = refused
        .into_iter()
        .partition(|e| code_of(e) == Some("egress_denied"));
    let blocked = summarise(&egress, host_of);
    let others = summarise(&other, |e| code_of(e).unwrap_or("-").to_owned());
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let reload = service.lifecycle.refused_reload();
    let content = html! {
        @if let Some(r) = &reload {
            p.problem role="alert" {
                "The policy file's last reload was refused (" (when(r.at)) "): " code { (r.error) }
                ". egret runs the previous policy until the file is fixed."
            }
        }
        h2 { "Blocked egress" }
        p.lead { "Hosts the proxy refused (the newest " (SCAN) " refusals): what agents tried to reach. Allow one in the policy file (" code { "network.allow" } " or a connector's egress) only if it should be reachable." }
        (summary_table("blocked", ["Host", "Refusals", "Ports"], &blocked, |b| &b.ports))
        h2 { "Other refusals" }
        p.lead { "Requests refused for another reason than where they went (an unknown or misplaced placeholder, a rate limit, a connection to reconnect), by refusal." }
        (summary_table("refusals", ["Refusal", "Count", "Hosts"], &others, |b| &b.hosts))
        h2 { "Audit log" }
        form.filter method="get" action="/ui/activity" {
            label for="a-event" { "Event starts with" }
            input #a-event type="text" name="event" placeholder="connection." value=(value(&filter.event));
            label for="a-connector" { "Connector" }
            input #a-connector type="text" name="connector" value=(value(&filter.connector));
            label for="a-owner" { "Owner" }
            input #a-owner type="text" name="owner" value=(value(&filter.owner));
            button type="submit" { "Filter" }
        }
        @if log.is_empty() { p.empty { "No events match." } }
        @else {
            table.audit {
                thead { tr { th { "When" } th { "Event" } th { "By" } th { "Connector" } th { "Owner" } th { "Detail" } } }
                tbody {
                    @for e in &log {
                        tr {
                            td data-label="When" { (when(e.at)) } td data-label="Event" { code { (e.event) } }
                            td data-label="By" { (e.by.as_deref().unwrap_or("-")) }
                            td data-label="Connector" { (e.connector.as_deref().unwrap_or("-")) }
                            td data-label="Owner" { (e.owner.as_deref().unwrap_or("-")) @if let Some(n) = &e.name { " / " (n) } }
                            td data-label="Detail" { (detail(e)) }
                        }
                    }
                }
            }
        }
    };
    layout("Activity", Some(&session), content).into_response()
}

/// A table of grouped refusals: the group's key, its count, the set `third` picks
/// (ports or hosts), the sandboxes, first and last seen.
fn summary_table(
    class: &str,
    [key, count, third]: [&str; 3],
    groups: &BTreeMap<String, Blocked>,
    pick: impl Fn(&Blocked) -> &BTreeSet<String>,
) -> maud::Markup {
    html! {
        @if groups.is_empty() { p.empty { "Nothing refused." } }
        @else {
            table class=(class) {
                thead { tr { th { (key) } th { (count) } th { (third) } th { "Sandboxes" } th { "First seen" } th { "Last seen" } } }
                tbody {
                    @for (name, b) in groups {
                        tr {
                            td data-label=(key) { code { (name) } } td data-label=(count) { (b.count) }
                            td data-label=(third) { (joined(pick(b))) }
                            td data-label="Sandboxes" { (joined(&b.sandboxes)) }
                            td data-label="First seen" { (when(b.first)) } td data-label="Last seen" { (when(b.last)) }
                        }
                    }
                }
            }
        }
    }
}

/// Refusals grouped by `key`.
fn summarise(
    refused: &[AuditEvent],
    key: impl Fn(&AuditEvent) -> String,
) -> BTreeMap<String, Blocked> {
    let mut grouped: BTreeMap<String, Blocked> = BTreeMap::new();
    for e in refused {
        let Some(data) = &e.data else { continue };
        let b = grouped.entry(key(e)).or_default();
        b.count += 1;
        let (host, port) = split_port(target_of(e));
        b.hosts.insert(host.to_owned());
        if let Some(port) = port {
            b.ports.insert(port.to_owned());
        }
        if let Some(s) = data["sandbox"].as_str() {
            b.sandboxes.insert(s.to_owned());
        }
        b.first = if b.first == 0 {
            e.at
        } else {
            b.first.min(e.at)
        };
        b.last = b.last.max(e.at);
    }
    grouped
}

fn code_of(e: &AuditEvent) -> Option<&str> {
    e.data.as_ref()?["code"].as_str()
}

/// A CONNECT's target (`host:port`) or an intercepted request's host.
fn target_of(e: &AuditEvent) -> &str {
    e.data
        .as_ref()
        .and_then(|d| d["target"].as_str().or_else(|| d["host"].as_str()))
        .unwrap_or("-")
}

/// The host a refusal was for, lower-cased and without its port: a CONNECT names
/// `host:443`, an intercepted request `host`; both are the same host.
fn host_of(e: &AuditEvent) -> String {
    split_port(target_of(e)).0.to_ascii_lowercase()
}

/// `host:port` (or `[v6]:port`) into its host and port; a bare host has none.
fn split_port(target: &str) -> (&str, Option<&str>) {
    if let Some(rest) = target.strip_prefix('[') {
        return match rest.split_once("]:") {
            Some((host, port)) => (host, Some(port)),
            None => (rest.trim_end_matches(']'), None),
        };
    }
    match target.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (target, None),
    }
}

fn joined(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "-".to_owned()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// What an event says, in one line: its detail, or its data's main fields.
fn detail(e: &AuditEvent) -> String {
    if let Some(d) = &e.detail {
        return d.clone();
    }
    let Some(data) = &e.data else {
        return "-".to_owned();
    };
    [
        "host", "target", "method", "path", "status", "code", "sandbox",
    ]
    .iter()
    .filter_map(|k| {
        data.get(*k).filter(|v| !v.is_null()).map(|v| {
            format!(
                "{k}={}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            )
        })
    })
    .collect::<Vec<_>>()
    .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_the_same_with_or_without_its_port() {
        assert_eq!(split_port("Example.com:443"), ("Example.com", Some("443")));
        assert_eq!(split_port("example.com"), ("example.com", None));
        assert_eq!(split_port("[::1]:8443"), ("::1", Some("8443")));
        assert_eq!(split_port("::1"), ("::1", None));
    }
}
